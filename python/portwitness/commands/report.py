"""`portwitness report`: the audit of captures (or a dataset) against the port configuration."""

from __future__ import annotations

from typing import Any

import click

from portwitness.commands.audit import REPORT_FORMATS, audited, findings_exit, write_report
from portwitness.commands.context import will_write
from portwitness.commands.options import (
    config_options,
    decode_options,
    filter_options,
    from_dataset_option,
    load_policy,
    read_filters,
)
from portwitness.commands.output import output_format


@click.command()
@click.argument("captures", nargs=-1)
@from_dataset_option
@config_options
@filter_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    help="table (the terminal), json (schema portwitness.report/1), csv (the findings in one table), "
    "markdown, html (one self-contained file); by default from the output file's extension, else table.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), help="Write to a file.")
@click.option(
    "--fail-on",
    type=click.Choice(["violations", "blocked", "unused", "uncovered"]),
    multiple=True,
    help="Exit with 3 when findings of that kind exist (repeatable).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Largest groups of each kind of finding shown in the table, Markdown and HTML forms (0: all); "
    "JSON and CSV hold every group.",
)
@decode_options
def report(
    captures: tuple[str, ...],
    dataset: str | None,
    config: str | None,
    mgmt_config: str | None,
    policy: str | None,
    pipe_pair_is_range: bool,
    fmt: str | None,
    output: str | None,
    fail_on: tuple[str, ...],
    limit: int,
    max_flows: int,
    idle_timeout: float,
    **filters: Any,
) -> int:
    """Audit CAPTURES against the configuration: which configured ports and callback ranges were
    used, which were not, what broke the configuration, and which connection attempts were blocked.

    Without --config, --mgmt-config or --policy the built-in catalog of Arcserve's default ports
    stands in for a configuration."""
    filt = read_filters(**filters)
    fmt = output_format("report", REPORT_FORMATS, fmt, output)
    will_write(output)
    pol = load_policy(config, mgmt_config, policy, pipe_pair_is_range)
    with audited(captures, dataset, pol, filt, max_flows, idle_timeout, output) as a:
        write_report(a, fmt, output, limit)
    return findings_exit(a, fail_on)
