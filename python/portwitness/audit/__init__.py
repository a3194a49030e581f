"""The audit: every flow attributed to a service, then the frames that compare the traffic with the
configuration — `services`, `ranges`, `violations`, `blocked`, `uncovered` and the `mappings` views —
and a one-paragraph verdict. A verdict is either right or refused: inputs that are no capture, a
filter that leaves nothing to audit and a `--host` that names nothing raise `AuditError` with one
line (the command line's exit 1, or 2 for a value that is no address, network or name)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl

from portwitness import capture as capture_module
from portwitness.capture import Capture
from portwitness.capture import flow_batches as cap_batches
from portwitness.config import catalog_rules
from portwitness.config.model import KIND_SERVICE, Policy, Rule
from portwitness.errors import PortwitnessError
from portwitness.inputs import InputStatus, after_decode
from portwitness.rpcinfo import msrpc_endpoints, rpcinfo

from .attribute import CALLBACK_SERVICE, CALLBACK_WINDOW, attribute, sessions
from .blocked import Blocked
from .hosts import MATCH_SCHEMA, HostFilterError, host_filter, match_hosts, names_seen
from .ranges import ranges
from .reconnections import Reconnections
from .services import Services
from .store import AttributedFlows
from .uncovered import Uncovered
from .usage import Usage
from .violations import Violations

__all__ = ["Audit", "AuditError", "HostFilterError", "audit"]


class AuditError(PortwitnessError):
    """The audit cannot run: its filters leave no flow, or its window lies outside the captures."""


UNMATCHED_SCHEMA = {
    "service": pl.String,
    "host": pl.String,
    "transport": pl.String,
    "configured": pl.String,
    "origin": pl.String,
    "detail": pl.String,
}


@dataclass
class FlowStats:
    """What the verdict and the summaries say of the audited flows, gathered batch by batch."""

    flows: int = 0
    attributed: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    # First and last start of an attributed flow (the timeline's span).
    attributed_first: datetime | None = None
    attributed_last: datetime | None = None
    evidence: dict[str, int] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)

    def add(self, f: pl.DataFrame) -> None:
        if f.is_empty():
            return
        self.flows += f.height
        self.first_ts = _earlier(self.first_ts, f["first_ts"].min())
        self.last_ts = _later(self.last_ts, f["last_ts"].max())
        named = f.filter(pl.col("service").is_not_null())
        self.attributed += named.height
        if named.height:
            self.attributed_first = _earlier(self.attributed_first, named["first_ts"].min())
            self.attributed_last = _later(self.attributed_last, named["first_ts"].max())
            self.services.update(named["service"].unique().to_list())
        for k, n in f.group_by("evidence").len().iter_rows():
            self.evidence[k] = self.evidence.get(k, 0) + n


# Any: polars gives a column's min and max as any of its scalar types (here datetimes).
def _earlier(a: Any, b: Any) -> Any:
    return b if a is None or (b is not None and b < a) else a


def _later(a: Any, b: Any) -> Any:
    return b if a is None or (b is not None and b > a) else a


@dataclass
class Audit:
    attributed: AttributedFlows  # every flow with service, evidence, evidence_detail, by batch
    stats: FlowStats
    services: pl.DataFrame
    ranges: pl.DataFrame
    violations: pl.DataFrame
    blocked: pl.DataFrame
    rpcinfo: pl.DataFrame  # the ONC RPC view of the mappings
    msrpc: pl.DataFrame  # the MSRPC endpoints view
    policy: Policy
    uncovered: pl.DataFrame = field(default_factory=pl.DataFrame)
    captures: list[str] = field(default_factory=list)
    configured: bool = False  # False: no configuration given, the catalog stood in
    window: tuple[datetime | None, datetime | None] = (None, None)
    # Every input given: read (and whether cut short) or skipped, with why.
    inputs: tuple[InputStatus, ...] = ()
    cut_short: tuple[str, ...] = ()
    # How each host name of a configuration line was matched to an address, and the host-specific
    # lines whose host the captures never named.
    host_matches: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=MATCH_SCHEMA))
    unmatched_hosts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=UNMATCHED_SCHEMA))

    @property
    def flows(self) -> pl.DataFrame:
        """Every attributed flow in one frame (read back whole when the audit kept them on disk)."""
        return self.attributed.frame()

    def flow_batches(self) -> Iterator[pl.DataFrame]:
        """The attributed flows a batch at a time, in flow order."""
        return iter(self.attributed)

    def usage(self, by: str = "port") -> pl.DataFrame:
        """The `usage` view (`audit.usage`) of the attributed flows."""
        u = Usage(by)
        for batch in self.attributed:
            u.add(batch)
        return u.result()

    def close(self) -> None:
        """Removes the attributed flows kept on disk (also done when the audit is collected)."""
        self.attributed.close()

    @property
    def unused(self) -> pl.DataFrame:
        """Configured services and ranges the traffic never used, each with the line that
        configured it and why it counts as unused."""
        s = self.services.filter(~pl.col("used")).select(
            "service",
            pl.lit("service").alias("kind"),
            "ip",
            "configured",
            "origin",
            pl.format(
                "no traffic on {} {}{} ({} flows of {} elsewhere)",
                pl.col("transport"),
                pl.col("configured"),
                pl.when(pl.col("ip").is_not_null())
                .then(pl.format(" of {}", pl.col("ip")))
                .otherwise(pl.lit("")),
                pl.col("flows").cast(pl.String),
                pl.col("service"),
            ).alias("detail"),
        )
        r = self.ranges.filter(pl.col("ports_used_count") == 0).select(
            "service",
            "kind",
            pl.lit(None, pl.String).alias("ip"),
            pl.col("range").alias("configured"),
            "origin",
            pl.format("no {} used a port of {}", pl.col("kind"), pl.col("range")).alias("detail"),
        )
        return pl.concat([s, r])

    def findings(self, kind: str) -> int:
        return {
            "violations": self.violations.height,
            "blocked": self.blocked.height,
            "unused": self.unused.height if self.configured else 0,
            "uncovered": self.uncovered.height,
        }[kind]

    @property
    def skipped(self) -> list[InputStatus]:
        return [i for i in self.inputs if i.status == "skipped"]

    @property
    def verdict(self) -> str:
        return verdict(self)


def _fmt(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_window(
    span: tuple[datetime, datetime] | None, since: datetime | None, until: datetime | None
) -> None:
    """Refuses a window outside the captures with one line (an empty audit would read as a clean one)."""
    if span is None:
        return
    if since is not None and since > span[1]:
        raise AuditError(
            f"--since {_fmt(since)} is after the captures end ({_fmt(span[1])}): nothing to audit"
        )
    if until is not None and until < span[0]:
        raise AuditError(
            f"--until {_fmt(until)} is before the captures begin ({_fmt(span[0])}): nothing to audit"
        )
    if since is not None and until is not None and since > until:
        raise AuditError(f"--since {_fmt(since)} is after --until {_fmt(until)}: nothing to audit")


def _selected(
    flows: pl.DataFrame,
    since: datetime | None,
    until: datetime | None,
    hosts: Sequence[str],
    where: pl.Expr | None,
) -> pl.DataFrame:
    """The flows the filters select."""
    out = flows
    if since is not None:
        out = out.filter(pl.col("last_ts") >= since)
    if until is not None:
        out = out.filter(pl.col("first_ts") <= until)
    if hosts:
        out = out.filter(pl.col("client_ip").is_in(list(hosts)) | pl.col("server_ip").is_in(list(hosts)))
    if where is not None:
        out = out.filter(where)
    return out


def _scan(cap: Capture, hosts: bool) -> tuple[tuple[datetime, datetime] | None, list[str]]:
    """The captures' span, and (when `hosts`) every address of a flow: one pass over the flows."""
    first = last = None
    seen = pl.Series("ip", [], pl.String)
    for batch in cap_batches(cap):
        if batch.is_empty():
            continue
        first = _earlier(first, batch["first_ts"].min())
        last = _later(last, batch["last_ts"].max())
        if hosts:
            seen = pl.concat([seen, batch["client_ip"].alias("ip"), batch["server_ip"].alias("ip")]).unique()
    span = (first, last) if first is not None and last is not None else None
    return span, seen.to_list()


