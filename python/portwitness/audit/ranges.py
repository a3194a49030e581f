"""The `ranges` frame: each configured callback or reconnection range, the ports its traffic used
inside it, its utilisation, and the ports the same traffic used outside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from portwitness.config.model import KIND_CALLBACK, KIND_RECONNECTION, Rule

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

SCHEMA: dict[str, PolarsDataType] = {
    "service": pl.String,
    "kind": pl.String,
    "scenario": pl.String,
    "range": pl.String,
    "size": pl.UInt32,
    "ports_used": pl.String,
    "ports_used_count": pl.UInt32,
    "utilisation_pct": pl.Float64,
    "flows": pl.UInt32,
    "outside_ports": pl.String,
    "ambiguous": pl.Boolean,
    "origin": pl.String,
}


def range_rules(rules: list[Rule]) -> list[Rule]:
    return [r for r in rules if r.kind in (KIND_CALLBACK, KIND_RECONNECTION) and r.ports]


def range_port(kind: str) -> pl.Expr:
    """The port a range constrains: a callback's destination, a reconnection's server-side port."""
    if kind == KIND_RECONNECTION:
        return pl.col("range_port")
    return pl.col("server_port")


def in_ranges(ports: pl.Series, ranges: list[tuple[int, int]]) -> pl.Series:
    """Whether each port lies in one of `ranges`: the ranges merged into disjoint sorted spans and
    each port looked up by binary search (not one condition per range: policies list thousands)."""
    spans: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if spans and lo <= spans[-1][1] + 1:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    if not spans or ports.is_empty():
        return pl.Series(ports.name, [False] * ports.len(), dtype=pl.Boolean)
    los = pl.Series([s[0] for s in spans], dtype=pl.Int64)
    his = pl.Series([s[1] for s in spans], dtype=pl.Int64)
    values = ports.cast(pl.Int64)
    at = los.search_sorted(values.fill_null(0), side="right").cast(pl.Int64) - 1
    frame = pl.DataFrame({"v": values, "at": at})
    hi_at = his.gather(frame["at"].clip(0, None))
    inside: pl.Series = ((frame["at"] >= 0) & (values <= hi_at)).fill_null(False)
    return inside.alias(ports.name)


def outside(traffic: pl.DataFrame, rules: list[Rule], kind: str) -> pl.DataFrame:
    """The traffic of that kind whose constrained port lies in none of the rules' ranges."""
    ranges = [(p.lo, p.hi) for r in rules for p in r.ports]
    if not ranges:
        return traffic
    ports = traffic.select(range_port(kind)).to_series()
    # A null port lies in no range, but a null condition drops the row: keep the old behaviour.
    keep = ~in_ranges(ports, ranges) & ports.is_not_null()
    return traffic.filter(keep)


def ranges(callbacks: pl.DataFrame, reconnections: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    rows = []
    rr = range_rules(rules)
    # The ports outside every range of one kind and service: computed once per pair, not per rule.
    outside_of: dict[tuple[str, str], list[int]] = {}
    for r in rr:
        traffic = callbacks if r.kind == KIND_CALLBACK else reconnections
        key = (r.kind, r.service)
        if key not in outside_of:
            same_kind = [x for x in rr if x.kind == r.kind and x.service == r.service]
            outside_of[key] = sorted(
                set(outside(traffic, same_kind, r.kind).select(range_port(r.kind)).to_series().to_list())
            )
        out_ports = outside_of[key]
        port = range_port(r.kind).cast(pl.Int32)
        for p in r.ports:
            inside = traffic.filter(port.is_between(p.lo, p.hi))
            used = sorted(set(inside.select(range_port(r.kind)).to_series().to_list()))
            rows.append(
                {
                    "service": r.service,
                    "kind": r.kind,
                    "scenario": r.scenario,
                    "range": str(p),
                    "size": p.size,
                    "ports_used": ";".join(map(str, used)),
                    "ports_used_count": len(used),
                    "utilisation_pct": round(100.0 * len(used) / p.size, 2),
                    "flows": inside.height,
                    "outside_ports": ";".join(map(str, out_ports)),
                    "ambiguous": r.ambiguous,
                    "origin": str(r.origin),
                }
            )
    return pl.DataFrame(rows, schema=SCHEMA)
