"""`dataset check` and `dataset repair`: a dataset held against its manifest, and made what it commits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from portwitness.dataset.lock import _reader_lock, writer_lock
from portwitness.dataset.manifest import MANIFEST, UNKNOWN, _manifest
from portwitness.dataset.parts import _remove_orphans, _split, committed_parts, orphans
from portwitness.dataset.read import _first_line, _require
from portwitness.outputs import open_output, sweep


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
