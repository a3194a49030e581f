"""Many captures decoded in parallel (threads of this process, a process pool, a cluster's
workers), with exactly the one-pass result.

One pass over rotated files carries its state from file to file: a conversation spans files, a
port a portmapper handed out in one file names the service of a flow in the next, idle flows
expire at sweeps timed by everything before. A file decoded on its own therefore gives the
one-pass result only when nothing crossed the border before it, so the decode is speculative:

1. files that start within the timeouts of the one before (read from their first records) are
   kept together; every other file is decoded on its own, in parallel, on any `concurrent.futures.Executor` (a
   pool of threads of this process, a local process pool, or a Dask cluster's executor:
   `portwitness.cluster`); the tables come back as Arrow IPC bytes from other processes, as
   frames from threads, never as Python objects;
2. a border between two runs of files is *clean* when the later run starts more than every
   timeout after the earlier one ends (at its first record, one pass would have expired every
   flow and fragment, and its sweeps fall at the same records), the earlier run's end closed no
   stream with data behind a hole and reported no anomaly (no fragment pending), no endpoint a
   portmapper or endpoint mapper named before the border is an endpoint after it or the reverse,
   no flow after it has an end of a flow whose call was never answered before it, and no table
   bound is reached;
3. runs behind a border that is not clean are decoded again as one run, until every border
   between runs is clean;
4. the runs' tables are joined in file order with flow ids renumbered and counters added: the
   flows a run left live are counted as expired, as one pass would have counted them.

Rotated files of one busy link rarely have a clean border: they are then decoded as one run,
on one worker, which is what exactness costs. Captures of separate windows in time (a nightly
capture, one per incident) decode in parallel.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from portwitness import _core
from portwitness.decoded import TABLES, Capture, Options, decode_files, decode_threads

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

# Tables whose rows carry the id of their flow.
WITH_FLOW_ID = ("flows", "rpc_calls", "mappings", "dcerpc_calls", "tls", "names")
# Tables bounded by `_core.MAX_ROWS` (their rows are sorted at the end, so a part over the
# bound keeps other rows than one pass would).
BOUNDED = ("rpc_calls", "mappings", "dcerpc_calls", "tls", "names")


@dataclass
class Part:
    """What a worker sends back for a run of files: its tables as Arrow IPC streams, its
    counters, and what the end of its input changed."""

    files: tuple[int, ...]
    tables: dict[str, bytes] = field(default_factory=dict)
    # The tables themselves, when the worker is a thread of this process (nothing to serialise).
    frames: dict[str, pl.DataFrame] | None = None
    stats: dict[str, int] = field(default_factory=dict)
    anomaly_kinds: dict[str, int] = field(default_factory=dict)
    border: dict[str, int] = field(default_factory=dict)
    # Set when none of the run's files is a capture: one pass skips such a file with an anomaly.
    not_capture: str | None = None


def decode_part(paths: Sequence[str], files: tuple[int, ...], options: Options, ipc: bool = True) -> Part:
    """Runs on a worker: one pass over `paths[i] for i in files`, and the endpoints the border
    checks compare (computed here, in parallel, not on the client). `ipc`: the tables as Arrow IPC
    (for another process), else as frames (for a thread of this one)."""
    try:
        cap, border = decode_files([paths[i] for i in files], options)
    except _core.CaptureFormatError as e:
        return Part(files=files, not_capture=str(e))
    frames = {name: getattr(cap, name) for name in TABLES}
    frames.update(_endpoints(frames))
    if not ipc:
        return Part(files, stats=cap.stats, anomaly_kinds=cap.anomaly_kinds, border=border, frames=frames)
    tables = {name: df.write_ipc(None, compression="lz4").getvalue() for name, df in frames.items()}
    return Part(files, tables, stats=cap.stats, anomaly_kinds=cap.anomaly_kinds, border=border)


# Any names: polars types a schema's names as str for a new frame and as str or selector for a cast.
_ENDPOINT: dict[Any, PolarsDataType] = {"ip": pl.Utf8, "transport": pl.Utf8, "port": pl.UInt16}


def _ends(flows: pl.DataFrame) -> pl.DataFrame:
    """Both ends of each flow, once each."""
    return (
        pl.concat(
            [
                flows.select(
                    ip=pl.col("client_ip"), transport=pl.col("transport"), port=pl.col("client_port")
                ),
                flows.select(
                    ip=pl.col("server_ip"), transport=pl.col("transport"), port=pl.col("server_port")
                ),
            ]
        )
        .unique()
        .cast(_ENDPOINT)
    )


def _endpoints(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """`learned`: the endpoints portmappers and endpoint mappers named; `endpoints`: both ends of
    every flow; `waiting`: both ends of the flows of calls never answered (a later input could
    answer them)."""
    maps = frames["mappings"].filter(pl.col("port").is_not_null() & pl.col("transport").is_not_null())
    # The core learns "tcp" as TCP and every other transport as UDP.
    learned = (
        maps.select(
            ip=pl.col("server_ip"),
            transport=pl.when(pl.col("transport") == "tcp").then(pl.lit("tcp")).otherwise(pl.lit("udp")),
            port=pl.col("port"),
        )
        .unique()
        .cast(_ENDPOINT)
    )
    unanswered = pl.concat(
        [
            frames["rpc_calls"].filter(pl.col("reply_ts").is_null()).select("flow_id"),
            frames["dcerpc_calls"].filter(pl.col("reply_ts").is_null()).select("flow_id"),
        ]
    ).unique()
    flows = frames["flows"]
    waiting = _ends(flows.join(unanswered, on="flow_id", how="semi"))
    return {"learned": learned, "endpoints": _ends(flows), "waiting": waiting}


@dataclass
class _Run:
    """A part read back on the client, with what the border checks need."""

    part: Part
    frames: dict[str, pl.DataFrame]
    span: tuple[int, int] | None
    learned: pl.DataFrame
    endpoints: pl.DataFrame
    waiting: pl.DataFrame


def _read(part: Part) -> _Run:
    frames = part.frames or {name: pl.read_ipc(data) for name, data in part.tables.items()}
    caps = frames["captures"]
    first = caps["first_ts"].dt.epoch("ns").min()
    last = caps["last_ts"].dt.epoch("ns").max()
    span = (first, last) if isinstance(first, int) and isinstance(last, int) else None
    return _Run(part, frames, span, frames["learned"], frames["endpoints"], frames["waiting"])


def _meets(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return not a.join(b, on=["ip", "transport", "port"], how="semi").is_empty()


def _clean(before: list[_Run], group: list[_Run], after: _Run, options: Options) -> bool:
    return _unclean(before, group, after, options) is None


def _unclean(before: list[_Run], group: list[_Run], after: _Run, options: Options) -> str | None:
    """Why one pass over everything in `before`, continued by `after`'s files, could decode those
    files otherwise than they decode on their own; None when it could not. `group`: the end of
    `before` that is decoded as one run (what came before it expired at its first record)."""
    last = group[-1]
    if any(r.part.not_capture for r in (*group, after)):
        return "a file is no capture"
    if any(r.span is None for r in (*group, after)):
        return "a file has no record"
    # The rows of calls still waiting and of streams closed at the end carry their own times and
    # are sorted by them; what waited behind a hole is decoded with the time of the close.
    if last.part.border.get("end_gaps", 0):
        return "a stream open at the end had data behind a hole"
    if last.part.border.get("end_anomalies", 0):
        return "the end reported anomalies"
    # Time running backwards across the border fails this too: one pass would sweep late.
    assert after.span is not None  # checked above, with the group's
    gap_ns = after.span[0] - max(r.span[1] for r in group if r.span is not None)
    if gap_ns <= _wait_ns(options):
        return "less than the timeouts between them"
    if any(r.part.border.get("withdrawn_mappings", 0) for r in before):
        # What the withdrawn rows taught was learned all the same, and the tables no longer say it.
        return "mappings were withdrawn before"
    learned = pl.concat([r.learned for r in before])
    if _meets(learned, after.learned) or _meets(learned, after.endpoints):
        return "an endpoint learned before is used after"
    if _meets(pl.concat([r.waiting for r in before]), after.endpoints):
        return "a call waits for an answer"
    # A PROG_MISMATCH or DUMP before the border decides what an answer after it teaches.
    if _meets(after.learned, pl.concat([r.endpoints for r in before])):
        return "an endpoint learned after was used before"
    return None


def _fits(runs: list[_Run]) -> bool:
    """Whether the joined tables stay under the bounds one pass applies."""
    stats = [r.part.stats for r in runs]
    if any(s.get("rows_dropped", 0) for s in stats):
        return False
    if sum(s.get("learned_ports", 0) for s in stats) >= _core.MAX_LEARNED:
        return False
    return all(sum(r.frames[t].height for r in runs) < _core.MAX_ROWS for t in BOUNDED)


def _submit(executor: Executor, paths: list[str], files: tuple[int, ...], options: Options) -> Future[Part]:
    ipc = not isinstance(executor, ThreadPoolExecutor)
    return executor.submit(decode_part, paths, files, options, ipc)


def decode_in_parallel(paths: list[str], options: Options) -> Capture | None:
    """Files in parallel on this machine, when that pays: the runs of `decode_on` on a pool of
    threads (the core releases the GIL; tables stay frames), each run on one thread. None (decode
    in one pass) when the machine has at most 2 threads to give (the one-pass pipeline already
    keeps 2 busy, with no border to check), when stdin, a FIFO or a device is an input, or when the
    files cannot be decoded apart (rotated files of one link: one run)."""
    threads = decode_threads(options.threads)
    if threads <= 2 or len(paths) < 2 or "-" in paths:
        return None
    if not all(os.path.isfile(p) for p in paths):
        # A FIFO or device is read once, as a stream: its first record cannot be peeked at first.
        return None
    try:
        firsts = first_timestamps(paths)
    except (OSError, _core.PortwitnessError):
        return None  # one pass raises it, at the file and in the words it always does
    runs = _preplan(firsts, options)
    if len(runs) < 2:
        return None
    with ThreadPoolExecutor(min(threads, len(runs))) as pool:
        return decode_runs(paths, pool, dataclasses.replace(options, threads=1), firsts)[0]


class MakesExecutor(Protocol):
    """What makes an executor of its own: a Dask `distributed.Client` (`portwitness.cluster`)."""

    def get_executor(self) -> Executor: ...


def decode_on(paths: list[str], executor: Executor | MakesExecutor, options: Options) -> Capture:
    """`decode(paths)` computed on `executor` (a `concurrent.futures.Executor`, or what makes one:
    a `distributed.Client`), equal to the one-pass result row for row."""
    return decode_runs(paths, executor, options)[0]


def decode_runs(
    paths: list[str],
    executor: Executor | MakesExecutor,
    options: Options,
    firsts: list[int | None] | None = None,
) -> tuple[Capture, list[tuple[int, ...]]]:
    """`decode_on`, and the runs it decoded: each a tuple of indices into `paths`. `firsts`: the
    files' `first_timestamps`, when the caller read them already."""
    if not isinstance(executor, Executor):
        executor = executor.get_executor()
    # Workers open the files by absolute path (their working directory is not ours); the tables
    # name them as given, as one pass here would.
    absolute = [p if p == "-" else os.path.abspath(p) for p in paths]
    cap, runs = _decode_runs(absolute, executor, options, firsts)
    names = {a: p for a, p in zip(absolute, paths, strict=True) if a != p}
    return (_named(cap, names) if names else cap), runs


