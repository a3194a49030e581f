"""Text from configurations and captures made safe for each generated syntax. Every writer first
makes the text printable ASCII (`visible`): control characters, line and paragraph separators,
bidirectional overrides and every other non-ASCII character become `\\xNN` / `\\uNNNN`, so no
text can end a comment, start a line or hide what follows; then each syntax's own quoting."""

from __future__ import annotations


def visible(text: str, limit: int | None = None) -> str:
    out = []
    for ch in text:
        o = ord(ch)
        if 0x20 <= o < 0x7F:
            out.append(ch)
        elif o < 0x100:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    s = "".join(out)
    if limit is not None and len(s) > limit:
        s = s[: limit - 3] + "..."
    return s


def nft_string(text: str, limit: int = 120) -> str:
    """A double-quoted nft string: nft has no escape inside quotes, so `"` becomes `'` (and the
    backslashes `visible` wrote stay literal). nft refuses comments over 128 bytes."""
    return '"' + visible(text, limit).replace('"', "'") + '"'


def iptables_string(text: str, limit: int = 250) -> str:
    """A double-quoted word of iptables-restore input: `\\` and `"` escaped with a backslash, as
    iptables-save writes them; the comment match takes at most 255 bytes."""
    s = visible(text, limit)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ps_string(text: str, limit: int | None = None) -> str:
    """A single-quoted PowerShell string: nothing expands inside, `'` is doubled (and the Unicode
    quotes PowerShell also takes for `'` were already made `\\uNNNN` by `visible`)."""
    return "'" + visible(text, limit).replace("'", "''") + "'"


# cmd.exe: inside double quotes &|<>^ are literal, but `%` expands and `"` ends the quote; in a
# `rem` line nothing runs, but a caret or percent still would be read. Only this set passes.
_CMD_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;/()[]{}@+=#'_~-\\$*?")


def cmd_text(text: str, limit: int | None = None) -> str:
    """Text for a batch file, quoted or in a `rem`: every character outside a plain set becomes
    `\\xNN`, so no quote, percent, caret, ampersand or line break reaches cmd.exe."""
    return "".join(ch if ch in _CMD_SAFE else f"\\x{ord(ch):02x}" for ch in visible(text, limit))


def cmd_string(text: str, limit: int | None = None) -> str:
    return '"' + cmd_text(text, limit) + '"'


def xml_text(text: str) -> str:
    return (
        visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def xml_comment(text: str) -> str:
    """Text inside <!-- -->: `--` may not appear there, nor end with `-`."""
    s = visible(text).replace("--", "- -")
    return s + " " if s.endswith("-") else s


def hash_comment(text: str) -> str:
    """The text of a `#` comment line (nft, iptables-restore, PowerShell): one line, always."""
    return visible(text)
