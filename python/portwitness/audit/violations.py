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

from typing import TYPE_CHECKING, Any

import polars as pl

from portwitness.config.model import KIND_CALLBACK, KIND_RECONNECTION, KIND_SERVICE, Policy, Rule

from .dynamic import learned_for, ranged_dynamic
from .groups import EVIDENCE_SCHEMA, EXAMPLES, Groups, largest_first
from .hosts import ByHost, by_key, on_host
from .ranges import outside, range_rules
from .services import on_configured

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

# Any names: polars types a schema's names as str for a new frame and as str or selector for a cast.
SCHEMA: dict[Any, PolarsDataType] = {
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


# A grouped violation's identity; `_svc` is the flows' own service where the row names another.
KEYS = ["type", "service", "_svc", "transport", "port", "configured", "detail", "origin"]


def _grouped(df: pl.DataFrame, type_: str, configured: str, detail: str, origin: str) -> pl.DataFrame:
    """The flows of one violation, labelled with its identity (grouped by `Violations`)."""
    return df.with_columns(
        pl.lit(type_).alias("type"),
        pl.col("service").alias("_svc"),
        pl.col("server_port").alias("port"),
        pl.lit(configured).alias("configured"),
        pl.lit(detail).alias("detail"),
        pl.lit(origin).alias("origin"),
    )


class _Answers:
    """Mapper answers grouped by (server side) transport and port, with the flows that went to the
    port afterwards as the evidence (fed a batch at a time), and the first answer as what taught it."""

    KEYS = ["transport", "port"]

    def __init__(
        self, hits: pl.DataFrame, type_: str, r: Rule, why: pl.Expr, service: str | None = None
    ) -> None:
        self.type, self.rule, self.service = type_, r, service or r.service
        self.endpoints = hits.select("server_ip", "transport", "port").unique()
        self.first = (
            hits.sort("ts")
            .group_by(self.KEYS, maintain_order=True)
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
        self.used = Groups(self.KEYS)

    def add(self, flows: pl.DataFrame) -> None:
        to_port = flows.select(
            "flow_id",
            *([pl.col("capture")] if "capture" in flows.columns else []),
            "client_ip",
            "first_ts",
            "last_ts",
            "server_ip",
            "transport",
            pl.col("server_port").alias("port"),
            *([pl.col("first_record")] if "first_record" in flows.columns else []),
        ).join(self.endpoints, on=["server_ip", "transport", "port"])
        self.used.add(to_port)

    def result(self) -> pl.DataFrame:
        used = self.used.result()
        out = self.first
        if used is not None:
            used = used.select(
                *self.KEYS,
                "flows",
                "clients",
                "client_ips",
                "example_flows",
                "first_flow",
                "first_capture",
                "first_record",
            )
            out = out.join(used, on=self.KEYS, how="left")
        return (
            out.with_columns(
                pl.lit(self.type).alias("type"),
                pl.lit(self.service).alias("service"),
                pl.lit(self.rule.ports_text).alias("configured"),
                pl.lit("learned").alias("evidence"),
                pl.lit(str(self.rule.origin)).alias("origin"),
                *[
                    pl.lit(None, t).alias(c)
                    for c, t in SCHEMA.items()
                    if c not in out.columns
                    and c not in ("type", "service", "configured", "evidence", "origin")
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


def pinned_dynamic(mappings: pl.DataFrame, rules: list[Rule]) -> list[_Answers]:
    """Mapping facts that hand a pinned service a port outside its configured set."""
    out: list[_Answers] = []
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
        out.append(_Answers(hits, "pinned-dynamic", r, why))
    return out


def dynamic_outside(mappings: pl.DataFrame, rules: list[Rule]) -> list[_Answers]:
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
            name = part.select(what.first()).item()
            out.append(_Answers(part, "dynamic-outside", r, why, service=f"{r.service} ({name})"))
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
    must_tls: list[Rule] = []
    must_plain: list[Rule] = []
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


class Violations:
    """The violations of `policy`, fed attributed flows a batch at a time; the callbacks and the
    reconnections (gathered over every batch) come with `result`."""

    def __init__(self, mappings: pl.DataFrame, policy: Policy, catalog: list[Rule]) -> None:
        self.rules, self.catalog, self.usessl = policy.rules, catalog, policy.usessl
        self.groups = Groups(KEYS, modes={"evidence": pl.col("evidence")})
        self.answers = [*pinned_dynamic(mappings, self.rules), *dynamic_outside(mappings, self.rules)]

    def add(self, flows: pl.DataFrame) -> None:
        for part in (
            *service_port(flows, self.rules),
            *moved_port(flows, self.rules, self.catalog),
            *security(flows, self.rules, self.usessl),
        ):
            self.groups.add(part)
        for a in self.answers:
            a.add(flows)

    def result(self, callbacks: pl.DataFrame, reconnections: pl.DataFrame) -> pl.DataFrame:
        for part in (
            *callbacks_outside(callbacks, self.rules),
            *reconnections_outside(reconnections, self.rules),
        ):
            self.groups.add(part)
        grouped = self.groups.result()
        parts = [a.result() for a in self.answers]
        if grouped is not None:
            parts.append(grouped.select(list(SCHEMA)).cast(SCHEMA))
        parts = [p for p in parts if not p.is_empty()]
        if not parts:
            return pl.DataFrame(schema=SCHEMA)
        return largest_first(pl.concat(parts))


def violations(
    flows: pl.DataFrame,
    mappings: pl.DataFrame,
    callbacks: pl.DataFrame,
    reconnections: pl.DataFrame,
    policy: Policy,
    catalog: list[Rule],
) -> pl.DataFrame:
    v = Violations(mappings, policy, catalog)
    v.add(flows)
    return v.result(callbacks, reconnections)
