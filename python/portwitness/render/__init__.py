"""Renderers: rich tables for the terminal and files by format; the report's forms live in their
own modules (report_doc, terminal, markdown, html). Strings from the wire are printed through rich's
markup escaping and with control characters neutralised."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import IO, Any

import polars as pl
from rich.console import Console
from rich.markup import escape

from portwitness.formats import TEXT as TEXT_FORMATS
from portwitness.formats import text_frame

from .fit import COUNT, ID, TEXT, TIME, Col, print_table, visible


def safe(text: object) -> str:
    """A string from the wire, fit for a terminal: control characters and escapes made visible."""
    s = "" if text is None else str(text)
    s = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in s)
    return escape(s)


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit with 1; the command line ends a closed pipe as every such command does.
        raise BrokenPipeError(32, "Broken pipe")


def _console() -> Console:
    # Off a terminal (pipes, files, CI logs) the tables are plain aligned text, never cut (fit.py).
    return _Console(file=sys.stdout, soft_wrap=False)


def file_console(fh: IO[str]) -> Console:
    """A console writing to the file `fh`: no terminal, so its tables are plain text, never cut."""
    return Console(file=fh, soft_wrap=False, width=200)


def rfc3339(t: datetime | None, digits: int = 0) -> str:
    """A time as RFC 3339 UTC with `Z`, to the second or with `digits` of its fraction."""
    if t is None:
        return ""
    t = t.astimezone(timezone.utc) if t.tzinfo else t
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{t.microsecond:06d}"[:digits]
    return text + "Z"


FLOW_COLUMNS = [
    Col("proto", ID),
    Col("client", ID),
    Col("server", ID),
    Col("outcome", ID),
    Col("security", ID),
    Col("tls", ID),
    Col("pkts →/←", COUNT, "right"),
    Col("bytes →/←", COUNT, "right"),
    Col("first seen (UTC)", TIME),
    Col("duration", COUNT, "right"),
    Col("community id", TEXT),
]


def flows_table(
    flows: pl.DataFrame,
    *,
    limit: int,
    stats: dict[str, int],
    console: Console | None = None,
    total: int | None = None,
) -> None:
    """The `limit` flows (0: all) with the most bytes. `total`: how many flows there were in all
    when `flows` holds only those already chosen (read a batch at a time)."""
    console = console or _console()
    top = flows.with_columns((pl.col("bytes_c2s") + pl.col("bytes_s2c")).alias("_bytes")).sort(
        ["_bytes", "flow_id"], descending=[True, False]
    )
    if limit:
        top = top.head(limit)
    total = flows.height if total is None else total
    title = f"{total} flows" + (f", top {top.height} by bytes" if top.height < total else "")
    rows = []
    for r in top.iter_rows(named=True):
        dur = (r["last_ts"] - r["first_ts"]).total_seconds()
        vlan = f" vlan {r['vlan']}" if r["vlan"] is not None else ""
        rows.append(
            [
                r["transport"] + vlan,
                _endpoint(r["client_ip"], r["client_port"]),
                _endpoint(r["server_ip"], r["server_port"]),
                r["outcome"] or "",
                r["security"] or "",
                r["tls_version"] or "",
                f"{r['packets_c2s']}/{r['packets_s2c']}",
                f"{_human(r['bytes_c2s'])}/{_human(r['bytes_s2c'])}",
                rfc3339(r["first_ts"], 3),
                f"{dur:.3f}s",
                r.get("community_id") or "",
            ]
        )
    print_table(console, title, FLOW_COLUMNS, rows)
    console.print(
        f"{stats.get('records', 0)} packets, {_human(stats.get('frame_bytes', 0))}, "
        f"{stats.get('tcp', 0)} TCP / {stats.get('udp', 0)} UDP segments, "
        f"{stats.get('icmp', 0) + stats.get('icmpv6', 0)} ICMP, {stats.get('non_ip', 0)} non-IP",
        soft_wrap=True,
    )


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def write_frame(df: pl.DataFrame, output: str, fmt: str) -> None:
    """Writes a frame to a path (whole or not at all: `outputs.atomic_output`) or `-` (stdout) in
    the given format (`portwitness.formats`: times RFC 3339, lists `;`-joined and formula-like
    cells neutralised in CSV)."""
    if fmt == "table":
        fmt = "csv"
    if fmt in TEXT_FORMATS:
        df = text_frame(df, fmt)
    writers: dict[str, Callable[[Any], object]] = {
        "parquet": df.write_parquet,
        "csv": df.write_csv,
        "json": df.write_json,
        "ndjson": df.write_ndjson,
    }
    write = writers.get(fmt)
    if write is None:
        raise ValueError(f"unknown format {fmt}")
    if output == "-":
        write(sys.stdout.buffer)
        return
    from portwitness.outputs import atomic_output

    with atomic_output(output) as tmp:
        try:
            write(tmp)
        except OSError as e:
            from portwitness.spill import output_error

            raise output_error(e, output) from None


# The rpcinfo views' leading columns (identities, never cut); every view then ends with where a row
# came from, when, and how often it was used.
_ONC_COLUMNS = [
    Col("server", ID),
    Col("program", ID, "right"),
    Col("vers", ID, "right"),
    Col("proto", ID),
    Col("port", ID, "right"),
    Col("service", ID),
]
_MSRPC_COLUMNS = [
    Col("interface", ID),
    Col("vers", ID),
    Col("name", ID),
    Col("protocol", ID),
    Col("port", ID, "right"),
]
_LEARNED_COLUMNS = [
    Col("source", TEXT),
    Col("first seen (UTC)", TIME),
    Col("last seen (UTC)", TIME),
    Col("flows after", COUNT, "right"),
]


def _learned_rows(df: pl.DataFrame, n: int) -> list[list[object]]:
    keys = df.columns[:n]
    return [
        [
            *(r[k] for k in keys),
            ", ".join(r["source"]) if isinstance(r["source"], list) else r["source"],
            rfc3339(r["first_seen"]),
            rfc3339(r["last_seen"]),
            r["flows_after"],
        ]
        for r in df.iter_rows(named=True)
    ]


def rpcinfo_table(
    df: pl.DataFrame, msrpc: pl.DataFrame | None = None, console: Console | None = None
) -> None:
    """The ONC RPC registrations, then (when `msrpc` is given) one table of Microsoft RPC endpoints
    per server."""
    console = console or _console()
    if df.is_empty():
        console.print("no ONC RPC registration seen")
    else:
        print_table(
            console,
            f"{df.height} RPC registrations seen on the wire",
            _ONC_COLUMNS + _LEARNED_COLUMNS,
            _learned_rows(df, len(_ONC_COLUMNS)),
        )
    if msrpc is None:
        return
    if msrpc.is_empty():
        console.print("no MSRPC endpoint seen")
    for (server,), rows in msrpc.group_by("server", maintain_order=True):
        print_table(
            console,
            f"{rows.height} MSRPC endpoints of {visible(server)}",
            _MSRPC_COLUMNS + _LEARNED_COLUMNS,
            _learned_rows(rows.drop("server"), len(_MSRPC_COLUMNS)),
        )
