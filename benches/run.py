#!/usr/bin/env python3
"""The full peer benchmark: portwitness against tshark, dpkt, scapy, nfpcapd and argus, with the
bare record walks (Rust and C) as the limit, on one synthetic capture, in one run.

    python benches/run.py [FILE] [--size 1G] [--format pcap|pcapng] [--shape sessions] [--flows 50000]
                          [--seed 1] [--runs 3] [--skip ...] [--only ...] [--json out.json]
    python benches/run.py --all-shapes [--size 64M] [--runs 3] [--quick] [--write-doc]

Without FILE a synthetic capture is generated (benches/generate.py) into benches/data/ (not
committed) and reused by later runs. `--all-shapes` measures every shape of generate.py's SHAPES in
every container (pcap, pcapng, pcap.gz, pcap.zst; see benches/shapes.py) and, with --write-doc,
puts the table in docs/performance.md. The measuring itself is `portwitness.bench`, the same code
`portwitness bench FILE --against ...` runs on a user's own file; this script adds the capture
generator and the walks, which need a checkout (cargo builds examples/walk.rs, cc builds
benches/peers/walk.c)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from portwitness import bench
from portwitness.bench import Tool

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
GENERATE = os.path.join(HERE, "generate.py")
WALK_C = os.path.join(HERE, "peers", "walk.c")


def parser():
    ap = bench.parser("benches/run.py")
    ap.description = __doc__.split("\n\n")[0]
    ap.add_argument(
        "--size", help="generate a synthetic capture of this size (default 1G; 64M with --all-shapes)"
    )
    ap.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    ap.add_argument("--shape", default="sessions", help="generate.py's shape (default sessions)")
    ap.add_argument("--flows", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--all-shapes", action="store_true", help="every shape in every container")
    ap.add_argument("--quick", action="store_true", help="with --all-shapes: 8M files, one run, no peers")
    ap.add_argument("--write-doc", action="store_true", help="with --all-shapes: update docs/performance.md")
    return ap


def generate(path: str, size, fmt: str, shape: str, flows: int, seed: int) -> None:
    cmd = [sys.executable, GENERATE, path, "--size", str(size), "--format", fmt, "--shape", shape]
    cmd += ["--flows", str(flows), "--seed", str(seed), "--stats-json", path + ".stats.json"]
    print("# generating:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def prepare(a) -> str:
    a.cache = a.cache or DATA
    if a.file:
        if not os.path.exists(a.file):
            if not a.size:
                raise SystemExit(f"{a.file} does not exist (give --size to generate it)")
            generate(a.file, a.size, a.format, a.shape, a.flows, a.seed)
        return a.file
    size = a.size or "1G"
    ext = "pcapng" if a.format == "pcapng" else "pcap"
    shape = "" if a.shape == "sessions" else f"{a.shape}-"
    path = os.path.join(DATA, f"synth-{shape}{size}-f{a.flows}-s{a.seed}.{ext}")
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        generate(path, size, a.format, a.shape, a.flows, a.seed)
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


def flows_printed(r) -> int | None:
    return next((int(t[6:]) for t in r.stdout.split() if t.startswith("flows=") and t != "flows=0"), None)


def walk_tools(path: str, built: tuple[str | None, str | None, str]) -> list[Tool]:
    """The bare record walks and the flow walks, Rust and C (classic pcap only)."""
    rust, c, note = built
    out = []
    for name, exe, extra, label in [
        ("walk-rust", rust, [], "bare record walk (Rust, read())"),
        ("walk-c", c, [], "bare record walk (C, read())"),
        ("flowwalk-rust", rust, ["--flows"], "walk + L2-L4 + 5-tuple table (Rust)"),
        ("flowwalk-c", c, ["--flows"], "walk + L2-L4 + 5-tuple table (C)"),
    ]:
        ok = exe is not None and not path.endswith(".pcapng")
        out.append(
            Tool(
                name=name,
                label=label,
                cmd=[exe, path, *extra] if ok else None,
                note=None if ok else f"skipped: {note or 'classic pcap only'}",
                file=path,
                post=flows_printed,
            )
        )
    return out


def main() -> int:
    ap = parser()
    a = ap.parse_args()
    if a.all_shapes:
        import shapes

        return shapes.main(a)
    return bench.main(
        ap=ap, prepare=prepare, extra_tools=lambda a, path, tmp: walk_tools(path, build_walks(tmp))
    )


if __name__ == "__main__":
    sys.exit(main())
