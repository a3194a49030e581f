"""The `rpcinfo` views, rebuilt from the mappings seen on the wire, with where each row came from and
how often it was used: for each server, what `rpcinfo -p SERVER` would have printed (ONC RPC), and
the Microsoft RPC endpoints that its endpoint mapper handed out or its bind_acks reported (DCE/RPC)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from portwitness.capture import Capture, flow_batches
from portwitness.filters import Filters, NothingMatches
from portwitness.names import DCERPC_INTERFACES, RPC_PROGRAMS

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

# The sources of DCE/RPC endpoint facts, and the protocol sequence of a row that does not name one.
MSRPC_SOURCES = ("epm.map", "epm.lookup", "dcerpc.bind_ack")
_PROTSEQ_BY_TRANSPORT = {"tcp": "ncacn_ip_tcp", "udp": "ncadg_ip_udp"}


def _learned(cap: Capture, m: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Mapping rows grouped by `keys` (which include server_ip, transport and port), with the short
    sources that revealed them (`getport`, `map`, `bind_ack`, ...), first and last seen, and
    `flows_after`: the flows to that server, transport and port that started at or after first seen."""
    rows = m.group_by(keys).agg(
        pl.col("source").str.split(".").list.last().unique().sort().str.join(",").alias("source"),
        pl.col("ts").min().alias("first_seen"),
        pl.col("ts").max().alias("last_seen"),
    )
    on = ["server_ip", "transport", "port", "first_seen"]
    learned = rows.select(on).unique()
    counts = [
        learned.join(
            batch.select("server_ip", "transport", pl.col("server_port").alias("port"), "first_ts"),
            on=on[:3],
            how="inner",
        )
        .filter(pl.col("first_ts") >= pl.col("first_seen"))
        .group_by(on)
        .agg(pl.len().cast(pl.UInt32).alias("flows_after"))
        for batch in flow_batches(cap)
    ]
    used = pl.concat(counts).group_by(on).agg(pl.col("flows_after").sum())
    return rows.join(used, on=on, how="left").with_columns(pl.col("flows_after").fill_null(0))


def rpcinfo(cap: Capture) -> pl.DataFrame:
    """One row per (server, program, version, transport, port) that a portmapper or rpcbind reply
    revealed: its name, the sources that revealed it, first and last seen, and the number of flows
    that later used that port on that server."""
    schema: dict[str, PolarsDataType] = {
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
    rows = _learned(cap, m, ["server_ip", "rpc_program", "rpc_version", "transport", "port"]).rename(
        {"server_ip": "server", "rpc_program": "program", "rpc_version": "version", "transport": "proto"}
    )
    names = pl.DataFrame(
        {"program": list(RPC_PROGRAMS), "name": list(RPC_PROGRAMS.values())},
        schema={"program": pl.UInt32, "name": pl.String},
    )
    out = rows.join(names, on="program", how="left").with_columns(
        pl.col("name").fill_null(pl.col("program").cast(pl.String))
    )
    return out.select(list(schema)).sort(["server", "program", "version", "proto", "port"])


def msrpc_endpoints(cap: Capture) -> pl.DataFrame:
    """One row per (server, interface UUID, interface version, protocol sequence, port) that an
    endpoint mapper reply (ept_map, ept_lookup) or a bind_ack's secondary address revealed: the
    interface's name, the sources (`map`, `lookup`, `bind_ack`), first and last seen, and the
    number of flows that later went to that port on that server."""
    schema: dict[str, PolarsDataType] = {
        "server": pl.String,
        "interface": pl.String,
        "version": pl.String,
        "name": pl.String,
        "protocol": pl.String,
        "port": pl.UInt16,
        "source": pl.String,
        "first_seen": pl.Datetime("ns", "UTC"),
        "last_seen": pl.Datetime("ns", "UTC"),
        "flows_after": pl.UInt32,
    }
    m = cap.mappings.filter(
        pl.col("registered")
        & pl.col("port").is_not_null()
        & pl.col("interface_uuid").is_not_null()
        & pl.col("source").is_in(MSRPC_SOURCES)
    )
    if m.is_empty():
        return pl.DataFrame(schema=schema)
    by_transport = pl.col("transport").replace_strict(_PROTSEQ_BY_TRANSPORT, default=None)
    protocol = pl.col("protocol") if "protocol" in m.columns else pl.lit(None, pl.String)
    m = m.with_columns(pl.coalesce(protocol, by_transport).alias("protocol"))
    rows = _learned(
        cap, m, ["server_ip", "interface_uuid", "interface_version", "protocol", "transport", "port"]
    ).rename({"server_ip": "server", "interface_uuid": "interface", "interface_version": "version"})
    out = rows.with_columns(
        pl.col("interface").replace_strict(DCERPC_INTERFACES, default=pl.col("interface")).alias("name")
    )
    return out.select(list(schema)).sort(["server", "interface", "version", "protocol", "port"])


def views(cap: Capture, filt: Filters) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ONC RPC and MSRPC views narrowed by the filters: `--host`, `--port`, `--transport`,
    `--since` and `--until` select registrations (the server, the port handed out, its transport,
    when it was seen); `--where` selects the flows whose replies are read."""

    source: Any = cap
    if filt.where is not None:
        from types import SimpleNamespace

        carried = []
        for batch in flow_batches(cap):
            filt.check_where(batch.schema)
            carried.append(batch.filter(filt._where)["flow_id"])
        source = SimpleNamespace(
            flow_batches=lambda: flow_batches(cap),
            mappings=cap.mappings.filter(pl.col("flow_id").is_in(pl.concat(carried).implode())),
        )
    oncrpc, msrpc = rpcinfo(source), msrpc_endpoints(source)
    if not filt:
        return oncrpc, msrpc
    addresses = filt.addresses(cap)
    transport = pl.col("protocol").replace_strict(
        {"ncacn_ip_tcp": "tcp", "ncacn_http": "tcp", "ncadg_ip_udp": "udp"}, default=None
    )
    views = []
    for df, proto in ((oncrpc, pl.col("proto")), (msrpc, transport)):
        if addresses is not None:
            df = df.filter(pl.col("server").is_in(addresses))
        if filt.ports:
            df = df.filter(pl.any_horizontal([pl.col("port").is_between(a, b) for a, b in filt.ports]))
        if filt.transports:
            df = df.filter(proto.is_in(list(filt.transports)))
        if filt.since is not None:
            df = df.filter(pl.col("last_seen") >= filt.since)
        if filt.until is not None:
            df = df.filter(pl.col("first_seen") <= filt.until)
        views.append(df)
    if all(v.is_empty() for v in views):
        raise NothingMatches(
            f"no RPC registration matches the filters given ({filt.names()}): nothing to show"
        )
    return views[0], views[1]


def one_table(oncrpc: pl.DataFrame, msrpc: pl.DataFrame) -> pl.DataFrame:
    """Both views as one table, told apart by `kind`, as `portwitness rpcinfo` writes CSV and NDJSON
    (see its --help)."""
    columns = ["kind", "server", "program", "interface", "version", "name", "proto", "port"]
    columns += ["source", "first_seen", "last_seen", "flows_after"]
    onc = oncrpc.with_columns(
        pl.lit("oncrpc").alias("kind"),
        pl.lit(None, pl.String).alias("interface"),
        pl.col("version").cast(pl.String),
    )
    ms = msrpc.rename({"protocol": "proto"}).with_columns(
        pl.lit("msrpc").alias("kind"), pl.lit(None, pl.UInt32).alias("program")
    )
    return pl.concat([onc.select(columns), ms.select(columns)])
