"""Reading a ruleset file: its bytes bounded and decoded (UTF-8 or UTF-16 with its byte-order mark,
as Windows PowerShell 5 redirects write), its format told from its content unless given."""

from __future__ import annotations

import os

from portwitness.firewall import read_iptables, read_nft, windows
from portwitness.firewall.ruleset import MAX_RULESET_BYTES, Ruleset, RulesetError

FORMATS = ("auto", "nftables", "iptables", "windows-json", "netsh")


def decode_text(data: bytes, file: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data[:4096]:
        raise RulesetError(file, 0, "binary data (NUL bytes), not a ruleset")
    return data.decode("utf-8", errors="replace")


def load_ruleset(path: str, fmt: str = "auto") -> Ruleset:
    """Raises OSError when the file cannot be read, RulesetError (exit 2) when it is no ruleset."""
    if path == "-":
        import sys

        data = sys.stdin.buffer.read(MAX_RULESET_BYTES + 1)
    else:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size > MAX_RULESET_BYTES:
                raise RulesetError(path, 0, f"larger than {MAX_RULESET_BYTES >> 20} MiB")
            data = fh.read(MAX_RULESET_BYTES + 1)
    if len(data) > MAX_RULESET_BYTES:
        raise RulesetError(path, 0, f"larger than {MAX_RULESET_BYTES >> 20} MiB")
    text = decode_text(data, path)
    return parse_ruleset(text, path, fmt)


def parse_ruleset(text: str, file: str, fmt: str = "auto") -> Ruleset:
    if fmt == "auto":
        fmt = detect(text, file)
    if fmt == "nftables":
        return read_nft.read_nft(text, file)
    if fmt == "iptables":
        return read_iptables.read_iptables(text, file)
    if fmt == "windows-json":
        return windows.read_windows_json(text, file)
    if fmt == "netsh":
        return windows.read_netsh(text, file)
    raise RulesetError(file, 0, f"unknown ruleset format {fmt!r}")


def detect(text: str, file: str) -> str:
    if read_nft.looks_like(text):
        return "nftables"
    if read_iptables.looks_like(text):
        return "iptables"
    if windows.looks_like_netsh(text):
        return "netsh"
    if windows.looks_like_json(text):
        return "windows-json"
    first = next((n for n, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.startswith("#")), 1)
    raise RulesetError(
        file,
        first,
        "cannot tell the ruleset's format (nft -j list ruleset JSON, iptables-save, Windows firewall "
        "JSON or netsh show rule verbose): give --ruleset-format",
    )
