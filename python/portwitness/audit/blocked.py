"""The `blocked` frame: connection attempts that were refused or went unanswered, by server, port
and the service they were meant for — a firewall's fingerprints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from .groups import EVIDENCE_SCHEMA, Groups, largest_first

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

# Any names: polars types a schema's names as str for a new frame and as str or selector for a cast.
SCHEMA: dict[Any, PolarsDataType] = {
    "outcome": pl.String,
    "service": pl.String,
    "transport": pl.String,
    "port": pl.UInt16,
    "evidence": pl.String,
    "attempts": pl.UInt32,
    **{k: v for k, v in EVIDENCE_SCHEMA.items() if k != "flows"},
}


class Blocked:
    """TCP attempts refused or unanswered; UDP requests never answered, for known services only
    (an unanswered datagram to an unknown port is as likely a one-way protocol as a firewall).
    One row per (outcome, service, transport, port), largest first; fed flows a batch at a time."""

    def __init__(self) -> None:
        self.groups = Groups(
            ["outcome", "service", "transport", "port"], modes={"evidence": pl.col("evidence")}
        )

    def add(self, flows: pl.DataFrame) -> None:
        attempts = flows.filter(
            pl.col("outcome").is_in(["refused", "unanswered"])
            & ((pl.col("transport") == "tcp") | pl.col("service").is_not_null())
        )
        self.groups.add(
            attempts.with_columns(pl.col("service").fill_null("unknown"), pl.col("server_port").alias("port"))
        )

    def result(self) -> pl.DataFrame:
        out = self.groups.result()
        if out is None:
            return pl.DataFrame(schema=SCHEMA)
        out = out.rename({"flows": "attempts"})
        return largest_first(out.select(list(SCHEMA)).cast(SCHEMA), "attempts")


def blocked(flows: pl.DataFrame) -> pl.DataFrame:
    b = Blocked()
    b.add(flows)
    return b.result()
