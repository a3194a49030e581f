"""The report as Markdown: the verdict, then one pipe table per frame. Cells are escaped so that a
string from the wire can neither break the table nor inject HTML or links into a renderer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from portwitness.audit import Audit

from . import rfc3339
from .terminal import DEFAULT_LIMIT, report_sections, shown

# Characters with a meaning inside a Markdown table cell (or in the HTML it may embed), escaped with
# a backslash or as an entity; with `[` escaped no link can form, so parentheses are plain text.
_MD_SPECIAL = {c: "\\" + c for c in "\\`*_[]|~"}
_MD_SPECIAL.update({"<": "&lt;", ">": "&gt;", "&": "&amp;"})


def md_escape(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return rfc3339(v)
    if isinstance(v, bool):
        return "yes" if v else "no"
    s = str(v)
    out = []
    for c in s:
        if not c.isprintable():
            out.append(f"\\\\x{ord(c):02x}")
        else:
            out.append(_MD_SPECIAL.get(c, c))
    return "".join(out)


def _table(df: pl.DataFrame, cols: list[tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in df.iter_rows(named=True):
        lines.append("| " + " | ".join(md_escape(r[k]) for k, _ in cols) + " |")
    return "\n".join(lines)


def markdown(a: Audit, limit: int = DEFAULT_LIMIT) -> str:
    parts = ["# portwitness report", "", md_escape(a.verdict), ""]
    if a.policy.warnings:
        parts += ["## Configuration warnings", ""] + [f"- {md_escape(w)}" for w in a.policy.warnings] + [""]
    for title, df, cols, limited in report_sections(a):
        rows, more = shown(df, limited, limit)
        parts += [f"## {title} ({df.height})", ""]
        parts += [_table(rows, cols) if df.height else "None.", ""]
        if more:
            parts += [f"... and {more} more (`--limit 0` shows all).", ""]
    return "\n".join(parts)
