"""The `services` frame: for every configured service rule (service, host, ports), whether the
traffic used it, on which ports, how much, with whom, and when."""

from __future__ import annotations

import polars as pl

from portwitness.config.model import KIND_SERVICE, Rule

from .dynamic import learned_for, ranged_dynamic
from .hosts import ByHost, by_key

SCHEMA = {
    "service": pl.String,
    "host": pl.String,
    "ip": pl.String,
    "transport": pl.String,
    "configured": pl.String,
    "dynamic": pl.Boolean,
    "used": pl.Boolean,
    "flows": pl.UInt32,
    "flows_on_configured": pl.UInt32,
    "port_flows": pl.UInt32,
    "learned_inside": pl.UInt32,
    "ports_seen": pl.String,
    "servers": pl.String,
    "bytes": pl.UInt64,
    "peers": pl.UInt32,
    "sni": pl.String,
    "machines": pl.String,
    "first_seen": pl.Datetime("ns", "UTC"),
    "last_seen": pl.Datetime("ns", "UTC"),
    "origin": pl.String,
}


# Outcomes of flows that carried traffic to the server's port (a refused or unanswered attempt did not).
CARRIED = ("completed", "open", "reset", "midstream")


def on_configured(r: Rule) -> pl.Expr:
    """Whether a flow of the rule's service is on one of its configured ports (any port when the
    rule leaves the port to a portmapper or endpoint mapper)."""
    if not r.ports:
        return pl.lit(True)
    port = pl.col("server_port").cast(pl.Int32)
    return pl.any_horizontal([port.is_between(p.lo, p.hi) for p in r.ports])


def _port_in(r: Rule) -> pl.Expr:
    port = pl.col("port").cast(pl.Int32)
    return pl.any_horizontal([port.is_between(p.lo, p.hi) for p in r.ports])


def _joined(values: pl.Series) -> str:
    return ";".join(sorted(set(values.drop_nulls().to_list())))


def _ports_text(ports: list[int]) -> str:
    return ";".join(str(p) for p in sorted(set(ports)))


def services(flows: pl.DataFrame, rules: list[Rule], mappings: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per service rule. `used`: traffic on its configured ports on its hosts (whatever
    service attribution named), flows of its service where a mapper places it (no ports), or, for
    a dynamic range, a port a mapper handed out inside the range."""
    rows = []
    # Split once by service and address: thousands of rules each filter only their own flows.
    by_service = by_key(flows, "service")
    carried_keys = ByHost(
        flows.filter(pl.col("outcome").is_in(CARRIED)).group_by("server_ip", "transport", "server_port").len()
    )
    empty = ByHost(flows.clear())
    for r in rules:
        if r.kind != KIND_SERVICE:
            continue
        f = by_service.get(r.service, empty).of(r).filter(pl.col("transport").is_in(list(r.transports)))
        on = f.filter(on_configured(r))
        carried = 0
        if r.ports:
            carried = int(
                carried_keys.of(r)
                .filter(pl.col("transport").is_in(list(r.transports)) & on_configured(r))["len"]
                .sum()
            )
        inside = 0
        if mappings is not None and ranged_dynamic(r):
            inside = learned_for(r, mappings).filter(_port_in(r)).height
        if r.dynamic and r.ports:
            # A dynamic range is used by what the mappers hand out in it (and the flows there).
            used = inside > 0 or on.height > 0
        else:
            used = on.height > 0 or carried > 0
        rows.append(
            {
                "service": r.service,
                "host": r.host,
                "ip": r.ip,
                "transport": "+".join(r.transports),
                "configured": r.ports_text,
                "dynamic": r.dynamic,
                "used": used,
                "flows": f.height,
                "flows_on_configured": on.height,
                "port_flows": carried,
                "learned_inside": inside,
                "ports_seen": _ports_text(f["server_port"].to_list()),
                "servers": ";".join(sorted(set(f["server_ip"].to_list()))),
                "bytes": int(f.select((pl.col("bytes_c2s") + pl.col("bytes_s2c")).sum()).item() or 0),
                "peers": f["client_ip"].n_unique(),
                # What the clients called the server (TLS SNI) and themselves (AUTH_UNIX machine names).
                "sni": _joined(f["tls_sni"]),
                "machines": _joined(f["auth_machines"].str.split(";").explode()),
                "first_seen": f["first_ts"].min(),
                "last_seen": f["last_ts"].max(),
                "origin": str(r.origin),
            }
        )
    return pl.DataFrame(rows, schema=SCHEMA)
