"""Decoded captures kept as a Parquet dataset, so a week of captures is decoded once and audited
many times.

Layout under the dataset's directory::

    portwitness-dataset.json                 what was written, run by run (format portwitness.dataset/1)
    _schema/<table>.parquet                  each table's schema (no rows), for tables left empty
    <table>/capture=<key>/hour=<YYYYMMDDTHH>/run-<n>.parquet

`<table>` is every table a decode returns (flows, rpc_calls, mappings, dcerpc_calls, tls, names,
anomalies, captures); a dataset written before the `names` table existed reads back with that
table empty. Rows are partitioned by the capture file they came from (`<key>`: the file's
name and a hash of its path, so two files of the same name in different directories stay apart)
and by the UTC hour of their time (`hour=none` for rows without one). Every run adds its rows under
a new run number; writing a capture again replaces every row of that capture (in all tables).
Flow ids are renumbered on the way in so they stay unique across runs, and each row keeps its
position in the run (`_row`), so reading the dataset back gives the tables exactly as the decode
returned them: `report --from-dataset` equals `report` on the captures.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from portwitness.capture import Capture

FORMAT = "portwitness.dataset/1"
MANIFEST = "portwitness-dataset.json"
TABLES = ("flows", "rpc_calls", "mappings", "dcerpc_calls", "tls", "names", "anomalies", "captures")
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
ADDED_LATER = {
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


class DatasetError(Exception):
    """A directory that is not (or not yet) a portwitness dataset, or one written by another format."""


def capture_key(path: str) -> str:
    """A directory-safe, stable name for a capture file: its name and a hash of its path."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).name)[:80] or "capture"
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"{name}-{digest}"


def _manifest(root: Path) -> dict:
    p = root / MANIFEST
    if not p.exists():
        return {"format": FORMAT, "next_flow_id": 0, "next_run": 0, "runs": [], "captures": {}}
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{p}: unreadable dataset manifest ({e})") from e
    if m.get("format") != FORMAT:
        raise DatasetError(f"{p}: not a {FORMAT} dataset (format {m.get('format')!r})")
    return m


def _key_of(keys_of: dict[str, str]) -> pl.Expr:
    """The capture key of each row's `capture` path (computed once per file, not per row)."""
    return pl.col("capture").replace_strict(keys_of, default="unknown", return_dtype=pl.String)


def _with_keys(name: str, frame: pl.DataFrame, keys: pl.DataFrame, keys_of: dict[str, str]) -> pl.DataFrame:
    """`frame` with the partition columns: the capture key and the hour."""
    if name in BY_FLOW:
        frame = frame.join(keys, on="flow_id", how="left", maintain_order="left")
    else:
        frame = frame.with_columns(_key=_key_of(keys_of))
    col = TIME_COLUMN.get(name)
    hour = pl.col(col).dt.strftime("%Y%m%dT%H") if col else pl.lit(None, dtype=pl.String)
    return frame.with_columns(_hour=hour.fill_null("none"), _key=pl.col("_key").fill_null("unknown"))


def write_dataset(cap: Capture, root: str | Path) -> dict:
    """Adds the decoded tables of `cap` to the dataset at `root` (created if needed) as one run;
    rows of the same captures written before are replaced. Returns the run's manifest entry."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    m = _manifest(root)
    run = int(m["next_run"])
    base = int(m["next_flow_id"])
    keys_of = {p: capture_key(p) for p in cap.captures["capture"].to_list()}
    # Writing a capture again replaces it: its old partitions go first.
    for key in keys_of.values():
        for name in TABLES:
            shutil.rmtree(root / name / f"capture={key}", ignore_errors=True)
    flows = cap.flows.with_columns(pl.col("flow_id") + base)
    keys = flows.select("flow_id", _key=_key_of(keys_of))
    tables = {
        "flows": flows,
        "rpc_calls": cap.rpc_calls.with_columns(pl.col("flow_id") + base),
        "mappings": cap.mappings.with_columns(pl.col("flow_id") + base),
        "dcerpc_calls": cap.dcerpc_calls.with_columns(pl.col("flow_id") + base),
        "tls": cap.tls.with_columns(pl.col("flow_id") + base),
        "names": cap.names.with_columns(pl.col("flow_id") + base),
        "anomalies": cap.anomalies,
        "captures": cap.captures,
    }
    (root / "_schema").mkdir(exist_ok=True)
    rows = {}
    for name, frame in tables.items():
        frame.clear().write_parquet(root / "_schema" / f"{name}.parquet")
        keyed = _with_keys(name, frame.with_row_index("_row"), keys, keys_of).with_columns(
            pl.col("_row").cast(pl.UInt64) + (run << 40)
        )
        rows[name] = keyed.height
        for (key, hour), part in keyed.group_by("_key", "_hour", maintain_order=True):
            d = root / name / f"capture={key}" / f"hour={hour}"
            d.mkdir(parents=True, exist_ok=True)
            part.drop("_key", "_hour").write_parquet(d / f"run-{run}.parquet")
    entry = {
        "run": run,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "captures": keys_of,
        "rows": rows,
        "stats": cap.stats,
        "anomaly_counts": cap.anomaly_counts(),
    }
    m["runs"].append(entry)
    m["captures"].update({key: {"path": p, "run": run} for p, key in keys_of.items()})
    m["next_run"] = run + 1
    top = flows["flow_id"].max()
    m["next_flow_id"] = max(base, int(top) + 1) if top is not None else base
    tmp = root / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
    tmp.replace(root / MANIFEST)
    return entry


def read_dataset(root: str | Path) -> Capture:
    """The tables of every capture in the dataset at `root`, as one `Capture` (as the decode
    returned them, runs in the order written)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset directory")
    if not (root / MANIFEST).exists():
        raise DatasetError(
            f"{root}: not a portwitness dataset (no {MANIFEST}; write one with flows CAPTURES -o DIR/)"
        )
    m = _manifest(root)
    frames = {}
    for name in TABLES:
        files = sorted((root / name).glob("capture=*/hour=*/run-*.parquet"))
        if files:
            df = pl.read_parquet(files).sort("_row").drop("_row")
        else:
            schema_file = root / "_schema" / f"{name}.parquet"
            if not schema_file.exists() and name in ADDED_LATER:
                frames[name] = pl.DataFrame(schema=ADDED_LATER[name])
                continue
            if not schema_file.exists():
                raise DatasetError(f"{root}: the dataset has no {name} table")
            df = pl.read_parquet(schema_file)
        frames[name] = df
    # Counters of the runs whose captures are all still theirs (a capture written again belongs to
    # its newest run; an older run that held it no longer adds its counters).
    stats: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for r in m["runs"]:
        if all(m["captures"].get(k, {}).get("run") == r["run"] for k in r["captures"].values()):
            for k, v in r["stats"].items():
                stats[k] = stats.get(k, 0) + int(v)
            for k, v in r["anomaly_counts"].items():
                kinds[k] = kinds.get(k, 0) + int(v)
    return Capture(stats=stats, anomaly_kinds=kinds, **frames)
