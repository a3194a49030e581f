"""Attribution: which service each flow belongs to, and the evidence for it, decided in polars over
the decoded tables in DESIGN.md's order:

1. learned — a portmapper, rpcbind, endpoint-mapper or bind_ack fact for the flow's server, transport
   and port, seen before the flow started (or up to `LEARN_SLACK` after: captures lose ordering);
2. payload — the flow's own ONC RPC calls name a program, or its own accepted bind an interface;
3. callback — a connection from a management-service server back to a client that holds a session
   with it, starting within the session or `CALLBACK_WINDOW` after it ended;
4. config — a configured port (host-specific rules before general ones);
5. catalog — the built-in default ports of Arcserve's services;
6. unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import polars as pl

from portwitness.capture import Capture
from portwitness.config.model import KIND_SERVICE, Policy, Rule
from portwitness.names import DCERPC_INTERFACES, RPC_PROGRAMS

from .intervals import first_rule

LEARN_SLACK = timedelta(seconds=5)
CALLBACK_WINDOW = timedelta(seconds=60)
# The services whose sessions callbacks come back to.
SESSION_SERVICES = ("mgmt-ssl", "mgmt-plain")
CALLBACK_SERVICE = "mgmt-callback"

EVIDENCE = ("learned", "payload", "callback", "config", "catalog", "unknown")


def _program_services(rules: Iterable[Rule]) -> dict[int, str]:
    """Program number → service: the first rule naming it wins, then the well-known names."""
    out: dict[int, str] = {}
    for r in rules:
        if r.program is not None:
            out.setdefault(r.program, r.service)
    for prog, name in RPC_PROGRAMS.items():
        out.setdefault(prog, name.lower())
    return out


def _interface_services(rules: Iterable[Rule]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in rules:
        if r.interface:
            out.setdefault(r.interface.lower(), r.service)
    for uuid, name in DCERPC_INTERFACES.items():
        out.setdefault(uuid, name.lower())
    return out


def _named(program: pl.Expr, interface: pl.Expr, progs: dict[int, str], ifaces: dict[str, str]) -> pl.Expr:
    by_prog = program.replace_strict(progs, default=None, return_dtype=pl.String)
    by_prog = pl.when(program.is_not_null()).then(
        pl.coalesce(by_prog, pl.format("rpc-{}", program.cast(pl.String)))
    )
    by_iface = interface.str.to_lowercase()
    by_iface = pl.coalesce(by_iface.replace_strict(ifaces, default=None, return_dtype=pl.String), by_iface)
    return pl.coalesce(by_prog, by_iface)


def _learned(cap: Capture, flows: pl.DataFrame) -> pl.DataFrame:
    """flow_id → (program, interface, source) of the latest fact for its endpoint learned in time."""
    m = cap.mappings.filter(pl.col("registered") & pl.col("port").is_not_null()).select(
        "server_ip",
        "transport",
        "port",
        pl.col("ts").alias("learned_ts"),
        "source",
        pl.col("rpc_program").alias("l_program"),
        pl.col("interface_uuid").alias("l_interface"),
        pl.col("flow_id").alias("fact_flow"),
    )
    if m.is_empty():
        return pl.DataFrame(
            schema={
                "flow_id": pl.UInt64,
                "learned_ts": pl.Datetime("ns", "UTC"),
                "source": pl.String,
                "l_program": pl.UInt32,
                "l_interface": pl.String,
                "learned_flow": pl.UInt64,
            }
        )
    keys = flows.select("flow_id", "server_ip", "transport", pl.col("server_port").alias("port"), "first_ts")
    return (
        keys.join(m, on=["server_ip", "transport", "port"], how="inner")
        # A flow's own bind_ack naming its own port is payload, not something learned before.
        .filter(
            (pl.col("learned_ts") <= pl.col("first_ts") + LEARN_SLACK)
            & (pl.col("fact_flow") != pl.col("flow_id"))
        )
        .sort("learned_ts")
        .group_by("flow_id", maintain_order=True)
        .last()
        .select(
            "flow_id",
            "learned_ts",
            "source",
            "l_program",
            "l_interface",
            pl.col("fact_flow").alias("learned_flow"),
        )
    )


def _payload(cap: Capture) -> pl.DataFrame:
    """flow_id → the program its own calls named, or the interface its own accepted bind named."""
    calls = (
        cap.rpc_calls.filter(pl.col("program").is_not_null())
        .group_by("flow_id")
        .agg(pl.col("program").sort_by("call_ts").first().alias("p_program"))
    )
    binds = (
        cap.dcerpc_calls.filter(
            pl.col("interface_uuid").is_not_null() & (pl.col("bind_result") == "acceptance")
        )
        .group_by("flow_id")
        .agg(pl.col("interface_uuid").sort_by("ts").first().alias("p_interface"))
    )
    return calls.join(binds, on="flow_id", how="full", coalesce=True)


def _port_rules(flows: pl.DataFrame, rules: list[Rule], label: str) -> pl.DataFrame:
    """The first rule (in order) whose ports, transport and address cover each flow's server side."""
    eligible = [i for i, r in enumerate(rules) if r.kind == KIND_SERVICE and r.ports]
    keys = flows.select("server_ip", "transport", pl.col("server_port").cast(pl.Int32).alias("port")).unique()
    keys = keys.filter(pl.col("port").is_not_null())
    hit = first_rule(keys, rules, eligible).filter(pl.col("prio").is_not_null())
    named = pl.DataFrame(
        {
            "prio": eligible,
            f"{label}_service": [rules[i].service for i in eligible],
            f"{label}_origin": [str(rules[i].origin) for i in eligible],
        },
        schema={"prio": pl.Int64, f"{label}_service": pl.String, f"{label}_origin": pl.String},
    )
    hit = hit.join(named, on="prio").drop("prio")
    return (
        flows.select("flow_id", "server_ip", "transport", pl.col("server_port").cast(pl.Int32).alias("port"))
        .join(hit, on=["server_ip", "transport", "port"], how="left", nulls_equal=True)
        .select("flow_id", f"{label}_service", f"{label}_origin")
    )


def _callbacks(flows: pl.DataFrame, sessions: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """flow_id → the session flow it calls back for: a TCP flow from a session's server to that
    session's client starting within the session or `window` after it."""
    if sessions.is_empty():
        return pl.DataFrame(schema={"flow_id": pl.UInt64, "session_flow": pl.UInt64})
    s = sessions.select(
        pl.col("flow_id").alias("session_flow"),
        pl.col("server_ip").alias("client_ip"),
        pl.col("client_ip").alias("server_ip"),
        pl.col("first_ts").alias("s_first"),
        pl.col("last_ts").alias("s_last"),
    )
    return (
        flows.filter(pl.col("transport") == "tcp")
        .select("flow_id", "client_ip", "server_ip", "first_ts")
        .join(s, on=["client_ip", "server_ip"], how="inner")
        .filter(
            (pl.col("flow_id") != pl.col("session_flow"))
            & (pl.col("first_ts") >= pl.col("s_first"))
            & (pl.col("first_ts") <= pl.col("s_last") + window)
        )
        .sort("s_first")
        .group_by("flow_id", maintain_order=True)
        .last()
        .select("flow_id", "session_flow")
    )


def _early(cap: Capture, flows: pl.DataFrame, rules: list[Rule], catalog: list[Rule]) -> pl.DataFrame:
    """The flows with what steps 1, 2, 4 and 5 say of them (learned, payload, config, catalog)."""
    progs = _program_services([*rules, *catalog])
    ifaces = _interface_services([*rules, *catalog])
    return (
        flows.join(_learned(cap, flows), on="flow_id", how="left")
        .join(_payload(cap), on="flow_id", how="left")
        .join(_port_rules(flows, rules, "config"), on="flow_id", how="left")
        .join(_port_rules(flows, catalog, "catalog"), on="flow_id", how="left")
        .with_columns(
            _named(pl.col("l_program"), pl.col("l_interface"), progs, ifaces).alias("learned_service"),
            _named(pl.col("p_program"), pl.col("p_interface"), progs, ifaces).alias("payload_service"),
        )
    )


def _sessions_of(early: pl.DataFrame) -> pl.DataFrame:
    # Sessions are flows the earlier steps put on the management service's ports.
    service = pl.coalesce("learned_service", "payload_service", "config_service", "catalog_service")
    return early.filter(service.is_in(SESSION_SERVICES)).select(
        "flow_id", "client_ip", "server_ip", "first_ts", "last_ts"
    )


def sessions(cap: Capture, policy: Policy, catalog: list[Rule], flows: pl.DataFrame) -> pl.DataFrame:
    """The management-service sessions among `flows` (flow_id, client_ip, server_ip, first_ts,
    last_ts): what callbacks come back to. Gathered over every batch of a capture's flows before
    any batch is attributed, since a callback may come in a batch after its session's."""
    return _sessions_of(_early(cap, flows, list(policy.rules), catalog))


def attribute(
    cap: Capture,
    policy: Policy,
    catalog: list[Rule],
    *,
    flows: pl.DataFrame | None = None,
    callback_window: timedelta = CALLBACK_WINDOW,
    session_flows: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The flows with `service`, `evidence` (one of EVIDENCE) and `evidence_detail` (the mapping
    source, program or interface, rule origin or session flow that decided it). `session_flows`:
    the sessions of every flow of the capture (`sessions`), when `flows` is one batch of them;
    by default those among `flows`."""
    flows = cap.flows if flows is None else flows
    out = _early(cap, flows, list(policy.rules), catalog)
    if session_flows is None:
        session_flows = _sessions_of(out)
    cb = _callbacks(
        out.filter(pl.col("learned_service").is_null() & pl.col("payload_service").is_null()),
        session_flows,
        callback_window,
    )
    out = out.join(cb, on="flow_id", how="left")

    def detail_of_mapping() -> pl.Expr:
        what = pl.coalesce(
            pl.format("program {}", pl.col("l_program").cast(pl.String)),
            pl.format("interface {}", pl.col("l_interface")),
        )
        return pl.format(
            "{} at {}: {}", pl.col("source"), pl.col("learned_ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"), what
        )

    def detail_of_payload() -> pl.Expr:
        return pl.coalesce(
            pl.format("ONC RPC call, program {}", pl.col("p_program").cast(pl.String)),
            pl.format("DCE/RPC bind, interface {}", pl.col("p_interface")),
        )

    learned, payload = pl.col("learned_service").is_not_null(), pl.col("payload_service").is_not_null()
    callback = pl.col("session_flow").is_not_null()
    config, catalog_hit = pl.col("config_service").is_not_null(), pl.col("catalog_service").is_not_null()
    out = out.with_columns(
        pl.when(learned)
        .then(pl.col("learned_service"))
        .when(payload)
        .then(pl.col("payload_service"))
        .when(callback)
        .then(pl.lit(CALLBACK_SERVICE))
        .when(config)
        .then(pl.col("config_service"))
        .when(catalog_hit)
        .then(pl.col("catalog_service"))
        .otherwise(None)
        .alias("service"),
        pl.when(learned)
        .then(pl.lit("learned"))
        .when(payload)
        .then(pl.lit("payload"))
        .when(callback)
        .then(pl.lit("callback"))
        .when(config)
        .then(pl.lit("config"))
        .when(catalog_hit)
        .then(pl.lit("catalog"))
        .otherwise(pl.lit("unknown"))
        .alias("evidence"),
        pl.when(learned)
        .then(detail_of_mapping())
        .when(payload)
        .then(detail_of_payload())
        .when(callback)
        .then(pl.format("callback for session flow {}", pl.col("session_flow").cast(pl.String)))
        .when(config)
        .then(pl.col("config_origin"))
        .when(catalog_hit)
        .then(pl.lit("catalog default port"))
        .otherwise(None)
        .alias("evidence_detail"),
        pl.when(pl.col("learned_service").is_not_null()).then(pl.col("source")).alias("learned_source"),
    )
    machines = (
        cap.rpc_calls.filter(pl.col("auth_machine").is_not_null())
        .group_by("flow_id")
        .agg(pl.col("auth_machine").unique().sort().str.join(";").alias("auth_machines"))
    )
    out = out.join(machines, on="flow_id", how="left")
    return out.select(
        *flows.columns,
        "service",
        "evidence",
        "evidence_detail",
        "learned_source",
        pl.when(pl.col("learned_service").is_not_null()).then(pl.col("learned_ts")).alias("learned_ts"),
        pl.when(pl.col("learned_service").is_not_null()).then(pl.col("learned_flow")).alias("learned_flow"),
        "session_flow",
        "auth_machines",
    )
