"""`portwitness flows`: the table of flows, on the terminal, in a file of any table format or as a
Parquet dataset; the flows table is written a batch at a time, never held whole."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portwitness.capture import SPILL_ROWS, Capture
from portwitness.commands.context import will_write
from portwitness.commands.load import GuardedSink, decode_captures, spilled_decode
from portwitness.commands.options import decode_options, filter_options, read_filters
from portwitness.commands.output import is_dataset_target, output_format, to_text, warn_anomalies
from portwitness.filters import Filters, NothingMatches

if TYPE_CHECKING:
    import polars as pl

FLOW_FORMATS = ("table", "parquet", "csv", "json", "ndjson", "zeek", "zeek-json")
TABLE_FORMATS = ("parquet", "csv", "json", "ndjson")


@click.command()
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
    filt = read_filters(**filters)
    an_fmt = None
    if anomalies_out:
        an_fmt = output_format("--anomalies", TABLE_FORMATS + ("table",), None, anomalies_out)
        an_fmt = "csv" if an_fmt == "table" else an_fmt
    # The render and dataset modules load polars: imported once the decode is under way.
    will_write(None if is_dataset_target(output) else output, anomalies_out)
    if is_dataset_target(output):
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
        with spilled_decode(captures, max_flows, idle_timeout, beside) as cap:
            warn_anomalies(cap)
            run = write_dataset(cap, output or ".")
        click.echo(
            f"portwitness: dataset {output}: run {run['run']} added {run['rows']['flows']} flows of "
            f"{len(run['captures'])} {'capture' if len(run['captures']) == 1 else 'captures'}",
            err=True,
        )
        if anomalies_out and an_fmt:
            write_frame(cap.anomalies, anomalies_out, an_fmt)
        return
    fmt = output_format("flows", FLOW_FORMATS, fmt, output)
    if fmt == "table":
        from portwitness.render import flows_table

        with spilled_decode(captures, max_flows, idle_timeout, output) as cap:
            warn_anomalies(cap)
            top, total = _top_flows(cap, filt, limit)
        to_text(
            output,
            lambda console: flows_table(top, limit=limit, stats=cap.stats, console=console, total=total),
        )
    elif fmt in ("zeek", "zeek-json"):
        cap = decode_captures(captures, max_flows, idle_timeout)
        warn_anomalies(cap)
        shown = _filtered_flows(cap, filt)
        from portwitness.render.zeek import write_conn_log, write_json_log

        writer = write_conn_log if fmt == "zeek" else write_json_log
        to_text(output, lambda console: writer(shown, console.file))
    else:
        cap = _spilled_flows(
            captures, max_flows, idle_timeout, output or "-", fmt, spill_rows, bool(anomalies_out), filt
        )
    if anomalies_out and an_fmt:
        from portwitness.render import write_frame

        write_frame(cap.anomalies, anomalies_out, an_fmt)


def _top_flows(cap: Capture, filt: Filters, limit: int) -> tuple[pl.DataFrame, int]:
    """The `limit` flows (0: all) with the most bytes that the filters select, and how many they
    select, read a batch at a time; refuses filters that leave none (exit 1)."""
    import polars as pl

    keep = None
    if filt:
        filt.check_where(cap.flow_schema)
        keep = filt.flows(cap)
    by, descending = ["_bytes", "flow_id"], [True, False]
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
            top = top.sort(by, descending=descending).head(limit)
    if not total and seen:
        raise NothingMatches(f"no flow matches the filters given ({filt.names()}): nothing to show")
    assert top is not None
    return top.sort(by, descending=descending).drop("_bytes"), total


def _filtered_flows(cap: Capture, filt: Filters) -> pl.DataFrame:
    """The flows the filters select; refuses filters that leave none (exit 1)."""
    if not filt:
        return cap.flows
    filt.check_where(cap.flows.schema)
    out = cap.flows.filter(filt.flows(cap))
    if out.is_empty() and not cap.flows.is_empty():
        raise NothingMatches(f"no flow matches the filters given ({filt.names()}): nothing to show")
    return out


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
    sink = GuardedSink(spill)
    # Parquet of every flow is written by the core from its Arrow table: polars is needed only if
    # the flows spill (loaded then).
    whole_parquet = fmt == "parquet" and not filt
    try:
        cap = decode_captures(
            captures,
            max_flows,
            idle_timeout,
            polars=not whole_parquet,
            flow_sink=sink,
            spill_rows=spill_rows,
            tables=_tables_for(anomalies, filt),
        )
        if whole_parquet and not spill.parts:
            warn_anomalies(cap)
            write_parquet(cap.arrow("flows"), output)
            return cap
        rest = cap.flows
        if spill.parts:
            # Only a merge of parts adds much to what is in use (5 ms on a 2 GB decode otherwise).
            release_free_memory()
            # Filters (a --host of any flow's address) read every flow, a batch at a time.
            cap = cap.keep_flows_on_disk(spill)
        warn_anomalies(cap)
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
