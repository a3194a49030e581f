"""The `usage` view: attributed flows aggregated by Polars — what talked on which port, how much,
with how many clients, how it ended, how many were TLS and how many plaintext, and on what evidence
it was attributed. Fed a batch of flows at a time: each batch leaves a state per group (counts,
sets of clients, servers and ports, first and last time) that the next merges."""

from __future__ import annotations

import polars as pl

OUTCOMES = ("completed", "refused", "unanswered", "reset", "open", "midstream")
GROUPINGS = {
    "port": ["server_ip", "transport", "server_port", "service"],
    "service": ["service", "transport"],
    "host": ["server_ip", "service"],
}
SUMS = ("flows", "tls", "plaintext", "packets", "bytes", *OUTCOMES)
SETS = ("_clients", "_ports", "_servers")
# Partial states past this many rows are merged (bounds memory by groups, not batches).
COMPACT_ROWS = 50_000


def _explode(name: str) -> pl.Expr:
    return pl.col(name).list.explode(keep_nulls=False, empty_as_null=False)


class Usage:
    def __init__(self, by: str = "port") -> None:
        self.keys = GROUPINGS[by]
        self.parts: list[pl.DataFrame] = []
        self.evidence: list[pl.DataFrame] = []
        self.rows = 0

    def add(self, flows: pl.DataFrame) -> None:
        if flows.is_empty():
            return
        keys = self.keys
        f = flows.with_columns(pl.col("service").fill_null("unknown"))
        self.evidence.append(f.group_by(*keys, "evidence").agg(pl.len().cast(pl.UInt64).alias("n")))
        self.parts.append(
            f.group_by(keys).agg(
                pl.len().cast(pl.UInt64).alias("flows"),
                # TCP flows by what their client's first payload was (null: no payload, counted in neither).
                pl.col("security").is_in(["tls", "starttls"]).sum().cast(pl.UInt64).alias("tls"),
                (pl.col("security") == "plaintext").sum().cast(pl.UInt64).alias("plaintext"),
                (pl.col("packets_c2s") + pl.col("packets_s2c")).sum().alias("packets"),
                (pl.col("bytes_c2s") + pl.col("bytes_s2c")).sum().alias("bytes"),
                pl.col("client_ip").drop_nulls().unique().alias("_clients"),
                pl.col("server_port").drop_nulls().unique().alias("_ports"),
                pl.col("server_ip").drop_nulls().unique().alias("_servers"),
                pl.col("first_ts").min().alias("first_seen"),
                pl.col("last_ts").max().alias("last_seen"),
                *[(pl.col("outcome") == o).sum().cast(pl.UInt64).alias(o) for o in OUTCOMES],
            )
        )
        self.rows += self.parts[-1].height + self.evidence[-1].height
        if self.rows > COMPACT_ROWS and len(self.parts) > 1:
            self.parts, self.evidence = [self._merged()], [self._merged_evidence()]
            self.rows = self.parts[0].height + self.evidence[0].height

    def _merged(self) -> pl.DataFrame:
        return (
            pl.concat(self.parts, how="diagonal_relaxed")
            .group_by(self.keys)
            .agg(
                *[pl.col(c).sum() for c in SUMS],
                *[_explode(c).unique().alias(c) for c in SETS],
                pl.col("first_seen").min(),
                pl.col("last_seen").max(),
            )
        )

    def _merged_evidence(self) -> pl.DataFrame:
        return (
            pl.concat(self.evidence, how="diagonal_relaxed")
            .group_by(*self.keys, "evidence")
            .agg(pl.col("n").sum())
        )

    def result(self) -> pl.DataFrame:
        keys = self.keys
        if not self.parts:
            return _empty(keys)
        evidence = (
            self._merged_evidence()
            .sort("n", "evidence", descending=[True, False])
            .group_by(keys, maintain_order=True)
            .agg(pl.format("{}:{}", "evidence", pl.col("n").cast(pl.String)).str.join(",").alias("evidence"))
        )
        extra = []
        if "server_port" not in keys:
            extra.append(pl.col("_ports").list.sort().cast(pl.List(pl.String)).list.join(";").alias("ports"))
        if "server_ip" not in keys:
            extra.append(pl.col("_servers").list.len().cast(pl.UInt32).alias("servers"))
        out = self._merged().select(
            *keys,
            *[pl.col(c).cast(pl.UInt32) for c in ("flows", "tls", "plaintext")],
            "packets",
            "bytes",
            pl.col("_clients").list.len().cast(pl.UInt32).alias("clients"),
            "first_seen",
            "last_seen",
            *[pl.col(o).cast(pl.UInt32) for o in OUTCOMES],
            *extra,
        )
        out = out.join(evidence, on=keys, how="left", nulls_equal=True)
        return out.sort(["flows", *keys], descending=[True] + [False] * len(keys)).rename(
            {"server_port": "port"} if "server_port" in keys else {}
        )


def _empty(keys: list[str]) -> pl.DataFrame:
    return usage_of(
        pl.DataFrame(
            schema={
                "server_ip": pl.String,
                "transport": pl.String,
                "server_port": pl.UInt16,
                "service": pl.String,
                "evidence": pl.String,
                "security": pl.String,
                "packets_c2s": pl.UInt64,
                "packets_s2c": pl.UInt64,
                "bytes_c2s": pl.UInt64,
                "bytes_s2c": pl.UInt64,
                "client_ip": pl.String,
                "first_ts": pl.Datetime("ns", "UTC"),
                "last_ts": pl.Datetime("ns", "UTC"),
                "outcome": pl.String,
            }
        ),
        keys,
    )


def usage_of(f: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """The usage of no flow: the columns a grouping gives, with no rows."""
    out = f.group_by(keys).agg(
        *[pl.len().cast(pl.UInt32).alias(c) for c in ("flows", "tls", "plaintext")],
        pl.col("packets_c2s").sum().alias("packets"),
        pl.col("bytes_c2s").sum().alias("bytes"),
        pl.len().cast(pl.UInt32).alias("clients"),
        pl.col("first_ts").min().alias("first_seen"),
        pl.col("last_ts").max().alias("last_seen"),
        *[pl.len().cast(pl.UInt32).alias(o) for o in OUTCOMES],
        *([pl.lit("").alias("ports")] if "server_port" not in keys else []),
        *([pl.len().cast(pl.UInt32).alias("servers")] if "server_ip" not in keys else []),
        pl.lit("").alias("evidence"),
    )
    return out.rename({"server_port": "port"} if "server_port" in keys else {})


def usage(flows: pl.DataFrame, by: str = "port") -> pl.DataFrame:
    u = Usage(by)
    u.add(flows)
    return u.result()
