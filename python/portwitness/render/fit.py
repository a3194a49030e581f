"""Tables that never cut an identity: an address, a port, a program number, an interface, a service
name or a violation type is printed whole at any terminal width down to 80 columns.

Each column is one of four kinds. `id` cells are never wrapped or cut; `count` and `time` cells are
never cut either, but their columns may go (times before counts); `text` cells (descriptions,
origins, lists) wrap between words, fold inside a longer one, and their columns go first. On a terminal the table is tried boxed, then compact
(no box, narrower gaps), then with descriptive columns left out from the right, and when even the
identities alone do not fit, each record is printed as a block of `header: value` lines. A footnote
names the columns left out. Off a terminal (a pipe, a file) the table is plain aligned text, no
box drawing, never cut: the width of a pipe is unknown, and a reader of the file wants it whole.

Cells are plain strings with control characters made visible (`visible`); they are handed to rich
as `Text`, never parsed as markup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

ID, COUNT, TIME, TEXT = "id", "count", "time", "text"


@dataclass(frozen=True)
class Col:
    header: str
    kind: str = TEXT
    justify: JustifyMethod = "left"


def visible(value: object) -> str:
    """A string from the wire, fit for a terminal: control characters and escapes made visible."""
    s = "" if value is None else str(value)
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in s)


def _rich_table(
    title: str | None, cols: Sequence[Col], rows: Sequence[Sequence[str]], compact: bool
) -> Table:
    if compact:
        t = Table(
            title=title,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
        )
    else:
        t = Table(title=title, title_justify="left")
    for i, c in enumerate(cols):
        natural = max([len(c.header), *(len(r[i]) for r in rows)])
        if c.kind == TEXT:
            t.add_column(c.header, justify=c.justify, overflow="fold", min_width=min(natural, 10))
        else:
            t.add_column(c.header, justify=c.justify, no_wrap=True, min_width=natural)
    for r in rows:
        t.add_row(*(Text(v) for v in r))
    return t


def _least_width(cols: Sequence[Col], rows: Sequence[Sequence[str]], compact: bool) -> int:
    """The narrowest the table can be drawn: identities and counts whole, descriptions folded to
    10 columns; a boxed table adds 3 per column and 1 (rules and padding), a compact one 2 per gap."""
    least = 0
    for i, c in enumerate(cols):
        natural = max([len(c.header), *(len(r[i]) for r in rows)])
        least += min(natural, 10) if c.kind == TEXT else natural
    n = len(cols)
    return least + (2 * (n - 1) if compact else 3 * n + 1)


def _drop_order(cols: Sequence[Col]) -> list[int]:
    """The columns that may be left out, first to go first: descriptions from the right, then
    times, then counts."""
    order: list[int] = []
    for kind in (TEXT, TIME, COUNT):
        order += [i for i in reversed(range(len(cols))) if cols[i].kind == kind]
    return order


def print_table(
    console: Console,
    title: str | None,
    cols: Sequence[Col],
    rows: Sequence[Sequence[object]],
) -> None:
    """Prints the table on `console` as wide as it can without cutting an identity."""
    cells = [[visible(v) for v in r] for r in rows]
    if not console.is_terminal:
        _plain(console, title, cols, cells)
        return
    width = console.width
    keep = list(range(len(cols)))
    for i in [None, *_drop_order(cols)]:
        if i is not None:
            keep.remove(i)
        shown_cols = [cols[k] for k in keep]
        shown_rows = [[r[k] for k in keep] for r in cells]
        for compact in (False, True) if i is None else (True,):
            if _least_width(shown_cols, shown_rows, compact) <= width:
                console.print(_rich_table(title, shown_cols, shown_rows, compact))
                left_out = [c.header for k, c in enumerate(cols) if k not in keep]
                if left_out:
                    console.print(
                        Text(
                            f"(left out at this width: {', '.join(left_out)}; a wider terminal or "
                            "--format csv shows them)",
                            style="dim",
                        )
                    )
                return
    _blocks(console, title, cols, cells)


def _plain(console: Console, title: str | None, cols: Sequence[Col], cells: list[list[str]]) -> None:
    widths = [max([len(c.header), *(len(r[i]) for r in cells)]) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        out = [
            v.rjust(w) if c.justify == "right" else v.ljust(w)
            for v, w, c in zip(values, widths, cols, strict=True)
        ]
        return "  ".join(out).rstrip()

    lines = [title] if title else []
    lines += [line([c.header for c in cols]), *(line(r) for r in cells)]
    for text in lines:
        console.print(Text(text), soft_wrap=True, crop=False)


def _blocks(console: Console, title: str | None, cols: Sequence[Col], cells: list[list[str]]) -> None:
    """One record per block: `header: value` lines; a value longer than the line goes on as is
    (the terminal wraps it, nothing is cut)."""
    if title:
        console.print(Text(title), soft_wrap=True)
    pad = max(len(c.header) for c in cols)
    for n, r in enumerate(cells):
        if n:
            console.print()
        for c, v in zip(cols, r, strict=True):
            if v:
                console.print(Text(f"{c.header.rjust(pad)}: {v}"), soft_wrap=True, crop=False)
