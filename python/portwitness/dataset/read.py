"""Reading a dataset's committed runs back as one `Capture`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from portwitness.capture import Capture
from portwitness.dataset.manifest import ADDED_LATER, MANIFEST, TABLES, DatasetError, _manifest
from portwitness.dataset.parts import committed_parts


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
