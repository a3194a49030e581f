"""The captures a command reads, decoded (or a dataset read instead): inputs resolved and
protected, Ctrl-C seen during the decode, a progress bar on a terminal for large inputs, the
finished flows kept on disk while the decode runs.

polars, the renderers and the dataset writer are imported where used: loading them takes about
as long as decoding 200 MB, so `decode_captures` has them load on another thread while the core
decodes."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from portwitness.capture import Capture, decode
from portwitness.commands.context import reads, scheduler, skip_unreadable, threads
from portwitness.commands.on_cluster import decode_on_cluster
from portwitness.commands.output import warn
from portwitness.formats import to_stdout
from portwitness.inputs import resolve

# Inputs at least this large get a progress bar (on a terminal only).
PROGRESS_MIN_BYTES = 256 << 20


def decode_captures(
    captures: tuple[str, ...], max_flows: int, idle_timeout: float, polars: bool = True, **spill: Any
) -> Capture:
    """`spill`: `flow_sink`, `spill_rows` and `tables` for `decode` (ignored on a cluster). `polars`: False
    when the caller may never need it (its import would only take CPU from the decode)."""
    if polars:
        _load_polars_meanwhile()
    skip = skip_unreadable()
    # Inputs that are no capture stop the run here, before anything is decoded or written.
    files, skipped = resolve(list(captures), skip)
    reads(files)
    for s in skipped:
        warn(f"skipped {s.path}: {s.reason}")
    spill["skip_unreadable"] = skip
    address = scheduler()
    if address:
        cap = decode_on_cluster(files, address, max_flows, idle_timeout, skip)
    else:
        total = sum(os.path.getsize(f) for f in files if f != "-" and os.path.isfile(f))
        if not (sys.stderr.isatty() and total >= PROGRESS_MIN_BYTES):
            cap = interruptible(
                decode, files, max_flows=max_flows, idle_timeout=idle_timeout, threads=threads(), **spill
            )
        else:
            cap = _decode_with_bar(files, total, max_flows, idle_timeout, **spill)
    for s in cap.skipped:
        warn(f"skipped {s.path}: {s.reason}")
    return cap.with_inputs((*cap.inputs, *skipped))


def _load_polars_meanwhile() -> None:
    """Imports polars on another thread. The core releases the GIL while it decodes, so the
    import runs beside the decode instead of before it; whoever needs polars first waits for it
    (the import system's module lock). Not a daemon: the interpreter never exits mid-import."""
    if "polars" not in sys.modules:
        threading.Thread(target=_import_polars, name="import-polars").start()


def _import_polars() -> None:
    # A failure is raised again where polars is first used, on the thread that needs it.
    try:
        import polars  # noqa: F401
    except BaseException:
        pass


def interruptible(fn: Any, *args: Any, each: Any = None, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` on a worker thread while this one waits in slices of a tenth of a
    second (calling `each()` after each), so Ctrl-C is seen within one: the core decodes with the
    GIL released and does not look at signals. Interrupted, the worker is left to the process's
    exit (`entry` ends the process without waiting for it)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the waiting thread
            result["error"] = e

    worker = threading.Thread(target=run, name="portwitness-decode", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if each is not None:
            each()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _decode_with_bar(
    files: list[str], total: int, max_flows: int, idle_timeout: float, **spill: Any
) -> Capture:
    """The decode on a worker thread (the core releases the GIL) while this one draws a progress
    bar by bytes read on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    from portwitness._core import Progress as Counter

    counter = Counter()
    columns = (
        "{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("decoding", total=total)
        return interruptible(
            decode,
            files,
            each=lambda: bar.update(task, completed=min(counter.bytes_read, total)),
            max_flows=max_flows,
            idle_timeout=idle_timeout,
            progress=counter,
            threads=threads(),
            **spill,
        )


class GuardedSink:
    """The spill's sink, closed for good by `close`: after Ctrl-C the decode may still hand it a
    batch while the process ends, and no part may be written after the spill's directory is
    removed."""

    def __init__(self, spill: Any) -> None:
        self.spill, self.lock, self.closed = spill, threading.Lock(), False

    def __call__(self, table: Any) -> None:
        with self.lock:
            if self.closed:
                raise RuntimeError("the output was abandoned")
            self.spill(table)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.spill.close()


@contextlib.contextmanager
def load(
    captures: tuple[str, ...],
    dataset: str | None,
    max_flows: int,
    idle_timeout: float,
    output: str | None = None,
    **decode_args: Any,
) -> Iterator[Capture]:
    """The captures decoded, or the dataset read: exactly one of the two. The flows a decode
    finishes go to disk while it runs (beside `output` when there is one, else in the temporary
    directory) and are read back a batch at a time: memory holds the live flows, not every flow."""
    if dataset is not None:
        if captures:
            raise click.UsageError("give CAPTURES or --from-dataset, not both")
        from portwitness.dataset import read_dataset

        yield read_dataset(dataset, flows_on_disk=True)
        return
    if not captures:
        raise click.UsageError("missing CAPTURES (or --from-dataset DIR)")
    with spilled_decode(captures, max_flows, idle_timeout, output, **decode_args) as cap:
        yield cap


@contextlib.contextmanager
def spilled_decode(
    captures: tuple[str, ...], max_flows: int, idle_timeout: float, output: str | None, **decode_args: Any
) -> Iterator[Capture]:
    """The captures decoded with their finished flows kept on disk (`Capture.keep_flows_on_disk`)
    until the block ends."""
    from portwitness.spill import FlowSpill, release_free_memory

    beside = None if to_stdout(output) else Path(str(output)).parent
    try:
        spill = FlowSpill(beside, None if beside is None else output)
    except OSError as e:
        if beside is None:
            raise
        # The spill's directory goes beside the output: its error is the output's.
        raise OSError(e.errno, e.strerror, output) from None
    sink = GuardedSink(spill)
    try:
        cap = decode_captures(captures, max_flows, idle_timeout, flow_sink=sink, **decode_args)
        if spill.parts:
            release_free_memory()
            cap = cap.keep_flows_on_disk(spill)
        yield cap
    finally:
        sink.close()
