"""decode(): run the Rust core over captures and wrap its Arrow tables as polars frames."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from portwitness import _core
from portwitness.inputs import READ, SKIPPED, InputStatus, after_decode, resolve

if TYPE_CHECKING:
    import polars as pl

# Rows of finished flows the core hands a `flow_sink` at a time: about 50 MB as Arrow, and few
# enough parts for the merge (`portwitness.spill`).
SPILL_ROWS = 262_144
# Rows of flows a reader of flows kept on disk holds at a time (`Capture.flow_batches`).
BATCH_ROWS = 262_144


def expand_paths(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given, in order; a directory becomes the captures inside it (recursively, sorted
    by path, recognised by their magic); a glob pattern becomes its sorted matches. `-` is stdin.
    An input that is no capture raises UnreadableInputError naming it (see `portwitness.inputs`)."""
    return resolve(inputs, skip=False)[0]


# Converts the tables of captures made without a lock of their own (unpickled ones).
_CONVERT = threading.Lock()

# The tables of a decode, in the order `_core.decode` returns them.
TABLES = ("flows", "anomalies", "captures", "rpc_calls", "mappings", "dcerpc_calls", "tls", "names")


@dataclass(frozen=True)
class Capture:
    """The decoded tables of one or more captures."""

    flows: pl.DataFrame
    anomalies: pl.DataFrame
    captures: pl.DataFrame
    rpc_calls: pl.DataFrame
    mappings: pl.DataFrame
    dcerpc_calls: pl.DataFrame
    tls: pl.DataFrame
    # Names bound to addresses by DNS, mDNS and NetBIOS name service messages.
    names: pl.DataFrame
    stats: dict[str, int] = field(default_factory=dict)
    # Every anomaly by kind, including those past the bound on kept rows.
    anomaly_kinds: dict[str, int] = field(default_factory=dict)
    # Every input given, as read or skipped (`decode(skip_unreadable=True)`), in order.
    inputs: tuple[InputStatus, ...] = ()

    @classmethod
    def from_core(cls, raw: dict[str, Any]) -> Capture:
        """The result of `_core.decode`, each table made a polars frame when first read: a caller
        that only hands a table on as Arrow (`arrow`) never loads polars."""
        cap = object.__new__(cls)
        object.__setattr__(cap, "_arrow", {name: raw[name] for name in TABLES if name in raw})
        object.__setattr__(cap, "_lock", threading.Lock())
        object.__setattr__(cap, "stats", dict(raw["stats"]))
        object.__setattr__(cap, "anomaly_kinds", dict(raw.get("anomaly_counts", {})))
        read, bad = after_decode(list(raw.get("inputs", ())))
        object.__setattr__(cap, "inputs", (*read, *bad))
        return cap

    def with_inputs(self, inputs: Iterable[InputStatus]) -> Capture:
        """This capture with `inputs` as its record of what was read and skipped."""
        object.__setattr__(self, "inputs", tuple(inputs))
        return self

    @property
    def skipped(self) -> list[InputStatus]:
        return [i for i in self.inputs if i.status == SKIPPED]

    def cut_short(self) -> list[InputStatus]:
        """The inputs read that end inside a record (or whose stream failed part way): still
        audited, but the audit covers less than the file promised."""
        truncated = {"truncated_record", "truncated_record_header"}
        ended: set[str] = set()
        if truncated.intersection(self.anomaly_kinds) or (
            not self.anomaly_kinds and "anomalies" in self.__dict__
        ):
            import polars as pl

            rows = self.anomalies.filter(pl.col("kind").is_in(list(truncated)))
            ended = set(rows["capture"].to_list())
        return [i for i in self.inputs if i.status == READ and (i.cut_short or i.path in ended)]

    def keep_flows_on_disk(self, spill: Any) -> Capture:
        """This capture with the flows its decode handed `spill` (a `portwitness.spill.FlowSpill`)
        as part of its flows: `flow_batches` reads them back a batch at a time, and `flows` (when
        asked for) holds them all."""
        rest = self.flows
        del self.__dict__["flows"]
        object.__setattr__(self, "_flow_rest", rest)
        object.__setattr__(self, "_flow_spill", spill)
        return self

    def flow_batches(self, rows: int | None = None) -> Iterator[pl.DataFrame]:
        """The flows in flow order, in frames of at most `rows` rows; at least one frame (empty
        when there is no flow), so that a reader always learns the columns. Memory holds one
        batch at a time when the flows were kept on disk."""
        rows = rows or BATCH_ROWS
        spill = self.__dict__.get("_flow_spill")
        if spill is None:
            rest = self.flows
            frames: Iterable[pl.DataFrame] = [rest]
        else:
            from portwitness.spill import merged

            rest = self.__dict__["_flow_rest"]
            frames = merged(spill.parts, rest)
        any_rows = False
        for frame in frames:
            if "_row" in frame.columns:  # a dataset's part: its row number is the dataset's own
                frame = frame.drop("_row")
            for at in range(0, frame.height, rows):
                any_rows = True
                yield frame.slice(at, rows)
        if not any_rows:
            yield rest.clear()

    @property
    def flows_on_disk(self) -> bool:
        return "_flow_spill" in self.__dict__

    @property
    def flow_schema(self) -> pl.Schema:
        """The flows' columns (without reading flows kept on disk back)."""
        rest = self.__dict__.get("_flow_rest")
        return rest.schema if rest is not None else self.flows.schema

    def __getattr__(self, name: str) -> Any:
        # Reached only for an attribute the instance does not hold yet: a table `from_core` left
        # as Arrow is converted here, once.
        if name == "flows" and "_flow_spill" in self.__dict__:
            import polars as pl

            with self.__dict__.get("_lock") or _CONVERT:
                if "flows" not in self.__dict__:
                    object.__setattr__(self, "flows", pl.concat(list(self.flow_batches())))
            return self.__dict__["flows"]
        pending = self.__dict__.get("_arrow")
        if pending is None or name not in TABLES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        # Several threads may read one capture: an Arrow stream can be taken once, so the first
        # converts it and the others wait for its frame.
        with self.__dict__.get("_lock") or _CONVERT:
            if name in self.__dict__:
                return self.__dict__[name]
            if name not in pending:
                raise AttributeError(f"table {name!r} was not decoded: decode(tables=...) left it out")
            import polars as pl

            frame = pl.DataFrame(pending[name])
            object.__setattr__(self, name, frame)
            del pending[name]
            return frame

    def __getstate__(self) -> dict[str, Any]:
        # Pickled as frames: Arrow tables of the core do not pickle. Tables not decoded stay out.
        pending = self.__dict__.get("_arrow") or {}
        if self.flows_on_disk:
            self.flows  # noqa: B018 (read back whole: the spill is this process's)
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in TABLES or f.name in self.__dict__ or f.name in pending
        }

    def arrow(self, name: str) -> Any:
        """Table `name` as an Arrow stream (an object with `__arrow_c_stream__`), without
        converting it when the decode left it as Arrow."""
        pending = self.__dict__.get("_arrow") or {}
        with self.__dict__.get("_lock") or _CONVERT:
            if name in pending:
                return pending[name]
        return getattr(self, name)

    def names_seen(self) -> pl.DataFrame:
        """Every name the wire bound to an address (`portwitness.hostnames.names_seen`)."""
        from portwitness.hostnames import names_seen

        return names_seen(self)

    def anomaly_counts(self) -> dict[str, int]:
        """Anomalies by kind, all of them (the rows kept in `anomalies` are bounded)."""
        if self.anomaly_kinds:
            return dict(sorted(self.anomaly_kinds.items()))
        if self.anomalies.is_empty():
            return {}
        counts = self.anomalies.group_by("kind").len().sort("kind")
        return dict(zip(counts["kind"].to_list(), counts["len"].to_list(), strict=True))


