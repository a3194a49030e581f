"""The report as one self-contained HTML file an analyst can forward: a coloured status line
first (pass, or the findings counted by kind), the capture's time span and inputs, the findings
(grouped: a run of rows of the same kind shares its first cell), then the charts and the
inventories. Inline CSS and inline SVG charts, no script and no network. Every string — from the wire or from a configuration file — is escaped with
`html.escape(quote=True)` after control characters are made visible, so an SNI, an AUTH_UNIX
machine name or an annotation carrying markup shows as text."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

import polars as pl

from portwitness import __version__
from portwitness.audit import Audit

from . import rfc3339
from .terminal import DEFAULT_LIMIT, ID_COLUMNS, TIME_COLUMNS, report_sections, shown

BINS = 200  # cells of a range strip or a timeline row at most
STRIP_W, STRIP_H = 800, 18


def esc(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return rfc3339(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    s = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(v))
    return html.escape(s, quote=True)


def _nowrap(key: str) -> str:
    # Identities and times stay on one line; descriptions wrap.
    return ' class="id"' if key in ID_COLUMNS or key in TIME_COLUMNS else ""


def _table(df: pl.DataFrame, cols: list[tuple[str, str]], cls: str = "", grouped: bool = False) -> str:
    """A table; `grouped`: consecutive rows with the same first cell are one group (a `tbody` whose
    first cell spans its rows), so a finding's kind is read once."""
    head = "".join(f"<th>{esc(h)}</th>" for _, h in cols)
    rows = list(df.iter_rows(named=True))
    groups: list[list[dict[str, Any]]] = []
    for r in rows:
        if grouped and groups and groups[-1][0][cols[0][0]] == r[cols[0][0]]:
            groups[-1].append(r)
        else:
            groups.append([r])
    body = []
    for g in groups:
        trs = []
        for i, r in enumerate(g):
            cells = [f"<td{_nowrap(k)}>{esc(r[k])}</td>" for k, _ in cols]
            if grouped:
                cells[0] = (
                    f'<th scope="rowgroup" rowspan="{len(g)}">{esc(r[cols[0][0]])}</th>' if i == 0 else ""
                )
            trs.append("<tr>" + "".join(cells) + "</tr>")
        body.append("<tbody>" + "".join(trs) + "</tbody>")
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead>{''.join(body)}</table>"


