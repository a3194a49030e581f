"""The effective port plan for a firewall: which ports must be open, where and in which direction,
including what dynamic services need but do not name: the portmapper on 111 for ONC RPC services, the
endpoint mapper on 135 and the Windows dynamic range for MSRPC services."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial

import polars as pl

from portwitness.config.catalog import WINDOWS_DYNAMIC, catalog_rules, lookup
from portwitness.config.model import (
    FAMILY_MSRPC,
    FAMILY_ONCRPC,
    KIND_CALLBACK,
    KIND_RECONNECTION,
    KIND_SERVICE,
    Policy,
    PortRange,
    Rule,
)

PORTMAPPER = "catirpc"
ENDPOINT_MAPPER = "epm"
WINDOWS_DYNAMIC_SERVICE = "windows-dynamic"
ANY_HOST = "*"

DIRECTION = {KIND_SERVICE: "inbound", KIND_CALLBACK: "outbound", KIND_RECONNECTION: "server-to-agent"}

SCHEMA = {
    "host": pl.Utf8,
    "ip": pl.Utf8,
    "service": pl.Utf8,
    "kind": pl.Utf8,
    "family": pl.Utf8,
    "transport": pl.Utf8,
    "ports": pl.Utf8,
    "direction": pl.Utf8,
    "needed_by": pl.Utf8,
    "tls": pl.Boolean,
    "scenario": pl.Utf8,
    "origin": pl.Utf8,
    "note": pl.Utf8,
}

Scope = tuple[str | None, str | None]  # (host, ip) a rule is bound to; (None, None): every host
GENERAL: Scope = (None, None)
Covered = Callable[[str, PortRange], bool]  # is (transport, ports) already open in the scope?


@dataclass(frozen=True)
class _Row:
    scope: Scope
    service: str
    kind: str
    family: str
    transport: str
    ranges: tuple[PortRange, ...]
    ports: str
    needed_by: str
    tls: bool | None
    note: str
    scenario: str
    origin: str

    def merge_key(self) -> tuple[object, ...]:
        return (
            self.scope,
            self.service,
            self.kind,
            self.family,
            self.transport,
            self.ports,
            self.needed_by,
            self.tls,
            self.note,
        )

    def covers(self, transport: str, want: PortRange) -> bool:
        return self.transport == transport and any(r.lo <= want.lo and want.hi <= r.hi for r in self.ranges)

    def record(self) -> dict[str, object]:
        host, ip = self.scope
        return {
            "host": host or ip or ANY_HOST,
            "ip": ip,
            "service": self.service,
            "kind": self.kind,
            "family": self.family,
            "transport": self.transport,
            "ports": self.ports,
            "direction": DIRECTION.get(self.kind, "inbound"),
            "needed_by": self.needed_by,
            "tls": self.tls,
            "scenario": self.scenario,
            "origin": self.origin,
            "note": self.note,
        }

    def order(self) -> tuple[object, ...]:
        host, ip = self.scope
        first = self.ranges[0].lo if self.ranges else 65536
        return (
            self.scope == GENERAL,
            (host or "").casefold(),
            ip or "",
            first,
            self.service,
            self.transport,
            self.kind,
        )


def port_plan(policy: Policy, *, include_catalog: bool = False) -> pl.DataFrame:
    """One row per (host or address, service, transport, ports): host "*" is every host, and `ip` is the
    address a rule is bound to (then also shown as host when the rule names no host). With
    `include_catalog`, the catalog's defaults are added for services the policy does not set for every
    host. Rows come host-specific first, then by port."""
    rules = list(policy.rules)
    if include_catalog:
        general = {r.service for r in rules if _scope(r) == GENERAL}
        rules += [r for r in catalog_rules() if r.service not in general]
    rows = [row for r in rules for row in _rule_rows(r, _portmapper_port(rules, _scope(r)))]
    rows += _implied_rows(rules, rows)
    rows = sorted(_merged(rows), key=_Row.order)
    return pl.DataFrame([r.record() for r in rows], schema=SCHEMA)


def _scope(rule: Rule) -> Scope:
    return (rule.host, rule.ip)


def _in_scope(rule_scope: Scope, scope: Scope) -> bool:
    """A rule for every host also serves a host-specific scope."""
    return rule_scope in (scope, GENERAL)


def _portmapper_port(rules: list[Rule], scope: Scope) -> str:
    """Where the scope's portmapper listens: its own catirpc line, else the general one, else 111."""
    for want in (scope, GENERAL):
        for r in rules:
            if r.service == PORTMAPPER and _scope(r) == want and r.ports:
                return r.ports_text
    return "111"


def _needs_portmapper(rule: Rule) -> bool:
    # ONC RPC clients ask the portmapper for the port even when it is pinned.
    return rule.family == FAMILY_ONCRPC and rule.service != PORTMAPPER


def _needs_endpoint_mapper(rule: Rule) -> bool:
    return rule.family == FAMILY_MSRPC and rule.dynamic and rule.service != ENDPOINT_MAPPER


