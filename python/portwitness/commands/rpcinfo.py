"""`portwitness rpcinfo`: the RPC port registrations seen on the wire, ONC RPC and MSRPC."""

from __future__ import annotations

import json
from typing import Any

import click

from portwitness.commands.context import will_write
from portwitness.commands.load import spilled_decode
from portwitness.commands.options import decode_options, filter_options, read_filters
from portwitness.commands.output import emit, output_format, to_text, warn_anomalies

RPCINFO_FORMATS = ("table", "json", "csv", "ndjson")


@click.command()
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
    filt = read_filters(**filters)
    fmt = output_format("rpcinfo", RPCINFO_FORMATS, fmt, output)
    from portwitness.formats import listed
    from portwitness.render import rpcinfo_table, write_frame
    from portwitness.rpcinfo import one_table
    from portwitness.rpcinfo import views as rpcinfo_views

    will_write(output)
    with spilled_decode(captures, max_flows, idle_timeout, output) as cap:
        warn_anomalies(cap)
        oncrpc, msrpc = rpcinfo_views(cap, filt)
    if fmt == "table":
        to_text(output, lambda console: rpcinfo_table(oncrpc, msrpc, console=console))
    elif fmt == "json":
        from portwitness.formats import text_frame

        doc = {
            "oncrpc": json.loads(text_frame(listed(oncrpc, source=","), "json").write_json()),
            "msrpc": json.loads(text_frame(listed(msrpc, source=","), "json").write_json()),
        }
        emit(json.dumps(doc, indent=None) + "\n", output)
    else:
        write_frame(listed(one_table(oncrpc, msrpc), source=","), output or "-", fmt)
