"""The decoded tables of captures (`Capture`) and one pass of the core that makes them.

The layer below `capture.decode` and the parallel runs (`portwitness.parallel`): it knows the core
and nothing that calls it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from portwitness import _core
from portwitness.inputs import READ, SKIPPED, InputStatus, after_decode

if TYPE_CHECKING:
    import polars as pl

# The decode's options when not given, as the core defines them.
DEFAULTS = _core.DECODE_DEFAULTS
# Rows of finished flows the core hands a `flow_sink` at a time.
SPILL_ROWS = DEFAULTS.spill_rows
# Rows of flows a reader of flows kept on disk holds at a time (`Capture.flow_batches`).
BATCH_ROWS = 262_144

# Converts the tables of captures made without a lock of their own (unpickled ones).
_CONVERT = threading.Lock()

# The tables of a decode, in the order `_core.decode` builds them.
TABLES = _core.TABLES


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
    def from_core(cls, raw: _core.DecodeResult) -> Capture:
        """The result of `_core.decode`, each table made a polars frame when first read: a caller
        that only hands a table on as Arrow (`arrow`) never loads polars."""
        cap = object.__new__(cls)
        object.__setattr__(cap, "_arrow", raw.tables)
        object.__setattr__(cap, "_lock", threading.Lock())
        object.__setattr__(cap, "stats", raw.stats)
        object.__setattr__(cap, "anomaly_kinds", raw.anomaly_counts)
        read, bad = after_decode(raw.inputs)
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


def decode_threads(threads: int) -> int:
    """The threads a decode asking for `threads` gets: 0 is every core this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return threads or (len(affinity(0)) if affinity else os.cpu_count() or 1)


@dataclass(frozen=True)
class Options:
    """The decode's limits, as `decode()` takes them."""

    max_flows: int = DEFAULTS.max_flows
    idle_timeout: float = DEFAULTS.idle_timeout
    max_fragment_datagrams: int = DEFAULTS.max_fragment_datagrams
    max_fragment_bytes: int = DEFAULTS.max_fragment_bytes
    fragment_timeout: float = DEFAULTS.fragment_timeout
    threads: int = DEFAULTS.threads


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
    return Capture.from_core(raw), raw.border


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
