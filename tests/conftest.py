from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parent.parent
PCAPS = ROOT / "pcaps"
SHARED_CAPTURES = ROOT.parent / "shared" / "captures"

FLOW_KEYS = [
    "transport",
    "client_ip",
    "client_port",
    "server_ip",
    "server_port",
    "packets_c2s",
    "packets_s2c",
    "bytes_c2s",
    "bytes_s2c",
    "payload_c2s",
    "payload_s2c",
    "vlan",
    "encap",
    "tunnel_id",
    "outcome",
    "orientation",
]


def fixtures() -> list[Path]:
    """Every capture in pcaps/ that has expected flows beside it."""
    return sorted(p for p in PCAPS.iterdir() if (PCAPS / f"{p.name}.flows.json").exists())


def expected_flows(capture: Path) -> list[dict]:
    return json.loads((capture.parent / f"{capture.name}.flows.json").read_text())


# What tells one flow of a fixture from another.
FLOW_ID = ["transport", "client_ip", "client_port", "server_ip", "server_port", "vlan", "tunnel_id"]


def canonical(rows: list[dict], keys: list[str] = FLOW_KEYS) -> list[dict]:
    # Expected rows written before a column existed hold its null value.
    rows = [{k: r.get(k) for k in keys} for r in rows]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def planted(capture: Path, table: str) -> list[dict]:
    """The rows the fixture generator wrote in `<capture>.<table>.json`."""
    return json.loads((capture.parent / f"{capture.name}.{table}.json").read_text())


def with_planted(table: str) -> list[Path]:
    """Every capture in pcaps/ that has a `<capture>.<table>.json` beside it."""
    return sorted(p for p in PCAPS.iterdir() if (PCAPS / f"{p.name}.{table}.json").exists())


def ns_rows(frame, columns: list[str]) -> list[dict]:
    """Rows of a decoded table restricted to `columns`, where a `<c>_ns` column is the
    timestamp column `<c>` in integer nanoseconds (the generator's spelling)."""
    exprs = [pl.col(c[:-3]).dt.epoch("ns").alias(c) if c.endswith("_ns") else pl.col(c) for c in columns]
    return frame.select(exprs).to_dicts()


@pytest.fixture(scope="session")
def shared_captures() -> Path:
    if not SHARED_CAPTURES.is_dir():
        pytest.fail(
            f"the real captures are expected in {SHARED_CAPTURES} (shared/captures beside the checkout)"
        )
    return SHARED_CAPTURES


def generate_capture(out: Path, *options: str) -> Path:
    """A synthetic capture from benches/generate.py (`options`: its command-line options)."""
    import subprocess
    import sys

    cmd = [sys.executable, str(ROOT / "benches" / "generate.py"), str(out), *options]
    subprocess.run(cmd, check=True, capture_output=True)
    return out
