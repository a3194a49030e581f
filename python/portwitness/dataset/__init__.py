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

The package's modules: `manifest` (names, capture keys, the manifest), `lock`, `parts` (what
the manifest commits), `write`, `read` and `verify` (`check` and `repair`).
"""

from portwitness.dataset.lock import writer_lock
from portwitness.dataset.manifest import (
    ADDED_LATER,
    BY_FLOW,
    FINGERPRINT_BLOCK,
    FORMAT,
    LOCK,
    LOCK_TIMEOUT,
    LOCK_TIMEOUT_ENV,
    MANIFEST,
    ROW_GROUP,
    TABLES,
    TIME_COLUMN,
    UNKNOWN,
    DatasetError,
    capture_key,
    fingerprint,
)
from portwitness.dataset.parts import committed_parts, orphans
from portwitness.dataset.read import read_dataset
from portwitness.dataset.verify import Checked, check, repair
from portwitness.dataset.write import write_dataset

__all__ = [
    "ADDED_LATER",
    "BY_FLOW",
    "FINGERPRINT_BLOCK",
    "FORMAT",
    "LOCK",
    "LOCK_TIMEOUT",
    "LOCK_TIMEOUT_ENV",
    "MANIFEST",
    "ROW_GROUP",
    "TABLES",
    "TIME_COLUMN",
    "UNKNOWN",
    "Checked",
    "DatasetError",
    "capture_key",
    "check",
    "committed_parts",
    "fingerprint",
    "orphans",
    "read_dataset",
    "repair",
    "write_dataset",
    "writer_lock",
]
