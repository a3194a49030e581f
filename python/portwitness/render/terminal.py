"""The report for a terminal: the verdict first, then rich tables of services, ranges, violations,
blocked attempts and unused configuration. Every cell goes through `safe`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
from rich.console import Console
from rich.text import Text

from portwitness.audit import Audit

from . import _console, rfc3339, safe
from .fit import COUNT, ID, TEXT, TIME, Col, print_table, visible

# What each column of the report's and the commands' frames is to a terminal table (fit.py):
# identities are never cut, counts and times never cut but may be left out, the rest folds.
ID_COLUMNS = {
    "service", "ip", "host", "transport", "proto", "protocol", "port", "configured", "type", "outcome",
    "server_ip", "client_ip", "server", "program", "version", "interface", "name", "range", "ports",
    "violation",
}  # fmt: skip
# Short words kept whole but left out before an identity is: what kind of line, which way.
WHOLE_COLUMNS = {"kind", "family", "direction"}
TIME_COLUMNS = {"first_seen", "last_seen", "first_ts", "last_ts", "ts"}
TEXT_COLUMNS = {
    "detail", "origin", "sni", "machines", "evidence", "source", "payload", "ports_seen",
    "ports_used", "outside_ports", "name_seen", "why", "learned_from", "note", "reason",
}  # fmt: skip


def kind_of(key: str, dtype: pl.DataType | None = None) -> str:
    if key in ID_COLUMNS:
        return ID
    if key in WHOLE_COLUMNS:
        return COUNT
    if key in TIME_COLUMNS or isinstance(dtype, pl.Datetime):
        return TIME
    if key in TEXT_COLUMNS or dtype == pl.String or isinstance(dtype, pl.List):
        return TEXT
    return COUNT


def cell(v: Any) -> str:
    """A value as a terminal table shows it (plain text: `fit` hands it to rich as Text)."""
    if v is None:
        return ""
    if isinstance(v, datetime):
        return rfc3339(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ", ".join(visible(x) for x in v)
    return visible(v)


def print_frame(
    console: Console, title: str | None, df: pl.DataFrame, columns: list[tuple[str, str]] | None = None
) -> None:
    """`df` as a table that never cuts an identity (`columns`: (key, header), default every column)."""
    columns = columns or [(c, c.replace("_", " ")) for c in df.columns]
    cols = [
        Col(
            header,
            kind_of(k, df.schema.get(k)),
            "right" if df.schema.get(k, pl.String).is_numeric() else "left",
        )
        for k, header in columns
    ]
    rows = [
        [_spaced(cell(r[k]), c.kind) for (k, _), c in zip(columns, cols, strict=True)]
        for r in df.iter_rows(named=True)
    ]
    print_table(console, title, cols, rows)


def print_usage(console: Console, df: pl.DataFrame, by: str, limit: int) -> None:
    """The `usage` frame grouped `by` port, service or host: its first `limit` rows (0: all)."""
    shown = df if limit == 0 else df.head(limit)
    more = f", first {shown.height}" if shown.height < df.height else ""
    print_frame(console, f"Usage by {by}: {df.height} rows{more}", shown)


def print_plan(console: Console, plan: pl.DataFrame) -> None:
    """The effective port plan of a configuration, one rule a row."""
    print_frame(console, f"Port plan: {plan.height} rules", plan)


def _spaced(text: str, kind: str) -> str:
    # A `;`-joined list wraps between its items, never inside one.
    return text.replace(";", "; ") if kind == TEXT else text


SERVICES = [
    ("service", "service"),
    ("ip", "host"),
    ("transport", "proto"),
    ("configured", "configured"),
    ("used", "used"),
    ("ports_seen", "ports seen"),
    ("flows", "flows"),
    ("bytes", "bytes"),
    ("peers", "peers"),
    ("sni", "TLS SNI"),
    ("machines", "client machines"),
    ("first_seen", "first seen (UTC)"),
    ("last_seen", "last seen (UTC)"),
    ("origin", "from"),
]
RANGES = [
    ("service", "service"),
    ("kind", "kind"),
    ("range", "range"),
    ("ports_used", "ports used"),
    ("utilisation_pct", "use %"),
    ("flows", "flows"),
    ("outside_ports", "outside"),
    ("origin", "from"),
]
VIOLATIONS = [
    ("type", "violation"),
    ("service", "service"),
    ("transport", "proto"),
    ("port", "port"),
    ("configured", "configured"),
    ("flows", "flows"),
    ("servers", "servers"),
    ("clients", "clients"),
    ("first_seen", "first seen (UTC)"),
    ("detail", "why"),
]
BLOCKED = [
    ("outcome", "outcome"),
    ("service", "meant for"),
    ("transport", "proto"),
    ("port", "port"),
    ("attempts", "attempts"),
    ("servers", "servers"),
    ("clients", "clients"),
    ("first_seen", "first seen (UTC)"),
]
UNCOVERED = [
    ("server_ip", "server"),
    ("transport", "proto"),
    ("port", "port"),
    ("payload", "payload"),
    ("flows", "flows"),
    ("bytes", "bytes"),
    ("clients", "clients"),
    ("first_seen", "first seen (UTC)"),
    ("last_seen", "last seen (UTC)"),
]
UNUSED = [
    ("service", "service"),
    ("kind", "kind"),
    ("ip", "host"),
    ("configured", "configured"),
    ("origin", "from"),
]
HOST_MATCHES = [
    ("host", "host"),
    ("ip", "address"),
    ("evidence", "taught by"),
    ("name_seen", "name seen"),
    ("first_seen", "first seen (UTC)"),
    ("origin", "line"),
]
UNMATCHED = [
    ("service", "service"),
    ("host", "host"),
    ("configured", "configured"),
    ("origin", "from"),
]

# Findings (grouped) shown by default in the terminal and HTML forms; JSON and CSV hold them all.
DEFAULT_LIMIT = 20


def report_sections(a: Audit) -> list[tuple[str, pl.DataFrame, list[tuple[str, str]], bool]]:
    """(title, frame, columns, limited) in the order every form shows them: findings first, then
    the inventories. `limited`: a list of grouped findings, cut at the `--limit` largest."""
    out = [
        ("Violations", a.violations, VIOLATIONS, True),
        ("Blocked connection attempts", a.blocked, BLOCKED, True),
        ("Uncovered: traffic nothing explains", a.uncovered, UNCOVERED, True),
    ]
    if a.configured:
        out.append(("Configured but unused", a.unused, UNUSED, False))
        if a.unmatched_hosts.height:
            out.append(("Host-specific lines whose host was never seen", a.unmatched_hosts, UNMATCHED, False))
    out += [
        ("Services", a.services, SERVICES, False),
        ("Callback and reconnection ranges", a.ranges, RANGES, False),
    ]
    if a.host_matches.height:
        out.append(("Host names matched to addresses", a.host_matches, HOST_MATCHES, False))
    return out


def shown(df: pl.DataFrame, limited: bool, limit: int) -> tuple[pl.DataFrame, int]:
    """The rows shown and how many more there are."""
    if not limited or limit == 0 or df.height <= limit:
        return df, 0
    return df.head(limit), df.height - limit


def print_report(a: Audit, console: Console | None = None, limit: int = DEFAULT_LIMIT) -> None:
    console = console or _console()
    console.print(Text(a.verdict))
    console.print()
    for w in a.policy.warnings:
        console.print(f"[yellow]warning:[/] {safe(w)}")
    for title, df, cols, limited in report_sections(a):
        if df.is_empty():
            console.print(f"{title}: none")
            continue
        rows, more = shown(df, limited, limit)
        print_frame(console, f"{title} ({df.height})", rows, cols)
        if more:
            console.print(f"... and {more} more (--limit 0 shows all; JSON and CSV hold every row)")