def audit(
    cap: Capture,
    policy: Policy | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    hosts: Sequence[str] = (),
    where: pl.Expr | None = None,
    filters_named: str | None = None,
    callback_window: timedelta = CALLBACK_WINDOW,
    spill_dir: str | Path | None = None,
) -> Audit:
    """Audits decoded captures against a configuration (None: the built-in catalog alone).

    `hosts`: IP addresses, networks in CIDR form, or host names the captures taught (DNS, NetBIOS,
    AUTH_UNIX machine names, TLS SNI); a value that is none of these raises HostFilterError.
    `where`: a row filter on the flows (ports, transports, a SQL predicate). Filters that leave
    no flow raise AuditError, naming them (`filters_named`, else the arguments given).
    A capture whose flows were kept on disk (`Capture.keep_flows_on_disk`) is audited a batch at
    a time, its attributed flows kept on disk under `spill_dir` (default: the temporary directory)
    until the audit is closed: memory holds the findings and one batch, not every flow."""
    catalog = catalog_rules()
    configured = policy is not None and bool(policy.rules)
    policy = policy if policy is not None else Policy()
    names = names_seen(cap)
    on_disk = bool(getattr(cap, "flows_on_disk", False))
    span, every = _scan(cap, bool(hosts))
    addresses: list[str] = []
    if hosts:
        addresses = host_filter(hosts, every, names)
        if not addresses:
            raise AuditError(f"no flow to or from {', '.join(hosts)}: nothing to audit")
    _check_window(span, since, until)
    rules, matches, unmatched = match_hosts(_distinct(policy.rules), names)
    bound = Policy(rules=rules, usessl=policy.usessl)

    def selected() -> Iterator[pl.DataFrame]:
        for batch in cap_batches(cap):
            yield _selected(batch, since, until, addresses, where)

    # A callback may come in a later batch than its session: with more than one batch, the
    # sessions of every batch are gathered first.
    session_flows = None
    if on_disk or cap.flows.height > capture_module.BATCH_ROWS:
        session_flows = pl.concat([sessions(cap, bound, catalog, f) for f in selected()])
    attributed = AttributedFlows(spill_dir, on_disk=on_disk)
    stats = FlowStats()
    recon = Reconnections()
    callback_parts = []
    for f in selected():
        a = attribute(
            cap, bound, catalog, flows=f, callback_window=callback_window, session_flows=session_flows
        )
        attributed.add(a)
        stats.add(a)
        recon.add_broken(a)
        callback_parts.append(a.filter(pl.col("service") == CALLBACK_SERVICE))
    if stats.flows == 0 and span is not None:
        attributed.close()
        raise AuditError(
            f"no flow matches the filters given ({filters_named or _named(since, until, hosts, where)}): "
            "nothing to audit"
        )
    callbacks = pl.concat(callback_parts)
    mappings = cap.mappings
    if since is not None:
        mappings = mappings.filter(pl.col("ts") >= since)
    if until is not None:
        mappings = mappings.filter(pl.col("ts") <= until)
    if addresses:
        mappings = mappings.filter(pl.col("server_ip").is_in(addresses))
    # Without a configuration, the catalog's services that the traffic shows stand in for one.
    if not configured:
        rules = [r for r in catalog if r.kind != KIND_SERVICE or r.service in stats.services]
    view = Policy(rules=rules, usessl=policy.usessl)
    known = {r.service for r in [*rules, *catalog]}
    found_services = Services(rules, mappings)
    found_violations = Violations(mappings, view, catalog)
    found_blocked = Blocked()
    found_uncovered = Uncovered(known)
    for a in attributed:
        found_services.add(a)
        found_violations.add(a)
        found_blocked.add(a)
        found_uncovered.add(a)
        recon.add_candidates(a)
    reconnected = recon.result()
    info = rpcinfo(cap)
    msrpc = msrpc_endpoints(cap)
    if addresses:
        info = info.filter(pl.col("server").is_in(addresses))
        msrpc = msrpc.filter(pl.col("server").is_in(addresses))
    inputs = tuple(cap.inputs)
    if not inputs and cap.captures.height:
        # A dataset or a merge of decodes done elsewhere: its captures table tells what was read.
        rows = cap.captures.select(pl.col("capture").alias("path"), "packets", "error").to_dicts()
        read_rows, bad_rows = after_decode(rows)
        inputs = (*read_rows, *bad_rows)
    read = [i for i in inputs if i.status == "read"]
    return Audit(
        attributed=attributed,
        stats=stats,
        services=found_services.result(),
        ranges=ranges(callbacks, reconnected, rules),
        violations=found_violations.result(callbacks, reconnected),
        blocked=found_blocked.result(),
        uncovered=found_uncovered.result(),
        rpcinfo=info,
        msrpc=msrpc,
        policy=policy,
        captures=[i.path for i in read],
        configured=configured,
        window=(since, until),
        inputs=inputs,
        cut_short=tuple(i.path for i in cap.cut_short()),
        host_matches=matches,
        unmatched_hosts=_unmatched(unmatched),
    )


