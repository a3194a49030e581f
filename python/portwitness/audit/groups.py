"""Findings grouped: flows that broke the same rule the same way become one row per (type, service,
transport, port), with how many flows, servers and clients, when, up to `EXAMPLES` example flow ids,
the servers and clients involved, and the first flow's whereabouts (capture file, record index and
time) so that an administrator can find it in Wireshark. A 500 MB capture with one misconfiguration
gives one row, not one per client.

The flows come a batch at a time (a capture of millions of flows is never held whole): `Groups`
keeps, per group, a state that two batches' states merge into exactly (counts add, sets unite, the
earliest examples of both stay), so that its result is that of one group_by over every flow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

EXAMPLES = 100

TS = pl.Datetime("ns", "UTC")

# The columns every grouped finding carries, after its own.
EVIDENCE_SCHEMA: dict[str, PolarsDataType] = {
    "flows": pl.UInt32,
    "servers": pl.UInt32,
    "clients": pl.UInt32,
    "first_seen": TS,
    "last_seen": TS,
    "server_ips": pl.List(pl.String),
    "client_ips": pl.List(pl.String),
    "example_flows": pl.List(pl.UInt64),
    "first_flow": pl.UInt64,
    "first_capture": pl.String,
    "first_record": pl.UInt64,
    "learned_from": pl.String,
}

# A group's state: flows, first and last time, the sets of servers and clients, the earliest
# `EXAMPLES` flows (time, id, capture, record) and the earliest mapping that taught the port.
EXAMPLE = pl.Struct({"ts": TS, "flow_id": pl.UInt64, "capture": pl.String, "record": pl.UInt64})
LEARNED = pl.Struct({"ts": TS, "text": pl.String})
STATE_SCHEMA = {
    "_n": pl.UInt64,
    "first_seen": TS,
    "last_seen": TS,
    "_servers": pl.List(pl.String),
    "_clients": pl.List(pl.String),
    "_examples": pl.List(EXAMPLE),
    "_learned": pl.List(LEARNED),
}
# Partial states are merged once this many have gathered (bounds memory by groups, not batches).
COMPACT_ROWS = 50_000


def _learned_text() -> pl.Expr:
    if_learned = pl.col("learned_source").is_not_null()
    return pl.when(if_learned).then(
        pl.format(
            "{} answer at {} in flow {}",
            pl.col("learned_source"),
            pl.col("learned_ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.9fZ"),
            pl.col("learned_flow").cast(pl.String),
        )
    )


def _explode(name: str) -> pl.Expr:
    return pl.col(name).list.explode(keep_nulls=False, empty_as_null=False)


def _earliest(items: pl.Expr, k: int) -> pl.Expr:
    # Time, then flow id: the order of one sort over all flows, whatever the batches were.
    return items.sort_by(items.struct.field("ts"), items.struct.field("flow_id")).head(k)


def state_of_flows(columns: list[str]) -> list[pl.Expr]:
    """A group's state from its flows (aggregations over a group_by of flows)."""
    order = [pl.col("first_ts"), pl.col("flow_id")]
    capture = pl.col("capture") if "capture" in columns else pl.lit(None, pl.String)
    record = pl.col("first_record") if "first_record" in columns else pl.lit(None, pl.UInt64)
    examples = pl.struct(
        pl.col("first_ts").alias("ts"), pl.col("flow_id"), capture.alias("capture"), record.alias("record")
    )
    if {"learned_source", "learned_ts", "learned_flow"} <= set(columns):
        learned = (
            pl.when(pl.col("learned_source").is_not_null())
            .then(pl.struct(pl.col("first_ts").alias("ts"), _learned_text().alias("text")))
            .sort_by(order)
            .drop_nulls()
            .head(1)
        )
    else:
        learned = pl.struct(pl.col("first_ts").alias("ts"), pl.lit(None, pl.String).alias("text")).head(0)
    return [
        pl.len().cast(pl.UInt64).alias("_n"),
        pl.col("first_ts").min().alias("first_seen"),
        pl.col("last_ts").max().alias("last_seen"),
        pl.col("server_ip").drop_nulls().unique().alias("_servers"),
        pl.col("client_ip").drop_nulls().unique().alias("_clients"),
        examples.sort_by(order).head(EXAMPLES).alias("_examples"),
        learned.alias("_learned"),
    ]


def _merge_state() -> list[pl.Expr]:
    """Aggregations over a group_by of states: the state of all their flows together."""
    return [
        pl.col("_n").sum().alias("_n"),
        pl.col("first_seen").min(),
        pl.col("last_seen").max(),
        _explode("_servers").unique().alias("_servers"),
        _explode("_clients").unique().alias("_clients"),
        _earliest(_explode("_examples"), EXAMPLES).alias("_examples"),
        _earliest_learned(_explode("_learned")).alias("_learned"),
    ]


def _earliest_learned(items: pl.Expr) -> pl.Expr:
    return items.sort_by(items.struct.field("ts")).head(1)


