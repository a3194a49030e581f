"""Which rule covers each flow's server port, as interval joins rather than one condition per rule.

Rules are in priority order (the first that covers a flow wins). Each rule's port ranges are painted
into disjoint segments that keep, at every port, the best (lowest) priority covering it; a flow's port
then finds its segment with one as-of join. Rules fall in three groups that are painted apart: bound
to one address (joined by address and transport), general rules that some addresses are excluded from
(one painting per distinct exclusion set, then the excluded addresses dropped) and general rules for
every address (joined by transport). A flow's rule is the best priority across the groups: the same
answer as testing the rules one by one, at a cost that grows with rules plus flows, not their product."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

import polars as pl

from portwitness.config.model import Rule

_SEGMENT = {"transport": pl.String, "lo": pl.Int32, "hi": pl.Int32, "prio": pl.Int64}


def paint(ranges: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Disjoint (lo, hi, prio) segments giving, at every port some (lo, hi, prio) covers, the lowest
    prio that covers it. A sweep over the range ends with a heap of the ranges open at each point."""
    items = sorted(ranges)
    out: list[tuple[int, int, int]] = []
    heap: list[tuple[int, int]] = []  # (prio, hi) of the ranges open at the sweep position
    i, n = 0, len(items)
    pos = items[0][0] if items else 0
    while i < n or heap:
        if not heap:
            pos = max(pos, items[i][0])
        while i < n and items[i][0] <= pos:
            heapq.heappush(heap, (items[i][2], items[i][1]))
            i += 1
        while heap and heap[0][1] < pos:
            heapq.heappop(heap)
        if not heap:
            continue
        prio, hi = heap[0]
        # The best range holds until it ends or a new range starts (which may be better).
        end = min(hi, items[i][0] - 1) if i < n else hi
        if out and out[-1][2] == prio and out[-1][1] == pos - 1:
            out[-1] = (out[-1][0], end, prio)
        else:
            out.append((pos, end, prio))
        pos = end + 1
    return out


def _segments(
    rows: dict[tuple[str, ...], list[tuple[int, int, int]]], key_names: Sequence[str]
) -> pl.DataFrame:
    schema = {**{k: pl.String for k in key_names}, **_SEGMENT}
    data: dict[str, list[object]] = {k: [] for k in schema}
    for key, ranges in rows.items():
        for lo, hi, prio in paint(ranges):
            for name, value in zip(key_names, key, strict=True):
                data[name].append(value)
            data["lo"].append(lo)
            data["hi"].append(hi)
            data["prio"].append(prio)
    return pl.DataFrame(data, schema=schema)


def _best(keys: pl.DataFrame, seg: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """keys (k, server_ip, transport, port) → the prio of the segment holding the port, or null."""
    if seg.is_empty():
        return keys.select("k", "server_ip", pl.lit(None, pl.Int64).alias("prio"))
    s = seg.rename({"ip": "server_ip"} if "ip" in seg.columns else {}).sort("lo")
    hit = keys.join_asof(s, left_on="port", right_on="lo", by=by, strategy="backward", check_sortedness=False)
    return hit.select(
        "k", "server_ip", pl.when(pl.col("port") <= pl.col("hi")).then(pl.col("prio")).alias("prio")
    )


def first_rule(keys: pl.DataFrame, rules: Sequence[Rule], eligible: Iterable[int]) -> pl.DataFrame:
    """For (server_ip, transport, port: Int32) keys, in their order, `prio`: the index in `rules` of the
    first eligible rule whose ports, transports and address cover the key (null: none)."""
    keys = keys.with_row_index("k").sort("port")
    bound: dict[tuple[str, ...], list[tuple[int, int, int]]] = {}
    general: dict[tuple[str, ...], list[tuple[int, int, int]]] = {}
    excluding: dict[tuple[str, ...], dict[tuple[str, ...], list[tuple[int, int, int]]]] = {}
    for i in eligible:
        r = rules[i]
        key: tuple[str, ...]
        if r.ip is not None:
            group, key = bound, (r.ip,)
        elif r.exclude_ips:
            group, key = excluding.setdefault(tuple(sorted(r.exclude_ips)), {}), ()
        else:
            group, key = general, ()
        for t in r.transports:
            group.setdefault((*key, t), []).extend((p.lo, p.hi, i) for p in r.ports)
    parts = [
        _best(keys, _segments(bound, ["ip", "transport"]), ["server_ip", "transport"]),
        _best(keys, _segments(general, ["transport"]), ["transport"]),
    ]
    for excluded, group in excluding.items():
        hit = _best(keys, _segments(group, ["transport"]), ["transport"])
        parts.append(hit.filter(~pl.col("server_ip").is_in(list(excluded))))
    best = pl.concat(parts).group_by("k").agg(pl.col("prio").min())
    return keys.join(best, on="k", how="left").sort("k").select("server_ip", "transport", "port", "prio")
