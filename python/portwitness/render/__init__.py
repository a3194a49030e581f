"""Renderers: rich tables for the terminal and files by format; the report's forms live in their
own modules (report_doc, terminal, markdown, html). Strings from the wire are printed through rich's
markup escaping and with control characters neutralised."""

from __future__ import annotations

import sys

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table


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


def _console() -> Console:
    # Off a terminal (pipes, CI logs) nothing tells the width: keep addresses whole.
    return Console(file=sys.stdout, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _table(title: str, columns: list[tuple[str, str]], *, no_wrap: tuple[str, ...] = ()) -> Table:
    t = Table(title=title, title_justify="left")
    for col, just in columns:
        t.add_column(col, justify=just, no_wrap=col in no_wrap)  # type: ignore[arg-type]
    return t


def flows_table(flows: pl.DataFrame, *, limit: int, stats: dict[str, int]) -> None:
    console = _console()
    top = flows.with_columns((pl.col("bytes_c2s") + pl.col("bytes_s2c")).alias("_bytes")).sort(
        ["_bytes", "flow_id"], descending=[True, False]
    )
    if limit:
        top = top.head(limit)
    title = f"{flows.height} flows" + (f", top {top.height} by bytes" if top.height < flows.height else "")
    t = _table(
        title,
        [
            ("proto", "left"),
            ("client", "left"),
            ("server", "left"),
            ("outcome", "left"),
            ("pkts →/←", "right"),
            ("bytes →/←", "right"),
            ("first seen (UTC)", "left"),
            ("duration", "right"),
        ],
        no_wrap=("client", "server"),
    )
    for r in top.iter_rows(named=True):
        dur = (r["last_ts"] - r["first_ts"]).total_seconds()
        vlan = f" vlan {r['vlan']}" if r["vlan"] is not None else ""
        t.add_row(
            r["transport"] + vlan,
            safe(_endpoint(r["client_ip"], r["client_port"])),
            safe(_endpoint(r["server_ip"], r["server_port"])),
            r["outcome"] or "",
            f"{r['packets_c2s']}/{r['packets_s2c']}",
            f"{_human(r['bytes_c2s'])}/{_human(r['bytes_s2c'])}",
            r["first_ts"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            f"{dur:.3f}s",
        )
    console.print(t)
    console.print(
        f"{stats.get('records', 0)} packets, {_human(stats.get('frame_bytes', 0))}, "
        f"{stats.get('tcp', 0)} TCP / {stats.get('udp', 0)} UDP segments, "
        f"{stats.get('icmp', 0) + stats.get('icmpv6', 0)} ICMP, {stats.get('non_ip', 0)} non-IP"
    )


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def write_frame(df: pl.DataFrame, output: str, fmt: str) -> None:
    """Writes a frame to a path (whole or not at all: `outputs.atomic_output`) or `-` (stdout)
    in the given format."""
    if fmt == "table":
        fmt = "csv"
    writers = {
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


# The headers of the rpcinfo views' leading columns (numbers right-justified); every view then ends with
# where a row came from, when, and how often it was used.
_ONC_HEADERS = ("server", "program", "vers", "proto", "port", "service")
_MSRPC_HEADERS = ("interface", "vers", "name", "protocol", "port")
_LEARNED_COLUMNS = [
    ("source", "left"),
    ("first seen (UTC)", "left"),
    ("last seen (UTC)", "left"),
    ("flows after", "right"),
]


def _learned_table(title: str, headers: tuple[str, ...], df: pl.DataFrame) -> Table:
    """A view whose first columns get `headers`, then the _LEARNED_COLUMNS."""
    keys = df.columns[: len(headers)]
    justify = ["right" if df.schema[k].is_numeric() else "left" for k in keys]
    t = _table(title, list(zip(headers, justify, strict=True)) + _LEARNED_COLUMNS, no_wrap=headers[:1])
    for r in df.iter_rows(named=True):
        t.add_row(
            *(safe(r[k]) for k in keys),
            r["source"],
            r["first_seen"].strftime("%Y-%m-%d %H:%M:%S"),
            r["last_seen"].strftime("%Y-%m-%d %H:%M:%S"),
            str(r["flows_after"]),
        )
    return t


def rpcinfo_table(df: pl.DataFrame, msrpc: pl.DataFrame | None = None) -> None:
    """The ONC RPC registrations, then (when `msrpc` is given) one table of Microsoft RPC endpoints
    per server."""
    console = _console()
    if df.is_empty():
        console.print("no ONC RPC registration seen")
    else:
        console.print(_learned_table(f"{df.height} RPC registrations seen on the wire", _ONC_HEADERS, df))
    if msrpc is None:
        return
    if msrpc.is_empty():
        console.print("no MSRPC endpoint seen")
    for (server,), rows in msrpc.group_by("server", maintain_order=True):
        console.print(
            _learned_table(
                f"{rows.height} MSRPC endpoints of {safe(server)}", _MSRPC_HEADERS, rows.drop("server")
            )
        )
