#!/usr/bin/env python3
"""Scale-out benchmark: nightly captures decoded in one pass on this machine (one thread, every
core), files in parallel on a pool of N threads, and on a Dask `LocalCluster` of N worker
processes, in one run, medians of several runs, with the results' equality checked.

    python benches/cluster.py [--nights 4] [--size 256M] [--workers 2] [--runs 3] [--json out.json]

The captures (benches/generate.py, one a day apart, so each decodes alone) go to benches/data/
and are reused by later runs. Run it on a machine with as many cores as workers: each worker
decodes on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import portwitness
from portwitness import cluster
from portwitness.capture import Options

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
DAY = 86_400


def nights(n: int, size: str) -> list[str]:
    os.makedirs(DATA, exist_ok=True)
    out = []
    for i in range(n):
        path = os.path.join(DATA, f"night-{size}-{i}.pcap")
        if not os.path.exists(path):
            cmd = [sys.executable, os.path.join(HERE, "generate.py"), path, "--size", size]
            cmd += ["--seed", str(i + 1), "--start", str(1_700_000_000 + i * DAY)]
            subprocess.run(cmd, check=True, capture_output=True)
        out.append(path)
    return out


def timed(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nights", type=int, default=4)
    ap.add_argument("--size", default="256M")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    from distributed import Client, LocalCluster

    files = nights(a.nights, a.size)
    total = sum(os.path.getsize(f) for f in files)
    for f in files:  # warm the page cache
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass
    rows = {}
    rows["one pass, 1 thread"], one = timed(lambda: portwitness.decode(files, threads=1), a.runs)
    rows["one pass, all cores"], _ = timed(lambda: portwitness.decode(files, threads=0), a.runs)
    with ThreadPoolExecutor(a.workers) as pool:
        rows[f"files in parallel, {a.workers} threads"], (pooled, _) = timed(
            lambda: cluster.decode_runs(files, pool, Options(threads=1)), a.runs
        )
    started = time.perf_counter()
    with (
        LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=":0") as lc,
        Client(lc) as client,
    ):
        startup = time.perf_counter() - started
        opts = Options(threads=1)
        rows[f"LocalCluster, {a.workers} workers"], (many, runs) = timed(
            lambda: cluster.decode_runs(files, client, opts), a.runs
        )
    for name in ("flows", "rpc_calls", "mappings", "dcerpc_calls", "tls", "anomalies", "captures"):
        for how, other in (("threads", pooled), ("cluster", many)):
            if not getattr(one, name).equals(getattr(other, name), null_equal=True):
                print(f"{how} result differs from the one-pass result in {name}", file=sys.stderr)
                return 1
    base = rows["one pass, 1 thread"]
    print(f"{a.nights} captures, {total / 1e6:.0f} MB, {one.flows.height} flows; runs on the cluster: {runs}")
    print(f"{'decode':32} {'median s':>9} {'MB/s':>8} {'speed-up':>9}")
    for name, secs in rows.items():
        print(f"{name:32} {secs:9.3f} {total / secs / 1e6:8.0f} {base / secs:8.2f}x")
    print(f"(cluster start-up {startup:.2f} s, not counted; results equal)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {"bytes": total, "files": files, "runs": runs, "seconds": rows, "startup": startup},
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
