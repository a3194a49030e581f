"""The `blocked` frame: connection attempts that were refused or went unanswered, by server, port
and the service they were meant for — a firewall's fingerprints."""

from __future__ import annotations

import polars as pl

from .groups import EVIDENCE_SCHEMA, group_flows, largest_first

SCHEMA = {
    "outcome": pl.String,
    "service": pl.String,
    "transport": pl.String,
    "port": pl.UInt16,
    "evidence": pl.String,
    "attempts": pl.UInt32,
    **{k: v for k, v in EVIDENCE_SCHEMA.items() if k != "flows"},
}


def blocked(flows: pl.DataFrame) -> pl.DataFrame:
    """TCP attempts refused or unanswered; UDP requests never answered, for known services only
    (an unanswered datagram to an unknown port is as likely a one-way protocol as a firewall).
    One row per (outcome, service, transport, port), largest first."""
    attempts = flows.filter(
        pl.col("outcome").is_in(["refused", "unanswered"])
        & ((pl.col("transport") == "tcp") | pl.col("service").is_not_null())
    ).with_columns(pl.col("service").fill_null("unknown"))
    if attempts.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    out = group_flows(
        attempts,
        ["outcome", "service", "transport", pl.col("server_port").alias("port")],
        [pl.col("evidence").mode().sort().first().alias("evidence")],
    ).rename({"flows": "attempts"})
    return largest_first(out.select(list(SCHEMA)).cast(SCHEMA), "attempts")
