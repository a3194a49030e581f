"""Writing a decode into a dataset as one crash-safe run."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from portwitness.capture import Capture, flow_batches
from portwitness.dataset.lock import writer_lock
from portwitness.dataset.manifest import (
    BY_FLOW,
    MANIFEST,
    ROW_GROUP,
    TIME_COLUMN,
    UNKNOWN,
    DatasetError,
    _manifest,
    _resolved,
    _stream_fingerprint,
    capture_key,
    fingerprint,
)
from portwitness.dataset.parts import _rel, _remove_orphans
from portwitness.outputs import crash_point, deferred_interrupt, fsync_dir, open_output, sweep


def _key_of(keys_of: dict[str, str]) -> pl.Expr:
    """The capture key of each row's `capture` path (computed once per file, not per row)."""
    return pl.col("capture").replace_strict(keys_of, default=UNKNOWN, return_dtype=pl.String)


def _with_keys(name: str, frame: pl.DataFrame, keys: pl.DataFrame, keys_of: dict[str, str]) -> pl.DataFrame:
    """`frame` with the partition columns: the capture key and the hour."""
    if name in BY_FLOW:
        frame = frame.join(keys, on="flow_id", how="left", maintain_order="left")
    else:
        frame = frame.with_columns(_key=_key_of(keys_of))
    col = TIME_COLUMN.get(name)
    hour = pl.col(col).dt.strftime("%Y%m%dT%H") if col else pl.lit(None, dtype=pl.String)
    return frame.with_columns(_hour=hour.fill_null("none"), _key=pl.col("_key").fill_null(UNKNOWN))


def _identities(cap: Capture) -> dict[str, dict]:
    """Each capture of `cap` (path as decoded): its key, resolved path and fingerprint."""
    out = {}
    for row in cap.captures.to_dicts():
        path = row["capture"]
        if path in out:
            continue
        print_ = fingerprint(path) if path != "-" else None
        if print_ is None:
            print_ = _stream_fingerprint(row)
        out[path] = {
            "key": capture_key(path, print_),
            "resolved": _resolved(path),
            "fingerprint": print_,
        }
    return out


def _later(a: int | None, b: Any) -> int | None:
    return b if a is None or (b is not None and b > a) else a


