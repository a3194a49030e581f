"""Decoded captures kept as a Parquet dataset, so a week of captures is decoded once and audited
many times.

Layout under the dataset's directory (see docs/datasets.md)::

    portwitness-dataset.json                 what was committed, run by run (format portwitness.dataset/1)
    portwitness-dataset.lock                 held by the one writer at a time (fcntl.flock)
    _schema/<table>.parquet                  each table's schema (no rows), for tables left empty
    <table>/capture=<key>/hour=<YYYYMMDDTHH>/run-<n>.parquet

`<table>` is every table a decode returns (flows, rpc_calls, mappings, dcerpc_calls, tls, names,
anomalies, captures); a dataset written before the `names` table existed reads back with that
table empty. Rows are partitioned by the capture file they came from and by the UTC hour
of their time (`hour=none` for rows without one). A capture's `<key>` is its file name and a hash
of its resolved path and a fingerprint of its contents (size, first and last 64 KiB): the same
file written through another path replaces itself, two different files never share a key.

A run is crash-safe: under the lock, its parts are written as `run-<n>.parquet` with a run number
no committed run has, flushed, and become visible only when the manifest naming them is renamed
into place. Readers read only the parts of committed runs whose captures are still theirs, so
what a killed writer left is never read; the next writer (or `dataset repair`) removes it. Flow
ids are renumbered on the way in so they stay unique across runs, and each row keeps its position
in the run (`_row`), so reading the dataset back gives the tables exactly as the decode returned
them: `report --from-dataset` equals `report` on the captures.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import polars as pl

from portwitness import _core
from portwitness.capture import Capture, flow_batches
from portwitness.errors import PortwitnessError
from portwitness.outputs import TEMP_PREFIX, crash_point, fsync_dir, open_output, sweep

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


# --- the lock ------------------------------------------------------------------------------------


def _lock_timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw is None:
        return LOCK_TIMEOUT
    try:
        return max(0.0, float(raw))
    except ValueError:
        return LOCK_TIMEOUT


def _holder(f: IO[str]) -> str:
    with contextlib.suppress(OSError, ValueError):
        f.seek(0)
        said = f.read(64).strip()
        if said.isdigit():
            return f"pid {said}"
    return "another process"


@contextlib.contextmanager
def writer_lock(root: Path, timeout: float | None = None) -> Iterator[None]:
    """The dataset's write lock: one writer at a time. Waits up to `timeout` seconds (default
    LOCK_TIMEOUT, or the PORTWITNESS_DATASET_LOCK_TIMEOUT variable) for another writer, then
    raises DatasetError naming the pid that holds it. The lock goes with the process: a killed
    writer holds nothing."""
    timeout = _lock_timeout() if timeout is None else timeout
    path = root / LOCK
    try:
        f = open(path, "a+", encoding="ascii")
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    with f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise OSError(e.errno, e.strerror, str(path)) from None
            if time.monotonic() >= deadline:
                waited = f" after {timeout:g} s" if timeout else ""
                raise DatasetError(
                    f"{root}: another writer ({_holder(f)}) holds the dataset's lock{waited}; "
                    f"try again once it is done"
                )
            time.sleep(0.05)
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                f.seek(0)
                f.truncate()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _reader_lock(root: Path) -> Iterator[None]:
    """Shared with other readers, excluding a writer (for `check`: a run being written is not a
    problem). A dataset whose lock cannot be opened (read-only, or written before there was a
    lock) is checked without."""
    try:
        f = open(root / LOCK, encoding="ascii")
    except OSError:
        yield
        return
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        except OSError:
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# --- which parts are committed -------------------------------------------------------------------


def _rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()


def _split(rel: str) -> tuple[str, str, int] | None:
    """(table, capture key, run) of a part's relative path, None for anything else."""
    bits = rel.split("/")
    if len(bits) != 4 or bits[0] not in TABLES:
        return None
    m = _PART.match(bits[3])
    if not (bits[1].startswith("capture=") and bits[2].startswith("hour=") and m):
        return None
    return bits[0], bits[1][len("capture=") :], int(m[1])


def _on_disk(root: Path) -> list[str]:
    """Every file under the tables' directories, relative to `root`."""
    out = []
    for name in TABLES:
        d = root / name
        if d.is_dir():
            out += [_rel(root, p) for p in d.rglob("*") if p.is_file() or p.is_symlink()]
    return sorted(out)


def _live_runs(m: dict) -> set[int]:
    """Runs some of whose rows are still read: those holding at least one capture."""
    return {int(c["run"]) for c in m["captures"].values()}


