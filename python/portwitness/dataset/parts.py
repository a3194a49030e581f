"""Which parts a dataset's manifest commits, and what lies there that it does not."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from portwitness.dataset.manifest import _PART, TABLES, UNKNOWN
from portwitness.outputs import TEMP_PREFIX


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
