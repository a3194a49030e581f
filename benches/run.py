#!/usr/bin/env python3
"""The full peer benchmark: portwitness against tshark, dpkt, scapy, nfpcapd and argus, with the
bare record walks (Rust and C) as the limit, on one synthetic capture, in one run.

    python benches/run.py [FILE] [--size 1G] [--format pcap|pcapng] [--flows 50000] [--seed 1]
                          [--runs 3] [--skip ...] [--only ...] [--json out.json]

Without FILE a synthetic capture is generated (benches/generate.py) into benches/data/ (not
committed) and reused by later runs. The measuring itself is `portwitness.bench`, the same code
`portwitness bench FILE --against ...` runs on a user's own file; this script adds the capture
generator and the walks, which need a checkout (cargo builds examples/walk.rs, cc builds
benches/peers/walk.c)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from portwitness import bench

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
GENERATE = os.path.join(HERE, "generate.py")
WALK_C = os.path.join(HERE, "peers", "walk.c")


def parser():
    ap = bench.parser("benches/run.py")
    ap.description = __doc__.split("\n\n")[0]
    ap.add_argument("--size", help="generate a synthetic capture of this size (default 1G)")
    ap.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    ap.add_argument("--flows", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=1)
    return ap


def generate(path: str, a) -> None:
    cmd = [sys.executable, GENERATE, path, "--size", str(a.size), "--format", a.format]
    cmd += ["--flows", str(a.flows), "--seed", str(a.seed), "--stats-json", path + ".stats.json"]
    print("# generating:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def prepare(a) -> str:
    a.cache = a.cache or DATA
    if a.file:
        if not os.path.exists(a.file):
            if not a.size:
                raise SystemExit(f"{a.file} does not exist (give --size to generate it)")
            generate(a.file, a)
        return a.file
    size = a.size or "1G"
    ext = "pcapng" if a.format == "pcapng" else "pcap"
    path = os.path.join(DATA, f"synth-{size}-f{a.flows}-s{a.seed}.{ext}")
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        a.size = size
        generate(path, a)
    return path


def build_walks(tmp: str) -> tuple[str | None, str | None, str]:
    """The Rust walk (cargo, release) and the C walk (cc -O2); a note on what could not be built."""
    notes = []
    rust = None
    if shutil.which("cargo"):
        r = subprocess.run(
            ["cargo", "build", "--release", "--quiet", "--no-default-features", "--example", "walk"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        target = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target")
        exe = os.path.join(target, "release", "examples", "walk")
        if r.returncode == 0 and os.path.exists(exe):
            rust = exe
        else:
            notes.append("cargo build of examples/walk.rs failed: " + r.stderr.strip()[-200:])
    else:
        notes.append("cargo not found")
    c = None
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        out = os.path.join(tmp, "walk_c")
        r = subprocess.run([cc, "-O2", "-o", out, WALK_C], capture_output=True, text=True)
        c = out if r.returncode == 0 else None
        if c is None:
            notes.append("cc of benches/peers/walk.c failed")
    else:
        notes.append("no C compiler")
    return rust, c, "; ".join(notes)


def walks(a, path: str, tmp: str) -> list[dict]:
    rust, c, note = build_walks(tmp)
    specs = []
    for name, exe, extra, label in [
        ("walk-rust", rust, [], "bare record walk (Rust, read())"),
        ("walk-c", c, [], "bare record walk (C, read())"),
        ("flowwalk-rust", rust, ["--flows"], "walk + L2-L4 + 5-tuple table (Rust)"),
        ("flowwalk-c", c, ["--flows"], "walk + L2-L4 + 5-tuple table (C)"),
    ]:
        ok = exe is not None and not path.endswith(".pcapng")
        specs.append(
            dict(
                name=name,
                label=label,
                cmd=[exe, path, *extra] if ok else None,
                note=None if ok else f"skipped: {note or 'classic pcap only'}",
                file=path,
                post=lambda r: next(
                    (int(t[6:]) for t in r.stdout.split() if t.startswith("flows=") and t != "flows=0"), None
                ),
            )
        )
    return specs


if __name__ == "__main__":
    sys.exit(bench.main(ap=parser(), prepare=prepare, extra_specs=walks))
