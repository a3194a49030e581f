"""Reading a configuration file's text, with failures reported as ConfigError at line 0."""

from __future__ import annotations

import codecs
import errno
import os

from portwitness.config.model import ConfigError

_REASONS = {
    errno.ENOENT: "no such file",
    errno.EACCES: "permission denied",
    errno.EISDIR: "is a directory",
}


def read_source(path: str | os.PathLike[str], text: str | None) -> tuple[str, str]:
    """The file's name as messages show it, and its text (`text` given: the file is not read)."""
    name = os.fspath(path)
    if text is not None:
        return name, text
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        reason = _REASONS.get(e.errno or 0) or e.strerror or str(e)
        raise ConfigError(name, 0, 0, reason) from e
    return name, decode(data)


def decode(data: bytes) -> str:
    """Windows editors save with a UTF-16 or UTF-8 byte-order mark, or in the ANSI code page, and
    some tools write UTF-16 without a mark; the files hold ASCII names and numbers, so UTF-16 without a
    mark shows as a NUL beside most characters, and cp1252 is a safe last resort. CRLF line ends need
    nothing: every reader splits with str.splitlines()."""
    if data.startswith(codecs.BOM_UTF16_LE):
        return data[2:].decode("utf-16-le", errors="replace")
    if data.startswith(codecs.BOM_UTF16_BE):
        return data[2:].decode("utf-16-be", errors="replace")
    unmarked = _utf16_without_bom(data)
    if unmarked:
        return data.decode(unmarked, errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le" or "utf-16-be" when NULs fill most odd (or even) bytes of the start and hardly any
    of the others: text in UTF-8 or cp1252 holds no NUL at all."""
    head = data[:4096]
    if len(head) < 2:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    half = len(head) // 2
    if odd >= half * 0.4 and even <= half * 0.05:
        return "utf-16-le"
    if even >= half * 0.4 and odd <= half * 0.05:
        return "utf-16-be"
    return None