def _named(cap: Capture, names: dict[str, str]) -> Capture:
    """`cap` with its files named as in `names` (absolute path: name given)."""
    renamed = {
        name: getattr(cap, name).with_columns(pl.col("capture").replace(names))
        for name in ("flows", "anomalies", "captures")
    }
    return dataclasses.replace(cap, **renamed)


def _decode_runs(
    paths: list[str], executor: Executor, options: Options, firsts: list[int | None] | None
) -> tuple[Capture, list[tuple[int, ...]]]:
    if firsts is None:
        firsts = executor.submit(first_timestamps, paths).result()
    pending = {files: _submit(executor, paths, files, options) for files in _preplan(firsts, options)}
    runs: list[_Run] = []
    while True:
        # Read each part as it arrives, while the workers decode the others.
        done = [_read_part(f.result()) for f in as_completed(pending.values())]
        runs = sorted([*runs, *done], key=lambda r: r.part.files[0])
        groups = _group(runs, options)
        if all(len(g) == 1 for g in groups):
            break
        runs = [g[0] for g in groups if len(g) == 1]
        pending = {}
        for g in groups:
            if len(g) > 1:
                files = tuple(i for r in g for i in r.part.files)
                pending[files] = _submit(executor, paths, files, options)
    lone = runs[0].part.not_capture
    if lone:
        # Nothing in the only run is a capture: the error one pass raises.
        raise _core.CaptureFormatError(lone)
    if not _fits(runs):
        whole = tuple(range(len(paths)))
        part = _submit(executor, paths, whole, options).result()
        return _join([_read(part)]), [whole]
    return _join(runs), [r.part.files for r in runs]