def committed_parts(root: Path, m: dict) -> dict[str, int | None]:
    """The parts readers read (relative path: rows, None where the manifest predates row counts):
    of each capture, the parts of the run that holds it, and the rows of no known capture of every
    run that still holds one."""
    live = _live_runs(m)
    owner = {key: int(c["run"]) for key, c in m["captures"].items()}
    out: dict[str, int | None] = {}
    for r in m["runs"]:
        run = int(r["run"])
        if run not in live:
            continue
        listed = r.get("parts")
        if listed is not None:
            for rel, rows in listed.items():
                got = _split(rel)
                if got is not None and (owner.get(got[1]) == run or got[1] == UNKNOWN):
                    out[rel] = int(rows)
            continue
        # A run written before the manifest listed its parts: found by their names.
        keys = [k for k, o in owner.items() if o == run] + [UNKNOWN]
        for name in TABLES:
            for key in keys:
                for p in (root / name / f"capture={key}").glob(f"hour=*/run-{run}.parquet"):
                    out[_rel(root, p)] = None
    return out


def orphans(root: Path, m: dict) -> list[str]:
    """Files under the tables that no committed run holds (parts of a run that crashed, or of
    captures written again since), and temporary files of writers that are gone."""
    keep = committed_parts(root, m)
    found = [rel for rel in _on_disk(root) if rel not in keep]
    found += [p.name for p in root.glob(f"{TEMP_PREFIX}*")]
    found += [_rel(root, p) for p in (root / "_schema").glob(f"{TEMP_PREFIX}*")]
    return sorted(found)