def _finish_state() -> list[pl.Expr | str]:
    """The evidence columns from a merged state (no flow: the flows' columns are null)."""
    flowed = pl.col("_n") > 0
    first = pl.col("_examples").list.first()
    return [
        pl.col("_n").cast(pl.UInt32).alias("flows"),
        pl.col("_servers").list.len().cast(pl.UInt32).alias("servers"),
        pl.col("_clients").list.len().cast(pl.UInt32).alias("clients"),
        "first_seen",
        "last_seen",
        pl.col("_servers").list.sort().list.head(EXAMPLES).alias("server_ips"),
        pl.when(flowed).then(pl.col("_clients").list.sort().list.head(EXAMPLES)).alias("client_ips"),
        pl.when(flowed)
        .then(pl.col("_examples").list.eval(pl.element().struct.field("flow_id")))
        .alias("example_flows"),
        first.struct.field("flow_id").alias("first_flow"),
        first.struct.field("capture").alias("first_capture"),
        first.struct.field("record").alias("first_record"),
        pl.col("_learned").list.first().struct.field("text").alias("learned_from"),
    ]


class Groups:
    """Flows grouped by `keys` a batch at a time, with the evidence columns, the most common value
    of each of `modes` (ties: the smallest) and the total of each of `sums`. `firsts`: columns of
    an added state that are the same in every batch (taken from the first)."""

    def __init__(
        self,
        keys: list[str],
        modes: Mapping[str, pl.Expr] | None = None,
        sums: Mapping[str, pl.Expr] | None = None,
        firsts: tuple[str, ...] = (),
    ) -> None:
        self.keys = list(keys)
        self.modes = dict(modes or {})
        self.sums = dict(sums or {})
        self.firsts = firsts
        self.parts: list[pl.DataFrame] = []
        self.rows = 0

    def add(self, flows: pl.DataFrame) -> None:
        """A batch of flows holding the key columns."""
        if flows.is_empty():
            return
        f = flows.with_columns(
            *[e.alias(f"_mv_{n}") for n, e in self.modes.items()],
            *[e.alias(f"_sum_{n}") for n, e in self.sums.items()],
        )
        state = f.group_by(self.keys).agg(
            *state_of_flows(f.columns),
            *[pl.col(f"_mv_{n}").value_counts(name="n").alias(f"_m_{n}") for n in self.modes],
            *[pl.col(f"_sum_{n}").sum().alias(f"_sum_{n}") for n in self.sums],
        )
        self.add_state(state)

    def add_state(self, state: pl.DataFrame) -> None:
        """A partial state already aggregated (the keys, `STATE_SCHEMA`, the modes' counts, the
        sums and the `firsts`)."""
        if state.is_empty():
            return
        self.parts.append(state)
        self.rows += state.height
        if self.rows > COMPACT_ROWS and len(self.parts) > 1:
            self.parts = [self._merged()]
            self.rows = self.parts[0].height

    def _merged(self) -> pl.DataFrame:
        df = pl.concat(self.parts, how="diagonal_relaxed") if len(self.parts) > 1 else self.parts[0]
        out = df.group_by(self.keys, maintain_order=True).agg(
            *_merge_state(),
            *[pl.col(f"_sum_{n}").sum() for n in self.sums],
            *[pl.col(c).first() for c in self.firsts],
        )
        for n in self.modes:
            col, value = f"_m_{n}", f"_mv_{n}"
            counts = (
                df.select(*self.keys, col)
                .explode(col)
                .filter(pl.col(col).is_not_null())
                .unnest(col)
                .group_by(*self.keys, value, maintain_order=True)
                .agg(pl.col("n").sum())
                .group_by(self.keys, maintain_order=True)
                .agg(pl.struct(value, "n").alias(col))
            )
            out = out.join(counts, on=self.keys, how="left", nulls_equal=True)
        return out

    def result(self) -> pl.DataFrame | None:
        """The keys, the evidence columns, the modes and the sums; None when no flow was added."""
        if not self.parts:
            return None
        merged = self._merged()
        modes = []
        for n in self.modes:
            c = pl.element()
            pick = c.sort_by(c.struct.field("n"), c.struct.field(f"_mv_{n}"), descending=[True, False])
            modes.append(
                pl.col(f"_m_{n}").list.eval(pick.first().struct.field(f"_mv_{n}")).list.first().alias(n)
            )
        return merged.select(
            *self.keys,
            *self.firsts,
            *modes,
            *[pl.col(f"_sum_{n}").alias(n) for n in self.sums],
            *_finish_state(),
        )


def group_flows(
    df: pl.DataFrame,
    keys: list[str | pl.Expr],
    extra_modes: Mapping[str, pl.Expr] | None = None,
    sums: Mapping[str, pl.Expr] | None = None,
) -> pl.DataFrame:
    """`df`'s flows grouped by `keys` in one go (the same as a `Groups` fed one batch)."""
    named = [k if isinstance(k, str) else k.meta.output_name() for k in keys]
    g = Groups(named, extra_modes, sums)
    g.add(df.with_columns(*[k for k in keys if not isinstance(k, str)]))
    out = g.result()
    assert out is not None or df.is_empty()
    return out if out is not None else pl.DataFrame()


def empty_evidence() -> list[pl.Expr]:
    """The evidence columns as nulls, for a finding no flow stands behind (an unused line)."""
    return [pl.lit(None, dtype).alias(name) for name, dtype in EVIDENCE_SCHEMA.items()]


def largest_first(df: pl.DataFrame, count: str = "flows") -> pl.DataFrame:
    """Groups by size, largest first; ties in time order."""
    if df.is_empty():
        return df
    return df.sort([count, "first_seen"], descending=[True, False], nulls_last=True)
