"""The allow-list a configuration needs, as inbound rules per host: every row of the effective port
plan (`portwitness config check`) that names ports becomes a rule on the host that accepts those
connections — services on their server, callback ranges on the clients called back, the
reconnection range on the backup server — with the configuration line that asks for it.

Captures change it in one of two ways. Widened (the default when captures are given): a port the
traffic used for a known service, learned from a portmapper or endpoint mapper or told by the
flow's own payload, that no configured rule opens is added, saying so. Observed only: each
configured rule is kept only if traffic used it, narrowed to the addresses that used it, and a
dynamic range (the Windows dynamic RPC range) to the ports handed out in it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from portwitness.config.catalog import lookup
from portwitness.config.model import KIND_CALLBACK, Policy, PortRange

if TYPE_CHECKING:
    import polars as pl

# Evidence of a flow's service that names its port without the configuration (audit/attribute.py).
LEARNED_EVIDENCE = ("learned", "payload")
WINDOWS_DYNAMIC_SERVICE = "windows-dynamic"


@dataclass(frozen=True)
class Allow:
    """One inbound allow rule: connections to `ports` over `transport`, on the addresses `dsts` of
    the host (empty: every address of whichever host loads the rules), from `peers` (empty: any)."""

    service: str
    transport: str
    ports: tuple[PortRange, ...]
    host: str = "*"  # the host the configuration binds the rule to ("*": every host)
    dsts: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    kind: str = "service"
    role: str = "backup-server"
    why: tuple[str, ...] = ()  # the configuration lines or flows that justify it
    executable: str = ""  # the program the catalog names for the service (Windows)
    # False: bound by the configuration to a host known only by name; written out commented.
    active: bool = True
    # A range a portmapper or endpoint mapper hands ports out of: --observed-only narrows it.
    dynamic: bool = False

    @property
    def ports_text(self) -> str:
        return ",".join(str(r) for r in self.ports)

    @property
    def justification(self) -> str:
        return "; ".join(self.why)


@dataclass
class AllowList:
    allows: list[Allow] = field(default_factory=list)
    # Plan rows that name no port (a service the portmapper places anywhere): nothing to open.
    unopened: list[str] = field(default_factory=list)
    # Observed only: configured rules no traffic used, left out.
    left_out: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # what the rules were made from


def role(service: str, kind: str) -> str:
    """The Arcserve role a rule belongs to, as firewalld services group them."""
    if kind == KIND_CALLBACK:
        return "callback"
    if service.startswith("mgmt"):
        return "management"
    entry = lookup(service)
    if entry is not None and entry.needed_by.startswith("backup servers"):
        return "agent"
    if entry is None and service not in (WINDOWS_DYNAMIC_SERVICE,):
        return "other"
    return "backup-server"


def _ranges(text: str) -> tuple[PortRange, ...]:
    out = []
    for part in (text or "").split(";"):
        part = part.strip()
        if not part or part == "dynamic":
            continue
        lo, _, hi = part.partition("-")
        out.append(PortRange(int(lo), int(hi or lo)))
    return tuple(out)


def allow_list(
    policy: Policy | None,
    flows: pl.DataFrame | None = None,
    *,
    observed_only: bool = False,
    target: str | None = None,
) -> AllowList:
    """`flows`: the audited flows (with `service` and `evidence`), or None without captures.
    `target`: a host name or address; only the rules for it (and for every host) are kept, and
    rules bound to it by name become active."""
    from portwitness.config import port_plan

    configured = policy is not None and bool(policy.rules)
    plan = port_plan(
        policy if policy is not None and configured else Policy(), include_catalog=not configured
    )
    out = AllowList(sources=list(policy.files) if configured and policy is not None else ["catalog"])
    unopened: list[tuple[str, str]] = []
    handed_out = {
        (r.service, r.ports_text)
        for r in (policy.rules if configured and policy else [])
        if r.dynamic and r.ports
    }
    for row in plan.iter_rows(named=True):
        ranges = _ranges(row["ports"])
        host, ip = row["host"], row["ip"]
        if (
            target is not None
            and host != "*"
            and target.casefold() not in (host.casefold(), (ip or "").casefold())
        ):
            continue
        origin = row["origin"] or "catalog"
        note = f" ({row['note']})" if row["note"] else ""
        needed = f", needed by {row['needed_by']}" if row["needed_by"] else ""
        why = f"{origin}: {row['service']} {row['kind']}{needed}{note}"
        if not ranges:
            unopened.append(
                (row["service"], f"{row['service']} {row['transport']} on {host}: {why}; no port to open")
            )
            continue
        entry = lookup(row["service"])
        out.allows.append(
            Allow(
                service=row["service"],
                transport=row["transport"],
                ports=ranges,
                host=host,
                dsts=(ip,) if ip else (),
                kind=row["kind"],
                role=role(row["service"], row["kind"]),
                why=(why,),
                executable=entry.executable
                if entry is not None and entry.executable.endswith(".exe")
                else "",
                active=host == "*" or ip is not None or target is not None,
                dynamic=row["service"] == WINDOWS_DYNAMIC_SERVICE
                or (row["service"], row["ports"]) in handed_out,
            )
        )
    if flows is not None:
        if observed_only:
            out.allows, out.left_out = _observed(out.allows, flows)
        out.allows += _learned(out.allows, flows, target, narrow=observed_only)
    learned: dict[str, list[str]] = {}
    for a in out.allows:
        if a.why and a.why[0].startswith("learned:"):
            learned.setdefault(a.service, []).append(f"{a.ports_text} on {a.host}")
    out.unopened = [
        text
        + (
            f" from the configuration; the captures' {', '.join(learned[svc])} opened below"
            if svc in learned
            else ""
        )
        for svc, text in unopened
    ]
    return out


def _flow_text(f: dict) -> str:
    ts = f["first_ts"]
    when = f"{ts:%Y-%m-%dT%H:%M:%S}Z" if ts is not None else "?"
    return (
        f"flow {f['transport']} {f['client_ip']}:{f['client_port']} -> {f['server_ip']}:{f['server_port']} "
        f"at {when} ({f['outcome']})"
    )


def _serves(a: Allow, f: dict) -> bool:
    """Whether allow rule `a` is the one a flow needs: same transport, its server address among
    the rule's and its server port in the rule's ports. A callback's server is the client called
    back; a reconnection range is the backup server's listening port when the agent connects."""
    if f["transport"] != a.transport or not any(f["server_port"] in r for r in a.ports):
        return False
    return not a.dsts or f["server_ip"] in a.dsts


