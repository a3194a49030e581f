from __future__ import annotations

import json
from pathlib import Path

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
    "outcome",
    "orientation",
]


def fixtures() -> list[Path]:
    """Every capture in pcaps/ that has expected flows beside it."""
    return sorted(p for p in PCAPS.iterdir() if (PCAPS / f"{p.name}.flows.json").exists())


def expected_flows(capture: Path) -> list[dict]:
    return json.loads((capture.parent / f"{capture.name}.flows.json").read_text())


def canonical(rows: list[dict]) -> list[dict]:
    rows = [{k: r[k] for k in FLOW_KEYS} for r in rows]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


@pytest.fixture(scope="session")
def shared_captures() -> Path:
    if not SHARED_CAPTURES.is_dir():
        pytest.fail(
            f"the real captures are expected in {SHARED_CAPTURES} (shared/captures beside the checkout)"
        )
    return SHARED_CAPTURES
