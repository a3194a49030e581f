"""The `portwitness` command: a click group whose commands are thin shells over the API.

Data goes to stdout, warnings and errors to stderr, each error as one line. Exit codes: 0 ok,
1 unreadable capture (or output), 2 bad usage, 3 findings asked for with --fail-on, 130 Ctrl-C,
141 a reader that closed stdout.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portwitness import __version__
from portwitness._core import CaptureFormatError, PortwitnessError
from portwitness.capture import SPILL_ROWS, Capture, decode
from portwitness.filters import FilterError, Filters, NothingMatches
from portwitness.formats import FormatError, check_writable, resolve_format, to_stdout
from portwitness.inputs import resolve
from portwitness.outputs import OutputIsInputError, Terminated, handle_sigterm, protect, refuse_inputs

if TYPE_CHECKING:
    import polars as pl

# polars, the renderers and the dataset writer are imported where used: loading them takes about
# as long as decoding 200 MB, so `_decode` has them load on another thread while the core decodes.

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
    _warn(
        f"{total} {'anomaly' if total == 1 else 'anomalies'} while decoding ({kinds}); write them with --anomalies FILE"
    )


# Inputs at least this large get a progress bar (on a terminal only).
PROGRESS_MIN_BYTES = 256 << 20


def _threads() -> int:
    ctx = click.get_current_context(silent=True)
    return int(ctx.meta.get("portwitness.threads", 0)) if ctx is not None else 0


def _skip_unreadable() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx.meta.get("portwitness.skip_unreadable")) if ctx is not None else False


def _scheduler() -> str | None:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get("portwitness.scheduler") if ctx is not None else None


def _will_write(*outputs: str | None) -> None:
    """Names the files this command will write, so that `_reads` refuses inputs among them."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["portwitness.outputs"] = [o for o in outputs if o not in (None, "-")]


def _reads(paths: list[str]) -> None:
    """Records `paths` as inputs of this run: no output may be written over one of them (exit 2,
    before anything is decoded or written)."""
    protect(paths)
    ctx = click.get_current_context(silent=True)
    refuse_inputs(ctx.meta.get("portwitness.outputs", ()) if ctx is not None else ())


def _load_polars_meanwhile() -> None:
    """Imports polars on another thread. The core releases the GIL while it decodes, so the
    import runs beside the decode instead of before it; whoever needs polars first waits for it
    (the import system's module lock). Not a daemon: the interpreter never exits mid-import."""
    if "polars" not in sys.modules:
        threading.Thread(target=_import_polars, name="import-polars").start()


def _import_polars() -> None:
    # A failure is raised again where polars is first used, on the thread that needs it.
    try:
        import polars  # noqa: F401
    except BaseException:
        pass


def _decode(
    captures: tuple[str, ...], max_flows: int, idle_timeout: float, polars: bool = True, **spill: Any
) -> Capture:
    """`spill`: `flow_sink`, `spill_rows` and `tables` for `decode` (ignored on a cluster). `polars`: False
    when the caller may never need it (its import would only take CPU from the decode)."""
    if polars:
        _load_polars_meanwhile()
    skip = _skip_unreadable()
    # Inputs that are no capture stop the run here, before anything is decoded or written.
    files, skipped = resolve(list(captures), skip)
    _reads(files)
    for s in skipped:
        _warn(f"skipped {s.path}: {s.reason}")
    spill["skip_unreadable"] = skip
    address = _scheduler()
    if address:
        cap = _decode_on_cluster(files, address, max_flows, idle_timeout, skip)
    else:
        total = sum(os.path.getsize(f) for f in files if f != "-" and os.path.isfile(f))
        if not (sys.stderr.isatty() and total >= PROGRESS_MIN_BYTES):
            cap = _interruptible(
                decode, files, max_flows=max_flows, idle_timeout=idle_timeout, threads=_threads(), **spill
            )
        else:
            cap = _decode_with_bar(files, total, max_flows, idle_timeout, **spill)
    for s in cap.skipped:
        _warn(f"skipped {s.path}: {s.reason}")
    return cap.with_inputs((*cap.inputs, *skipped))


