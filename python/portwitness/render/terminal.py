"""The report for a terminal: the verdict first, then rich tables of services, ranges, violations,
blocked attempts and unused configuration. Every cell goes through `safe`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from portwitness.audit import Audit

from . import _console, safe


def cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return safe(v)


def frame_table(title: str, df: pl.DataFrame, columns: list[tuple[str, str]]) -> Table:
    t = Table(title=title, title_justify="left")
    for _, header in columns:
        t.add_column(header)
    for r in df.iter_rows(named=True):
        t.add_row(*(cell(r[k]) for k, _ in columns))
    return t


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
        console.print(frame_table(f"{title} ({df.height})", rows, cols))
        if more:
            console.print(f"... and {more} more (--limit 0 shows all; JSON and CSV hold every row)")