def _bins(lo: int, hi: int) -> list[tuple[int, int]]:
    """The range lo..hi cut into at most BINS contiguous cells."""
    size = hi - lo + 1
    n = min(size, BINS)
    return [(lo + size * i // n, lo + size * (i + 1) // n - 1) for i in range(n)]


def range_chart(row: dict[str, Any]) -> str:
    """A strip of the range's ports; a cell is filled when a port inside it was used."""
    lo, _, hi = row["range"].partition("-")
    lo_i, hi_i = int(lo), int(hi or lo)
    used = {int(p) for p in row["ports_used"].split(";") if p}
    cells = _bins(lo_i, hi_i)
    w = STRIP_W / len(cells)
    rects = []
    for i, (a, b) in enumerate(cells):
        hit = [p for p in used if a <= p <= b]
        cls = "used" if hit else "free"
        title = f"{a}" if a == b else f"{a}-{b}"
        if hit:
            title += " used: " + ", ".join(map(str, sorted(hit)))
        rects.append(
            f'<rect class="{cls}" x="{i * w:.2f}" y="0" width="{max(w - 0.5, 0.5):.2f}" height="{STRIP_H}">'
            f"<title>{esc(title)}</title></rect>"
        )
    outside = row["outside_ports"]
    caption = (
        f"{esc(row['service'])} {esc(row['range'])}: {esc(row['ports_used_count'])} of {esc(row['size'])} ports used "
        f"({esc(row['utilisation_pct'])} %)"
        + (f"; used outside the range: {esc(outside)}" if outside else "")
    )
    svg = (
        f'<svg class="strip" viewBox="0 0 {STRIP_W} {STRIP_H + 14}" width="{STRIP_W}" height="{STRIP_H + 14}" '
        f'role="img" aria-label="{caption}">{"".join(rects)}'
        f'<text x="0" y="{STRIP_H + 12}">{lo_i}</text>'
        f'<text x="{STRIP_W}" y="{STRIP_H + 12}" text-anchor="end">{hi_i}</text></svg>'
    )
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def timeline(a: Audit) -> str:
    """One row per service: a cell per time bin, darker with more flows starting in it."""
    st = a.stats
    if not st.attributed or st.attributed_first is None or st.attributed_last is None:
        return "<p>No attributed flows.</p>"
    t0, t1 = st.attributed_first, st.attributed_last
    span = max((t1 - t0).total_seconds(), 1e-9)
    parts_ = []
    for batch in a.flow_batches():
        f = batch.filter(pl.col("service").is_not_null()).with_columns(
            ((pl.col("first_ts") - pl.lit(t0)).dt.total_nanoseconds() / 1e9 / span * (BINS - 1))
            .floor()
            .cast(pl.Int32)
            .alias("bin")
        )
        parts_.append(f.group_by("service", "bin").agg(pl.len().alias("n")))
    counts = pl.concat(parts_).group_by("service", "bin").agg(pl.col("n").sum()).sort("service", "bin")
    services = sorted(set(counts["service"].to_list()))
    label_w, row_h = 150, 16
    w = (STRIP_W - label_w) / BINS
    peak = max(counts["n"].max() or 1, 1)
    parts = []
    for i, svc in enumerate(services):
        y = i * row_h
        parts.append(f'<text x="0" y="{y + 12}">{esc(svc)}</text>')
        for b, n in counts.filter(pl.col("service") == svc).select("bin", "n").iter_rows():
            opacity = 0.25 + 0.75 * n / peak
            parts.append(
                f'<rect class="used" x="{label_w + b * w:.2f}" y="{y + 2}" width="{max(w, 1.5):.2f}" height="{row_h - 4}" '
                f'fill-opacity="{opacity:.2f}"><title>{esc(svc)}: {n} flows</title></rect>'
            )
    h = len(services) * row_h + 16
    parts.append(f'<text x="{label_w}" y="{h - 2}">{esc(t0)}</text>')
    parts.append(f'<text x="{STRIP_W}" y="{h - 2}" text-anchor="end">{esc(t1)}</text>')
    return (
        f'<svg class="timeline" viewBox="0 0 {STRIP_W} {h}" width="{STRIP_W}" height="{h}" role="img" '
        f'aria-label="flows per service over time">{"".join(parts)}</svg>'
    )


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 2em 2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;
vertical-align:top}th{background:#f0f0f0}tbody th{background:#fafafa;font-weight:600}
table.findings thead th{background:#f4c7c3}td.id,tbody th{white-space:nowrap}
.status{margin:0 -2em;padding:.7em 2em;font-size:1.25em;font-weight:600;color:#fff}
.status.pass{background:#1e7b34}.status.fail{background:#b3261e}.status small{font-weight:400;font-size:.8em}
.meta{color:#444;margin:.6em 0}.meta b{color:#222}
h1{font-size:1.2em;margin:.8em 0 .2em}h2{font-size:1.1em;margin:1.2em 0 .2em}
.verdict{background:#f7f7f7;padding:.6em .8em;border-left:4px solid #888;margin:.4em 0}
svg text{font:11px system-ui,sans-serif;fill:#333}rect.free{fill:#e8e8e8}
rect.used{fill:#2a6fb0}figure{margin:.5em 0 1em}figcaption{font-size:.9em;color:#555}
.warn{color:#8a5300}
"""

_CONFIG_FINDINGS = ("Configured but unused", "Host-specific lines whose host was never seen")


def status(a: Audit) -> tuple[bool, str, str]:
    """(passed, the headline, its detail): findings counted by kind, violations by type."""
    counts = []
    v = a.violations
    if v.height:
        by_type = v.group_by("type").len().sort("type")
        types = ", ".join(f"{t} {n}" for t, n in by_type.iter_rows())
        counts.append(f"{v.height} {'violation' if v.height == 1 else 'violations'} ({types})")
    attempts = int(a.blocked["attempts"].sum()) if a.blocked.height else 0
    if attempts:
        counts.append(f"{attempts} blocked {'attempt' if attempts == 1 else 'attempts'}")
    if a.uncovered.height:
        counts.append(
            f"{a.uncovered.height} uncovered server {'port' if a.uncovered.height == 1 else 'ports'}"
        )
    unused = a.unused.height if a.configured else 0
    if unused:
        counts.append(f"{unused} configured but unused")
    if a.configured and a.unmatched_hosts.height:
        counts.append(f"{a.unmatched_hosts.height} host lines never matched")
    if not counts:
        what = "every configured port used" if a.configured else "checked against Arcserve's default ports"
        return True, "PASS", f"no violations, no blocked attempts, nothing uncovered; {what}"
    return False, "FINDINGS", " · ".join(counts)


def _meta(a: Audit) -> str:
    st = a.stats
    span = f"{rfc3339(st.first_ts)} to {rfc3339(st.last_ts)}" if st.flows else "no flows"
    inputs = ", ".join(
        f"{i.path}" + ("" if i.status == "read" else f" (skipped: {i.reason})") for i in a.inputs
    ) or ", ".join(a.captures)
    window = ""
    if a.window[0] or a.window[1]:
        window = f" · <b>window</b> {esc(a.window[0] or '…')} to {esc(a.window[1] or '…')}"
    config = ", ".join(a.policy.files) if a.configured else "none (Arcserve's default ports)"
    return (
        f'<p class="meta"><b>Capture</b> {esc(span)} · {esc(st.flows)} flows{window} · '
        f"<b>inputs</b> {esc(inputs)} · <b>configuration</b> {esc(config)}</p>"
    )


def report_html(a: Audit, limit: int = DEFAULT_LIMIT) -> str:
    passed, headline, detail = status(a)
    body = [
        f'<header class="status {"pass" if passed else "fail"}" role="status">{headline} '
        f"<small>— {esc(detail)}</small></header>",
        "<h1>portwitness report</h1>",
        _meta(a),
        f'<p class="verdict">{esc(a.verdict)}</p>',
    ]
    if a.policy.warnings:
        body.append("<ul>" + "".join(f'<li class="warn">{esc(w)}</li>' for w in a.policy.warnings) + "</ul>")
    sections = report_sections(a)
    # Grouped findings are the `limited` sections; configuration never used or never placed too
    # (`Audit.unused` is built anew on each reading: told by its title, not by identity).
    findings = [s for s in sections if s[3] or s[0] in _CONFIG_FINDINGS]
    inventories = [s for s in sections if s not in findings]

    def emit(part: list, finding: bool) -> None:
        for title, df, cols, limited in part:
            rows, more = shown(df, limited, limit)
            body.append(f"<h2>{esc(title)} ({df.height})</h2>")
            table = _table(rows, cols, "findings" if finding else "", grouped=finding)
            body.append(table if df.height else "<p>None.</p>")
            if more:
                body.append(f"<p>... and {more} more (--limit 0 shows all).</p>")

    # The findings that exist come first, the empty kinds after them.
    emit([s for s in findings if s[1].height], True)
    emit([s for s in findings if not s[1].height], True)
    if a.ranges.height:
        body.append("<h2>Callback and reconnection range usage</h2>")
        body += [range_chart(r) for r in a.ranges.iter_rows(named=True)]
    body += ["<h2>Flows per service over time</h2>", timeline(a)]
    emit(inventories, False)
    body.append(f"<footer><small>{esc(f'portwitness {__version__}')}</small></footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>portwitness report</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )
