"""The options commands share, as decorators, and their values read: the decode options, the
filters, the configuration files and --from-dataset. Every value is checked before anything is
decoded (exit 2)."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from portwitness import _core
from portwitness.commands.context import keep_scheduler, keep_skip, keep_threads, reads
from portwitness.commands.output import warn
from portwitness.filters import FilterError, Filters


def decode_options(f):
    f = click.option(
        "--skip-unreadable",
        is_flag=True,
        expose_value=False,
        callback=keep_skip,
        help="Go on when an input is no capture (empty, unreadable, bad magic): the rest is read and "
        "every input skipped is named (in the report's verdict and its `inputs`). Without it such "
        "an input stops the run with exit 1 before anything is written.",
    )(f)
    f = click.option(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        expose_value=False,
        callback=keep_scheduler,
        help="Decode on a Dask cluster (tcp://host:8786): each capture where it is alone, "
        "the result the same; the workers must read the captures at the same paths.",
    )(f)
    f = click.option(
        "--threads",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        expose_value=False,
        callback=keep_threads,
        help="Decode threads: 1 decodes on one thread; 0 uses every core; above 2, captures apart in "
        "time also decode in parallel (the result is the same).",
    )(f)
    f = click.option(
        "--idle-timeout",
        type=click.FloatRange(min=0.001),
        default=_core.DECODE_DEFAULTS.idle_timeout,
        show_default=True,
        help="Seconds of silence after which a conversation on the same ports starts a new flow.",
    )(f)
    f = click.option(
        "--max-flows",
        type=click.IntRange(min=1),
        default=_core.DECODE_DEFAULTS.max_flows,
        show_default=True,
        help="Live flows held at once; past it the least recently active are emitted early.",
    )(f)
    return f


def filter_options(f):
    f = click.option(
        "--where",
        metavar="SQL",
        help="Only flows for which this SQL predicate over the flows table holds, run by Polars' SQL "
        "engine (e.g. \"server_port BETWEEN 20000 AND 20100 AND security = 'plaintext'\"); the columns "
        "are the flows table's (docs/formats.md).",
    )(f)
    f = click.option(
        "--transport",
        "transports",
        type=click.Choice(["tcp", "udp"]),
        multiple=True,
        help="Only flows of this transport (repeatable).",
    )(f)
    f = click.option(
        "--port",
        "ports",
        multiple=True,
        metavar="PORTS",
        help="Only flows with this port at either end (repeatable): a port, a range 20000-20100, or a "
        "comma separated list of both.",
    )(f)
    f = click.option(
        "--host",
        "hosts",
        multiple=True,
        help="Only flows to or from this host (repeatable): an IPv4 or IPv6 address, a network in CIDR "
        "form (10.0.0.0/8), or a host name the captures taught (DNS, NetBIOS, AUTH_UNIX, TLS SNI).",
    )(f)
    f = click.option(
        "--until", help="Only flows that started at or before this time (ISO 8601, UTC by default)."
    )(f)
    f = click.option(
        "--since", help="Only flows still going at or after this time (ISO 8601, UTC by default)."
    )(f)
    return f


def config_options(f):
    f = click.option(
        "--pipe-pair-is-range",
        is_flag=True,
        help="Read a management setting `a|b` of two bare ports as the range a-b (default: the two ports).",
    )(f)
    f = click.option("--policy", type=click.Path(dir_okay=False), help="A TOML port policy (any stack).")(f)
    f = click.option(
        "--mgmt-config",
        type=click.Path(dir_okay=False),
        help="The CA Management Service's settings (sslport, nonsslport, usessl, callback ranges).",
    )(f)
    f = click.option("--config", type=click.Path(dir_okay=False), help="Arcserve's PortsConfig.cfg.")(f)
    return f


def from_dataset_option(f):
    return click.option(
        "--from-dataset",
        "dataset",
        type=click.Path(file_okay=False),
        help="Audit a dataset written by flows CAPTURES -o DIR/ instead of decoding captures.",
    )(f)


def read_filters(
    hosts: tuple[str, ...] = (),
    ports: tuple[str, ...] = (),
    transports: tuple[str, ...] = (),
    since: str | None = None,
    until: str | None = None,
    where: str | None = None,
) -> Filters:
    """The filter options read, every value checked before anything is decoded (exit 2)."""
    try:
        return Filters.of(hosts, ports, transports, _when(since, "--since"), _when(until, "--until"), where)
    except FilterError as e:
        raise click.UsageError(str(e)) from None


def _when(value: str | None, flag: str) -> datetime | None:
    """An ISO 8601 time (a date alone is midnight); without a zone it is UTC."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is no ISO 8601 time (e.g. 2026-03-01T02:00)", param_hint=flag
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def load_policy(config: str | None, mgmt: str | None, policy: str | None, pipe_pair_is_range: bool):
    """The configuration options' files read as one policy (None without any)."""
    from portwitness.config import load_config

    if not (config or mgmt or policy):
        return None
    reads([p for p in (config, mgmt, policy) if p])
    loaded = load_config(config, mgmt, policy, pipe_pair_is_range=pipe_pair_is_range)
    for w in loaded.warnings:
        warn(str(w))
    return loaded