def _remove_orphans(root: Path, m: dict) -> list[str]:
    """Removes `orphans` (the caller holds the lock) and the directories they leave empty."""
    gone = orphans(root, m)
    for rel in gone:
        p = root / rel
        with contextlib.suppress(FileNotFoundError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    for name in TABLES:
        d = root / name
        if not d.is_dir():
            continue
        for sub in sorted(d.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir():
                with contextlib.suppress(OSError):
                    sub.rmdir()  # only when empty
    return gone


# --- writing -------------------------------------------------------------------------------------


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


# --- reading -------------------------------------------------------------------------------------


def _require(root: Path) -> None:
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset directory")
    if not (root / MANIFEST).exists():
        raise DatasetError(
            f"{root}: not a portwitness dataset (no {MANIFEST}; write one with flows CAPTURES -o DIR/)"
        )


class _FlowParts:
    """The committed parts of a dataset's flows table, as `Capture.keep_flows_on_disk` takes a
    spill: sorted runs of flows (each part in flow order, ids unique across parts)."""

    def __init__(self, root: Path, parts: list[tuple[Path, int]]) -> None:
        self.root, self.parts = root, parts


def read_dataset(root: str | Path, flows_on_disk: bool = False) -> Capture:
    """The tables of every committed capture in the dataset at `root`, as one `Capture` (as the
    decode returned them, runs in the order written). Parts no committed run holds are ignored.
    Read without the lock: a writer that commits meanwhile may remove the parts of a capture it
    replaced, and the read then starts again from the new manifest. `flows_on_disk`: the flows
    stay in their parts and are read a batch at a time (`Capture.flow_batches`); a part that a
    writer removes meanwhile then fails the read with a DatasetError."""
    root = Path(root)
    _require(root)
    for _ in range(5):
        m = _manifest(root)
        try:
            frames = _read_parts(root, m, skip=("flows",) if flows_on_disk else ())
            break
        except DatasetError:
            if _manifest(root) == m:
                raise  # nothing was committed meanwhile: the dataset is damaged
    else:
        raise DatasetError(f"{root}: the dataset kept changing while it was read; try again")
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
    # Any: the frames fill `Capture`'s tables by their names.
    tables: dict[str, Any] = dict(frames)
    if not flows_on_disk:
        return Capture(stats=stats, anomaly_kinds=kinds, **tables)
    parts = [
        (
            root / rel,
            int(rows) if rows is not None else pl.scan_parquet(root / rel).select(pl.len()).collect().item(),
        )
        for rel, rows in sorted(committed_parts(root, m).items())
        if rel.startswith("flows/")
    ]
    cap = Capture(stats=stats, anomaly_kinds=kinds, **tables)
    return cap.keep_flows_on_disk(_FlowParts(root, parts))


def _read_parts(root: Path, m: dict, skip: tuple[str, ...] = ()) -> dict[str, pl.DataFrame]:
    keep = sorted(committed_parts(root, m))
    frames = {}
    for name in TABLES:
        files = [root / rel for rel in keep if rel.startswith(f"{name}/")]
        if name in skip:
            df = pl.DataFrame(schema=pl.read_parquet_schema(root / "_schema" / f"{name}.parquet"))
        elif files:
            try:
                df = pl.read_parquet(files).sort("_row").drop("_row")
            except (OSError, pl.exceptions.PolarsError) as e:
                raise DatasetError(
                    f"{root}: a part of the {name} table cannot be read ({_first_line(e)}); "
                    f"see portwitness dataset check {root}"
                ) from None
        else:
            schema_file = root / "_schema" / f"{name}.parquet"
            if not schema_file.exists() and name in ADDED_LATER:
                frames[name] = pl.DataFrame(schema=ADDED_LATER[name])
                continue
            if not schema_file.exists():
                raise DatasetError(f"{root}: the dataset has no {name} table")
            df = pl.read_parquet(schema_file)
        frames[name] = df
    return frames


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


# --- check and repair ----------------------------------------------------------------------------


@dataclass
class Checked:
    """What `check` found: `problems` (one line each; none: the dataset is sound) and counts."""

    problems: list[str] = field(default_factory=list)
    runs: int = 0
    captures: int = 0
    flows: int = 0


def _inspect(root: Path, m: dict) -> tuple[list[str], set[str], list[Path]]:
    """The problems of the committed parts (one line each), the captures they damage (what
    `repair` drops) and the committed parts of the flows table that read."""
    problems: list[str] = []
    damaged: set[str] = set()
    numbers = [int(r["run"]) for r in m["runs"]]
    for n in sorted({n for n in numbers if numbers.count(n) > 1}):
        problems.append(f"{root}: run {n} appears {numbers.count(n)} times in the manifest")
    for key, c in sorted(m["captures"].items()):
        if int(c["run"]) not in numbers:
            problems.append(f"{root}: capture {key} belongs to run {c['run']}, which is not in the manifest")
            damaged.add(key)
    flow_parts = []
    for rel, rows in sorted(committed_parts(root, m).items()):
        got = _split(rel)
        key = got[1] if got else UNKNOWN
        try:
            n = pl.scan_parquet(root / rel).select(pl.len()).collect().item()
        except (OSError, pl.exceptions.PolarsError) as e:
            what = "missing" if not (root / rel).exists() else f"unreadable ({_first_line(e)})"
            problems.append(f"{root / rel}: committed part {what}")
            damaged.add(key)
            continue
        if rows is not None and n != rows:
            problems.append(f"{root / rel}: holds {n} rows, the manifest says {rows}")
            damaged.add(key)
        elif rel.startswith("flows/"):
            flow_parts.append(root / rel)
    return problems, damaged, flow_parts


def check(root: str | Path) -> Checked:
    """Verifies the dataset at `root`: the manifest reads, every committed part exists, reads and
    holds the rows the manifest says, no file lies there that no committed run holds, and run
    numbers and flow ids are unique."""
    root = Path(root)
    _require(root)
    out = Checked()
    with _reader_lock(root):
        m = _manifest(root)
        out.runs, out.captures = len(m["runs"]), len(m["captures"])
        out.problems, _, flow_parts = _inspect(root, m)
        for rel in orphans(root, m):
            out.problems.append(f"{root / rel}: not committed (dataset repair removes it)")
        if flow_parts:
            ids = pl.scan_parquet(flow_parts).select("flow_id").collect()["flow_id"]
            out.flows = ids.len()
            dup = ids.filter(ids.is_duplicated()).unique().sort()
            if dup.len():
                shown = ", ".join(str(x) for x in dup.head(5).to_list())
                more = ", ..." if dup.len() > 5 else ""
                out.problems.append(f"{root}: {dup.len()} flow ids appear more than once ({shown}{more})")
            top = ids.max()
            if isinstance(top, int) and top >= int(m["next_flow_id"]):
                out.problems.append(
                    f"{root}: flow id {top} is not below the manifest's next_flow_id {m['next_flow_id']}"
                )
    return out


def repair(root: str | Path) -> list[str]:
    """Makes the dataset at `root` what its manifest commits: drops from the manifest the captures
    whose committed parts are missing, unreadable or not as counted, then removes what no
    committed run holds. Returns one line per change."""
    root = Path(root)
    _require(root)
    said: list[str] = []
    sweep(root)
    with writer_lock(root):
        m = _manifest(root)
        _, damaged, _ = _inspect(root, m)
        if damaged:
            for key in sorted(damaged):
                if m["captures"].pop(key, None) is not None:
                    said.append(f"{root}: dropped capture {key} (its committed parts are damaged)")
            with open_output(root / MANIFEST, "w", encoding="utf-8") as f:
                f.write(json.dumps(m, indent=2) + "\n")
        for rel in _remove_orphans(root, m):
            said.append(f"{root / rel}: removed (not committed)")
    return said