def _named(
    since: datetime | None, until: datetime | None, hosts: Sequence[str], where: pl.Expr | None
) -> str:
    given = [("hosts", hosts), ("since", since), ("until", until), ("where", where)]
    return ", ".join(n for n, v in given if v is not None and not (isinstance(v, (tuple, list)) and not v))


def _unmatched(rules: list[Rule]) -> pl.DataFrame:
    rows = [
        {
            "service": r.service,
            "host": r.host,
            "transport": "+".join(r.transports),
            "configured": r.ports_text,
            "origin": str(r.origin),
            "detail": f"no DNS, NetBIOS, AUTH_UNIX or TLS name in the captures matches {r.host!r}: "
            "the line governs a host the audit cannot place (not reported unused)",
        }
        for r in rules
    ]
    return pl.DataFrame(rows, schema=UNMATCHED_SCHEMA)


def _distinct(rules: list[Rule]) -> list[Rule]:
    """The rules without repeats of the same service, ports, hosts and TLS setting (the management
    service's two scenarios share their ports; several files may say the same thing): the first
    one stays, so findings name the line that said it first."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for r in rules:
        key = (r.service, r.kind, r.ports, r.dynamic, r.host, r.ip, r.transports, r.tls)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def verdict(a: Audit) -> str:
    parts = []
    skipped = a.skipped
    if skipped:
        listed = "; ".join(f"{i.path} ({i.reason})" for i in skipped)
        parts.append(f"{_plural(len(skipped), 'input')} skipped, not audited: {listed}.")
    if a.cut_short:
        parts.append(
            f"{_plural(len(a.cut_short), 'capture')} cut short (read up to where {'it' if len(a.cut_short) == 1 else 'each'} ends): "
            f"{', '.join(a.cut_short)}."
        )
    st = a.stats
    if not st.flows or st.first_ts is None or st.last_ts is None:
        parts.append("No flows in the captures: nothing to audit.")
        return " ".join(parts)
    span = f"{_fmt(st.first_ts)} to {_fmt(st.last_ts)}"
    parts.append(f"{_plural(st.flows, 'flow')} from {span}; {st.attributed} attributed to a service.")
    if a.configured:
        used = a.services.filter(pl.col("used")).height
        parts.append(
            f"{used} of {a.services.height} configured service entries were used on their configured ports."
        )
    else:
        parts.append(
            "No configuration was given: the built-in catalog of Arcserve's defaults stood in for one."
        )
    v = a.violations
    if v.height:
        kinds = v.group_by("type").agg(pl.len(), pl.col("flows").sum()).sort("type")
        listed = ", ".join(f"{t} {n}" for t, n, _ in kinds.iter_rows())
        parts.append(f"{_plural(v.height, 'violation')} ({listed}).")
    else:
        parts.append("No violations.")
    b = a.blocked
    if b.height:
        where = ", ".join(
            f"{r['service']} {_servers(r)}:{r['port']} {r['outcome']}"
            for r in b.head(4).iter_rows(named=True)
        )
        more = f" and {b.height - 4} more" if b.height > 4 else ""
        parts.append(f"{_plural(int(b['attempts'].sum()), 'connection attempt')} blocked ({where}{more}).")
    else:
        parts.append("No blocked connection attempts.")
    u = a.uncovered
    if u.height:
        where = ", ".join(
            f"{r['server_ip']} {r['transport']}/{r['port']} ({r['payload']})"
            for r in u.head(4).iter_rows(named=True)
        )
        more = f" and {u.height - 4} more" if u.height > 4 else ""
        parts.append(
            f"{_plural(int(u['flows'].sum()), 'flow')} to {_plural(u.height, 'server port')} nothing "
            f"configured or known explains ({where}{more})."
        )
    if a.configured:
        unused = a.unused
        if unused.height:
            listed = ", ".join(f"{r['service']} {r['configured']}" for r in unused.iter_rows(named=True))
            parts.append(f"Configured but unused: {listed}.")
        else:
            parts.append("Every configured port and range was used.")
        m = a.unmatched_hosts
        if m.height:
            listed = ", ".join(
                f"{r['service']} on {r['host']} ({r['origin']})" for r in m.iter_rows(named=True)
            )
            parts.append(f"Host-specific lines whose host the captures never named: {listed}.")
    return " ".join(parts)


def _servers(row: dict[str, Any]) -> str:
    ips = row.get("server_ips") or []
    if row.get("servers", 0) == 1 and ips:
        return str(ips[0])
    return f"{row.get('servers', len(ips))} servers"
