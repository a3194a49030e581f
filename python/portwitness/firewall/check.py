"""`firewall check`: every connection attempt of the captures evaluated against a real ruleset,
joined with what the wire says happened to it, and the configuration's ports probed.

An attempt's finding: `blocked-needed` (it got through on the wire, the ruleset would drop it:
the ruleset is stricter than the traffic), `explained` (refused or unanswered on the wire, and the
ruleset drops or rejects it), `unexplained` (refused or unanswered, yet the ruleset allows it:
no listener, or another firewall on the way), `allowed`, or `not evaluated`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from portwitness.firewall.evaluate import ALLOWED, DROPPED, REJECTED, UNDECIDED, Decision, evaluate
from portwitness.firewall.plan import Allow
from portwitness.firewall.ruleset import Packet, Port, Ruleset, RulesetError, Unknown

THROUGH = ("completed", "reset", "open", "midstream")
STOPPED = ("refused", "unanswered")
# Addresses a probe of a configured port uses when the captures show none (RFC 5737).
PROBE_SERVER, PROBE_CLIENT, PROBE_SPORT = "192.0.2.10", "192.0.2.1", 50000


@dataclass
class CheckResult:
    ruleset: Ruleset
    attempts: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    closed: list[dict[str, Any]] = field(default_factory=list)
    not_evaluated: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # attempts not through the host (--host)

    def count(self, finding: str) -> int:
        if finding == "closed-configured":
            return len(self.closed)
        if finding == "not-evaluated":
            return sum(1 for a in self.attempts if a["verdict"] == UNDECIDED)
        return sum(1 for a in self.attempts if a["finding"] == finding)

    def summary(self) -> dict[str, int]:
        verdicts = {
            v: sum(1 for a in self.attempts if a["verdict"] == v)
            for v in (ALLOWED, DROPPED, REJECTED, UNDECIDED)
        }
        return {
            "attempts": len(self.attempts),
            **{k.replace(" ", "_"): n for k, n in verdicts.items()},
            "blocked_needed": self.count("blocked-needed"),
            "explained": self.count("explained"),
            "unexplained": self.count("unexplained"),
            "unmatched_rules": len(self.unmatched),
            "closed_configured": len(self.closed),
            "constructs_not_evaluated": len(self.not_evaluated),
            "not_through_host": self.skipped,
        }


def _finding(outcome: str, verdict: str) -> str:
    if verdict == UNDECIDED:
        return "not evaluated"
    blocked = verdict in (DROPPED, REJECTED)
    if outcome in STOPPED:
        return "explained" if blocked else "unexplained"
    return "blocked-needed" if blocked else "allowed"


def packet(flow: dict[str, Any], iif: str | None, oif: str | None = None) -> Packet:
    try:
        return Packet(
            transport=flow["transport"],
            src=ipaddress.ip_address(flow["client_ip"]),
            sport=int(flow["client_port"]),
            dst=ipaddress.ip_address(flow["server_ip"]),
            dport=int(flow["server_port"]),
            iif=iif,
            oif=oif,
        )
    except (ValueError, TypeError) as e:
        raise RulesetError("capture", 0, f"flow {flow.get('flow_id')}: {e}") from None


def check(
    ruleset: Ruleset,
    flows: list[dict[str, Any]],
    configured: list[Allow] | None = None,
    *,
    host: str | None = None,
    iif: str | None = None,
) -> CheckResult:
    """`flows`: audited flows as dicts. `host`: the address of the host that runs the ruleset:
    attempts to it go through its input, attempts from it through its output, others are not
    evaluated; without it every attempt is evaluated as arriving at its server. `configured`:
    the configuration's allow rules whose ports are probed."""
    res = CheckResult(ruleset)
    hits: set[int] = set()
    seen: dict[tuple, Decision] = {}
    by_sport = _looks_at_client_ports(ruleset)
    for f in flows:
        hook = "input"
        if host is not None:
            if f["server_ip"] == host:
                hook = "input"
            elif f["client_ip"] == host:
                hook = "output"
            else:
                res.skipped += 1
                continue
        # Attempts that differ only in the client's ephemeral port get one evaluation, unless a
        # rule looks at that port.
        key = (
            hook,
            f["transport"],
            f["client_ip"],
            f["client_port"] if by_sport else 0,
            f["server_ip"],
            f["server_port"],
        )
        d = seen.get(key)
        if d is None:
            p = packet(f, iif if hook == "input" else None, iif if hook == "output" else None)
            d = seen[key] = evaluate(ruleset, p, hook)
            hits.update(id(r) for r in d.hits)
        res.attempts.append(
            {
                "flow_id": f.get("flow_id"),
                "first_ts": f.get("first_ts"),
                "transport": f["transport"],
                "client_ip": f["client_ip"],
                "client_port": f["client_port"],
                "server_ip": f["server_ip"],
                "server_port": f["server_port"],
                "service": f.get("service"),
                "hook": hook,
                "outcome": f["outcome"],
                "verdict": d.verdict,
                "by": d.by,
                "finding": _finding(f["outcome"], d.verdict),
            }
        )
    for r in ruleset.all_rules():
        if id(r) in hits or getattr(r, "enabled", True) is False or getattr(r, "later_packets_only", bool)():
            continue
        res.unmatched.append({"location": r.location, "chain": r.chain, "rule": r.text, "comment": r.comment})
    res.not_evaluated = [
        {"location": n.location, "rule": n.text, "reason": n.reason} for n in ruleset.not_evaluated
    ]
    if configured:
        res.closed = _merged(_closed(ruleset, configured, flows, iif, host))
    return res


