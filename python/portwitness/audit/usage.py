"""The `usage` view: attributed flows aggregated by Polars — what talked on which port, how much,
with how many clients, how it ended, how many were TLS and how many plaintext, and on what evidence
it was attributed."""

from __future__ import annotations

import polars as pl

OUTCOMES = ("completed", "refused", "unanswered", "reset", "open", "midstream")
GROUPINGS = {
    "port": ["server_ip", "transport", "server_port", "service"],
    "service": ["service", "transport"],
    "host": ["server_ip", "service"],
}


def usage(flows: pl.DataFrame, by: str = "port") -> pl.DataFrame:
    keys = GROUPINGS[by]
    f = flows.with_columns(pl.col("service").fill_null("unknown"))
    evidence = (
        f.group_by(*keys, "evidence")
        .agg(pl.len().alias("n"))
        .sort("n", "evidence", descending=[True, False])
        .group_by(keys, maintain_order=True)
        .agg(pl.format("{}:{}", "evidence", pl.col("n").cast(pl.String)).str.join(",").alias("evidence"))
    )
    extra = []
    if "server_port" not in keys:
        extra.append(pl.col("server_port").unique().sort().cast(pl.String).str.join(";").alias("ports"))
    if "server_ip" not in keys:
        extra.append(pl.col("server_ip").n_unique().cast(pl.UInt32).alias("servers"))
    out = f.group_by(keys).agg(
        pl.len().cast(pl.UInt32).alias("flows"),
        # TCP flows by what their client's first payload was (null: no payload, counted in neither).
        pl.col("security").is_in(["tls", "starttls"]).sum().cast(pl.UInt32).alias("tls"),
        (pl.col("security") == "plaintext").sum().cast(pl.UInt32).alias("plaintext"),
        (pl.col("packets_c2s") + pl.col("packets_s2c")).sum().alias("packets"),
        (pl.col("bytes_c2s") + pl.col("bytes_s2c")).sum().alias("bytes"),
        pl.col("client_ip").n_unique().cast(pl.UInt32).alias("clients"),
        pl.col("first_ts").min().alias("first_seen"),
        pl.col("last_ts").max().alias("last_seen"),
        *[(pl.col("outcome") == o).sum().cast(pl.UInt32).alias(o) for o in OUTCOMES],
        *extra,
    )
    out = out.join(evidence, on=keys, how="left", nulls_equal=True)
    return out.sort(["flows", *keys], descending=[True] + [False] * len(keys)).rename(
        {"server_port": "port"} if "server_port" in keys else {}
    )
