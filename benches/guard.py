#!/usr/bin/env python3
"""The speed regression guard CI runs: portwitness's in-process decode on one thread (so the figure
does not depend on the machine's cores) as a fraction of the bare Rust record walk, both measured in
the same run on the same generated capture, against the
committed baseline (benches/baseline.json). Ratios, not times: a slower or busier machine slows
both. Fails (exit 1) when the fraction drops more than the baseline's margin below it.

    python benches/guard.py            # check
    python benches/guard.py --update   # measure and write the baseline (review the diff)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINE = os.path.join(HERE, "baseline.json")
CAPTURE = os.path.join(HERE, "data", "guard-256M-f20000-s7.pcap")
DEFAULT_MARGIN = 0.35


def measure(runs: int) -> dict:
    if not os.path.exists(CAPTURE):
        os.makedirs(os.path.dirname(CAPTURE), exist_ok=True)
        cmd = [sys.executable, os.path.join(HERE, "generate.py"), CAPTURE, "--size", "256M"]
        cmd += ["--flows", "20000", "--seed", "7", "--stats-json", CAPTURE + ".stats.json"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "guard.json")
        cmd = [sys.executable, os.path.join(HERE, "run.py"), CAPTURE, "--only", "portwitness-py-1t,walk-rust"]
        cmd += ["--runs", str(runs), "--json", out]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(out) as fh:
            doc = json.load(fh)
    rows = {r["tool"]: r for r in doc["results"]}
    pw, walk = rows.get("portwitness-py-1t"), rows.get("walk-rust")
    if not pw or pw.get("skipped") or not walk or walk.get("skipped"):
        raise SystemExit(
            f"guard: could not measure both tools: {pw and pw.get('note')} / {walk and walk.get('note')}"
        )
    return {
        "of_walk_best": pw["of_walk_best"],
        "portwitness_best_s": pw["best_s"],
        "walk_best_s": walk["best_s"],
        "file_bytes": doc["file_bytes"],
        "packets": doc["packets"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--update", action="store_true", help="write the measured ratio as the new baseline")
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    got = measure(a.runs)
    if a.update:
        margin = DEFAULT_MARGIN
        if os.path.exists(BASELINE):
            with open(BASELINE) as fh:
                margin = json.load(fh).get("margin", DEFAULT_MARGIN)
        with open(BASELINE, "w") as fh:
            json.dump({**got, "margin": margin}, fh, indent=1)
            fh.write("\n")
        print(f"guard: baseline written: portwitness at {got['of_walk_best']:.3f} of the bare walk")
        return 0
    with open(BASELINE) as fh:
        base = json.load(fh)
    floor = base["of_walk_best"] * (1 - base["margin"])
    verdict = "ok" if got["of_walk_best"] >= floor else "REGRESSION"
    print(
        f"guard: {verdict}: portwitness decodes at {got['of_walk_best']:.3f} of the bare Rust walk's speed "
        f"(baseline {base['of_walk_best']:.3f}, floor {floor:.3f} = baseline - {base['margin']:.0%}); "
        f"{got['portwitness_best_s']:.3f} s vs {got['walk_best_s']:.3f} s on {got['file_bytes'] / 1e6:.0f} MB"
    )
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