def first_timestamps(paths: Sequence[str]) -> list[int | None]:
    """Runs on a worker: the time of each capture's first record (None: no record, no capture)."""
    return [_core.first_timestamp(p) if p != "-" else None for p in paths]


def _wait_ns(options: Options) -> int:
    """How long after a run's last record a later run must start for nothing to carry over."""
    wait_s = max(options.idle_timeout, options.fragment_timeout, float(_core.SWEEP_SECONDS))
    return int(wait_s * 1e9) + 1


def _preplan(firsts: list[int | None], options: Options) -> list[tuple[int, ...]]:
    """Files that cannot be decoded apart, found before decoding any: a file that starts within
    the timeouts of the start of the one before starts within them of its end (rotated files of
    one link). Only their runs are decoded; the other borders are proven after the decode."""
    runs: list[list[int]] = []
    for i, first in enumerate(firsts):
        prev = firsts[i - 1] if i else None
        if runs and (first is None or prev is None or first - prev <= _wait_ns(options)):
            runs[-1].append(i)
        else:
            runs.append([i])
    return [tuple(r) for r in runs]


def _read_part(part: Part) -> _Run:
    if part.not_capture:
        empty = pl.DataFrame(schema=_ENDPOINT)
        return _Run(part, {}, None, empty, empty, empty)
    return _read(part)