def decode(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    max_flows: int = 1_000_000,
    idle_timeout: float = 600.0,
    max_fragment_datagrams: int = 4096,
    max_fragment_bytes: int = 64 << 20,
    fragment_timeout: float = 30.0,
    progress: _core.Progress | None = None,
    threads: int = 0,
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
    (`cluster.decode_in_parallel`); the result is the same.
    `client`: a `distributed.Client` (or any `concurrent.futures.Executor`; a process pool should
    spawn, not fork) to decode the files on, each alone where that gives exactly the one-pass
    result (see `portwitness.cluster`). `flow_sink`: a callable given the flows finished while
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
        raise ValueError(f"threads must be 0 (all cores) or more, not {threads}")
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
            raise ValueError("flow_sink is for a decode on this machine, not with client")
        from portwitness.cluster import decode_on

        return _checked(decode_on(files, client, options), skipped, skip_unreadable)
    if flow_sink is None and progress is None and len(files) > 1 and decode_threads(threads) > 2:
        from portwitness.cluster import decode_in_parallel

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


def decode_threads(threads: int) -> int:
    """The threads a decode asking for `threads` gets: 0 is every core this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return threads or (len(affinity(0)) if affinity else os.cpu_count() or 1)


@dataclass(frozen=True)
class Options:
    """The decode's limits, as `decode()` takes them."""

    max_flows: int = 1_000_000
    idle_timeout: float = 600.0
    max_fragment_datagrams: int = 4096
    max_fragment_bytes: int = 64 << 20
    fragment_timeout: float = 30.0
    threads: int = 0


def decode_files(
    files: list[str],
    options: Options,
    progress: _core.Progress | None = None,
    flow_sink: Callable[[Any], None] | None = None,
    spill_rows: int = SPILL_ROWS,
    tables: Iterable[str] | None = None,
) -> tuple[Capture, dict[str, int]]:
    """One pass of the core over `files`; also returns what the end of the input changed (the
    core's `border`: flows still live, rows and anomalies the end produced)."""
    raw = _core.decode(
        files,
        max_flows=options.max_flows,
        idle_timeout=options.idle_timeout,
        max_fragment_datagrams=options.max_fragment_datagrams,
        max_fragment_bytes=options.max_fragment_bytes,
        fragment_timeout=options.fragment_timeout,
        progress=progress,
        threads=options.threads,
        flow_sink=flow_sink,
        spill_rows=spill_rows,
        tables=None if tables is None else list(tables),
    )
    return Capture.from_core(raw), dict(raw["border"])


def flow_batches(cap: Any) -> Iterator[pl.DataFrame]:
    """The flows of `cap` a batch at a time (`Capture.flow_batches`; anything else with `flows`:
    them whole)."""
    batches = getattr(cap, "flow_batches", None)
    if batches is not None:
        yield from batches()
    else:
        yield cap.flows


def flow_addresses(cap: Any) -> list[str]:
    """Every address a flow of `cap` has at either end, once each."""
    import polars as pl

    seen = pl.Series("ip", [], pl.String)
    for batch in flow_batches(cap):
        seen = pl.concat([seen, batch["client_ip"].alias("ip"), batch["server_ip"].alias("ip")]).unique()
    return seen.to_list()