def _looks_at_client_ports(ruleset: Ruleset) -> bool:
    """Whether any rule can tell attempts apart by the client's port (a source-port match; on
    Windows a remote port, or a local port for attempts a host makes)."""
    if ruleset.windows:
        return any(r.remote_ports is not None or r.direction == "out" for r in ruleset.windows)
    return any(
        isinstance(c, Port) and c.field in ("sport", "either") or isinstance(c, Unknown)
        for r in ruleset.all_rules()
        for c in r.conds
    )


def _merged(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Probes that found the same ports closed by the same rule, one row listing their servers."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r["service"], r["transport"], r["ports"], r["verdict"], r["by"], r["why"])
        g = groups.setdefault(key, {**r, "server_ip": [], "probed_from": []})
        for k in ("server_ip", "probed_from"):
            if r[k] not in g[k]:
                g[k].append(r[k])
    return [
        {**g, "server_ip": ";".join(g["server_ip"]), "probed_from": ";".join(g["probed_from"])}
        for g in groups.values()
    ]


def _closed(
    ruleset: Ruleset, allows: list[Allow], flows: list[dict[str, Any]], iif: str | None, host: str | None
) -> list[dict[str, Any]]:
    """The configured ports the ruleset does not let a new connection reach: each configured range
    probed at every port where some rule's port match begins or ends (the verdict cannot change
    in between), from a client the captures show talking to that server."""
    servers = sorted({f["server_ip"] for f in flows})
    clients: dict[str, str] = {}
    for f in sorted(flows, key=lambda f: f["client_ip"]):
        clients.setdefault(f["server_ip"], f["client_ip"])
    edges = sorted({p for r in ruleset.all_rules() for p in r.ports()})
    out = []
    for a in allows:
        if not a.active:
            continue
        targets = a.dsts or tuple(servers) or (PROBE_SERVER,)
        if host is not None:
            # The ruleset is one host's: only its own ports can be closed by it.
            targets = (host,) if not a.dsts or host in a.dsts else ()
        for dst in targets:
            src = clients.get(dst, PROBE_CLIENT)
            try:
                if ipaddress.ip_address(src).version != ipaddress.ip_address(dst).version:
                    src = PROBE_CLIENT if ":" not in dst else "2001:db8::1"
            except ValueError:
                continue
            for r in a.ports:
                points = [r.lo] + [p for p in edges if r.lo < p <= r.hi]
                run: tuple[int, Decision] | None = None
                for lo in points:
                    flow = {
                        "transport": a.transport,
                        "client_ip": src,
                        "client_port": PROBE_SPORT,
                        "server_ip": dst,
                        "server_port": lo,
                    }
                    d = evaluate(ruleset, packet(flow, iif), "input")
                    if d.verdict == ALLOWED:
                        if run is not None:
                            out.append(_closed_row(a, dst, src, run[0], lo - 1, run[1]))
                            run = None
                        continue
                    if run is not None and (run[1].verdict, run[1].by) != (d.verdict, d.by):
                        out.append(_closed_row(a, dst, src, run[0], lo - 1, run[1]))
                        run = None
                    if run is None:
                        run = (lo, d)
                if run is not None:
                    out.append(_closed_row(a, dst, src, run[0], r.hi, run[1]))
    return out


def _closed_row(a: Allow, dst: str, src: str, lo: int, hi: int, d: Decision) -> dict[str, Any]:
    return {
        "service": a.service,
        "transport": a.transport,
        "ports": str(lo) if lo == hi else f"{lo}-{hi}",
        "server_ip": dst,
        "probed_from": src,
        "verdict": d.verdict,
        "by": d.by,
        "why": a.justification,
    }
