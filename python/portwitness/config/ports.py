"""Port items as every configuration form writes them: `6502` or `20000-20100`, in lists separated by
`;` (PortsConfig.cfg) or `|` (the management service). Errors carry the offset of the offending text so
each reader can turn them into a line and column of its own file."""

from __future__ import annotations

import re

from portwitness.config.model import PortRange
from portwitness.errors import ArgumentError

# ASCII digits only: `\d` and int() also take fullwidth and other scripts' digits.
_ITEM = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")
# Longer than any port: refused before conversion, so thousands of digits cost nothing.
MAX_DIGITS = 5


def shown(text: str, limit: int = 40) -> str:
    """`text` quoted for a message, cut short so that a hostile value keeps the message one short line."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


class PortSyntaxError(ArgumentError):
    """A port item that cannot be read; `offset` is 0-based within the text handed to the parser."""

    def __init__(self, offset: int, message: str) -> None:
        self.offset, self.message = offset, message
        super().__init__(message)


def parse_port_item(item: str, offset: int = 0) -> PortRange:
    """`6502` or `lo-hi`; whitespace around the numbers is allowed (the management settings use it)."""
    for i, c in enumerate(item):
        if c.isdigit() and not c.isascii():
            raise PortSyntaxError(
                offset + i, f"port item {shown(item.strip())} holds {c!r}: ports are written with 0-9"
            )
    m = _ITEM.fullmatch(item)
    if not m:
        # Point past leading blanks, at the text the user wrote.
        at = offset + len(item) - len(item.lstrip())
        raise PortSyntaxError(at, f"port item {shown(item.strip())} is not a port or lo-hi range")
    lo = _port(m.group(1), offset + m.start(1))
    if m.group(2) is None:
        return PortRange(lo, lo)
    hi = _port(m.group(2), offset + m.start(2))
    if hi < lo:
        raise PortSyntaxError(offset + m.start(1), f"inverted range {lo}-{hi}: the low port comes first")
    return PortRange(lo, hi)


def _port(digits: str, offset: int) -> int:
    if len(digits.lstrip("0")) > MAX_DIGITS:
        raise PortSyntaxError(offset, f"port {shown(digits, 12)} outside 1-65535")
    n = int(digits)
    if not 1 <= n <= 65535:
        raise PortSyntaxError(offset, f"port {n} outside 1-65535")
    return n


def parse_port_list(spec: str, sep: str, offset: int = 0) -> list[tuple[int, PortRange]]:
    """Items separated by `sep`, each with its offset. A trailing separator is tolerated (hand-edited
    files end lists that way); an empty item anywhere else is an error."""
    out: list[tuple[int, PortRange]] = []
    pos = 0
    parts = spec.split(sep)
    for i, part in enumerate(parts):
        if not part.strip():
            if i == len(parts) - 1 and i > 0:
                break
            raise PortSyntaxError(offset + pos, f"empty port item in {shown(spec.strip())}")
        out.append((offset + pos, parse_port_item(part, offset + pos)))
        pos += len(part) + len(sep)
    return out
