"""`portwitness config check`: the effective port plan of configuration files."""

from __future__ import annotations

import json

import click

from portwitness.commands.context import reads, will_write
from portwitness.commands.output import emit, output_format, to_text, warn


@click.group()
def config() -> None:
    """Read and check port configurations."""


PLAN_FORMATS = ("table", "json", "csv")


@config.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(PLAN_FORMATS),
    help="Output format; by default from the output file's extension, else a table.",
)
@click.option(
    "--catalog",
    "with_catalog",
    is_flag=True,
    help="Also list the catalog's defaults for services not configured.",
)
@click.option("--pipe-pair-is-range", is_flag=True, help="Read a management setting `a|b` as the range a-b.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), help="Write to a file.")
def config_check(
    files: tuple[str, ...], fmt: str | None, with_catalog: bool, pipe_pair_is_range: bool, output: str | None
) -> None:
    """The effective port plan of FILES (PortsConfig.cfg, management settings, TOML policies — told
    apart by name and content): for each host and service, the ports or ranges that must be open and
    in which direction, so a firewall rule set can be written from it."""
    from portwitness.config import load_config, port_plan
    from portwitness.config.model import Policy
    from portwitness.render import write_frame

    fmt = output_format("config check", PLAN_FORMATS, fmt, output)
    will_write(output)
    reads(list(files))
    pol = Policy()
    for f in files:
        kind = _config_kind(f)
        pol.extend(load_config(**{kind: f}, pipe_pair_is_range=pipe_pair_is_range))
    for w in pol.warnings:
        warn(str(w))
    plan = port_plan(pol, include_catalog=with_catalog)
    if fmt == "table":
        from portwitness.render.terminal import print_plan

        to_text(output, lambda console: print_plan(console, plan))
    elif fmt == "json":
        emit(
            json.dumps({"schema": "portwitness.plan/1", "rules": plan.to_dicts()}, indent=2, default=str)
            + "\n",
            output,
        )
    else:
        write_frame(plan, output or "-", "csv")


def _config_kind(path: str) -> str:
    """Which reader a configuration file needs, told by its content (config.sniff); a file that is
    no configuration portwitness reads is refused (exit 2)."""
    from portwitness.config.model import ConfigError
    from portwitness.config.sniff import MGMT, POLICY, UNKNOWN, sniff

    got = sniff(path)
    if got.kind == UNKNOWN:
        raise ConfigError(
            path,
            got.line,
            0,
            "is none of PortsConfig.cfg, the management service's settings or a TOML policy"
            + (f" (line {got.line}: {got.text[:60]!r})" if got.line else ""),
        )
    return {MGMT: "mgmt", POLICY: "policy"}.get(got.kind, "config")
