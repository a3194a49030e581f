"""The `violations` frame: where the traffic broke the configuration.

Types:
- `service-port`: a service seen (by learned mapping or payload) on a port outside its configured set;
- `pinned-dynamic`: a portmapper, rpcbind or endpoint mapper handed out a port for a service that the
  configuration pins elsewhere;
- `moved-port`: traffic to a service's catalogued default port after the configuration moved it;
- `plaintext-ssl`: plaintext on a port that must carry TLS (the SSL port; the non-SSL port while
  usessl is true; any rule requiring TLS); a session that switched to TLS after a plaintext
  preamble (STARTTLS, security `starttls`) is encrypted, so only one that never switched is a finding;
- `tls-on-plain`: TLS (from the first byte or after a preamble) where the configuration expects
  plaintext;
- `callback-outside`: a callback to a port outside the callback ranges;
- `reconnection-outside`: a reconnection whose server-side port is outside the reconnection range.
"""

from __future__ import annotations

import polars as pl

from portwitness.config.model import KIND_CALLBACK, KIND_RECONNECTION, KIND_SERVICE, Policy, Rule

from .ranges import outside, range_rules
from .services import flows_of_rule, on_configured

SCHEMA = {
    "type": pl.String,
    "service": pl.String,
    "server_ip": pl.String,
    "client_ip": pl.String,
    "transport": pl.String,
    "port": pl.UInt16,
    "configured": pl.String,
    "flows": pl.UInt32,
    "first_seen": pl.Datetime("ns", "UTC"),
    "last_seen": pl.Datetime("ns", "UTC"),
    "evidence": pl.String,
    "detail": pl.String,
    "origin": pl.String,
}


def _grouped(
    df: pl.DataFrame, type_: str, configured: str, detail: str, origin: str, *, by_client: bool
) -> pl.DataFrame:
    if df.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    keys = ["service", "server_ip", "transport", pl.col("server_port").alias("port")]
    if by_client:
        keys.append("client_ip")
    out = df.group_by(keys).agg(
        pl.len().cast(pl.UInt32).alias("flows"),
        pl.col("first_ts").min().alias("first_seen"),
        pl.col("last_ts").max().alias("last_seen"),
        pl.col("evidence").mode().sort().first().alias("evidence"),
        *([] if by_client else [pl.col("client_ip").unique().sort().str.join(";").alias("client_ip")]),
    )
    return (
        out.with_columns(
            pl.lit(type_).alias("type"),
            pl.lit(configured).alias("configured"),
            pl.lit(detail).alias("detail"),
            pl.lit(origin).alias("origin"),
        )
        .select(list(SCHEMA))
        .cast(SCHEMA)
    )


def _pinned(rules: list[Rule]) -> list[Rule]:
    return [r for r in rules if r.kind == KIND_SERVICE and r.ports and not r.dynamic]


def service_port(flows: pl.DataFrame, rules: list[Rule]) -> list[pl.DataFrame]:
    """Services the wire itself identified (learned or payload) on ports outside their rule."""
    out = []
    seen = flows.filter(pl.col("evidence").is_in(["learned", "payload"]))
    for r in _pinned(rules):
        off = flows_of_rule(seen, r).filter(~on_configured(r))
        out.append(
            _grouped(
                off,
                "service-port",
                r.ports_text,
                f"{r.service} is configured on {r.ports_text} ({r.origin})",
                str(r.origin),
                by_client=False,
            )
        )
    return out


def pinned_dynamic(mappings: pl.DataFrame, rules: list[Rule]) -> list[pl.DataFrame]:
    """Mapping facts that hand a pinned service a port outside its configured set."""
    out = []
    facts = mappings.filter(pl.col("registered") & pl.col("port").is_not_null())
    for r in _pinned(rules):
        if r.program is None and r.interface is None:
            continue
        cond = (
            (pl.col("rpc_program") == r.program)
            if r.program is not None
            else (pl.col("interface_uuid").str.to_lowercase() == r.interface)
        )
        cond = cond & pl.col("transport").is_in(list(r.transports))
        if r.ip is not None:
            cond = cond & (pl.col("server_ip") == r.ip)
        port = pl.col("port").cast(pl.Int32)
        cond = cond & ~pl.any_horizontal([port.is_between(p.lo, p.hi) for p in r.ports])
        hits = facts.filter(cond)
        if hits.is_empty():
            continue
        out.append(
            hits.group_by("server_ip", "transport", "port", "source")
            .agg(
                pl.len().cast(pl.UInt32).alias("flows"),
                pl.col("ts").min().alias("first_seen"),
                pl.col("ts").max().alias("last_seen"),
            )
            .with_columns(
                pl.lit("pinned-dynamic").alias("type"),
                pl.lit(r.service).alias("service"),
                pl.lit(None, pl.String).alias("client_ip"),
                pl.lit(r.ports_text).alias("configured"),
                pl.lit("learned").alias("evidence"),
                pl.format(
                    "{} handed out port {} for {}, which {} pins to {}",
                    pl.col("source"),
                    pl.col("port").cast(pl.String),
                    pl.lit(r.service),
                    pl.lit(str(r.origin)),
                    pl.lit(r.ports_text),
                ).alias("detail"),
                pl.lit(str(r.origin)).alias("origin"),
            )
            .select(list(SCHEMA))
            .cast(SCHEMA)
        )
    return out


