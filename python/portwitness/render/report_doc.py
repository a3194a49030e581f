"""The report as one plain document: the JSON form (schema `portwitness.report/2`, documented in
docs/report-schema.md) and the source of the CSV findings. Times are ISO 8601 UTC strings with
nanoseconds; ports and counts are integers; strings from the wire are left as they are (JSON
escapes them; the HTML and terminal forms escape for their own medium)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from portwitness import __version__
from portwitness.audit import Audit

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

SCHEMA = "portwitness.report/2"


def _iso(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    return v


# Members the audit's frames hold `;`-joined (for the terminal and CSV) that JSON gives as arrays.
LISTS: dict[str, type] = {
    "ports_seen": int,
    "servers": str,
    "sni": str,
    "machines": str,
    "ports_used": int,
    "outside_ports": int,
}


def _value(k: str, v: Any) -> Any:
    if k in LISTS and isinstance(v, str):
        return [LISTS[k](x) for x in v.split(";") if x]
    return _iso(v)


def records(df: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _value(k, v) for k, v in row.items()} for row in df.iter_rows(named=True)]


def document(a: Audit) -> dict[str, Any]:
    st = a.stats
    return {
        "schema": SCHEMA,
        "generator": f"portwitness {__version__}",
        "captures": a.captures,
        "inputs": [i.as_dict() for i in a.inputs],
        "window": {"since": _iso(a.window[0]), "until": _iso(a.window[1])},
        "configured": a.configured,
        "config_files": list(a.policy.files),
        "warnings": [str(w) for w in a.policy.warnings],
        "verdict": a.verdict,
        "summary": {
            "flows": st.flows,
            "first_ts": _iso(st.first_ts) if st.flows else None,
            "last_ts": _iso(st.last_ts) if st.flows else None,
            "attributed": st.attributed,
            "evidence": dict(sorted(st.evidence.items())),
            "violations": a.violations.height,
            "blocked_attempts": int(a.blocked["attempts"].sum()) if a.blocked.height else 0,
            "unused": a.unused.height if a.configured else 0,
            "uncovered": a.uncovered.height,
            "uncovered_flows": int(a.uncovered["flows"].sum()) if a.uncovered.height else 0,
            "skipped_inputs": len(a.skipped),
            "cut_short": list(a.cut_short),
        },
        "services": records(a.services),
        "ranges": records(a.ranges),
        "violations": records(a.violations),
        "blocked": records(a.blocked),
        "unused": records(a.unused) if a.configured else [],
        "uncovered": records(a.uncovered),
        "hosts": {"matched": records(a.host_matches), "unmatched": records(a.unmatched_hosts)},
        "mappings": {"oncrpc": records(a.rpcinfo), "msrpc": records(a.msrpc)},
    }


# Any names: polars types a schema's names as str for a new frame and as str or selector for a cast.
FINDINGS_SCHEMA: dict[Any, PolarsDataType] = {
    "finding": pl.String,
    "type": pl.String,
    "service": pl.String,
    "transport": pl.String,
    "port": pl.UInt16,
    "configured": pl.String,
    "count": pl.UInt32,
    "servers": pl.String,
    "clients": pl.String,
    "first_seen": pl.Datetime("ns", "UTC"),
    "last_seen": pl.Datetime("ns", "UTC"),
    "detail": pl.String,
    "origin": pl.String,
    "example_flows": pl.String,
    "first_capture": pl.String,
    "first_record": pl.UInt64,
}


def _joined(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.List(pl.String)).list.join(";")


def _evidence() -> list[pl.Expr | str]:
    return [
        _joined("server_ips").alias("servers"),
        _joined("client_ips").alias("clients"),
        "first_seen",
        "last_seen",
    ]


def _where() -> list[pl.Expr | str]:
    return [_joined("example_flows").alias("example_flows"), "first_capture", "first_record"]


def findings(a: Audit) -> pl.DataFrame:
    """Violations, blocked attempts, uncovered traffic and unused configuration in one long table
    (the CSV form): one row per group, its servers, clients and example flow ids `;`-joined."""
    v = a.violations.select(
        pl.lit("violation").alias("finding"),
        "type",
        "service",
        "transport",
        "port",
        "configured",
        pl.col("flows").alias("count"),
        *_evidence(),
        pl.coalesce(
            pl.format("{}; taught by {}", pl.col("detail"), pl.col("learned_from")), pl.col("detail")
        ).alias("detail"),
        "origin",
        *_where(),
    )
    b = a.blocked.select(
        pl.lit("blocked").alias("finding"),
        pl.col("outcome").alias("type"),
        "service",
        "transport",
        "port",
        pl.lit(None, pl.String).alias("configured"),
        pl.col("attempts").alias("count"),
        *_evidence(),
        pl.format("attribution: {}", pl.col("evidence")).alias("detail"),
        pl.lit(None, pl.String).alias("origin"),
        *_where(),
    )
    c = a.uncovered.select(
        pl.lit("uncovered").alias("finding"),
        pl.lit("uncovered").alias("type"),
        pl.lit(None, pl.String).alias("service"),
        "transport",
        "port",
        pl.lit(None, pl.String).alias("configured"),
        pl.col("flows").alias("count"),
        *_evidence(),
        pl.format("payload: {}; {} bytes", pl.col("payload"), pl.col("bytes").cast(pl.String)).alias(
            "detail"
        ),
        pl.lit(None, pl.String).alias("origin"),
        *_where(),
    )
    parts = [v.cast(FINDINGS_SCHEMA), b.cast(FINDINGS_SCHEMA), c.cast(FINDINGS_SCHEMA)]
    if a.configured:
        u = a.unused.select(
            pl.lit("unused").alias("finding"),
            pl.col("kind").alias("type"),
            "service",
            pl.lit(None, pl.String).alias("transport"),
            pl.lit(None, pl.UInt16).alias("port"),
            "configured",
            pl.lit(0, pl.UInt32).alias("count"),
            pl.col("ip").alias("servers"),
            pl.lit(None, pl.String).alias("clients"),
            pl.lit(None, pl.Datetime("ns", "UTC")).alias("first_seen"),
            pl.lit(None, pl.Datetime("ns", "UTC")).alias("last_seen"),
            "detail",
            "origin",
            pl.lit(None, pl.String).alias("example_flows"),
            pl.lit(None, pl.String).alias("first_capture"),
            pl.lit(None, pl.UInt64).alias("first_record"),
        )
        parts.append(u.cast(FINDINGS_SCHEMA))
        m = a.unmatched_hosts.select(
            pl.lit("unmatched-host").alias("finding"),
            pl.lit("service").alias("type"),
            "service",
            "transport",
            pl.lit(None, pl.UInt16).alias("port"),
            "configured",
            pl.lit(0, pl.UInt32).alias("count"),
            pl.col("host").alias("servers"),
            pl.lit(None, pl.String).alias("clients"),
            pl.lit(None, pl.Datetime("ns", "UTC")).alias("first_seen"),
            pl.lit(None, pl.Datetime("ns", "UTC")).alias("last_seen"),
            "detail",
            "origin",
            pl.lit(None, pl.String).alias("example_flows"),
            pl.lit(None, pl.String).alias("first_capture"),
            pl.lit(None, pl.UInt64).alias("first_record"),
        )
        parts.append(m.cast(FINDINGS_SCHEMA))
    return pl.concat(parts)