def _interruptible(fn: Any, *args: Any, each: Any = None, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` on a worker thread while this one waits in slices of a tenth of a
    second (calling `each()` after each), so Ctrl-C is seen within one: the core decodes with the
    GIL released and does not look at signals. Interrupted, the worker is left to the process's
    exit (`entry` ends the process without waiting for it)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the waiting thread
            result["error"] = e

    worker = threading.Thread(target=run, name="portwitness-decode", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if each is not None:
            each()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _decode_with_bar(
    files: list[str], total: int, max_flows: int, idle_timeout: float, **spill: Any
) -> Capture:
    """The decode on a worker thread (the core releases the GIL) while this one draws a progress
    bar by bytes read on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    from portwitness._core import Progress as Counter

    counter = Counter()
    columns = (
        "{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("decoding", total=total)
        return _interruptible(
            decode,
            files,
            each=lambda: bar.update(task, completed=min(counter.bytes_read, total)),
            max_flows=max_flows,
            idle_timeout=idle_timeout,
            progress=counter,
            threads=_threads(),
            **spill,
        )


def _decode_on_cluster(
    files: list[str], address: str, max_flows: int, idle_timeout: float, skip: bool = False
) -> Capture:
    """The decode on a Dask cluster's workers (they must see the captures at the same paths)."""
    if "-" in files:
        raise click.UsageError(
            "standard input cannot be decoded on a cluster: give files its workers can read"
        )
    try:
        from distributed import Client
    except ImportError:
        raise click.ClickException(
            "--scheduler needs Dask's distributed scheduler: pip install 'portwitness[cluster]'"
        ) from None
    for f in files:
        if not os.path.isfile(f):
            # A FIFO or device would be read by one worker and found empty by the next.
            raise click.UsageError(
                f"{f}: not a regular file; a cluster decodes files its workers can read again"
            )
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError

    _check_scheduler_address(address)
    with _quiet_distributed():
        try:
            client = Client(address, timeout="15s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise click.ClickException(f"cannot reach the Dask scheduler at {address}: {e}") from None
        with client:
            try:
                return decode(
                    files,
                    max_flows=max_flows,
                    idle_timeout=idle_timeout,
                    threads=_threads(),
                    client=client,
                    skip_unreadable=skip,
                )
            except (CancelledError, CommClosedError) as e:
                raise click.ClickException(
                    f"lost the Dask scheduler at {address} during the run "
                    f"({_first_line(e) or type(e).__name__}); nothing was written"
                ) from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0]


def _check_scheduler_address(address: str) -> None:
    """Refuses an address Dask cannot parse before a client is made of it: a client that failed on
    one still tries to close its connection at exit, and says so in a traceback 30 s later."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss", "ucx"):
            parse_host_port(location)
        from distributed.comm.registry import get_backend

        get_backend(scheme)
    except (ValueError, TypeError) as e:
        raise click.ClickException(f"cannot reach the Dask scheduler at {address}: {e}") from None


class _quiet_distributed:
    """Silences distributed's own logging while a command runs on a cluster: a lost scheduler is
    logged as tracebacks on stderr, where the command's one error line says it."""

    def __enter__(self) -> None:
        import logging

        # Its loggers set their own levels (dask's logging configuration): disabled as a whole.
        self.before = logging.root.manager.disable
        logging.disable(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        import logging

        logging.disable(self.before)


def _keep_threads(ctx: click.Context, _param: click.Parameter, value: int) -> int:
    ctx.meta["portwitness.threads"] = value
    return value


def _keep_skip(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta["portwitness.skip_unreadable"] = value
    return value


def _keep_scheduler(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    ctx.meta["portwitness.scheduler"] = value
    return value


def decode_options(f):  # type: ignore[no-untyped-def]
    f = click.option(
        "--skip-unreadable",
        is_flag=True,
        expose_value=False,
        callback=_keep_skip,
        help="Go on when an input is no capture (empty, unreadable, bad magic): the rest is read and "
        "every input skipped is named (in the report's verdict and its `inputs`). Without it such "
        "an input stops the run with exit 1 before anything is written.",
    )(f)
    f = click.option(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        expose_value=False,
        callback=_keep_scheduler,
        help="Decode on a Dask cluster (tcp://host:8786): each capture where it is alone, "
        "the result the same; the workers must read the captures at the same paths.",
    )(f)
    f = click.option(
        "--threads",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        expose_value=False,
        callback=_keep_threads,
        help="Decode threads: 1 decodes on one thread; 0 uses every core; above 2, captures apart in "
        "time also decode in parallel (the result is the same).",
    )(f)
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


def filter_options(f):  # type: ignore[no-untyped-def]
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


class Interrupted(Exception):
    """Ctrl-C during a command (exit 130)."""


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


FLOW_FORMATS = ("table", "parquet", "csv", "json", "ndjson", "zeek", "zeek-json")
TABLE_FORMATS = ("parquet", "csv", "json", "ndjson")


@cli.command()
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(allow_dash=True),
    help="Write the whole table, in the format of its extension: .parquet, .csv, .json, .ndjson, "
    ".log (a Zeek conn.log), .txt (the text table); - for stdout. A directory (DIR/, or one that "
    "exists) gets a Parquet dataset of every table, partitioned by capture and hour, added to on "
    "each run: audit it with report --from-dataset DIR.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FLOW_FORMATS),
    help="Output format; by default taken from the output file's extension, else a table. zeek: "
    "Zeek's conn.log (TSV); zeek-json: Zeek's JSON log, one object per line.",
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
@click.option("--spill-rows", type=click.IntRange(min=1), default=SPILL_ROWS, hidden=True)
@filter_options
@decode_options
def flows(
    captures: tuple[str, ...],
    output: str | None,
    fmt: str | None,
    limit: int,
    anomalies_out: str | None,
    spill_rows: int,
    max_flows: int,
    idle_timeout: float,
    **filters: Any,
) -> None:
    """Decode CAPTURES (files, directories, globs, - for stdin) into the table of flows.

    One row per bidirectional conversation (5-tuple and VLAN): client and server, packets, frame
    bytes and payload bytes per direction, first and last time, the TCP outcome, whether it was
    TLS or plaintext, and its Community ID.
    """
    filt = _filters(**filters)
    an_fmt = None
    if anomalies_out:
        an_fmt = _output_format("--anomalies", TABLE_FORMATS + ("table",), None, anomalies_out)
        an_fmt = "csv" if an_fmt == "table" else an_fmt
    # The render and dataset modules load polars: imported once the decode is under way.
    _will_write(None if _is_dataset_target(output) else output, anomalies_out)
    if _is_dataset_target(output):
        if fmt not in (None, "parquet"):
            raise click.UsageError(f"a dataset directory is written as Parquet, not {fmt}")
        if filt:
            raise click.UsageError(
                "a dataset holds every flow: filter when reading it (report --from-dataset DIR --host ...)"
            )
        from portwitness.dataset import write_dataset
        from portwitness.render import write_frame

        # Finished flows wait beside the dataset's directory (where its space will go anyway).
        root = Path(output or ".")
        beside = str(root) if root.resolve().parent.is_dir() else None
        with _spilled_decode(captures, max_flows, idle_timeout, beside) as cap:
            _warn_anomalies(cap)
            run = write_dataset(cap, output or ".")
        click.echo(
            f"portwitness: dataset {output}: run {run['run']} added {run['rows']['flows']} flows of "
            f"{len(run['captures'])} {'capture' if len(run['captures']) == 1 else 'captures'}",
            err=True,
        )
        if anomalies_out and an_fmt:
            write_frame(cap.anomalies, anomalies_out, an_fmt)
        return
    fmt = _output_format("flows", FLOW_FORMATS, fmt, output)
    if fmt == "table":
        from portwitness.render import flows_table

        with _spilled_decode(captures, max_flows, idle_timeout, output) as cap:
            _warn_anomalies(cap)
            top, total = _top_flows(cap, filt, limit)
        _to_text(
            output,
            lambda console: flows_table(top, limit=limit, stats=cap.stats, console=console, total=total),
        )
    elif fmt in ("zeek", "zeek-json"):
        cap = _decode(captures, max_flows, idle_timeout)
        _warn_anomalies(cap)
        shown = _filtered_flows(cap, filt)
        from portwitness.render.zeek import write_conn_log, write_json_log

        writer = write_conn_log if fmt == "zeek" else write_json_log
        _to_text(output, lambda console: writer(shown, console.file))
    else:
        cap = _spilled_flows(
            captures, max_flows, idle_timeout, output or "-", fmt, spill_rows, bool(anomalies_out), filt
        )
    if anomalies_out and an_fmt:
        from portwitness.render import write_frame

        write_frame(cap.anomalies, anomalies_out, an_fmt)


def _to_text(output: str | None, write: Any) -> None:
    """Calls `write(console)` with a console on stdout or on the file `output` (a file is no
    terminal: its tables are plain text, never cut)."""
    from rich.console import Console

    from portwitness.render import _console

    if to_stdout(output):
        write(_console())
        return
    from portwitness.outputs import open_output

    try:
        # Whole or not at all, as every output (`outputs.atomic_output`).
        with open_output(str(output), "w", encoding="utf-8") as fh:
            write(Console(file=fh, soft_wrap=False, width=200))
    except OSError as e:
        from portwitness.spill import output_error

        raise output_error(e, str(output)) from None


def _top_flows(cap: Capture, filt: Filters, limit: int) -> tuple[pl.DataFrame, int]:
    """The `limit` flows (0: all) with the most bytes that the filters select, and how many they
    select, read a batch at a time; refuses filters that leave none (exit 1)."""
    import polars as pl

    keep = None
    if filt:
        filt.check_where(cap.flow_schema)
        keep = filt.flows(cap)
    order = {"by": ["_bytes", "flow_id"], "descending": [True, False]}
    top: pl.DataFrame | None = None
    total = seen = 0
    for batch in cap.flow_batches():
        seen += batch.height
        if keep is not None:
            batch = batch.filter(keep)
        total += batch.height
        batch = batch.with_columns((pl.col("bytes_c2s") + pl.col("bytes_s2c")).alias("_bytes"))
        top = batch if top is None else pl.concat([top, batch])
        if limit:
            top = top.sort(**order).head(limit)
    if not total and seen:
        raise NothingMatches(f"no flow matches the filters given ({filt.names()}): nothing to show")
    assert top is not None
    return top.sort(**order).drop("_bytes"), total


def _filtered_flows(cap: Capture, filt: Filters) -> pl.DataFrame:
    """The flows the filters select; refuses filters that leave none (exit 1)."""
    if not filt:
        return cap.flows
    filt.check_where(cap.flows.schema)
    out = cap.flows.filter(filt.flows(cap))
    if out.is_empty() and not cap.flows.is_empty():
        raise NothingMatches(f"no flow matches the filters given ({filt.names()}): nothing to show")
    return out


class _GuardedSink:
    """The spill's sink, closed for good by `close`: after Ctrl-C the decode may still hand it a
    batch while the process ends, and no part may be written after the spill's directory is
    removed."""

    def __init__(self, spill: Any) -> None:
        self.spill, self.lock, self.closed = spill, threading.Lock(), False

    def __call__(self, table: Any) -> None:
        with self.lock:
            if self.closed:
                raise RuntimeError("the output was abandoned")
            self.spill(table)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.spill.close()


def _spilled_flows(
    captures: tuple[str, ...],
    max_flows: int,
    idle_timeout: float,
    output: str,
    fmt: str,
    spill_rows: int,
    anomalies: bool = False,
    filt: Filters | None = None,
) -> Capture:
    """Decodes and writes the flows table to `output` without ever holding it whole: finished
    flows go to disk beside the output while decoding and are merged back in flow order, each
    batch filtered and written as the format wants its cells. Only the flows table is built (and
    the anomalies, when `anomalies`)."""
    from portwitness.spill import FlowSpill, merged, release_free_memory, write_flows, write_parquet

    try:
        spill = FlowSpill(None if output == "-" else Path(output).parent, None if output == "-" else output)
    except OSError as e:
        # The spill's directory goes beside the output: its error is the output's.
        raise OSError(e.errno, e.strerror, output) from None
    sink = _GuardedSink(spill)
    # Parquet of every flow is written by the core from its Arrow table: polars is needed only if
    # the flows spill (loaded then).
    whole_parquet = fmt == "parquet" and not filt
    try:
        cap = _decode(
            captures,
            max_flows,
            idle_timeout,
            polars=not whole_parquet,
            flow_sink=sink,
            spill_rows=spill_rows,
            tables=_tables_for(anomalies, filt),
        )
        if whole_parquet and not spill.parts:
            _warn_anomalies(cap)
            write_parquet(cap.arrow("flows"), output)
            return cap
        rest = cap.flows
        if spill.parts:
            # Only a merge of parts adds much to what is in use (5 ms on a 2 GB decode otherwise).
            release_free_memory()
            # Filters (a --host of any flow's address) read every flow, a batch at a time.
            cap = cap.keep_flows_on_disk(spill)
        _warn_anomalies(cap)
        keep = _flow_filter(cap, filt, spill.parts, rest)
        if fmt == "parquet" and not spill.parts:
            write_parquet(rest if keep is None else rest.filter(keep), output)
            return cap
        write_flows(_as_written(merged(spill.parts, rest), keep, fmt), rest.schema, output, fmt)
    finally:
        sink.close()
    return cap


def _tables_for(anomalies: bool, filt: Filters | None) -> tuple[str, ...]:
    """The tables a flows output needs: the flows, the anomalies when written, and the tables
    that teach host names when --host may name one."""
    out = ("flows", "anomalies") if anomalies else ("flows",)
    return out + (("rpc_calls", "tls", "names") if filt is not None and filt.hosts else ())


def _flow_filter(
    cap: Capture, filt: Filters | None, parts: list[tuple[Path, int]], rest: pl.DataFrame
) -> pl.Expr | None:
    """The filters' row filter on the flows (`rest` in memory, `parts` on disk), once it is known
    that some flow passes it (exit 1 otherwise, before the output is opened)."""
    if not filt:
        return None
    import polars as pl

    filt.check_where(rest.schema)
    keep = filt.flows(cap)
    if keep is None:
        return None
    found = rest.filter(keep).height
    for path, _ in parts:
        if found:
            break
        found = pl.scan_parquet(path).filter(keep).select(pl.len()).collect().item()
    total = rest.height + sum(n for _, n in parts)
    if not found and total:
        raise NothingMatches(f"no flow matches the filters given ({filt.names()}): nothing to show")
    return keep


def _as_written(batches: Any, keep: pl.Expr | None, fmt: str) -> Any:
    from portwitness.formats import TEXT, text_frame

    for b in batches:
        if keep is not None:
            b = b.filter(keep)
        yield text_frame(b, fmt) if fmt in TEXT else b


RPCINFO_FORMATS = ("table", "json", "csv", "ndjson")


@cli.command()
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(RPCINFO_FORMATS),
    help="How to write the views; by default from the output file's extension, else a table. json: "
    'an object {"oncrpc": [rows], "msrpc": [rows]}. csv and ndjson: one table whose first column '
    "`kind` (oncrpc or msrpc) tells the view; `program` is empty on msrpc rows and `interface` on "
    "oncrpc rows; `proto` is tcp/udp on oncrpc rows and the protocol sequence (ncacn_ip_tcp, "
    "ncadg_ip_udp, ncacn_http) on msrpc rows.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write to a file instead of stdout (.json, .csv, .ndjson, .txt).",
)
@filter_options
@decode_options
def rpcinfo(
    captures: tuple[str, ...],
    fmt: str | None,
    output: str | None,
    max_flows: int,
    idle_timeout: float,
    **filters: Any,
) -> None:
    """Every RPC port registration seen on the wire, with the source of each row (the reply kinds
    that revealed it), first and last seen, and how many flows later used that port.

    ONC RPC: for each server, what `rpcinfo -p SERVER` would have printed (program, version,
    proto, port, name), rebuilt from portmapper and rpcbind replies (GETPORT, DUMP, SET, GETADDR,
    ...). MSRPC endpoints: for each server, the DCE/RPC interfaces (UUID, version, name) and the
    protocol sequence and port they listen on, from endpoint mapper replies (ept_map, ept_lookup)
    and bind_ack secondary addresses.

    Filters: --host, --port, --transport, --since and --until select registrations (the server,
    the port handed out, its transport, when it was seen); --where selects the flows whose replies
    are read."""
    filt = _filters(**filters)
    fmt = _output_format("rpcinfo", RPCINFO_FORMATS, fmt, output)
    from portwitness.formats import listed
    from portwitness.render import rpcinfo_table, write_frame
    from portwitness.rpcinfo import views as rpcinfo_views

    _will_write(output)
    with _spilled_decode(captures, max_flows, idle_timeout, output) as cap:
        _warn_anomalies(cap)
        oncrpc, msrpc = rpcinfo_views(cap, filt)
    if fmt == "table":
        _to_text(output, lambda console: rpcinfo_table(oncrpc, msrpc, console=console))
    elif fmt == "json":
        from portwitness.formats import text_frame

        doc = {
            "oncrpc": json.loads(text_frame(listed(oncrpc, source=","), "json").write_json()),
            "msrpc": json.loads(text_frame(listed(msrpc, source=","), "json").write_json()),
        }
        _emit(json.dumps(doc, indent=None) + "\n", output)
    else:
        write_frame(listed(_rpcinfo_csv_frame(oncrpc, msrpc), source=","), output or "-", fmt)


EXIT_FINDINGS = 3


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


def _policy(config: str | None, mgmt: str | None, policy: str | None, pipe_pair_is_range: bool):  # type: ignore[no-untyped-def]
    from portwitness.config import load_config

    if not (config or mgmt or policy):
        return None
    _reads([p for p in (config, mgmt, policy) if p])
    loaded = load_config(config, mgmt, policy, pipe_pair_is_range=pipe_pair_is_range)
    for w in loaded.warnings:
        _warn(str(w))
    return loaded


def config_options(f):  # type: ignore[no-untyped-def]
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


def _filters(
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


def _output_format(command: str, formats: tuple[str, ...], fmt: str | None, output: str | None) -> str:
    """The format `command` writes (`portwitness.formats.resolve_format`), and `-o` checked
    writable: both before anything is decoded."""
    try:
        got = resolve_format(command, formats, fmt, output)
    except FormatError as e:
        raise click.UsageError(str(e)) from None
    check_writable(output)
    return got


def _emit(text: str, output: str | None) -> None:
    if output in (None, "-"):
        click.echo(text, nl=False)
    else:
        from portwitness.outputs import write_text

        write_text(output, text)


def from_dataset_option(f):  # type: ignore[no-untyped-def]
    return click.option(
        "--from-dataset",
        "dataset",
        type=click.Path(file_okay=False),
        help="Audit a dataset written by flows CAPTURES -o DIR/ instead of decoding captures.",
    )(f)


@contextlib.contextmanager
def _load(
    captures: tuple[str, ...],
    dataset: str | None,
    max_flows: int,
    idle_timeout: float,
    output: str | None = None,
    **decode_args: Any,
) -> Iterator[Capture]:
    """The captures decoded, or the dataset read: exactly one of the two. The flows a decode
    finishes go to disk while it runs (beside `output` when there is one, else in the temporary
    directory) and are read back a batch at a time: memory holds the live flows, not every flow."""
    if dataset is not None:
        if captures:
            raise click.UsageError("give CAPTURES or --from-dataset, not both")
        from portwitness.dataset import read_dataset

        yield read_dataset(dataset, flows_on_disk=True)
        return
    if not captures:
        raise click.UsageError("missing CAPTURES (or --from-dataset DIR)")
    with _spilled_decode(captures, max_flows, idle_timeout, output, **decode_args) as cap:
        yield cap


@contextlib.contextmanager
def _spilled_decode(
    captures: tuple[str, ...], max_flows: int, idle_timeout: float, output: str | None, **decode_args: Any
) -> Iterator[Capture]:
    """The captures decoded with their finished flows kept on disk (`Capture.keep_flows_on_disk`)
    until the block ends."""
    from portwitness.spill import FlowSpill, release_free_memory

    beside = None if to_stdout(output) else Path(str(output)).parent
    try:
        spill = FlowSpill(beside, None if beside is None else output)
    except OSError as e:
        if beside is None:
            raise
        # The spill's directory goes beside the output: its error is the output's.
        raise OSError(e.errno, e.strerror, output) from None
    sink = _GuardedSink(spill)
    try:
        cap = _decode(captures, max_flows, idle_timeout, flow_sink=sink, **decode_args)
        if spill.parts:
            release_free_memory()
            cap = cap.keep_flows_on_disk(spill)
        yield cap
    finally:
        sink.close()


REPORT_FORMATS = ("table", "json", "csv", "markdown", "html")


@cli.command()
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
    filt = _filters(**filters)
    fmt = _output_format("report", REPORT_FORMATS, fmt, output)
    _will_write(output)
    pol = _policy(config, mgmt_config, policy, pipe_pair_is_range)
    with _load(captures, dataset, max_flows, idle_timeout, output) as cap:
        _warn_anomalies(cap)
        a = _audit(cap, pol, filt=filt, spill_dir=_spill_dir(output))
        try:
            _write_report(a, fmt, output, limit)
        finally:
            a.close()
    return _findings_exit(a, fail_on)


def _spill_dir(output: str | None) -> Path | None:
    """Where a command keeps what grows with the flows: beside its output, else the temporary directory."""
    return None if to_stdout(output) else Path(str(output)).parent


def _audit(cap: Capture, pol, window=(None, None), hosts=(), filt: Filters | None = None, spill_dir=None):  # type: ignore[no-untyped-def]
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


def _report_format(output: str | None) -> str:
    """A report's format from `-o`'s extension alone (the one resolver, with the report's formats)."""
    return _output_format("report", REPORT_FORMATS, None, output)


def _write_report(a, fmt: str, output: str | None, limit: int = 20) -> None:  # type: ignore[no-untyped-def]
    from portwitness.render import write_frame
    from portwitness.render.html import report_html
    from portwitness.render.markdown import markdown
    from portwitness.render.report_doc import document, findings
    from portwitness.render.terminal import print_report

    if fmt == "table":
        _to_text(output, lambda console: print_report(a, console, limit=limit))
    elif fmt == "json":
        _emit(json.dumps(document(a), indent=2) + "\n", output)
    elif fmt == "csv":
        write_frame(findings(a), output or "-", "csv")
    elif fmt == "markdown":
        _emit(markdown(a, limit), output)
    else:
        _emit(report_html(a, limit), output)


def _findings_exit(a, fail_on: tuple[str, ...]) -> int:  # type: ignore[no-untyped-def]
    hit = [k for k in fail_on if a.findings(k)]
    if hit:
        _warn(f"failing on {', '.join(f'{a.findings(k)} {k}' for k in hit)}")
        return EXIT_FINDINGS
    return 0


USAGE_FORMATS = ("table", "csv", "json", "ndjson", "parquet")


@cli.command()
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
    filt = _filters(**filters)
    fmt = _output_format("usage", USAGE_FORMATS, fmt, output)
    from portwitness.formats import listed
    from portwitness.render import write_frame

    _will_write(output)
    pol = _policy(config, mgmt_config, policy, pipe_pair_is_range)
    with _load(captures, dataset, max_flows, idle_timeout, output) as cap:
        _warn_anomalies(cap)
        a = _audit(cap, pol, filt=filt, spill_dir=_spill_dir(output))
        try:
            df = listed(a.usage(by), ports=";", evidence=",")
        finally:
            a.close()
    if fmt == "table":
        from portwitness.render.terminal import print_frame

        shown = df if limit == 0 else df.head(limit)
        title = f"Usage by {by}: {df.height} rows" + (
            f", first {shown.height}" if shown.height < df.height else ""
        )
        _to_text(output, lambda console: print_frame(console, title, shown))
    else:
        write_frame(df, output or "-", fmt)


@cli.group()
def dataset() -> None:
    """Check and repair datasets written by flows CAPTURES -o DIR/."""


@dataset.command("check")
@click.argument("directory", type=click.Path(file_okay=False))
def dataset_check(directory: str) -> int:
    """Verify the dataset in DIRECTORY: the manifest reads, every committed part exists, reads and
    holds the rows the manifest says, nothing lies there that no committed run holds (what a killed
    writer left), and run numbers and flow ids are unique. Exit 0 when sound, 1 with one line per
    problem."""
    from portwitness.dataset import check

    got = check(directory)
    for p in got.problems:
        click.echo(f"portwitness: {p}", err=True)
    if got.problems:
        return EXIT_UNREADABLE
    click.echo(
        f"portwitness: dataset {directory}: ok, {got.runs} runs, {got.captures} captures, {got.flows} flows",
        err=True,
    )
    return 0


@dataset.command("repair")
@click.argument("directory", type=click.Path(file_okay=False))
def dataset_repair(directory: str) -> int:
    """Make the dataset in DIRECTORY what its manifest commits: remove what no committed run holds
    (parts of a run that was killed, temporary files) and drop the captures whose committed parts
    are missing or damaged. One line per change; then `dataset check` passes."""
    from portwitness.dataset import repair

    said = repair(directory)
    for line in said:
        click.echo(f"portwitness: {line}", err=True)
    if not said:
        click.echo(f"portwitness: dataset {directory}: nothing to repair", err=True)
    return 0


@cli.group()
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

    fmt = _output_format("config check", PLAN_FORMATS, fmt, output)
    _will_write(output)
    _reads(list(files))
    pol = Policy()
    for f in files:
        kind = _config_kind(f)
        pol.extend(load_config(**{kind: f}, pipe_pair_is_range=pipe_pair_is_range))
    for w in pol.warnings:
        _warn(str(w))
    plan = port_plan(pol, include_catalog=with_catalog)
    if fmt == "table":
        from portwitness.render.terminal import print_frame

        _to_text(output, lambda console: print_frame(console, f"Port plan: {plan.height} rules", plan))
    elif fmt == "json":
        _emit(
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


@cli.command()
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

    fmt = _output_format("demo", REPORT_FORMATS, fmt, output)
    _will_write(output)
    cap, pol = load()
    for w in pol.warnings:
        _warn(str(w))
    a = _audit(cap, pol)
    _write_report(a, fmt, output)
    return _findings_exit(a, fail_on)


@cli.command()
@click.argument("capture", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--against",
    default="tshark,dpkt",
    show_default=True,
    help="Comma separated peers: tshark (defaults and a minimal profile), dpkt, scapy, nfpcapd, argus.",
)
@click.option(
    "--runs", type=click.IntRange(min=1), default=3, show_default=True, help="Runs per tool (medians)."
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
def bench(capture: str, against: str, runs: int, json_out: str | None) -> int:
    """Time portwitness on CAPTURE side by side with other tools, in one run, page cache warm:
    wall time, MB/s, packets/s, peak RSS and portwitness's speed-up over each."""
    from portwitness import bench as harness

    argv = [capture, "--against", against, "--runs", str(runs)]
    if json_out:
        argv += ["--json", json_out]
    try:
        return harness.main(argv, prog="portwitness bench")
    except SystemExit as e:  # argparse's own usage errors
        if e.code not in (0, None):
            raise click.UsageError(f"bad --against value {against!r}") from None
        return 0


def _is_dataset_target(output: str | None) -> bool:
    """Whether `-o OUTPUT` names a dataset directory: it ends with a slash or is a directory."""
    if not output or output == "-":
        return False
    return output.endswith(("/", "\\")) or Path(output).is_dir()


def _rpcinfo_csv_frame(oncrpc: pl.DataFrame, msrpc: pl.DataFrame) -> pl.DataFrame:
    """Both rpcinfo views as one table, told apart by `kind` (see `rpcinfo --help`)."""
    import polars as pl

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


# Built from this module's options and loaders, which it reuses (so imported once they exist).
from portwitness.firewall.cli import group as _firewall_group  # noqa: E402

cli.add_command(_firewall_group(sys.modules[__name__]))


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the group, turns every error into one line and an exit code."""
    from portwitness import outputs

    outputs.reset()
    # SIGTERM raises, as Ctrl-C does, so that temporary files and spills are removed on the way out.
    with handle_sigterm():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="portwitness", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except SystemExit:
        # click ends a write to a closed pipe with exit 1, having wrapped stdout to stay quiet.
        if _pacified(sys.stdout):
            return _closed_pipe()
        raise
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        click.echo(f"portwitness: error: {e.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.ClickException as e:
        click.echo(f"portwitness: error: {e.format_message()}", err=True)
        return e.exit_code
    except Terminated:
        # SIGTERM (outputs.Terminated, a KeyboardInterrupt): temporary files are gone by now.
        _quiet_stdout()
        click.echo("portwitness: error: terminated", err=True)
        return 143
    except (Interrupted, KeyboardInterrupt):
        _quiet_stdout()
        click.echo("portwitness: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.Abort as e:
        # click makes Ctrl-C (and so SIGTERM, see `outputs.Terminated`) an Abort.
        if isinstance(e.__cause__, Terminated):
            click.echo("portwitness: error: terminated", err=True)
            return 143
        click.echo("portwitness: error: aborted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _closed_pipe()
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
        if e.errno == errno.EPIPE or "os error 32" in str(e):
            return _closed_pipe()
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"portwitness: error: {where}{e.strerror or e}", err=True)
        return EXIT_UNREADABLE
    except CaptureFormatError as e:
        click.echo(f"portwitness: error: {e}", err=True)
        return EXIT_UNREADABLE
    except OutputIsInputError as e:
        click.echo(f"portwitness: error: {e}", err=True)
        return EXIT_USAGE
    except PortwitnessError as e:
        click.echo(f"portwitness: error: {e}", err=True)
        # A configuration's error can only come once its model was loaded (5 ms, on demand); a
        # --host value that names nothing is a usage error too.
        model = sys.modules.get("portwitness.config.model")
        hosts = sys.modules.get("portwitness.audit.hosts")
        usage = (
            (model is not None and isinstance(e, model.ConfigError))
            or (hosts is not None and isinstance(e, hosts.HostFilterError))
            or isinstance(e, FilterError)
        )
        return EXIT_USAGE if usage else EXIT_UNREADABLE
    except Exception as e:
        # Errors of modules loaded on demand: when they were not loaded, they were not raised.
        polars = sys.modules.get("polars")
        if polars is not None and isinstance(e, polars.exceptions.PolarsError):
            if "os error 32" in str(e) or "Broken pipe" in str(e):
                return _closed_pipe()
            click.echo(f"portwitness: error: writing the output failed: {e}", err=True)
            return EXIT_UNREADABLE
        raise


EXIT_INTERRUPTED = 130
# A reader that closed the pipe (`| head`): the status a process killed by SIGPIPE has in a shell.
EXIT_CLOSED_PIPE = 128 + 13


def _pacified(stream: Any) -> bool:
    """Whether click wrapped `stream` after a closed pipe (its wrapper class is public before click
    8.5, private and the public name deprecated since: told by name, not imported)."""
    return type(stream).__name__ in ("PacifyFlushWrapper", "_PacifyFlushWrapper") and hasattr(
        stream, "wrapped"
    )


def _quiet_stdout() -> None:
    """Points stdout at /dev/null: what is still buffered for a reader that is gone (a closed
    pipe, an interrupted run) is dropped instead of failing again at the exit's flush."""
    if _pacified(sys.stdout):
        sys.stdout = sys.stdout.wrapped  # type: ignore[attr-defined]
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _closed_pipe() -> int:
    _quiet_stdout()
    return EXIT_CLOSED_PIPE


def entry() -> None:
    """The console script: `main`, then the exit. Once the command is done and its outputs are
    written and closed, the interpreter's teardown (every module and object freed, the heap
    consolidated, a last garbage collection: 10-18 ms after a 2 GB decode, 4 % of the command)
    does nothing anyone needs, so it is skipped, unless another thread still runs or a library
    that registers work for the exit (a cluster client, a process pool) was loaded."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _closed_pipe()
    except (OSError, ValueError):
        pass
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    if code == EXIT_INTERRUPTED:
        # The decode's worker may still run in the core: the process ends now, without it.
        os._exit(code)
    if threading.active_count() == 1 and not _EXIT_WORK.intersection(sys.modules):
        os._exit(code)
    sys.exit(code)


# Libraries whose exit handlers do work: close cluster connections, shut down worker processes.
_EXIT_WORK = frozenset({"distributed", "multiprocessing", "concurrent.futures.process"})


if __name__ == "__main__":
    entry()
