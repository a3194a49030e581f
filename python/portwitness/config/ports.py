"""Port items as every configuration form writes them: `6502` or `20000-20100`, in lists separated by
`;` (PortsConfig.cfg) or `|` (the management service). Errors carry the offset of the offending text so
each reader can turn them into a line and column of its own file."""

from __future__ import annotations

import re

from portwitness._core import PortwitnessError
from portwitness.config.model import PortRange

_ITEM = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?")


class PortSyntaxError(PortwitnessError, ValueError):
    """A port item that cannot be read; `offset` is 0-based within the text handed to the parser."""

    def __init__(self, offset: int, message: str) -> None:
        self.offset, self.message = offset, message
        super().__init__(message)


def parse_port_item(item: str, offset: int = 0) -> PortRange:
    """`6502` or `lo-hi`; whitespace around the numbers is allowed (the management settings use it)."""
    m = _ITEM.fullmatch(item)
    if not m:
        # Point past leading blanks, at the text the user wrote.
        at = offset + len(item) - len(item.lstrip())
        raise PortSyntaxError(at, f"port item {item.strip()!r} is not a port or lo-hi range")
    lo = _port(m.group(1), offset + m.start(1))
    if m.group(2) is None:
        return PortRange(lo, lo)
    hi = _port(m.group(2), offset + m.start(2))
    if hi < lo:
        raise PortSyntaxError(offset + m.start(1), f"inverted range {lo}-{hi}: the low port comes first")
    return PortRange(lo, hi)


def _port(digits: str, offset: int) -> int:
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
            raise PortSyntaxError(offset + pos, f"empty port item in {spec.strip()!r}")
        out.append((offset + pos, parse_port_item(part, offset + pos)))
        pos += len(part) + len(sep)
    return out
