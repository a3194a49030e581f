"""The flows table kept on disk while the core decodes, and read back in flow order.

A capture of millions of short flows (a SYN flood, a scan) finishes flows far faster than they can
be useful in memory: held whole, 10 million rows take gigabytes. With a spill, the core hands out
finished flows in batches while it decodes (`_core.decode(flow_sink=...)`); each batch, already in
flow order, becomes one Parquet part in a private directory. Flows finish out of id order (a long
flow finishes late), so the parts are sorted runs that overlap: `merged` reads them back a slice
of each at a time and yields the rows in flow order, in batches, with memory bounded by the
number of parts times the slice, not by the flows. `write_flows` streams those batches into the
output file, so the whole table never exists in memory.

polars is imported where it is used: the command line opens the spill before the decode starts
and loads polars on another thread meanwhile.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

# Rows read from all parts at once while merging (split between them).
MERGE_ROWS = 1 << 20
_ROW_GROUP = 16_384


class FlowSpill:
    """A callable for `_core.decode(flow_sink=...)` writing each batch as a Parquet part under
    `directory` (the output's directory: where the user expects the space to be used). The parts
    are removed on `close()` (or leaving the `with` block), also after an error."""

    def __init__(self, directory: str | Path | None = None, output: str | None = None) -> None:
        from portwitness.outputs import SPILL_PREFIX, sweep

        # Named with our pid: a run killed before `close` leaves it to the next run here to remove.
        sweep(directory if directory is not None else tempfile.gettempdir())
        self.dir = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=directory))
        self.parts: list[tuple[Path, int]] = []
        # Whose failure a failed part is: the output's, when the spill goes beside one.
        self.output = output

    def __call__(self, table: Any) -> None:
        import polars as pl

        df = pl.DataFrame(table)
        path = self.dir / f"part-{len(self.parts):06d}.parquet"
        # LZ4: the parts are read back once, soon; speed matters more than size.
        try:
            df.write_parquet(path, compression="lz4", row_group_size=_ROW_GROUP, statistics=False)
        except (OSError, pl.exceptions.PolarsError) as e:
            raise output_error(e, self.output or str(path)) from None
        self.parts.append((path, df.height))
        from portwitness.outputs import crash_point

        crash_point("spill-part")

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> FlowSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def release_free_memory() -> None:
    """Gives the heap's free pages back to the system (glibc keeps them, per thread arena, after
    the decode frees its flow table): the merge that follows then adds to what is in use, not to
    what once was. Does nothing where the C library has no `malloc_trim`."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


class _Run:
    """One sorted run: a part on disk, or the frame the decode kept in memory."""

    def __init__(self, source: Path | pl.DataFrame, rows: int) -> None:
        self.source, self.rows, self.at = source, rows, 0

    def take(self, n: int) -> pl.DataFrame | None:
        """The next `n` rows, None once every row was taken."""
        import polars as pl

        if self.at >= self.rows:
            return None
        if isinstance(self.source, pl.DataFrame):
            out = self.source.slice(self.at, n)
        else:
            out = pl.scan_parquet(self.source).slice(self.at, n).collect()
        self.at += n
        return out


def merged(
    parts: list[tuple[Path, int]], rest: pl.DataFrame, merge_rows: int = MERGE_ROWS
) -> Iterator[pl.DataFrame]:
    """The rows of the parts and of `rest` (each sorted by flow_id, ids unique across all) in
    flow_id order, batch by batch. Each step holds a slice of every run; every row up to the
    smallest last id among the slices is known then (no run can hold a smaller id further on),
    so those rows are emitted, and the runs they emptied read on."""
    import polars as pl

    runs = [_Run(p, n) for p, n in parts] + [_Run(rest, rest.height)]
    step = max(1024, merge_rows // len(runs))
    held: list[pl.DataFrame | None] = [pl.DataFrame() for _ in runs]
    while True:
        for i, run in enumerate(runs):
            h = held[i]
            if h is not None and h.is_empty():
                held[i] = run.take(step)
        live = [h for h in held if h is not None and not h.is_empty()]
        if not live:
            return
        bound = min(h["flow_id"][-1] for h in live)
        out = []
        for i, h in enumerate(held):
            if h is None or h.is_empty():
                continue
            n = int(h["flow_id"].search_sorted(bound, side="right"))
            out.append(h.head(n))
            held[i] = h.slice(n)
        yield out[0] if len(out) == 1 else pl.concat(out).sort("flow_id")


def write_flows(batches: Iterator[pl.DataFrame], schema: pl.Schema, output: str, fmt: str) -> int:
    """Streams `batches` into `output` (a path, or `-` for stdout except Parquet) as one table
    in `fmt`: the bytes equal those of writing the concatenated frame at once, for csv and ndjson;
    Parquet is written by polars' streaming sink. Returns the rows written."""

    if fmt == "parquet":
        count = [0]

        def source(
            with_columns: list[str] | None,
            predicate: pl.Expr | None,
            n_rows: int | None,
            batch_size: int | None,
        ) -> Iterator[pl.DataFrame]:
            for b in batches:
                count[0] += b.height
                yield b

        from polars.io.plugins import register_io_source

        from portwitness.outputs import atomic_output

        with atomic_output(output) as tmp:
            try:
                register_io_source(source, schema=schema).sink_parquet(tmp)
            except OSError as e:
                raise output_error(e, output) from None
        return count[0]
    if output == "-":
        return _write_text(batches, schema, sys.stdout.buffer, fmt)
    from portwitness.outputs import open_output

    with open_output(output, "wb") as f:
        return _write_text(batches, schema, f, fmt)


def write_parquet(table: Any, output: str) -> int:
    """Writes an Arrow table (`Capture.arrow`) to the file `output` as Parquet, by the core (zstd,
    row groups as polars makes them), whole or not at all (`outputs.atomic_output`); an OSError
    names the output as any other failed write does."""
    from portwitness import _core
    from portwitness.outputs import atomic_output

    with atomic_output(output) as tmp:
        try:
            return _core.write_parquet(table, tmp)
        except OSError as e:
            raise output_error(e, output) from None


def output_error(e: BaseException, output: str) -> OSError:
    """`e`, a failed write of `output`, named as every failed write is (`outputs.output_error`)."""
    from portwitness.outputs import output_error as named

    return named(e, output)


def _write_text(batches: Iterator[pl.DataFrame], schema: pl.Schema, f: IO[bytes], fmt: str) -> int:
    import polars as pl

    from portwitness.outputs import crash_point

    rows = 0
    first = True
    if fmt == "json":
        f.write(b"[")
    for b in batches:
        if b.is_empty():
            continue
        if fmt == "csv":
            b.write_csv(f, include_header=first)
        elif fmt == "ndjson":
            b.write_ndjson(f)
        elif fmt == "json":
            text = b.write_json().encode()
            f.write((b"" if first else b",") + text[1:-1])
        else:
            raise ValueError(f"unknown format {fmt}")
        first = False
        rows += b.height
        crash_point("text-batch")
    if first and fmt == "csv":
        pl.DataFrame(schema=schema).write_csv(f)
    if fmt == "json":
        f.write(b"]")
    return rows