def _write_part(frame: pl.DataFrame, path: Path) -> None:
    """A part, flushed to disk before the manifest may name it. Row groups of 16,384 rows: a
    reader that takes a flows table back a slice at a time decodes little more than the slice."""
    with deferred_interrupt():
        frame.write_parquet(path, row_group_size=ROW_GROUP)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_dataset(cap: Capture, root: str | Path) -> dict:
    """Adds the decoded tables of `cap` to the dataset at `root` (created if needed) as one run;
    rows of the same captures written before are replaced. Returns the run's manifest entry. The
    run is visible whole or not at all; another writer of the same dataset is waited for (see
    `writer_lock`)."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DatasetError(f"{root}: exists and is not a directory") from None
    sweep(root)
    with writer_lock(root):
        m = _manifest(root)
        # What a run that died left, before its run number is given out again.
        _remove_orphans(root, m)
        try:
            return _write_run(cap, root, m)
        except BaseException:
            # A failed run (a full disk, Ctrl-C, SIGTERM) takes its parts with it: what the
            # manifest on disk commits is all that stays.
            with contextlib.suppress(Exception):
                _remove_orphans(root, _manifest(root))
            raise


def _write_run(cap: Capture, root: Path, m: dict) -> dict:
    run = int(m["next_run"])
    # Never reuse a number a committed run has, whatever the counter says.
    run = max([run, *(int(r["run"]) + 1 for r in m["runs"])])
    base = int(m["next_flow_id"])
    ids = _identities(cap)
    keys_of = {p: i["key"] for p, i in ids.items()}
    tables = {
        "rpc_calls": cap.rpc_calls.with_columns(pl.col("flow_id") + base),
        "mappings": cap.mappings.with_columns(pl.col("flow_id") + base),
        "dcerpc_calls": cap.dcerpc_calls.with_columns(pl.col("flow_id") + base),
        "tls": cap.tls.with_columns(pl.col("flow_id") + base),
        "names": cap.names.with_columns(pl.col("flow_id") + base),
        "anomalies": cap.anomalies,
        "captures": cap.captures,
    }
    # The capture key of the flows the other tables' rows belong to (those flows only: the
    # flows themselves are written a batch at a time, never held whole).
    wanted = pl.concat([tables[n]["flow_id"] for n in BY_FLOW]).unique().implode()
    (root / "_schema").mkdir(exist_ok=True)
    rows: dict[str, int] = {}
    parts: dict[str, int] = {}
    names_taken: dict[Path, int] = {}

    def write(name: str, keyed: pl.DataFrame) -> None:
        for (key, hour), part in keyed.group_by("_key", "_hour", maintain_order=True):
            d = root / name / f"capture={key}" / f"hour={hour}"
            d.mkdir(parents=True, exist_ok=True)
            # One part per directory and batch: run-N.parquet, then run-N-1.parquet, ...
            n = names_taken.get(d, 0)
            names_taken[d] = n + 1
            path = d / (f"run-{run}.parquet" if n == 0 else f"run-{run}-{n}.parquet")
            _write_part(part.drop("_key", "_hour"), path)
            parts[_rel(root, path)] = part.height
            crash_point("dataset-part")

    key_rows = []
    top = None
    rows["flows"] = 0
    for i, batch in enumerate(flow_batches(cap)):
        flows = batch.with_columns(pl.col("flow_id") + base)
        if i == 0:
            with open_output(root / "_schema" / "flows.parquet") as f:
                flows.clear().write_parquet(f)
        keys = flows.select("flow_id", _key=_key_of(keys_of))
        key_rows.append(keys.filter(pl.col("flow_id").is_in(wanted)))
        keyed = _with_keys("flows", flows.with_row_index("_row", offset=rows["flows"]), keys, keys_of)
        rows["flows"] += keyed.height
        top = _later(top, flows["flow_id"].max())
        write("flows", keyed.with_columns(pl.col("_row").cast(pl.UInt64) + (run << 40)))
    keys = pl.concat(key_rows)
    for name, frame in tables.items():
        with open_output(root / "_schema" / f"{name}.parquet") as f:
            frame.clear().write_parquet(f)
        keyed = _with_keys(name, frame.with_row_index("_row"), keys, keys_of).with_columns(
            pl.col("_row").cast(pl.UInt64) + (run << 40)
        )
        rows[name] = keyed.height
        write(name, keyed)
    for d in {(root / rel).parent for rel in parts}:
        fsync_dir(d)
    # An older entry of the same file (same resolved path) without a fingerprint was keyed by
    # its path alone: it is this capture, replaced now.
    resolved = {i["resolved"] for i in ids.values()}
    for key, c in list(m["captures"].items()):
        if "fingerprint" not in c and _resolved(c.get("path", "")) in resolved:
            del m["captures"][key]
    entry = {
        "run": run,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "captures": keys_of,
        "rows": rows,
        "parts": parts,
        "stats": cap.stats,
        "anomaly_counts": cap.anomaly_counts(),
    }
    m["runs"].append(entry)
    m["captures"].update(
        {
            i["key"]: {"path": p, "resolved": i["resolved"], "fingerprint": i["fingerprint"], "run": run}
            for p, i in ids.items()
        }
    )
    m["next_run"] = run + 1
    m["next_flow_id"] = max(base, int(top) + 1) if top is not None else base
    crash_point("dataset-before-commit")
    with open_output(root / MANIFEST, "w", encoding="utf-8") as f:
        f.write(json.dumps(m, indent=2) + "\n")
    crash_point("dataset-after-commit")
    # The parts of the captures this run replaced are no one's now.
    _remove_orphans(root, m)
    return entry
