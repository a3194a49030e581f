"""The `services` frame: for every configured service rule (service, host, ports), whether the
traffic used it, on which ports, how much, with whom, and when."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from portwitness.config.model import KIND_SERVICE, Rule

from .dynamic import learned_for, ranged_dynamic

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

SCHEMA: dict[str, PolarsDataType] = {
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


def _rule_table(rules: list[tuple[int, Rule]]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(rule, service, transport, ip) per rule and transport (ip null: every address), (rule, lo, hi)
    per port range, and (rule, server_ip) per address a general rule does not govern."""
    each: dict[str, list[Any]] = {"rule": [], "service": [], "transport": [], "ip": []}
    spans: dict[str, list[Any]] = {"rule": [], "lo": [], "hi": []}
    excluded: dict[str, list[Any]] = {"rule": [], "server_ip": []}
    for i, r in rules:
        for t in r.transports:
            each["rule"].append(i)
            each["service"].append(r.service)
            each["transport"].append(t)
            each["ip"].append(r.ip)
        for p in r.ports:
            spans["rule"].append(i)
            spans["lo"].append(p.lo)
            spans["hi"].append(p.hi)
        if r.ip is None:
            for ip in r.exclude_ips:
                excluded["rule"].append(i)
                excluded["server_ip"].append(ip)
    return (
        pl.DataFrame(
            each, schema={"rule": pl.Int64, "service": pl.String, "transport": pl.String, "ip": pl.String}
        ),
        pl.DataFrame(spans, schema={"rule": pl.Int64, "lo": pl.Int32, "hi": pl.Int32}),
        pl.DataFrame(excluded, schema={"rule": pl.Int64, "server_ip": pl.String}),
    )