def moved_port(flows: pl.DataFrame, rules: list[Rule], catalog: list[Rule]) -> list[pl.DataFrame]:
    """Traffic to a catalogued default port of a service the configuration moved elsewhere."""
    out = []
    for r in _pinned(rules):
        for c in catalog:
            if c.service != r.service or c.kind != KIND_SERVICE or not c.ports:
                continue
            moved = [p for p in c.ports if not any(p.lo <= x.lo and x.hi <= p.hi for x in r.ports)]
            if not moved:
                continue
            port = pl.col("server_port").cast(pl.Int32)
            cond = pl.any_horizontal([port.is_between(p.lo, p.hi) for p in moved])
            cond = cond & pl.col("transport").is_in(list(c.transports))
            if r.ip is not None:
                cond = cond & (pl.col("server_ip") == r.ip)
            # A flow a configuration line put on that port belongs to the service now configured there.
            hits = flows.filter(cond & ~on_configured(r) & (pl.col("evidence") != "config"))
            out.append(
                _grouped(
                    hits,
                    "moved-port",
                    r.ports_text,
                    f"{r.service}'s default port, moved to {r.ports_text} by {r.origin}",
                    str(r.origin),
                    by_client=False,
                ).with_columns(pl.lit(r.service).alias("service"))
            )
    return out


def _tls_rules(rules: list[Rule], usessl: bool | None) -> tuple[list[Rule], list[Rule]]:
    """Rules whose ports must carry TLS, and rules whose ports must carry plaintext."""
    must_tls, must_plain = [], []
    for r in rules:
        if r.kind != KIND_SERVICE or not r.ports:
            continue
        if r.tls is True:
            must_tls.append(r)
        elif r.tls is False:
            # The non-SSL port while usessl is true: a plaintext session there breaks the setting.
            (must_tls if usessl else must_plain).append(r)
    return must_tls, must_plain


def security(flows: pl.DataFrame, rules: list[Rule], usessl: bool | None) -> list[pl.DataFrame]:
    must_tls, must_plain = _tls_rules(rules, usessl)
    out = []
    for r, want, type_ in [
        *((r, "tls", "plaintext-ssl") for r in must_tls),
        *((r, "plaintext", "tls-on-plain") for r in must_plain),
    ]:
        port = pl.col("server_port").cast(pl.Int32)
        cond = pl.any_horizontal([port.is_between(p.lo, p.hi) for p in r.ports]) & pl.col("transport").is_in(
            list(r.transports)
        )
        if r.ip is not None:
            cond = cond & (pl.col("server_ip") == r.ip)
        bad = ["plaintext"] if want == "tls" else ["tls", "starttls"]
        hits = flows.filter(cond & pl.col("security").is_in(bad))
        why = (
            f"usessl is true: {r.service} on {r.ports_text} must not carry plaintext"
            if r.tls is False and want == "tls"
            else f"{r.service} on {r.ports_text} must carry {'TLS' if want == 'tls' else 'plaintext'}"
        )
        out.append(_grouped(hits, type_, r.ports_text, why, str(r.origin), by_client=False))
    return out


def callbacks_outside(callbacks: pl.DataFrame, rules: list[Rule]) -> list[pl.DataFrame]:
    cb_rules = [r for r in range_rules(rules) if r.kind == KIND_CALLBACK]
    if not cb_rules:
        return []
    configured = ";".join(r.ports_text for r in cb_rules)
    origin = ";".join(sorted({str(r.origin) for r in cb_rules}))
    return [
        _grouped(
            outside(callbacks, cb_rules, KIND_CALLBACK),
            "callback-outside",
            configured,
            f"callbacks must use {configured}",
            origin,
            by_client=True,
        )
    ]


def reconnections_outside(reconnections: pl.DataFrame, rules: list[Rule]) -> list[pl.DataFrame]:
    rc_rules = [r for r in range_rules(rules) if r.kind == KIND_RECONNECTION]
    if not rc_rules or reconnections.is_empty():
        return []
    configured = ";".join(r.ports_text for r in rc_rules)
    origin = ";".join(sorted({str(r.origin) for r in rc_rules}))
    off = outside(reconnections, rc_rules, KIND_RECONNECTION).with_columns(
        pl.col("range_port").alias("server_port"), pl.lit("reconnection").alias("service")
    )
    return [
        _grouped(
            off,
            "reconnection-outside",
            configured,
            f"the backup server's side of a reconnection must use {configured}",
            origin,
            by_client=True,
        )
    ]


def violations(
    flows: pl.DataFrame,
    mappings: pl.DataFrame,
    callbacks: pl.DataFrame,
    reconnections: pl.DataFrame,
    policy: Policy,
    catalog: list[Rule],
) -> pl.DataFrame:
    rules = policy.rules
    parts = [
        *service_port(flows, rules),
        *pinned_dynamic(mappings, rules),
        *moved_port(flows, rules, catalog),
        *security(flows, rules, policy.usessl),
        *callbacks_outside(callbacks, rules),
        *reconnections_outside(reconnections, rules),
    ]
    parts = [p for p in parts if not p.is_empty()]
    if not parts:
        return pl.DataFrame(schema=SCHEMA)
    return pl.concat(parts).sort("type", "first_seen", "server_ip", "port")
