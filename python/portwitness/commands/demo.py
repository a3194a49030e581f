"""`portwitness demo`: the report on the bundled Arcserve capture and configuration."""

from __future__ import annotations

import click

from portwitness.commands.audit import REPORT_FORMATS, findings_exit, run_audit, write_report
from portwitness.commands.context import will_write
from portwitness.commands.output import output_format, warn


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    help="As report's: by default from the output file's extension, else a table.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), help="Write to a file.")
@click.option("--fail-on", type=click.Choice(["violations", "blocked", "unused", "uncovered"]), multiple=True)
def demo(fmt: str | None, output: str | None, fail_on: tuple[str, ...]) -> int:
    """The report on the bundled Arcserve capture: a primary and a member server, a GUI, two agents,
    and the PortsConfig.cfg and management settings that go with them (with planted faults)."""
    from portwitness.demo import load

    fmt = output_format("demo", REPORT_FORMATS, fmt, output)
    will_write(output)
    cap, pol = load()
    for w in pol.warnings:
        warn(str(w))
    a = run_audit(cap, pol)
    write_report(a, fmt, output)
    return findings_exit(a, fail_on)