def _observed(allows: list[Allow], flows: pl.DataFrame) -> tuple[list[Allow], list[str]]:
    rows = flows.sort("first_ts").to_dicts()
    kept, left = [], []
    for a in allows:
        used = [f for f in rows if _serves(a, f)]
        if a.dynamic and a.service != WINDOWS_DYNAMIC_SERVICE:
            # A range one service's ports are handed out of: the ports handed to that service.
            used = [f for f in used if f["service"] == a.service]
        if not used:
            left.append(
                f"{a.service} {a.transport} {a.ports_text} on {a.host}: {a.justification}; no traffic used it"
            )
            continue
        dsts = tuple(sorted({f["server_ip"] for f in used}, key=_addr_key))
        peers = tuple(sorted({f["client_ip"] for f in used}, key=_addr_key))
        ports = a.ports
        if a.dynamic:
            ports = tuple(PortRange(p, p) for p in sorted({f["server_port"] for f in used}))
        seen = f"used by {len(used)} flow{'s' if len(used) != 1 else ''}, first {_flow_text(used[0])}"
        kept.append(replace(a, dsts=dsts, peers=peers, ports=ports, why=(*a.why, seen), active=True))
    return kept, left


def _learned(allows: list[Allow], flows: pl.DataFrame, target: str | None, narrow: bool) -> list[Allow]:
    """A port a known service used (learned or told by its payload) that no rule opens: added,
    for the server that used it, saying so."""
    import polars as pl

    cand = flows.filter(
        pl.col("evidence").is_in(list(LEARNED_EVIDENCE)) & pl.col("service").is_not_null()
    ).sort("first_ts")
    added: dict[tuple[str, str, int], list[dict]] = {}
    for f in cand.to_dicts():
        if target is not None and f["server_ip"] != target:
            continue
        if any(_serves(a, f) for a in allows if a.active):
            continue
        added.setdefault((f["server_ip"], f["transport"], f["server_port"]), []).append(f)
    out = []
    for (server, transport, port), used in added.items():
        first = used[0]
        entry = lookup(first["service"])
        how = (
            "learned from a mapper's answer" if first["evidence"] == "learned" else "told by its own payload"
        )
        note = (
            f"learned: {first['service']} on {port} ({how}), "
            f"used by {len(used)} flow{'s' if len(used) != 1 else ''}, first {_flow_text(first)}; "
            "not in the configuration"
        )
        out.append(
            Allow(
                service=first["service"],
                transport=transport,
                ports=(PortRange(port, port),),
                host=server,
                dsts=(server,),
                peers=tuple(sorted({f["client_ip"] for f in used}, key=_addr_key)) if narrow else (),
                role=role(first["service"], "service"),
                why=(note,),
                executable=entry.executable
                if entry is not None and entry.executable.endswith(".exe")
                else "",
            )
        )
    return sorted(out, key=lambda a: (_addr_key(a.host), a.transport, a.ports[0].lo))


def _addr_key(a: str) -> tuple:
    try:
        ip = ipaddress.ip_address(a)
        return (ip.version, int(ip), a)
    except ValueError:
        return (9, 0, a)
