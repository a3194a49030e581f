"""Findings grouped: flows that broke the same rule the same way become one row per (type, service,
transport, port), with how many flows, servers and clients, when, up to `EXAMPLES` example flow ids,
the servers and clients involved, and the first flow's whereabouts (capture file, record index and
time) so that an administrator can find it in Wireshark. A 500 MB capture with one misconfiguration
gives one row, not one per client."""

from __future__ import annotations

import polars as pl

EXAMPLES = 100

TS = pl.Datetime("ns", "UTC")

# The columns every grouped finding carries, after its own.
EVIDENCE_SCHEMA = {
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


def evidence_aggs(columns: list[str]) -> list[pl.Expr]:
    """Aggregations over a group of flows (sorted by first_ts within the group)."""
    order = pl.col("first_ts")
    learned = (
        _learned_text().sort_by(order).drop_nulls().first()
        if {"learned_source", "learned_ts", "learned_flow"} <= set(columns)
        else pl.lit(None, pl.String)
    )
    record = (
        pl.col("first_record").sort_by(order).first()
        if "first_record" in columns
        else pl.lit(None, pl.UInt64)
    )
    capture = pl.col("capture").sort_by(order).first() if "capture" in columns else pl.lit(None, pl.String)
    return [
        pl.len().cast(pl.UInt32).alias("flows"),
        pl.col("server_ip").n_unique().cast(pl.UInt32).alias("servers"),
        pl.col("client_ip").n_unique().cast(pl.UInt32).alias("clients"),
        pl.col("first_ts").min().alias("first_seen"),
        pl.col("last_ts").max().alias("last_seen"),
        pl.col("server_ip").unique().sort().head(EXAMPLES).alias("server_ips"),
        pl.col("client_ip").unique().sort().head(EXAMPLES).alias("client_ips"),
        pl.col("flow_id").sort_by(order).head(EXAMPLES).alias("example_flows"),
        pl.col("flow_id").sort_by(order).first().alias("first_flow"),
        capture.alias("first_capture"),
        record.alias("first_record"),
        learned.alias("learned_from"),
    ]


def group_flows(df: pl.DataFrame, keys: list[str | pl.Expr], extra: list[pl.Expr] = ()) -> pl.DataFrame:
    """`df`'s flows grouped by `keys`, with the evidence columns and `extra` aggregations."""
    return df.group_by(keys).agg(*extra, *evidence_aggs(df.columns))


def empty_evidence() -> list[pl.Expr]:
    """The evidence columns as nulls, for a finding no flow stands behind (an unused line)."""
    return [pl.lit(None, dtype).alias(name) for name, dtype in EVIDENCE_SCHEMA.items()]


def largest_first(df: pl.DataFrame, count: str = "flows") -> pl.DataFrame:
    """Groups by size, largest first; ties in time order."""
    if df.is_empty():
        return df
    return df.sort([count, "first_seen"], descending=[True, False], nulls_last=True)
