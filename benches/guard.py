#!/usr/bin/env python3
"""The speed regression guard CI runs: for every shape of generate.py's SHAPES, portwitness's
in-process decode on one thread (so the figure does not depend on the machine's cores) as a
fraction of the bare Rust record walk, both measured in the same run on the same generated capture,
against the committed baseline of that shape (benches/baseline.json). Ratios, not times: a slower or
busier machine slows both. Fails (exit 1) when a shape's fraction drops below its floor: the
baseline less the margin.

    python benches/guard.py            # check every shape
    python benches/guard.py --update   # measure and write the baselines (review the diff)
    python benches/guard.py --shape syn-flood
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import generate
import run as runner

from portwitness import bench
from portwitness.bench import tools

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINE = os.path.join(HERE, "baseline.json")
DEFAULT_MARGIN = 0.35
# The sessions (realistic mix) need a larger file for its decode to take measurable time; 64-byte frames
# carry seven times the packets per byte.
SIZES = {"sessions": "256M"}
SIZE = "48M"
FLOWS, SEED = 20000, 7


def capture(shape: str) -> str:
    size = SIZES.get(shape, SIZE)
    name = (
        f"guard-{size}-f{FLOWS}-s{SEED}.pcap"
        if shape == "sessions"
        else f"guard-{shape}-{size}-f{FLOWS}-s{SEED}.pcap"
    )
    path = os.path.join(HERE, "data", name)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        runner.generate(path, size, "pcap", shape, FLOWS, SEED)
    return path


def measure(shape: str, runs: int, walks, tmp: str) -> dict:
    path = capture(shape)
    ts = [t for t in runner.walk_tools(path, walks) if t.name == "walk-rust"]
    ts += [
        t
        for t in tools.portwitness_tools("portwitness", path, tmp, threads=(1,))
        if t.name == "portwitness-py-1t"
    ]
    res = bench.run(path, ts, runs, log=lambda m: None)
    pw, walk = res.row("portwitness-py-1t"), res.row("walk-rust")
    if not pw or not walk:
        notes = " / ".join(str(r.get("note")) for r in res.rows)
        raise SystemExit(f"guard: {shape}: could not measure both tools: {notes}")
    return {
        "of_walk_best": pw["of_walk_best"],
        "portwitness_best_s": pw["best_s"],
        "walk_best_s": walk["best_s"],
        "file_bytes": res.file_bytes,
        "packets": res.packets,
    }


def load() -> dict:
    if not os.path.exists(BASELINE):
        return {"margin": DEFAULT_MARGIN, "shapes": {}}
    with open(BASELINE) as fh:
        return json.load(fh)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--update", action="store_true", help="write the measured ratios as the new baselines")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--shape", action="append", choices=sorted(generate.SHAPES), help="only these shapes")
    a = ap.parse_args()
    base = load()
    margin = base.get("margin", DEFAULT_MARGIN)
    shapes = a.shape or list(generate.SHAPES)
    tmp = tempfile.mkdtemp(prefix="pwguard-")
    failed = []
    try:
        walks = runner.build_walks(tmp)
        for shape in shapes:
            got = measure(shape, a.runs, walks, tmp)
            if a.update:
                base.setdefault("shapes", {})[shape] = got
                print(f"guard: {shape}: baseline {got['of_walk_best']:.3f} of the bare walk")
                continue
            b = base.get("shapes", {}).get(shape)
            if b is None:
                # A shape just added to SHAPES: reported, not failed, until its baseline is committed.
                print(f"guard: {shape}: no baseline yet: measured {got['of_walk_best']:.3f}; run --update")
                continue
            floor = b["of_walk_best"] * (1 - margin)
            ok = got["of_walk_best"] >= floor
            if not ok:
                failed.append(shape)
            print(
                f"guard: {shape}: {'ok' if ok else 'REGRESSION'}: portwitness decodes at "
                f"{got['of_walk_best']:.3f} of the bare Rust walk's speed (baseline {b['of_walk_best']:.3f}, "
                f"floor {floor:.3f} = baseline - {margin:.0%}); {got['portwitness_best_s']:.3f} s vs "
                f"{got['walk_best_s']:.3f} s on {got['file_bytes'] / 1e6:.0f} MB, {got['packets']:,} packets"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.update:
        base["margin"] = margin
        with open(BASELINE, "w") as fh:
            json.dump(base, fh, indent=1)
            fh.write("\n")
        return 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
