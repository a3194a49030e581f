"""A dataset's format: its names, where rows are filed, capture keys and the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from portwitness import _core
from portwitness.errors import PortwitnessError

if TYPE_CHECKING:
    from polars._typing import PolarsDataType


FORMAT = "portwitness.dataset/1"
MANIFEST = "portwitness-dataset.json"
LOCK = "portwitness-dataset.lock"
TABLES = _core.TABLES
# The time a row is filed under, per table.
TIME_COLUMN = {
    "flows": "first_ts",
    "rpc_calls": "call_ts",
    "mappings": "ts",
    "dcerpc_calls": "ts",
    "tls": "ts",
    "names": "ts",
    "captures": "first_ts",
}
# The schema of each table added after the dataset format, for datasets written before it (a test
# holds them equal to the core's).
ADDED_LATER: dict[str, dict[str, PolarsDataType]] = {
    "names": {
        "ts": pl.Datetime("ns", "UTC"),
        "flow_id": pl.UInt64,
        "name": pl.String,
        "ip": pl.String,
        "source": pl.String,
        "record": pl.String,
        "ttl": pl.UInt32,
        "canonical": pl.String,
        "sender_ip": pl.String,
    }
}
# Tables that say which capture a row came from through its flow.
BY_FLOW = ("rpc_calls", "mappings", "dcerpc_calls", "tls", "names")
# Rows per row group of a part: a reader taking the flows back a slice at a time decodes little
# more than the slice.
ROW_GROUP = 16_384
# Rows whose capture is none of the run's (kept with the run, never replaced).
UNKNOWN = "unknown"
# Bytes hashed at each end of a capture for its fingerprint.
FINGERPRINT_BLOCK = 64 << 10
# How long a writer waits for another writer of the same dataset (seconds); the environment
# variable overrides it (0: fail at once).
LOCK_TIMEOUT = 120.0
LOCK_TIMEOUT_ENV = "PORTWITNESS_DATASET_LOCK_TIMEOUT"
_PART = re.compile(r"^run-(\d+)(?:-\d+)?\.parquet$")


class DatasetError(PortwitnessError):
    """A directory that is not (or not yet) a portwitness dataset, one written by another format,
    a damaged one, or one another writer holds."""


def fingerprint(path: str) -> str | None:
    """`size:sha256(first and last FINGERPRINT_BLOCK bytes)` of a regular file; None for what
    cannot be read again (stdin, a FIFO, a device) or no longer exists."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            h = hashlib.sha256(f.read(FINGERPRINT_BLOCK))
            if st.st_size > FINGERPRINT_BLOCK:
                f.seek(max(FINGERPRINT_BLOCK, st.st_size - FINGERPRINT_BLOCK))
                h.update(f.read(FINGERPRINT_BLOCK))
    except (OSError, ValueError):
        return None
    return f"{st.st_size}:{h.hexdigest()[:32]}"


def _stream_fingerprint(row: dict) -> str:
    """What stands for the contents of an input that cannot be read again: what was decoded."""
    said = json.dumps({k: row.get(k) for k in sorted(row)}, default=str, sort_keys=True)
    return "stream:" + hashlib.sha256(said.encode()).hexdigest()[:32]


def _resolved(path: str) -> str:
    return path if path == "-" else os.path.realpath(path)


def capture_key(path: str, print_: str | None = None) -> str:
    """A directory-safe, stable name for a capture file: its name and a hash of its resolved path
    and content fingerprint (read from the file when `print_` is not given)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(_resolved(path)).name)[:80] or "capture"
    if print_ is None:
        print_ = fingerprint(path) or ""
    said = f"{_resolved(path)}\0{print_}".encode("utf-8", "surrogateescape")
    return f"{name}-{hashlib.sha256(said).hexdigest()[:16]}"


def _empty_manifest() -> dict:
    return {"format": FORMAT, "next_flow_id": 0, "next_run": 0, "runs": [], "captures": {}}


def _manifest(root: Path) -> dict:
    p = root / MANIFEST
    if not p.exists():
        return _empty_manifest()
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{p}: unreadable dataset manifest ({e})") from e
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        got = m.get("format") if isinstance(m, dict) else None
        raise DatasetError(f"{p}: not a {FORMAT} dataset (format {got!r})")
    for k, kind in (("runs", list), ("captures", dict), ("next_run", int), ("next_flow_id", int)):
        if not isinstance(m.get(k), kind):
            raise DatasetError(f"{p}: damaged dataset manifest ({k!r} missing or not a {kind.__name__})")
    return m
