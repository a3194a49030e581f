"""`portwitness usage`: what talked on which port, flows attributed to services and aggregated."""

from __future__ import annotations

from typing import Any

import click

from portwitness.commands.audit import audited
from portwitness.commands.context import will_write
from portwitness.commands.options import (
    config_options,
    decode_options,
    filter_options,
    from_dataset_option,
    load_policy,
    read_filters,
)
from portwitness.commands.output import output_format, to_text

USAGE_FORMATS = ("table", "csv", "json", "ndjson", "parquet")


@click.command()
@click.argument("captures", nargs=-1)
@from_dataset_option
@click.option(
    "--by",
    type=click.Choice(["port", "service", "host"]),
    default="port",
    show_default=True,
    help="port: per (server, transport, port, service); service: per (service, transport); host: per (server, service).",
)
@config_options
@filter_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(USAGE_FORMATS),
    help="Output format; by default from the output file's extension, else a table.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write to a file (.csv, .json, .ndjson, .parquet, .txt).",
)
@click.option(
    "--limit", type=click.IntRange(min=0), default=40, show_default=True, help="Rows shown (0: all)."
)
@decode_options
def usage(
    captures: tuple[str, ...],
    dataset: str | None,
    by: str,
    config: str | None,
    mgmt_config: str | None,
    policy: str | None,
    pipe_pair_is_range: bool,
    fmt: str | None,
    output: str | None,
    limit: int,
    max_flows: int,
    idle_timeout: float,
    **filters: Any,
) -> None:
    """What talked on which port: the flows of CAPTURES attributed to services (learned mapping,
    payload, callback, configuration, catalog) and aggregated with flows, packets, bytes, distinct
    clients, first/last seen, outcome counts and the evidence of attribution."""
    filt = read_filters(**filters)
    fmt = output_format("usage", USAGE_FORMATS, fmt, output)
    from portwitness.formats import listed
    from portwitness.render import write_frame

    will_write(output)
    pol = load_policy(config, mgmt_config, policy, pipe_pair_is_range)
    with audited(captures, dataset, pol, filt, max_flows, idle_timeout, output) as a:
        df = listed(a.usage(by), ports=";", evidence=",")
    if fmt == "table":
        from portwitness.render.terminal import print_usage

        to_text(output, lambda console: print_usage(console, df, by, limit))
    else:
        write_frame(df, output or "-", fmt)
