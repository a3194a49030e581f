"""The `portwitness` command: a click group whose commands are thin shells over the API, one
module each under `portwitness.commands`.

Data goes to stdout, warnings and errors to stderr, each error as one line. Exit codes: 0 ok,
1 unreadable capture (or output), 2 bad usage, 3 findings asked for with --fail-on, 130 Ctrl-C,
141 a reader that closed stdout.
"""

from __future__ import annotations

from typing import Any

import click

from portwitness import __version__
from portwitness.commands.bench import bench
from portwitness.commands.config import config
from portwitness.commands.dataset import dataset
from portwitness.commands.demo import demo
from portwitness.commands.errors import (
    EXIT_CLOSED_PIPE,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_UNREADABLE,
    EXIT_USAGE,
    Interrupted,
    exit_process,
    run,
)
from portwitness.commands.flows import flows
from portwitness.commands.options import config_options, decode_options, filter_options, from_dataset_option
from portwitness.commands.report import report
from portwitness.commands.rpcinfo import rpcinfo
from portwitness.commands.usage import usage
from portwitness.firewall.cli import firewall
from portwitness.outputs import Terminated, handle_sigterm

__all__ = [
    "EXIT_CLOSED_PIPE",
    "EXIT_FINDINGS",
    "EXIT_INTERRUPTED",
    "EXIT_UNREADABLE",
    "EXIT_USAGE",
    "Interrupted",
    "cli",
    "config_options",
    "decode_options",
    "entry",
    "filter_options",
    "from_dataset_option",
    "main",
]


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        # click would turn Ctrl-C into Abort after printing an empty line; the command line says
        # it in one line of its own (`main`).
        try:
            return super().invoke(ctx)
        except Terminated:
            raise  # SIGTERM: exit 143 (`main`)
        except KeyboardInterrupt:
            raise Interrupted() from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="portwitness")
def cli() -> None:
    """Which network ports do your services really use? portwitness reads packet captures
    (pcap, pcapng, gzip or zstd compressed) and tells what talked to what, on which port."""


for _command in (flows, rpcinfo, report, usage, dataset, config, demo, bench, firewall):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the group, turns every error into one line and an exit code."""
    from portwitness import outputs

    outputs.reset()
    # SIGTERM raises, as Ctrl-C does, so that temporary files and spills are removed on the way out.
    with handle_sigterm():
        return run(cli, argv)


def entry() -> None:
    """The console script: `main`, then the exit (`commands.errors.exit_process`)."""
    exit_process(main())


if __name__ == "__main__":
    entry()
