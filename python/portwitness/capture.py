"""decode(): run the Rust core over captures and wrap its Arrow tables as polars frames."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from portwitness import _core
from portwitness.decoded import (
    BATCH_ROWS,
    DEFAULTS,
    SPILL_ROWS,
    TABLES,
    Capture,
    Options,
    decode_files,
    decode_threads,
    flow_addresses,
    flow_batches,
)
from portwitness.errors import ArgumentError
from portwitness.inputs import SKIPPED, InputStatus, after_decode, resolve

__all__ = [
    "BATCH_ROWS",
    "DEFAULTS",
    "SPILL_ROWS",
    "TABLES",
    "Capture",
    "Options",
    "decode",
    "decode_files",
    "decode_threads",
    "expand_paths",
    "flow_addresses",
    "flow_batches",
]


def expand_paths(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given, in order; a directory becomes the captures inside it (recursively, sorted
    by path, recognised by their magic); a glob pattern becomes its sorted matches. `-` is stdin.
    An input that is no capture raises UnreadableInputError naming it (see `portwitness.inputs`)."""
    return resolve(inputs, skip=False)[0]


def decode(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    max_flows: int = DEFAULTS.max_flows,
    idle_timeout: float = DEFAULTS.idle_timeout,
    max_fragment_datagrams: int = DEFAULTS.max_fragment_datagrams,
    max_fragment_bytes: int = DEFAULTS.max_fragment_bytes,
    fragment_timeout: float = DEFAULTS.fragment_timeout,
    progress: _core.Progress | None = None,
    threads: int = DEFAULTS.threads,
    client: Any = None,
    flow_sink: Callable[[Any], None] | None = None,
    spill_rows: int = SPILL_ROWS,
    tables: Iterable[str] | None = None,
    skip_unreadable: bool = False,
) -> Capture:
    """Decodes captures (pcap, pcapng, gzip or zstd compressed, `-` for stdin) in one pass.

    Raises FileNotFoundError/OSError when a file cannot be opened, CaptureFormatError when no
    input is a capture. Malformed contents are not errors: see `Capture.anomalies`. `progress`:
    a `_core.Progress` whose `bytes_read` another thread may poll while this runs. `threads`: 1
    decodes on the calling thread, more read and decode headers on one thread while another keeps
    the flow table (0, the default: as many as the machine has cores); with more than 2, files
    that can be decoded apart are decoded in parallel, one per thread
    (`parallel.decode_in_parallel`); the result is the same.
    `client`: a `distributed.Client` (or any `concurrent.futures.Executor`; a process pool should
    spawn, not fork) to decode the files on, each alone where that gives exactly the one-pass
    result (see `portwitness.parallel`). `flow_sink`: a callable given the flows finished while
    decoding, as polars frames (with the columns `flows` has) of at least
    `spill_rows` rows, each in flow order; the `flows` of the
    result then hold only the rest (`portwitness.spill` writes them to disk and merges them back;
    not with `client`). An exception it raises ends the decode and is raised here. `tables`: the
    names of the tables to build (default: all of `TABLES`); reading one left out raises
    AttributeError. A caller that needs only the flows saves building the rest (with `client` or
    files decoded in parallel, every table is built).
    An input that is no capture (empty, bad magic, unreadable, a directory without captures, a
    compressed stream of something else) raises UnreadableInputError naming every such input,
    before anything is decoded where that can be told from its first bytes; with
    `skip_unreadable` such inputs are left out and listed in `Capture.inputs` as skipped.
    """
    if threads < 0:
        raise ArgumentError(f"threads must be 0 (all cores) or more, not {threads}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files, skipped = resolve(paths, skip_unreadable)
    options = Options(
        max_flows=max_flows,
        idle_timeout=idle_timeout,
        max_fragment_datagrams=max_fragment_datagrams,
        max_fragment_bytes=max_fragment_bytes,
        fragment_timeout=fragment_timeout,
        threads=threads,
    )
    if client is not None:
        if flow_sink is not None:
            raise ArgumentError("flow_sink is for a decode on this machine, not with client")
        from portwitness.parallel import decode_on

        return _checked(decode_on(files, client, options), skipped, skip_unreadable)
    if flow_sink is None and progress is None and len(files) > 1 and decode_threads(threads) > 2:
        from portwitness.parallel import decode_in_parallel

        cap = decode_in_parallel(files, options)
        if cap is not None:
            return _checked(cap, skipped, skip_unreadable)
    sink = None if flow_sink is None else _as_frames(flow_sink)
    cap = decode_files(files, options, progress, sink, spill_rows, tables)[0]
    return _checked(cap, skipped, skip_unreadable)


def _as_frames(sink: Callable[[Any], None]) -> Callable[[Any], None]:
    """`sink` given each batch of flows as `Capture.flows` has them: a polars frame."""

    def call(table: Any) -> None:
        import polars as pl

        sink(pl.DataFrame(table))

    return call


def _checked(cap: Capture, skipped: list[InputStatus], skip: bool) -> Capture:
    """The capture with every input accounted for: those the probe skipped, then what the core
    read; an input the core found to be no capture raises, unless skipping."""
    if not cap.inputs and "captures" in (cap.__dict__.get("_arrow") or {}) | cap.__dict__:
        # Merged from decodes elsewhere (a cluster, a process pool): the captures table tells.
        rows = cap.captures.select("capture", "packets", "error").to_dicts()
        read, bad = after_decode([{"path": r["capture"], **r} for r in rows])
        cap.with_inputs((*read, *bad))
    bad = [i for i in cap.inputs if i.status == SKIPPED]
    if bad and not skip:
        from portwitness.inputs import UnreadableInputError

        raise UnreadableInputError(bad, others=len(bad) < len(cap.inputs))
    read = [i for i in cap.inputs if i.status != SKIPPED]
    if not read:
        from portwitness.inputs import UnreadableInputError

        raise UnreadableInputError([*skipped, *bad])
    return cap.with_inputs((*read, *skipped, *bad))
