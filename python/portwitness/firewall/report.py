"""The check's result in every report format: table (the terminal), json (schema
portwitness.firewall-check/1), csv (one table, `section` telling the part), markdown and html.
Strings from rulesets and captures go through the report renderers' escaping."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from portwitness.firewall.check import CheckResult

ATTEMPTS = [
    ("first_ts", "first seen"),
    ("transport", "transport"),
    ("client_ip", "client"),
    ("client_port", "client port"),
    ("server_ip", "server"),
    ("server_port", "port"),
    ("service", "service"),
    ("outcome", "on the wire"),
    ("verdict", "ruleset"),
    ("finding", "finding"),
    ("by", "decided by"),
]
UNMATCHED = [("location", "where"), ("chain", "chain"), ("rule", "rule"), ("comment", "comment")]
CLOSED = [
    ("service", "service"),
    ("transport", "transport"),
    ("ports", "ports"),
    ("server_ip", "server"),
    ("probed_from", "probed from"),
    ("verdict", "ruleset"),
    ("by", "decided by"),
    ("why", "configured by"),
]
NOT_EVALUATED = [("location", "where"), ("rule", "rule"), ("reason", "not evaluated")]


def sections(res: CheckResult) -> list[tuple[str, str, list[dict[str, Any]], list[tuple[str, str]]]]:
    attempts = res.attempts
    return [
        ("attempts", "Connection attempts", attempts, ATTEMPTS),
        (
            "blocked-needed",
            "Needed flows the ruleset blocks (they got through on the wire)",
            [a for a in attempts if a["finding"] == "blocked-needed"],
            ATTEMPTS,
        ),
        ("closed-configured", "Configured ports the ruleset leaves closed", res.closed, CLOSED),
        ("unmatched", "Rules no attempt matched", res.unmatched, UNMATCHED),
        ("not-evaluated", "Constructs not evaluated", res.not_evaluated, NOT_EVALUATED),
    ]


def _n(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def verdict(res: CheckResult) -> str:
    s = res.summary()
    parts = [
        f"{_n(s['attempts'], 'connection attempt')} evaluated against {res.ruleset.source} ruleset "
        f"{res.ruleset.file}: {s['allowed']} allowed, {s['dropped']} dropped, {s['rejected']} rejected, "
        f"{s['not_evaluated']} not evaluated.",
        f"{_n(s['blocked_needed'], 'needed flow')} blocked; {_n(s['explained'], 'refused or unanswered attempt')} "
        f"explained by the ruleset, {s['unexplained']} not.",
        f"{_n(s['unmatched_rules'], 'rule')} matched no attempt; {_n(s['closed_configured'], 'configured port range')} "
        f"left closed; {_n(s['constructs_not_evaluated'], 'construct')} not evaluated.",
    ]
    if s["not_through_host"]:
        parts.append(f"{_n(s['not_through_host'], 'attempt')} did not go through the host.")
    return " ".join(parts)


def _plain(v: Any) -> Any:
    return v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v


def to_json(res: CheckResult) -> str:
    doc = {
        "schema": "portwitness.firewall-check/1",
        "ruleset": {"file": res.ruleset.file, "format": res.ruleset.source},
        "summary": res.summary(),
        "verdict": verdict(res),
        **{
            key.replace("-", "_"): [{k: _plain(v) for k, v in r.items()} for r in rows]
            for key, _, rows, _ in sections(res)
        },
    }
    return json.dumps(doc, indent=2) + "\n"


def to_csv(res: CheckResult) -> str:
    columns: list[str] = ["section"]
    for _, _, _, cols in sections(res):
        columns += [k for k, _ in cols if k not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for key, _, rows, cols in sections(res):
        if key == "blocked-needed":
            continue  # the attempts carry their finding
        for r in rows:
            w.writerow({"section": key, **{k: _csv_cell(r.get(k)) for k, _ in cols}})
    return buf.getvalue()


def _csv_cell(v: Any) -> Any:
    v = _plain(v)
    # A cell a spreadsheet would run as a formula is quoted with a leading apostrophe.
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def to_markdown(res: CheckResult) -> str:
    from portwitness.render.markdown import md_escape

    out = ["# portwitness firewall check", "", md_escape(verdict(res)), ""]
    for _, title, rows, cols in sections(res):
        out += [f"## {title} ({len(rows)})", ""]
        if rows:
            out.append("| " + " | ".join(h for _, h in cols) + " |")
            out.append("|" + "---|" * len(cols))
            out += ["| " + " | ".join(md_escape(r.get(k)) for k, _ in cols) + " |" for r in rows]
            out.append("")
    return "\n".join(out) + "\n"


def to_html(res: CheckResult) -> str:
    from portwitness.render.html import CSS, esc

    body = ["<h1>portwitness firewall check</h1>", f'<p class="verdict">{esc(verdict(res))}</p>']
    for _, title, rows, cols in sections(res):
        body.append(f"<h2>{esc(title)} ({len(rows)})</h2>")
        if rows:
            head = "".join(f"<th>{esc(h)}</th>" for _, h in cols)
            cells = "".join(
                "<tr>" + "".join(f"<td>{esc(r.get(k))}</td>" for k, _ in cols) + "</tr>" for r in rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>portwitness firewall check</title><style>{CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )


def print_table(res: CheckResult, console=None) -> None:
    from rich.table import Table

    from portwitness.render import _console
    from portwitness.render.terminal import cell

    console = console or _console()
    console.print(cell(verdict(res)))
    for key, title, rows, cols in sections(res):
        if key == "attempts":
            rows = [a for a in rows if a["finding"] != "allowed"]
            title = "Connection attempts not simply allowed"
        if not rows:
            continue
        t = Table(title=f"{title} ({len(rows)})", title_justify="left")
        for _, h in cols:
            t.add_column(h)
        for r in rows:
            t.add_row(*(cell(r.get(k)) for k, _ in cols))
        console.print(t)