def _note(rule: Rule, portmapper: str) -> str:
    notes = []
    if _needs_portmapper(rule):
        if rule.dynamic and not rule.ports:
            notes.append(f"assigned by the portmapper on {portmapper}")
        else:
            notes.append(f"registered with the portmapper on {portmapper}")
    if _needs_endpoint_mapper(rule):
        if rule.ports:
            notes.append("registered with the endpoint mapper on 135")
        else:
            notes.append(
                f"assigned by the endpoint mapper on 135 from the Windows dynamic range {WINDOWS_DYNAMIC}"
            )
    if rule.kind == KIND_RECONNECTION:
        notes.append("the backup server's side of a re-established agent connection")
    elif rule.kind == KIND_CALLBACK:
        notes.append("the server connects back to its clients on these ports")
    if rule.ambiguous and len(rule.ports) == 2:
        notes.append(f"ambiguous: may mean the range {rule.ports[0].lo}-{rule.ports[1].lo}")
    if not rule.ports and not rule.dynamic:
        notes.append("no ports given")
    return "; ".join(notes)


def _rule_rows(rule: Rule, portmapper: str) -> list[_Row]:
    note = _note(rule, portmapper)
    return [
        _Row(
            scope=_scope(rule),
            service=rule.service,
            kind=rule.kind,
            family=rule.family,
            transport=t,
            ranges=rule.ports,
            ports=rule.ports_text,
            needed_by=rule.needed_by,
            tls=rule.tls,
            note=note,
            scenario=rule.scenario,
            origin=str(rule.origin),
        )
        for t in rule.transports
    ]


def _implied_rows(rules: list[Rule], rows: list[_Row]) -> list[_Row]:
    """The portmapper, endpoint mapper and dynamic range that dynamic services depend on, per scope,
    unless the plan already opens them there (or for every host)."""
    plan = list(rows)
    scopes = sorted({_scope(r) for r in rules}, key=lambda s: (s != GENERAL, s[0] or "", s[1] or ""))
    for scope in scopes:
        mine = [r for r in rules if _scope(r) == scope]
        covered = partial(_covered, plan, scope)
        onc = _names(r for r in mine if _needs_portmapper(r))
        has_portmapper = any(r.service == PORTMAPPER and _in_scope(_scope(r), scope) for r in rules)
        if onc and not has_portmapper:
            plan += _catalog_rows(PORTMAPPER, scope, f"needed to find {onc}", covered)
        msrpc = [r for r in mine if _needs_endpoint_mapper(r)]
        if msrpc:
            note = f"needed to find {_names(msrpc)}"
            plan += _catalog_rows(ENDPOINT_MAPPER, scope, note, covered, transports=_transports(msrpc))
        unpinned = [r for r in msrpc if not r.ports]
        for t in _transports(unpinned):
            if not covered(t, WINDOWS_DYNAMIC):
                plan.append(
                    _Row(
                        scope=scope,
                        service=WINDOWS_DYNAMIC_SERVICE,
                        kind=KIND_SERVICE,
                        family=FAMILY_MSRPC,
                        transport=t,
                        ranges=(WINDOWS_DYNAMIC,),
                        ports=str(WINDOWS_DYNAMIC),
                        needed_by=", ".join(sorted({r.needed_by for r in unpinned if r.needed_by})),
                        tls=None,
                        note=f"the Windows dynamic port range, from which the endpoint mapper assigns "
                        f"{_names(unpinned)}",
                        scenario="",
                        origin="catalog",
                    )
                )
    return plan[len(rows) :]


def _covered(plan: list[_Row], scope: Scope, transport: str, want: PortRange) -> bool:
    return any(_in_scope(row.scope, scope) and row.covers(transport, want) for row in plan)


def _catalog_rows(
    service: str, scope: Scope, note: str, covered: Covered, transports: tuple[str, ...] | None = None
) -> list[_Row]:
    """The catalog's rows for `service` in `scope`, leaving out what is already open there."""
    entry = lookup(service)
    assert entry is not None, service
    out = []
    for rule in entry.rules():
        rule = replace(rule, host=scope[0], ip=scope[1])
        for row in _rule_rows(rule, "111"):
            if transports is not None and row.transport not in transports:
                continue
            if all(covered(row.transport, r) for r in row.ranges):
                continue
            out.append(replace(row, note=note))
    return out


def _names(rules: Iterable[Rule]) -> str:
    return ", ".join(sorted({r.service for r in rules}))


def _transports(rules: list[Rule]) -> tuple[str, ...]:
    seen = {t for r in rules for t in r.transports}
    return tuple(t for t in ("tcp", "udp") if t in seen)


def _merged(rows: list[_Row]) -> list[_Row]:
    """Rows equal but for scenario and origin (the management service's two scenarios share their
    SSL port by default) become one, listing both."""
    groups: dict[tuple[object, ...], list[_Row]] = {}
    for row in rows:
        groups.setdefault(row.merge_key(), []).append(row)
    out = []
    for same in groups.values():
        scenarios = ", ".join(sorted({r.scenario for r in same if r.scenario}))
        origins = "; ".join(dict.fromkeys(r.origin for r in same))
        out.append(replace(same[0], scenario=scenarios, origin=origins))
    return out
