#!/usr/bin/env python3
"""Hostile captures: inputs built to exhaust a decoder's memory or time, and a measurement of
portwitness on them (issue item 3: peak RSS below 1 GiB with default settings on each).

    python benches/hostile.py OUTDIR [--only synflood,fragments,...]      # write the captures
    python benches/hostile.py --measure OUTDIR [--only ...]               # run and tabulate
    python benches/hostile.py --commands OUTDIR                           # every command on the flood

The captures (the generated files are large: keep them out of the repository):

* ``synflood.pcap``: 10 million SYNs from distinct 5-tuples (source IP and port vary) to port 135,
  one microsecond apart. Each first packet of a flow to 135 opens a stream for the DCE/RPC decoder.
* ``fragments.pcap``: 1 million IPv4 fragments of UDP datagrams that never complete, distinct
  (source, ID) each, 10 us apart: every second one a first fragment (offset 0), the others a
  middle fragment at offset 64000 (which makes a reassembler reserve 64 kB for 256 bytes).
* ``ooo_stream.pcap``: one TCP connection to port 111 carrying 1 GiB of ONC RPC calls (record
  marked, 29200 bytes each), its segments sent in reverse within windows of 16, and its first
  segment never sent (a hole that is never filled).
* ``rpc_2gb_mark.pcap``: a TCP connection to 111: a portmapper GETPORT call and reply, then a
  record mark announcing a last fragment of 2^31-1 bytes, followed by 16 MiB of bytes that look
  like a record mark every 8 bytes (none starts a message), then a second GETPORT exchange.
* ``epm_65535_towers.pcap``: a TCP connection to 135: bind to the endpoint mapper, bind_ack,
  ept_map request, and a response with 65535 ncacn_ip_tcp towers (one per port 1..65535) in 5840-
  byte fragments.
* ``anomaly_flood.pcap``: 1 million frames behind 9 stacked VLAN tags: one anomaly each.

Everything is written with ``struct`` from precomputed templates (big-endian pcap, microsecond
timestamps from 2026-03-01T02:00:00Z, IP and TCP checksums left 0), deterministic.

``--measure`` runs ``portwitness flows FILE -o FILE.parquet`` under ``/usr/bin/time -f %M`` (peak
RSS) and, separately, ``portwitness.decode`` for the statistics, and prints one row per capture:
size, packets, wall seconds, peak RSS MiB, flows, flows evicted, anomalies by kind.

``--commands`` runs every command that reads the flows on ``synflood.pcap`` (10 million flows),
each under ``/usr/bin/time``: ``flows -o FILE``, the terminal table, ``flows -o DIR/``, ``report``,
``report --from-dataset``, ``usage`` and ``rpcinfo``, and prints each one's wall time and peak RSS
(the bound: 1 GiB each). The outputs go to a scratch directory in OUTDIR, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hostile_captures import (  # noqa: F401  (the captures' writers, as tests call them here)
    CAPTURES,
    GETPORT_XIDS,
    RPC_RECORD_SEGMENTS,
    write_anomaly_flood,
    write_epm_towers,
    write_fragments,
    write_ooo_stream,
    write_rpc_2gb_mark,
    write_synflood,
)

RSS_LIMIT_MIB = 1024

STATS_SCRIPT = """
import json, sys
import portwitness as pw
cap = pw.decode(sys.argv[1])
print(json.dumps({"stats": cap.stats, "kinds": cap.anomaly_counts(), "rpc_calls": cap.rpc_calls.height,
                  "mappings": cap.mappings.height, "dcerpc_calls": cap.dcerpc_calls.height}))
