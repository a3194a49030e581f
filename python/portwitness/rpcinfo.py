"""The `rpcinfo` view: for each server, what `rpcinfo -p SERVER` would have printed, rebuilt from
the mappings seen on the wire, with where each row came from and how often it was used."""

from __future__ import annotations

import polars as pl

from portwitness.capture import Capture
from portwitness.names import RPC_PROGRAMS


def rpcinfo(cap: Capture) -> pl.DataFrame:
    """One row per (server, program, version, transport, port) that a portmapper or rpcbind reply
    revealed: its name, the sources that revealed it, first and last seen, and the number of flows
    that later used that port on that server."""
    schema = {
        "server": pl.String,
        "program": pl.UInt32,
        "version": pl.UInt32,
        "proto": pl.String,
        "port": pl.UInt16,
        "name": pl.String,
        "source": pl.String,
        "first_seen": pl.Datetime("ns", "UTC"),
        "last_seen": pl.Datetime("ns", "UTC"),
        "flows_after": pl.UInt32,
    }
    m = cap.mappings.filter(
        pl.col("registered") & pl.col("port").is_not_null() & pl.col("rpc_program").is_not_null()
    )
    if m.is_empty():
        return pl.DataFrame(schema=schema)
    rows = (
        m.group_by(["server_ip", "rpc_program", "rpc_version", "transport", "port"])
        .agg(
            pl.col("source").str.split(".").list.last().unique().sort().str.join(",").alias("source"),
            pl.col("ts").min().alias("first_seen"),
            pl.col("ts").max().alias("last_seen"),
        )
        .rename(
            {"server_ip": "server", "rpc_program": "program", "rpc_version": "version", "transport": "proto"}
        )
    )
    flows = cap.flows.select(
        pl.col("server_ip").alias("server"),
        pl.col("transport").alias("proto"),
        pl.col("server_port").alias("port"),
        "first_ts",
    )
    used = (
        rows.select("server", "proto", "port", "first_seen")
        .unique()
        .join(flows, on=["server", "proto", "port"], how="inner")
        .filter(pl.col("first_ts") >= pl.col("first_seen"))
        .group_by(["server", "proto", "port", "first_seen"])
        .agg(pl.len().cast(pl.UInt32).alias("flows_after"))
    )
    names = pl.DataFrame(
        {"program": list(RPC_PROGRAMS), "name": list(RPC_PROGRAMS.values())},
        schema={"program": pl.UInt32, "name": pl.String},
    )
    out = (
        rows.join(used, on=["server", "proto", "port", "first_seen"], how="left")
        .join(names, on="program", how="left")
        .with_columns(
            pl.col("name").fill_null(pl.col("program").cast(pl.String)),
            pl.col("flows_after").fill_null(0),
        )
    )
    return out.select(list(schema)).sort(["server", "program", "version", "proto", "port"])
