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
- `reconnection-outside`: a reconnection whose server-side port is outside the reconnection range;
- `dynamic-outside`: a mapper handed out a port outside a configured dynamic range (`dynamic.py`).

Each violation is a group of flows (or of mapper answers) of one (type, service, transport, port),
with the evidence of `groups.py`.
"""

from __future__ import annotations

import polars as pl

from portwitness.config.model import KIND_CALLBACK, KIND_RECONNECTION, KIND_SERVICE, Policy, Rule

from .dynamic import learned_for, ranged_dynamic
from .groups import EVIDENCE_SCHEMA, EXAMPLES, group_flows, largest_first
from .hosts import ByHost, by_key, on_host
from .ranges import outside, range_rules
from .services import on_configured

SCHEMA = {
    "type": pl.String,
    "service": pl.String,
    "transport": pl.String,
    "port": pl.UInt16,
    "configured": pl.String,
    "evidence": pl.String,
    "detail": pl.String,
    "origin": pl.String,
    **EVIDENCE_SCHEMA,
}


def _grouped(df: pl.DataFrame, type_: str, configured: str, detail: str, origin: str) -> pl.DataFrame:
    if df.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    out = group_flows(
        df,
        ["service", "transport", pl.col("server_port").alias("port")],
        [pl.col("evidence").mode().sort().first().alias("evidence")],
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


def _answers(hits: pl.DataFrame, flows: pl.DataFrame, type_: str, r: Rule, why: pl.Expr) -> pl.DataFrame:
    """Mapper answers grouped by (server side) transport and port, with the flows that went to the
    port afterwards as the evidence, and the first answer as what taught it."""
    keys = ["transport", "port"]
    to_port = flows.select(
        "flow_id",
        "capture",
        "client_ip",
        "first_ts",
        "last_ts",
        "server_ip",
        "transport",
        pl.col("server_port").alias("port"),
        *([pl.col("first_record")] if "first_record" in flows.columns else []),
    ).join(hits.select("server_ip", "transport", "port").unique(), on=["server_ip", "transport", "port"])
    first = (
        hits.sort("ts")
        .group_by(keys, maintain_order=True)
        .agg(
            pl.col("server_ip").n_unique().cast(pl.UInt32).alias("servers"),
            pl.col("server_ip").unique().sort().head(EXAMPLES).alias("server_ips"),
            pl.col("ts").min().alias("first_seen"),
            pl.col("ts").max().alias("last_seen"),
            pl.format(
                "{} answer at {} in flow {}",
                pl.col("source"),
                pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.9fZ"),
                pl.col("flow_id").cast(pl.String),
            )
            .first()
            .alias("learned_from"),
            why.first().alias("detail"),
        )
    )
    used = (
        to_port.group_by(keys).agg(
            pl.len().cast(pl.UInt32).alias("flows"),
            pl.col("client_ip").n_unique().cast(pl.UInt32).alias("clients"),
            pl.col("client_ip").unique().sort().head(EXAMPLES).alias("client_ips"),
            pl.col("flow_id").sort_by("first_ts").head(EXAMPLES).alias("example_flows"),
            pl.col("flow_id").sort_by("first_ts").first().alias("first_flow"),
            pl.col("capture").sort_by("first_ts").first().alias("first_capture"),
            (
                pl.col("first_record").sort_by("first_ts").first()
                if "first_record" in to_port.columns
                else pl.lit(None, pl.UInt64)
            ).alias("first_record"),
        )
        if not to_port.is_empty()
        else None
    )
    out = first.join(used, on=keys, how="left") if used is not None else first
    return (
        out.with_columns(
            pl.lit(type_).alias("type"),
            pl.lit(r.service).alias("service"),
            pl.lit(r.ports_text).alias("configured"),
            pl.lit("learned").alias("evidence"),
            pl.lit(str(r.origin)).alias("origin"),
            *[
                pl.lit(None, t).alias(c)
                for c, t in SCHEMA.items()
                if c not in out.columns and c not in ("type", "service", "configured", "evidence", "origin")
            ],
        )
        .with_columns(pl.col("flows").fill_null(0), pl.col("clients").fill_null(0))
        .select(list(SCHEMA))
        .cast(SCHEMA)
    )


def _pinned(rules: list[Rule]) -> list[Rule]:
    return [r for r in rules if r.kind == KIND_SERVICE and r.ports and not r.dynamic]


def service_port(flows: pl.DataFrame, rules: list[Rule]) -> list[pl.DataFrame]:
    """Services the wire itself identified (learned or payload) on ports outside their rule."""
    out = []
    seen = by_key(flows.filter(pl.col("evidence").is_in(["learned", "payload"])), "service")
    for r in _pinned(rules):
        part = seen[r.service].of(r) if r.service in seen else None
        if part is None or part.is_empty():
            continue
        off = part.filter(pl.col("transport").is_in(list(r.transports)) & ~on_configured(r))
        out.append(
            _grouped(
                off,
                "service-port",
                r.ports_text,
                f"{r.service} is configured on {r.ports_text} ({r.origin})",
                str(r.origin),
            )
        )
    return out


def pinned_dynamic(mappings: pl.DataFrame, flows: pl.DataFrame, rules: list[Rule]) -> list[pl.DataFrame]:
    """Mapping facts that hand a pinned service a port outside its configured set."""
    out: list[pl.DataFrame] = []
    facts = mappings.filter(pl.col("registered") & pl.col("port").is_not_null())
    if facts.is_empty():
        return out
    # The facts split by program and interface once: each rule then looks at its own few.
    by_program = by_key(facts.filter(pl.col("rpc_program").is_not_null()), "rpc_program")
    by_interface = by_key(
        facts.with_columns(pl.col("interface_uuid").str.to_lowercase().alias("_iface")).filter(
            pl.col("_iface").is_not_null()
        ),
        "_iface",
    )
    for r in _pinned(rules):
        if r.program is None and r.interface is None:
            continue
        own = by_program.get(r.program) if r.program is not None else by_interface.get(r.interface)
        if own is None:
            continue
        cond = (
            (pl.col("rpc_program") == r.program)
            if r.program is not None
            else (pl.col("interface_uuid").str.to_lowercase() == r.interface)
        )
        cond = cond & pl.col("transport").is_in(list(r.transports)) & on_host(r)
        port = pl.col("port").cast(pl.Int32)
        cond = cond & ~pl.any_horizontal([port.is_between(p.lo, p.hi) for p in r.ports])
        hits = own.df.filter(cond)
        if "_iface" in hits.columns:
            hits = hits.drop("_iface")
        if hits.is_empty():
            continue
        why = pl.format(
            "{} handed out port {} for {}, which {} pins to {}",
            pl.col("source"),
            pl.col("port").cast(pl.String),
            pl.lit(r.service),
            pl.lit(str(r.origin)),
            pl.lit(r.ports_text),
        )
        out.append(_answers(hits, flows, "pinned-dynamic", r, why))
    return out


def dynamic_outside(mappings: pl.DataFrame, flows: pl.DataFrame, rules: list[Rule]) -> list[pl.DataFrame]:
    """Ports a mapper handed out outside a configured dynamic range, on the hosts it covers."""
    out = []
    for r in rules:
        if not ranged_dynamic(r):
            continue
        port = pl.col("port").cast(pl.Int32)
        hits = learned_for(r, mappings).filter(
            ~pl.any_horizontal([port.is_between(p.lo, p.hi) for p in r.ports])
        )
        if hits.is_empty():
            continue
        what = pl.coalesce(
            pl.format("program {}", pl.col("rpc_program").cast(pl.String)),
            pl.format("interface {}", pl.col("interface_uuid").str.to_lowercase()),
        )
        why = pl.format(
            "{} on {} handed out port {} for {}, outside the dynamic range {} ({})",
            pl.col("source"),
            pl.col("server_ip"),
            pl.col("port").cast(pl.String),
            what,
            pl.lit(r.ports_text),
            pl.lit(str(r.origin)),
        )
        # One row per interface or program and port: which RPC service strayed is the finding.
        for _, part in hits.group_by(["rpc_program", "interface_uuid"], maintain_order=True):
            row = _answers(part, flows, "dynamic-outside", r, why)
            name = part.select(what.first()).item()
            out.append(row.with_columns(pl.lit(f"{r.service} ({name})").alias("service")))
    return out


def moved_port(flows: pl.DataFrame, rules: list[Rule], catalog: list[Rule]) -> list[pl.DataFrame]:
    """Traffic to a catalogued default port of a service the configuration moved elsewhere."""
    out = []
    # A flow a configuration line put on that port belongs to the service now configured there.
    candidates = flows.filter(pl.col("evidence") != "config")
    # Per catalog entry, the candidate flows on its ports, split by address: most rules find none.
    on_default: dict[int, ByHost] = {}
    for r in _pinned(rules):
        for n, c in enumerate(catalog):
            if c.service != r.service or c.kind != KIND_SERVICE or not c.ports:
                continue
            if n not in on_default:
                port = pl.col("server_port").cast(pl.Int32)
                on_default[n] = ByHost(
                    candidates.filter(
                        pl.any_horizontal([port.is_between(p.lo, p.hi) for p in c.ports])
                        & pl.col("transport").is_in(list(c.transports))
                    )
                )
            part = on_default[n].of(r)
            if part.is_empty():
                continue
            moved = [p for p in c.ports if not any(p.lo <= x.lo and x.hi <= p.hi for x in r.ports)]
            if not moved:
                continue
            port = pl.col("server_port").cast(pl.Int32)
            cond = pl.any_horizontal([port.is_between(p.lo, p.hi) for p in moved])
            cond = cond & pl.col("transport").is_in(list(c.transports))
            hits = part.filter(cond & ~on_configured(r))
            out.append(
                _grouped(
                    hits,
                    "moved-port",
                    r.ports_text,
                    f"{r.service}'s default port, moved to {r.ports_text} by {r.origin}",
                    str(r.origin),
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
    out: list[pl.DataFrame] = []
    if not must_tls and not must_plain:
        return out
    # An upgraded session (STARTTLS) is encrypted from the upgrade on: TLS where plaintext must be.
    by_security = {
        "plaintext": ByHost(flows.filter(pl.col("security") == "plaintext")),
        "tls": ByHost(flows.filter(pl.col("security").is_in(["tls", "starttls"]))),
    }
    for r, want, type_ in [
        *((r, "tls", "plaintext-ssl") for r in must_tls),
        *((r, "plaintext", "tls-on-plain") for r in must_plain),
    ]:
        port = pl.col("server_port").cast(pl.Int32)
        cond = pl.any_horizontal([port.is_between(p.lo, p.hi) for p in r.ports]) & pl.col("transport").is_in(
            list(r.transports)
        )
        bad = "plaintext" if want == "tls" else "tls"
        part = by_security[bad].of(r)
        if part.is_empty():
            continue
        hits = part.filter(cond)
        why = (
            f"usessl is true: {r.service} on {r.ports_text} must not carry plaintext"
            if r.tls is False and want == "tls"
            else f"{r.service} on {r.ports_text} must carry {'TLS' if want == 'tls' else 'plaintext'}"
        )
        out.append(_grouped(hits, type_, r.ports_text, why, str(r.origin)))
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
        *pinned_dynamic(mappings, flows, rules),
        *dynamic_outside(mappings, flows, rules),
        *moved_port(flows, rules, catalog),
        *security(flows, rules, policy.usessl),
        *callbacks_outside(callbacks, rules),
        *reconnections_outside(reconnections, rules),
    ]
    parts = [p for p in parts if not p.is_empty()]
    if not parts:
        return pl.DataFrame(schema=SCHEMA)
    return largest_first(pl.concat(parts))
