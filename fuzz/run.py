#!/usr/bin/env python3
"""Build the fuzz targets on stable Rust, replay the regression inputs, fuzz, and report.

    python3 fuzz/run.py [--seconds N] [--runs N] [--targets a,b] [--jobs 1] [--no-build]

Needs cargo-fuzz (`cargo install cargo-fuzz`); no nightly toolchain: the targets are built with
`cargo fuzz build -O -a -s none` (no sanitizer, so no -Z flag; the core forbids unsafe code, so
the bugs to find are panics, integer overflows, hangs and unbounded allocation, and -a keeps the
debug assertions and overflow checks on, as fuzz/Cargo.toml's release profile does too).

For each target: an empty corpus is seeded first (fuzz/seed.py); every input under
fuzz/regressions/<target>/ is replayed (a failure there counts as a crash); then libFuzzer runs
for --seconds (per target) or --runs executions (both: whichever comes first), one process per target, --jobs targets at a
time (each uses one core). New corpus entries go to fuzz/corpus/<target>/, crashing inputs to
fuzz/artifacts/<target>/, libFuzzer's output to fuzz/artifacts/logs/<target>.log.

Prints a table (executions, exec/s, corpus size, crashes, wall time); exits 1 if any target
crashed, hung (timeout-*), ran out of memory (oom-*) or failed a regression input.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
TARGETS = [
    "pcap",
    "pcapng",
    "source",
    "ip",
    "tcp_stream",
    "oncrpc",
    "portmap",
    "dcerpc",
    "epm",
    "tls",
    "dns",
    "nbns",
    "starttls",
    "pipeline",
    "chunks",
    "mpls",
    "ppp",
    "radiotap",
    "ieee80211",
    "gre",
    "erspan",
    "vxlan",
    "geneve",
    "nflog",
    "teredo",
    "smb",
]
CRASH_PREFIXES = ("crash-", "timeout-", "oom-", "leak-")
# One input taking longer than this (wall clock, so a paused or starved fuzzer counts too) is a hang.
TIMEOUT_S = 30
RSS_LIMIT_MB = 2048


@dataclass
class Result:
    target: str
    execs: int = 0
    exec_per_s: int = 0
    corpus: int = 0
    crashes: list[str] = field(default_factory=list)
    wall: float = 0.0
    note: str = ""


def host_triple() -> str:
    out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"^host: (\S+)", out, re.M)
    return m.group(1) if m else "x86_64-unknown-linux-gnu"


def build(targets: list[str], toolchain: str | None, codegen_units: int | None) -> None:
    cmd = ["cargo"] + ([f"+{toolchain}"] if toolchain else [])
    cmd += ["fuzz", "build", "-O", "-a", "-s", "none"]
    if codegen_units:
        cmd += ["--codegen-units", str(codegen_units)]
    if len(targets) == 1:
        cmd.append(targets[0])
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=FUZZ.parent, check=True)


def artifacts(target: str) -> set[str]:
    d = FUZZ / "artifacts" / target
    return {p.name for p in d.iterdir() if p.name.startswith(CRASH_PREFIXES)} if d.exists() else set()


def replay(binary: Path, target: str, timeout: int) -> str | None:
    """Runs the regression inputs; returns what failed, if anything."""
    d = FUZZ / "regressions" / target
    files = sorted(p for p in d.iterdir() if p.is_file()) if d.exists() else []
    if not files:
        return None
    r = subprocess.run(
        [str(binary), f"-timeout={timeout}", f"-rss_limit_mb={RSS_LIMIT_MB}", *map(str, files)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        tail = "\n".join(r.stderr.splitlines()[-15:])
        return f"regression inputs of {target} fail (exit {r.returncode}):\n{tail}"
    return None


STATUS = re.compile(r"^#(\d+)\s+\w+\s.*?corp: (\d+)/.*?exec/s: (\d+)", re.M)
STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)


def fuzz(
    binary: Path, target: str, seconds: int | None, runs: int | None, timeout: int, max_len: int | None = None
) -> Result:
    res = Result(target)
    corpus = FUZZ / "corpus" / target
    art = FUZZ / "artifacts" / target
    logs = FUZZ / "artifacts" / "logs"
    for d in (corpus, art, logs):
        d.mkdir(parents=True, exist_ok=True)
    failed = replay(binary, target, timeout)
    if failed:
        print(failed, file=sys.stderr)
        res.crashes.append(f"regressions/{target}")
    before = artifacts(target)
    cmd = [
        str(binary),
        f"-artifact_prefix={art}/",
        f"-timeout={timeout}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        "-print_final_stats=1",
    ]
    if runs is not None:
        cmd.append(f"-runs={runs}")
    if seconds is not None:
        cmd.append(f"-max_total_time={seconds}")
    if max_len is not None:
        cmd.append(f"-max_len={max_len}")
    cmd.append(str(corpus))
    log = logs / f"{target}.log"
    t0 = time.monotonic()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    res.wall = time.monotonic() - t0
    text = log.read_text(errors="replace")
    stats = {k: int(v) for k, v in STAT.findall(text)}
    status = STATUS.findall(text)
    if status:
        n, corp, eps = status[-1]
        res.execs, res.corpus, res.exec_per_s = int(n), int(corp), int(eps)
    res.execs = stats.get("number_of_executed_units", res.execs)
    res.exec_per_s = stats.get("average_exec_per_sec", res.exec_per_s)
    if not res.corpus:
        res.corpus = sum(1 for _ in corpus.iterdir())
    new = sorted(artifacts(target) - before)
    res.crashes += [f"artifacts/{target}/{n}" for n in new]
    if rc != 0 and not new:
        # Killed by a signal before libFuzzer could save the input, or a libFuzzer error.
        res.crashes.append(f"exit {rc} without an artifact (see {log.relative_to(FUZZ.parent)})")
    if rc != 0:
        m = re.search(r"^(==\d+== ERROR: libFuzzer: .*|thread '.*' panicked at .*)$", text, re.M)
        res.note = m.group(1) if m else ""
    return res


def seed_if_empty(targets: list[str]) -> None:
    empty = [t for t in targets if not any((FUZZ / "corpus" / t).glob("*"))]
    if empty:
        print(f"seeding {', '.join(empty)} (fuzz/seed.py)", flush=True)
        subprocess.run([sys.executable, str(FUZZ / "seed.py")], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, help="fuzzing time per target (default 60 without --runs)")
    ap.add_argument("--runs", type=int, help="executions per target (with --seconds: whichever first)")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated (default: all)")
    ap.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once, one core each")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--toolchain", help="e.g. stable: runs `cargo +stable fuzz build`")
    ap.add_argument("--codegen-units", type=int, help="e.g. 16: a faster build, slower runs (short CI runs)")
    ap.add_argument(
        "--timeout",
        type=int,
        default=TIMEOUT_S,
        help=f"seconds one input may take, wall clock, before it is a hang (default {TIMEOUT_S}; raise it"
        " where the fuzzer may be paused with SIGSTOP or starved by other work)",
    )
    ap.add_argument(
        "--max-len",
        type=int,
        help="largest input libFuzzer makes (smaller inputs run faster; the seeds are not cut)",
    )
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        ap.error(f"unknown targets: {', '.join(unknown)} (known: {', '.join(TARGETS)})")
    seconds = args.seconds if args.seconds is not None or args.runs is not None else 60

    t0 = time.monotonic()
    if not args.no_build:
        build(targets, args.toolchain, args.codegen_units)
    built = time.monotonic() - t0
    binaries = FUZZ / "target" / host_triple() / "release"
    missing = [t for t in targets if not (binaries / t).exists()]
    if missing:
        print(f"not built: {', '.join(missing)}", file=sys.stderr)
        return 2
    seed_if_empty(targets)

    def one(t: str) -> Result:
        r = fuzz(binaries / t, t, seconds, args.runs, args.timeout, args.max_len)
        flag = "CRASH" if r.crashes else "ok"
        print(f"  {t}: {r.execs} executions, {r.exec_per_s}/s, {r.wall:.0f} s: {flag}", flush=True)
        return r

    print(f"fuzzing {len(targets)} targets, {args.jobs} at a time", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, targets))

    print()
    head = f"{'target':12} {'executions':>12} {'exec/s':>8} {'corpus':>7} {'crashes':>8} {'wall s':>7}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.target:12} {r.execs:>12,} {r.exec_per_s:>8,} {r.corpus:>7} {len(r.crashes):>8}"
            f" {r.wall:>7.0f}"
        )
    total = time.monotonic() - t0
    print(f"\nbuild {built:.0f} s, total {total:.0f} s")
    crashed = [r for r in results if r.crashes]
    for r in crashed:
        print(f"\n{r.target}: {r.note}")
        for c in r.crashes:
            print(f"  {c}")
        print(f"  reproduce: fuzz/target/{host_triple()}/release/{r.target} <file>")
    return 1 if crashed else 0


if __name__ == "__main__":
    os.environ.setdefault("RUST_BACKTRACE", "1")
    raise SystemExit(main())
