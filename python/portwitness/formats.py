"""The output contract every command keeps: which format a command writes (one resolver for
`--format` and `-o FILE`'s extension), the check that `-o` can be written before anything is
decoded, and how cells are written in the text formats (CSV, JSON, NDJSON): times RFC 3339 UTC
with `Z`, lists as JSON arrays (`;`-joined in CSV), and CSV cells a spreadsheet would run as a
formula neutralised.

polars is imported where it is used: the resolver and the check run before the decode, while
polars loads on another thread."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

from portwitness.errors import ArgumentError

if TYPE_CHECKING:
    import polars as pl


class FormatError(ArgumentError):
    """A format that cannot be told, or that the command cannot write (exit 2)."""


# What an extension may hold, the usual reading first.
BY_EXTENSION: dict[str, tuple[str, ...]] = {
    "parquet": ("parquet",),
    "csv": ("csv",),
    "json": ("json", "zeek-json"),
    "ndjson": ("ndjson", "zeek-json"),
    "jsonl": ("ndjson", "zeek-json"),
    "md": ("markdown",),
    "markdown": ("markdown",),
    "html": ("html",),
    "htm": ("html",),
    "txt": ("table",),
    "text": ("table",),
    "log": ("zeek", "zeek-json", "table"),
    "tsv": ("zeek",),
}
# Formats written as text a spreadsheet or a JSON reader takes (the frame writers' formats).
TEXT = ("csv", "json", "ndjson")
NAMES = {
    "table": "a text table",
    "parquet": "Parquet",
    "csv": "CSV",
    "json": "JSON",
    "ndjson": "NDJSON",
    "markdown": "Markdown",
    "html": "HTML",
    "zeek": "a Zeek conn.log",
    "zeek-json": "Zeek JSON",
}


def to_stdout(output: str | None) -> bool:
    return output in (None, "-")


def resolve_format(command: str, formats: tuple[str, ...], fmt: str | None, output: str | None) -> str:
    """The format `command` writes: `--format` when given, else `-o`'s extension, else a table.
    Refuses an extension and a `--format` that disagree, an extension nothing reads and a format
    the command cannot write (FormatError, exit 2)."""
    ext = None if to_stdout(output) else Path(str(output)).suffix.lower().lstrip(".")
    readings = BY_EXTENSION.get(ext or "")
    if fmt is not None:
        if fmt not in formats:
            raise FormatError(f"{command} cannot write {NAMES.get(fmt, fmt)}: it writes {', '.join(formats)}")
        if readings and fmt not in readings:
            raise FormatError(
                f"-o {output} is {NAMES[readings[0]]} by its extension but --format is {fmt}: "
                "give one, or make them agree"
            )
    elif ext is None:
        fmt = "table"
    elif not readings:
        known = sorted(e for e, r in BY_EXTENSION.items() if any(f in formats for f in r))
        raise FormatError(
            f"cannot tell the format of {output!r}: {command} writes {', '.join('.' + e for e in known)}, "
            "or give --format"
        )
    else:
        fmt = next((f for f in readings if f in formats), None)
        if fmt is None:
            raise FormatError(
                f"{command} cannot write {NAMES[readings[0]]} (-o {output}): it writes {', '.join(formats)}"
            )
    if fmt == "parquet" and to_stdout(output):
        raise FormatError("Parquet needs an output file (-o FILE.parquet)")
    return fmt


def check_writable(output: str | None) -> None:
    """Raises the OSError that writing `output` would meet, before anything is decoded: its
    directory missing or not writable, or the file itself a directory or read-only."""
    if to_stdout(output):
        return
    path = Path(str(output))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(output))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(output))
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(output))


# A cell a spreadsheet would read as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.9fZ"


def text_frame(df: pl.DataFrame, fmt: str) -> pl.DataFrame:
    """`df` as the text formats write it: every time an RFC 3339 UTC string ending in `Z`; in
    CSV, a list `;`-joined and a text cell that starts like a formula prefixed with a single
    quote (numbers are numbers in their own columns, left alone); in JSON a list stays an array."""
    import polars as pl

    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is None:
                col = col.dt.replace_time_zone("UTC")
            exprs.append(col.dt.convert_time_zone("UTC").dt.strftime(TIME_FORMAT).alias(name))
        elif fmt == "csv" and isinstance(dtype, (pl.List, pl.Array)):
            exprs.append(_neutral(col.cast(pl.List(pl.String)).list.join(";")).alias(name))
        elif fmt == "csv" and dtype == pl.String:
            exprs.append(_neutral(col).alias(name))
    return df.with_columns(exprs) if exprs else df


def _neutral(col: pl.Expr) -> pl.Expr:
    import polars as pl

    starts = pl.any_horizontal([col.str.starts_with(s) for s in FORMULA_START])
    return pl.when(starts).then(pl.lit("'") + col).otherwise(col)


def listed(df: pl.DataFrame, **separators: str) -> pl.DataFrame:
    """`df` with its joined-string columns (`column=separator`) as lists: arrays in JSON, NDJSON
    and Parquet, `;`-joined in CSV."""
    import polars as pl

    exprs = []
    for c, sep in separators.items():
        if c not in df.columns or df.schema[c] != pl.String:
            continue
        items = (
            pl.when(pl.col(c) == "").then(pl.lit([], pl.List(pl.String))).otherwise(pl.col(c).str.split(sep))
        )
        exprs.append((items.cast(pl.List(pl.UInt16)) if c == "ports" else items).alias(c))
    return df.with_columns(exprs) if exprs else df
