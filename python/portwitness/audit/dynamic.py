"""Dynamic ranges: a rule for ports that an endpoint mapper, a bind_ack or a portmapper hands out
(a policy's `dynamic = true` with `family = "msrpc"` or `"oncrpc"` and a port range, such as Windows'
49152-65535). Every port handed out on the hosts the rule covers is held against the range: one
inside makes the rule used, one outside is a `dynamic-outside` violation naming the interface or
program, the server and the answer that handed it out. This is how an administrator proves which
dynamic RPC range a server really uses."""

from __future__ import annotations

import polars as pl

from portwitness.config.model import FAMILY_MSRPC, FAMILY_ONCRPC, KIND_SERVICE, Rule

from .hosts import on_host

PORTMAPPER_PROGRAM = 100000
EPM_INTERFACE = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"


def ranged_dynamic(r: Rule) -> bool:
    return (
        r.kind == KIND_SERVICE and r.dynamic and bool(r.ports) and r.family in (FAMILY_MSRPC, FAMILY_ONCRPC)
    )


def learned_for(r: Rule, mappings: pl.DataFrame) -> pl.DataFrame:
    """The ports mappers handed out that the rule covers: its family (the mappers' own well-known
    ports are no dynamic assignment), its program or interface when it names one, its hosts and
    transports."""
    cond = pl.col("registered") & pl.col("port").is_not_null() & pl.col("transport").is_in(list(r.transports))
    if r.family == FAMILY_ONCRPC:
        cond = cond & pl.col("rpc_program").is_not_null() & (pl.col("rpc_program") != PORTMAPPER_PROGRAM)
        if r.program is not None:
            cond = cond & (pl.col("rpc_program") == r.program)
    else:
        iface = pl.col("interface_uuid").str.to_lowercase()
        cond = cond & iface.is_not_null() & (iface != EPM_INTERFACE)
        if r.interface is not None:
            cond = cond & (iface == r.interface)
    return mappings.filter(cond & on_host(r))


def _outside(r: Rule) -> pl.Expr:
    port = pl.col("port").cast(pl.Int32)
    return ~pl.any_horizontal([port.is_between(p.lo, p.hi) for p in r.ports])
