"""The audit that report, usage, demo and the firewall commands share: run under the filters,
written as a report, its findings turned into the exit code --fail-on asks for."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from portwitness.capture import Capture
from portwitness.commands.errors import EXIT_FINDINGS
from portwitness.commands.load import load
from portwitness.commands.output import emit, output_format, spill_dir, to_text, warn, warn_anomalies
from portwitness.filters import Filters

if TYPE_CHECKING:
    from portwitness.audit import Audit
    from portwitness.config.model import Policy

REPORT_FORMATS = ("table", "json", "csv", "markdown", "html")


def run_audit(
    cap: Capture,
    pol,
    window=(None, None),
    hosts=(),
    filt: Filters | None = None,
    spill_dir: Path | None = None,
):
    """The audit of `cap` under the filters (`window` and `hosts`: the time and host filters alone,
    for callers that have no others)."""
    from portwitness.audit import audit

    filt = filt or Filters(hosts=tuple(hosts), since=window[0], until=window[1])
    filt.check_where(cap.flow_schema)
    return audit(
        cap,
        pol,
        since=filt.since,
        until=filt.until,
        hosts=filt.hosts,
        where=filt.flow_expr(),
        filters_named=filt.names() or None,
        spill_dir=spill_dir,
    )


@contextlib.contextmanager
def audited(
    captures: tuple[str, ...],
    dataset: str | None,
    pol: Policy,
    filt: Filters,
    max_flows: int,
    idle_timeout: float,
    output: str | None,
) -> Iterator[Audit]:
    """The audit of CAPTURES (or of `--from-dataset`) under the filters, its anomalies warned of;
    closed (what it kept on disk removed) when the block ends, its findings still readable."""
    with load(captures, dataset, max_flows, idle_timeout, output) as cap:
        warn_anomalies(cap)
        a = run_audit(cap, pol, filt=filt, spill_dir=spill_dir(output))
        try:
            yield a
        finally:
            a.close()


def report_format(output: str | None) -> str:
    """A report's format from `-o`'s extension alone (the one resolver, with the report's formats)."""
    return output_format("report", REPORT_FORMATS, None, output)


def write_report(a, fmt: str, output: str | None, limit: int = 20) -> None:
    from portwitness.render import write_frame
    from portwitness.render.html import report_html
    from portwitness.render.markdown import markdown
    from portwitness.render.report_doc import document, findings
    from portwitness.render.terminal import print_report

    if fmt == "table":
        to_text(output, lambda console: print_report(a, console, limit=limit))
    elif fmt == "json":
        emit(json.dumps(document(a), indent=2) + "\n", output)
    elif fmt == "csv":
        write_frame(findings(a), output or "-", "csv")
    elif fmt == "markdown":
        emit(markdown(a, limit), output)
    else:
        emit(report_html(a, limit), output)


def findings_exit(a, fail_on: tuple[str, ...]) -> int:
    hit = [k for k in fail_on if a.findings(k)]
    if hit:
        warn(f"failing on {', '.join(f'{a.findings(k)} {k}' for k in hit)}")
        return EXIT_FINDINGS
    return 0