def _group(runs: list[_Run], options: Options) -> list[list[_Run]]:
    """Runs cut at their clean borders."""
    groups: list[list[_Run]] = [[runs[0]]]
    for k in range(1, len(runs)):
        if _clean(runs[:k], groups[-1], runs[k], options):
            groups.append([runs[k]])
        else:
            groups[-1].append(runs[k])
    return groups


# The application decoders' anomalies name their flow first: "flow 7 ...", "UDP datagram of flow 7 ...".
_FLOW_IN_DETAIL = r"^(UDP datagram of )?flow (\d+)"


def _renumbered(detail: pl.Expr, offset: int) -> pl.Expr:
    number = detail.str.extract(_FLOW_IN_DETAIL, 2).cast(pl.UInt64)
    lead = detail.str.extract(_FLOW_IN_DETAIL, 1).fill_null("")
    moved = pl.concat_str(
        [lead, pl.lit("flow "), (number + offset).cast(pl.Utf8), detail.str.replace(_FLOW_IN_DETAIL, "")]
    )
    return pl.when(number.is_not_null()).then(moved).otherwise(detail).alias("detail")


def _join(runs: list[_Run]) -> Capture:
    """The runs' tables, as one pass over all their files gives them."""
    tables: dict[str, list[pl.DataFrame]] = {name: [] for name in TABLES}
    stats: dict[str, int] = {}
    kinds: dict[str, int] = {}
    offset = 0
    for k, run in enumerate(runs):
        for name in TABLES:
            df = run.frames[name]
            if name in WITH_FLOW_ID and offset:
                df = df.with_columns(pl.col("flow_id") + offset)
            elif name == "anomalies" and offset:
                df = df.with_columns(_renumbered(pl.col("detail"), offset))
            tables[name].append(df)
        offset += run.frames["flows"].height
        for key, v in run.part.stats.items():
            stats[key] = stats.get(key, 0) + v
        for key, v in run.part.anomaly_kinds.items():
            kinds[key] = kinds.get(key, 0) + v
        if k + 1 < len(runs):
            # One pass expires these at the next run's first record (its border is clean).
            stats["flows_expired"] = stats.get("flows_expired", 0) + run.part.border.get("live_flows", 0)
    frames = {name: pl.concat(parts, how="vertical") for name, parts in tables.items()}
    # One pass keeps the first anomalies in record order: the runs' in file order.
    anomalies = frames["anomalies"].head(_core.MAX_ANOMALY_ROWS)
    stats["anomalies_dropped"] = stats.get("anomalies", 0) - anomalies.height
    return Capture(
        flows=frames["flows"],
        anomalies=anomalies,
        captures=frames["captures"],
        rpc_calls=frames["rpc_calls"],
        mappings=frames["mappings"],
        dcerpc_calls=frames["dcerpc_calls"],
        tls=frames["tls"],
        names=frames["names"],
        stats=stats,
        anomaly_kinds=kinds,
    )