def _governed(table: pl.DataFrame, each: pl.DataFrame, excluded: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    """The rows of `table` each rule governs, with its `rule`: joined on `on` (plus the address for
    rules bound to one), less the addresses a general rule excludes."""
    bound = each.filter(pl.col("ip").is_not_null()).rename({"ip": "server_ip"})
    general = each.filter(pl.col("ip").is_null()).drop("ip")
    bound = bound.select("rule", *on, "server_ip") if "service" in on else bound.drop("service")
    general = general.select("rule", *on) if "service" in on else general.drop("service")
    return pl.concat(
        [
            table.join(bound, on=[*on, "server_ip"]),
            table.join(general, on=on)
            .join(excluded, on=["rule", "server_ip"], how="anti")
            # on_host: an unknown address is not "not excluded" (the condition is null there).
            .filter(
                pl.col("server_ip").is_not_null() | ~pl.col("rule").is_in(excluded["rule"].unique().implode())
            ),
        ],
        how="diagonal_relaxed",
    )


def _in_spans(pairs: pl.DataFrame, spans: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """The (rule, row) pairs whose server port lies in one of the rule's ranges, once each."""
    port = pl.col("server_port").cast(pl.Int32)
    return (
        pairs.join(spans, on="rule")
        .filter((pl.col("lo") <= port) & (port <= pl.col("hi")))
        .unique(["rule", *key])
        .drop("lo", "hi")
    )


def _explode(name: str) -> pl.Expr:
    return pl.col(name).list.explode(keep_nulls=False, empty_as_null=False)


def _joined(name: str) -> pl.Expr:
    return pl.col(name).list.sort().list.join(";")


# Partial states past this many rows are merged (bounds memory by rules, not batches).
COMPACT_ROWS = 50_000


class Services:
    """One row per service rule. `used`: traffic on its configured ports on its hosts (whatever
    service attribution named), flows of its service where a mapper places it (no ports), or, for
    a dynamic range, a port a mapper handed out inside the range.

    Computed for every rule at once with joins (rule × flows of its service, transports and hosts),
    not one filter per rule: configurations have thousands of lines. Fed flows a batch at a time:
    each batch leaves a state per rule (counts, sets, first and last time) that the next merges."""

    def __init__(self, rules: list[Rule], mappings: pl.DataFrame | None = None) -> None:
        self.chosen = [(i, r) for i, r in enumerate(rules) if r.kind == KIND_SERVICE]
        self.each, self.spans, self.excluded = _rule_table(self.chosen)
        self.with_ports = [i for i, r in self.chosen if r.ports]
        self.mappings = mappings
        self.parts: list[pl.DataFrame] = []
        self.rows = 0

    def add(self, flows: pl.DataFrame) -> None:
        if flows.is_empty() or not self.chosen:
            return
        each, spans, excluded = self.each, self.spans, self.excluded
        f = flows.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
            "service",
            "transport",
            "server_ip",
            "server_port",
            "client_ip",
            (pl.col("bytes_c2s") + pl.col("bytes_s2c")).alias("bytes"),
            "tls_sni",
            "auth_machines",
            "first_ts",
            "last_ts",
        )
        pairs = _governed(f, each, excluded, ["service", "transport"])
        on_counts = (
            pl.concat(
                [
                    _in_spans(pairs.select("rule", "row", "server_port"), spans, ["row"]).select("rule"),
                    pairs.filter(~pl.col("rule").is_in(self.with_ports)).select("rule"),
                ]
            )
            .group_by("rule")
            .agg(pl.len().cast(pl.UInt64).alias("on"))
        )
        stats = pairs.group_by("rule").agg(
            pl.len().cast(pl.UInt64).alias("flows"),
            pl.col("server_port").drop_nulls().unique().alias("_ports"),
            pl.col("server_ip").drop_nulls().unique().alias("_servers"),
            pl.col("bytes").sum().cast(pl.UInt64).alias("bytes"),
            pl.col("client_ip").drop_nulls().unique().alias("_peers"),
            # What the clients called the server (TLS SNI) and themselves (AUTH_UNIX machine names).
            pl.col("tls_sni").drop_nulls().unique().alias("_sni"),
            pl.col("auth_machines").str.split(";").explode().drop_nulls().unique().alias("_machines"),
            pl.col("first_ts").min().alias("first_seen"),
            pl.col("last_ts").max().alias("last_seen"),
        )
        keys = (
            flows.filter(pl.col("outcome").is_in(CARRIED))
            .group_by("server_ip", "transport", "server_port")
            .len()
            .with_row_index("key")
        )
        carried = (
            _in_spans(_governed(keys, each, excluded, ["transport"]), spans, ["key"])
            .group_by("rule")
            .agg(pl.col("len").sum().cast(pl.UInt64).alias("carried"))
        )
        part = stats.join(on_counts, on="rule", how="full", coalesce=True).join(
            carried, on="rule", how="full", coalesce=True
        )
        self.parts.append(part)
        self.rows += part.height
        if self.rows > COMPACT_ROWS and len(self.parts) > 1:
            self.parts = [self._merged()]
            self.rows = self.parts[0].height

    def _merged(self) -> pl.DataFrame:
        df = pl.concat(self.parts, how="diagonal_relaxed")
        return df.group_by("rule").agg(
            pl.col("flows").sum(),
            *[_explode(c).unique().alias(c) for c in ("_ports", "_servers", "_peers", "_sni", "_machines")],
            pl.col("bytes").sum(),
            pl.col("first_seen").min(),
            pl.col("last_seen").max(),
            pl.col("on").sum(),
            pl.col("carried").sum(),
        )

    def result(self) -> pl.DataFrame:
        by_rule: dict[int, dict[str, Any]] = {}
        if self.parts:
            merged = self._merged().select(
                "rule",
                "flows",
                "on",
                "carried",
                pl.col("_ports").list.sort().cast(pl.List(pl.String)).list.join(";").alias("ports_seen"),
                _joined("_servers").alias("servers"),
                "bytes",
                pl.col("_peers").list.len().alias("peers"),
                _joined("_sni").alias("sni"),
                _joined("_machines").alias("machines"),
                "first_seen",
                "last_seen",
            )
            by_rule = {row["rule"]: row for row in merged.iter_rows(named=True)}
        mappings = self.mappings
        rows = []
        for i, r in self.chosen:
            got = by_rule.get(i) or {}
            n_on, n_carried = got.get("on") or 0, got.get("carried") or 0
            flows = got.get("flows") or 0
            inside = 0
            if mappings is not None and ranged_dynamic(r):
                inside = learned_for(r, mappings).filter(_port_in(r)).height
            if r.dynamic and r.ports:
                # A dynamic range is used by what the mappers hand out in it (and the flows there).
                used = inside > 0 or n_on > 0
            else:
                used = n_on > 0 or n_carried > 0
            rows.append(
                {
                    "service": r.service,
                    "host": r.host,
                    "ip": r.ip,
                    "transport": "+".join(r.transports),
                    "configured": r.ports_text,
                    "dynamic": r.dynamic,
                    "used": used,
                    "flows": flows,
                    "flows_on_configured": n_on,
                    "port_flows": n_carried,
                    "learned_inside": inside,
                    "ports_seen": (got.get("ports_seen") or "") if flows else "",
                    "servers": (got.get("servers") or "") if flows else "",
                    "bytes": int(got.get("bytes") or 0),
                    "peers": (got.get("peers") or 0) if flows else 0,
                    "sni": (got.get("sni") or "") if flows else "",
                    "machines": (got.get("machines") or "") if flows else "",
                    "first_seen": got.get("first_seen"),
                    "last_seen": got.get("last_seen"),
                    "origin": str(r.origin),
                }
            )
        return pl.DataFrame(rows, schema=SCHEMA)


def services(flows: pl.DataFrame, rules: list[Rule], mappings: pl.DataFrame | None = None) -> pl.DataFrame:
    s = Services(rules, mappings)
    s.add(flows)
    return s.result()