"""


def generate(outdir: Path, names: list[str]) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for name in names:
        file, write = CAPTURES[name]
        t = time.perf_counter()
        info = write(outdir / file)
        dt = time.perf_counter() - t
        size = (outdir / file).stat().st_size
        (outdir / f"{file}.planted.json").write_text(json.dumps(info, indent=2) + "\n")
        print(f"{file}: {size / 2**20:.1f} MiB, {info['packets']} packets, written in {dt:.1f} s", flush=True)


def measure_one(path: Path) -> dict:
    exe = shutil.which("portwitness")
    if exe is None:
        sys.exit("portwitness is not on PATH")
    out = path.with_name(path.name + ".parquet")
    t = time.perf_counter()
    p = subprocess.run(
        ["/usr/bin/time", "-f", "%M", exe, "flows", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    lines = p.stderr.strip().splitlines()
    rss_kib = int(lines[-1]) if lines and lines[-1].isdigit() else -1
    s = subprocess.run([sys.executable, "-c", STATS_SCRIPT, str(path)], capture_output=True, text=True)
    stats = json.loads(s.stdout) if s.returncode == 0 else {"error": s.stderr.strip()[-300:]}
    out.unlink(missing_ok=True)
    return {
        "capture": path.name,
        "size_mib": path.stat().st_size / 2**20,
        "exit": p.returncode,
        "wall_s": wall,
        "rss_mib": rss_kib / 1024,
        "stderr": lines[:-1],
        **stats,
    }


def measure(outdir: Path, names: list[str]) -> list[dict]:
    rows = []
    head = f"{'capture':24} {'size MiB':>9} {'packets':>10} {'wall s':>7} {'RSS MiB':>8} {'flows':>9} {'evicted':>9}  anomalies"
    print(head)
    print("-" * len(head))
    for name in names:
        path = outdir / CAPTURES[name][0]
        if not path.exists():
            print(f"{path.name:24} missing: run benches/hostile.py {outdir} --only {name}")
            continue
        r = measure_one(path)
        rows.append(r)
        st = r.get("stats", {})
        kinds = ", ".join(f"{k} {n}" for k, n in r.get("kinds", {}).items()) or "-"
        if st.get("anomalies_dropped"):
            kinds += f" (rows kept; {st['anomalies']} in all)"
        notes = [f"{k} {st[k]}" for k in ("fragments_evicted", "stream_gaps") if st.get(k)]
        notes += [f"{k} {r[k]}" for k in ("rpc_calls", "mappings") if r.get(k)]
        flag = "  OVER 1 GiB" if r["rss_mib"] > RSS_LIMIT_MIB else ""
        print(
            f"{r['capture']:24} {r['size_mib']:9.1f} {st.get('records', '?'):>10} {r['wall_s']:7.1f} "
            f"{r['rss_mib']:8.0f} {st.get('flows', '?'):>9} {st.get('flows_evicted', '?'):>9}  {kinds}"
            f"{'; ' + ', '.join(notes) if notes else ''}{flag}",
            flush=True,
        )
        if r["exit"] != 0 or "error" in r:
            print(f"    exit {r['exit']}: {r['stderr']} {r.get('error', '')}")
    (outdir / "measure.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return rows


def commands(flood: Path, scratch: Path) -> list[tuple[str, list[str]]]:
    """Every command that reads the flows, on `flood`, writing into `scratch`."""
    f = str(flood)
    return [
        ("flows -o FILE.parquet", ["flows", f, "-o", str(scratch / "flows.parquet")]),
        ("flows (terminal table)", ["flows", f, "-o", str(scratch / "flows.txt")]),
        ("flows -o DIR/", ["flows", f, "-o", str(scratch / "ds") + "/"]),
        ("report -o r.json", ["report", f, "-o", str(scratch / "r.json")]),
        (
            "report --from-dataset",
            ["report", "--from-dataset", str(scratch / "ds"), "-o", str(scratch / "r2.json")],
        ),
        ("usage -o u.csv", ["usage", f, "-o", str(scratch / "u.csv")]),
        ("rpcinfo -o ri.csv", ["rpcinfo", f, "-o", str(scratch / "ri.csv")]),
    ]


def measure_commands(outdir: Path) -> list[dict]:
    exe = shutil.which("portwitness")
    if exe is None:
        sys.exit("portwitness is not on PATH")
    flood = outdir / CAPTURES["synflood"][0]
    if not flood.exists():
        sys.exit(f"{flood} is missing: run benches/hostile.py {outdir} --only synflood")
    scratch = outdir / "commands"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    rows = []
    print(f"{'command':26} {'exit':>4} {'wall s':>7} {'peak RSS MiB':>13}")
    try:
        for name, args in commands(flood, scratch):
            t = time.perf_counter()
            p = subprocess.run(["/usr/bin/time", "-f", "%M", exe, *args], capture_output=True, text=True)
            wall = time.perf_counter() - t
            lines = p.stderr.strip().splitlines()
            rss = int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else -1.0
            rows.append({"command": name, "exit": p.returncode, "wall_s": wall, "rss_mib": rss})
            flag = "  OVER 1 GiB" if rss > RSS_LIMIT_MIB else ""
            print(f"{name:26} {p.returncode:>4} {wall:7.1f} {rss:13.0f}{flag}", flush=True)
            if p.returncode not in (0, 3):
                print(f"    {lines[:-1]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (outdir / "commands.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(CAPTURES))
    ap.add_argument("--measure", action="store_true", help="measure portwitness on the captures in OUTDIR")
    ap.add_argument(
        "--commands", action="store_true", help="measure every command that reads flows on the SYN flood"
    )
    a = ap.parse_args(argv)
    names = list(CAPTURES)
    if a.only:
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in CAPTURES]
        if unknown:
            ap.error(f"unknown capture(s) {', '.join(unknown)}; choose from {', '.join(CAPTURES)}")
    if a.commands:
        rows = measure_commands(a.outdir)
        return 1 if any(r["rss_mib"] > RSS_LIMIT_MIB or r["exit"] not in (0, 3) for r in rows) else 0
    if a.measure:
        rows = measure(a.outdir, names)
        return 1 if any(r["rss_mib"] > RSS_LIMIT_MIB or r["exit"] != 0 for r in rows) else 0
    generate(a.outdir, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
