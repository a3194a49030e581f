"""The `portwitness` command: a click group whose commands are thin shells over the API.

Data goes to stdout, warnings and errors to stderr, each error as one line. Exit codes: 0 ok,
1 unreadable capture, 2 bad usage, 3 findings asked for with --fail-on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import polars as pl

from portwitness import __version__
from portwitness._core import CaptureFormatError, PortwitnessError
from portwitness.capture import Capture, decode
from portwitness.render import flows_table, rpcinfo_table, write_frame

EXIT_UNREADABLE = 1
EXIT_USAGE = 2


def _warn(msg: str) -> None:
    click.echo(f"portwitness: warning: {msg}", err=True)


def _warn_anomalies(cap: Capture) -> None:
    evicted = cap.stats.get("flows_evicted", 0)
    if evicted:
        _warn(
            f"{evicted} flows were emitted early because --max-flows was reached; they may continue as new flows"
        )
    total = cap.stats.get("anomalies", 0)
    if not total:
        return
    kinds = ", ".join(f"{k} {n}" for k, n in cap.anomaly_counts().items())
    _warn(f"{total} anomalies while decoding ({kinds}); write them with --anomalies FILE")


def _decode(captures: tuple[str, ...], max_flows: int, idle_timeout: float) -> Capture:
    return decode(list(captures), max_flows=max_flows, idle_timeout=idle_timeout)


def decode_options(f):  # type: ignore[no-untyped-def]
    f = click.option(
        "--idle-timeout",
        type=click.FloatRange(min=0.001),
        default=600.0,
        show_default=True,
        help="Seconds of silence after which a conversation on the same ports starts a new flow.",
    )(f)
    f = click.option(
        "--max-flows",
        type=click.IntRange(min=1),
        default=1_000_000,
        show_default=True,
        help="Live flows held at once; past it the least recently active are emitted early.",
    )(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="portwitness")
def cli() -> None:
    """Which network ports do your services really use? portwitness reads packet captures
    (pcap, pcapng, gzip or zstd compressed) and tells what talked to what, on which port."""


@cli.command()
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the whole table: .parquet, .csv, .json or .ndjson by extension; - for stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "parquet", "csv", "json", "ndjson"]),
    help="Output format; by default taken from the output file's extension, else a table.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Rows of the table shown on the terminal (0: all).",
)
@click.option(
    "--anomalies",
    "anomalies_out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Also write the anomalies table (format by extension).",
)
@decode_options
def flows(
    captures: tuple[str, ...],
    output: str | None,
    fmt: str | None,
    limit: int,
    anomalies_out: str | None,
    max_flows: int,
    idle_timeout: float,
) -> None:
    """Decode CAPTURES (files, directories, globs, - for stdin) into the table of flows.

    One row per bidirectional conversation (5-tuple and VLAN): client and server, packets, frame
    bytes and payload bytes per direction, first and last time, and the TCP outcome.
    """
    fmt = _resolve_format(fmt, output)
    cap = _decode(captures, max_flows, idle_timeout)
    _warn_anomalies(cap)
    if fmt == "table" and output in (None, "-"):
        flows_table(cap.flows, limit=limit, stats=cap.stats)
    else:
        write_frame(cap.flows, output or "-", fmt)
    if anomalies_out:
        write_frame(cap.anomalies, anomalies_out, _resolve_format(None, anomalies_out, default="csv"))


@cli.command()
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help='How to print the views. json: an object {"oncrpc": [rows], "msrpc": [rows]}. csv: one '
    "table whose first column `kind` (oncrpc or msrpc) tells the view; `program` is empty on msrpc "
    "rows and `interface` on oncrpc rows; `proto` is tcp/udp on oncrpc rows and the protocol "
    "sequence (ncacn_ip_tcp, ncadg_ip_udp, ncacn_http) on msrpc rows.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write to a file instead of stdout.",
)
@decode_options
def rpcinfo(
    captures: tuple[str, ...], fmt: str, output: str | None, max_flows: int, idle_timeout: float
) -> None:
    """Every RPC port registration seen on the wire, with the source of each row (the reply kinds
    that revealed it), first and last seen, and how many flows later used that port.

    ONC RPC: for each server, what `rpcinfo -p SERVER` would have printed (program, version,
    proto, port, name), rebuilt from portmapper and rpcbind replies (GETPORT, DUMP, SET, GETADDR,
    ...). MSRPC endpoints: for each server, the DCE/RPC interfaces (UUID, version, name) and the
    protocol sequence and port they listen on, from endpoint mapper replies (ept_map, ept_lookup)
    and bind_ack secondary addresses."""
    from portwitness.rpcinfo import msrpc_endpoints
    from portwitness.rpcinfo import rpcinfo as build

    cap = _decode(captures, max_flows, idle_timeout)
    _warn_anomalies(cap)
    oncrpc, msrpc = build(cap), msrpc_endpoints(cap)
    if fmt == "table" and output in (None, "-"):
        rpcinfo_table(oncrpc, msrpc)
    elif fmt == "json":
        doc = {"oncrpc": json.loads(oncrpc.write_json()), "msrpc": json.loads(msrpc.write_json())}
        text = json.dumps(doc, indent=None) + "\n"
        if output in (None, "-"):
            click.echo(text, nl=False)
        else:
            Path(output).write_text(text)
    else:
        write_frame(_rpcinfo_csv_frame(oncrpc, msrpc), output or "-", "csv")


def _rpcinfo_csv_frame(oncrpc: pl.DataFrame, msrpc: pl.DataFrame) -> pl.DataFrame:
    """Both rpcinfo views as one table, told apart by `kind` (see `rpcinfo --help`)."""
    columns = ["kind", "server", "program", "interface", "version", "name", "proto", "port"]
    columns += ["source", "first_seen", "last_seen", "flows_after"]
    onc = oncrpc.with_columns(
        pl.lit("oncrpc").alias("kind"),
        pl.lit(None, pl.String).alias("interface"),
        pl.col("version").cast(pl.String),
    )
    ms = msrpc.rename({"protocol": "proto"}).with_columns(
        pl.lit("msrpc").alias("kind"), pl.lit(None, pl.UInt32).alias("program")
    )
    return pl.concat([onc.select(columns), ms.select(columns)])


def _resolve_format(fmt: str | None, output: str | None, default: str = "table") -> str:
    if fmt:
        if fmt == "parquet" and output in (None, "-"):
            raise click.UsageError("Parquet needs an output file (-o FILE.parquet)")
        return fmt
    if output in (None, "-"):
        return default
    ext = Path(output).suffix.lower().lstrip(".")
    by_ext = {"parquet": "parquet", "csv": "csv", "json": "json", "ndjson": "ndjson", "jsonl": "ndjson"}
    if ext not in by_ext:
        raise click.UsageError(
            f"cannot tell the format of {output!r}: use .parquet, .csv, .json or .ndjson, or --format"
        )
    return by_ext[ext]


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the group, turns every error into one line and an exit code."""
    try:
        rv = cli.main(args=argv, prog_name="portwitness", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        click.echo(f"portwitness: error: {e.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.ClickException as e:
        click.echo(f"portwitness: error: {e.format_message()}", err=True)
        return e.exit_code
    except click.Abort:
        click.echo("portwitness: error: aborted", err=True)
        return 130
    except FileNotFoundError as e:
        click.echo(f"portwitness: error: {e.filename}: no such file", err=True)
        return EXIT_UNREADABLE
    except IsADirectoryError as e:
        click.echo(f"portwitness: error: {e.filename}: is a directory", err=True)
        return EXIT_UNREADABLE
    except PermissionError as e:
        click.echo(f"portwitness: error: {e.filename}: permission denied", err=True)
        return EXIT_UNREADABLE
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"portwitness: error: {where}{e.strerror or e}", err=True)
        return EXIT_UNREADABLE
    except CaptureFormatError as e:
        click.echo(f"portwitness: error: {e}", err=True)
        return EXIT_UNREADABLE
    except PortwitnessError as e:
        click.echo(f"portwitness: error: {e}", err=True)
        return EXIT_UNREADABLE
    except pl.exceptions.PolarsError as e:
        click.echo(f"portwitness: error: writing the output failed: {e}", err=True)
        return EXIT_UNREADABLE
    except KeyboardInterrupt:
        return 130


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
