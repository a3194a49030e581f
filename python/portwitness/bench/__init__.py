#!/usr/bin/env python3
"""Benchmark portwitness against common peers on the same capture, in one run.

    portwitness bench FILE [--against tshark,dpkt,scapy,nfpcapd,argus] [--runs 3] [--json out.json]

(`python benches/run.py` in a checkout is the full harness: it generates the synthetic capture and
adds the bare record walks, Rust and C, as the limit.)

Tools (names for --skip; a prefix before '-' skips the family, e.g. 'tshark'
skips tshark and tshark-min, 'portwitness' skips both portwitness rows):

  portwitness-cli  `portwitness flows FILE -o OUT.parquet`, whole process (every core)
  portwitness-py   `portwitness.decode([FILE])` timed inside a fresh python
                   subprocess (interpreter start-up and import excluded)
  portwitness-cli-1t, portwitness-py-1t
                   the same on one thread (`--threads 1`, `threads=1`): the
                   speed-up of the parallel decode, measured in the same run
  tshark           `tshark -q -z conv,tcp -z conv,udp -r FILE`, factory
                   defaults (empty personal configuration directory)
  tshark-min       same with -n, a temporary profile (-C, via
                   WIRESHARK_CONFIG_DIR) that disables every protocol except
                   frame/eth/vlan/ethertype/ip/ipv6/tcp/udp, plus -o options
                   turning off reassembly, TCP analysis and timestamps
  dpkt             portwitness/bench/dpkt_flows.py FILE (flow dict), whole process
  scapy            scapy PcapReader loop over the first --scapy-mb MB of the
                   file (cut at a record boundary), timed in-process
  nfpcapd, argus   only if installed
  walk-rust,       (benches/run.py only) examples/walk.rs and benches/peers/walk.c:
  walk-c           read() and walk the record headers, nothing else
  flowwalk-rust,   the same plus Ethernet/IPv4/IPv6/TCP/UDP parsing and a
  flowwalk-c       5-tuple hash table: the practical ceiling of flow accounting

Every tool runs against a warm page cache (the file is read before each
run), --runs times, in rounds (every tool once, then every tool again: a
machine whose speed drifts moves every tool alike); the table shows medians
of wall time, MB/s and Mpkt/s (file bytes and packets / wall time) and the
largest peak RSS of the child (ru_maxrss from os.wait4).  "pw speedup" is how many times faster
portwitness-cli processes a byte than the tool (the ratio of throughputs, so
the scapy row, which reads a shorter file, compares fairly).  "of walk" is
the tool's throughput as a fraction of the bare Rust walk's in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

from . import capture, measure, table, tools
from .tools import PEERS, Tool

__all__ = ["PEERS", "Results", "Tool", "main", "parser", "run"]


@dataclass
class Results:
    """One capture's comparison: a row (dict) per tool, measured or skipped, in the order run."""

    file: str
    file_bytes: int
    packets: int
    format: str | None
    generator_flows: int | None
    runs: int
    rows: list[dict] = field(default_factory=list)

    def row(self, tool: str) -> dict | None:
        """The measured row of `tool`, None if it was skipped or failed."""
        return next((r for r in self.rows if r["tool"] == tool and not r.get("skipped")), None)

    def markdown(self) -> str:
        return table.markdown(self.rows)[0]

    def to_json(self) -> dict:
        return {
            "file": self.file,
            "file_bytes": self.file_bytes,
            "packets": self.packets,
            "format": self.format,
            "generator_flows": self.generator_flows,
            "runs": self.runs,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": table.host_info(),
            "results": self.rows,
            "markdown": self.markdown(),
        }


def skipped_by(name: str, names: set) -> bool:
    """`name` or its family (the part before the first '-': 'tshark' names tshark-min) is named."""
    return name in names or name.split("-")[0] in names


def run(
    file: str,
    tools: list[Tool],
    runs: int = 3,
    *,
    timeout: float = 3600.0,
    packets: int | None = None,
    content_bytes: int | None = None,
    log=print,
) -> Results:
    """Measures `tools` on `file` in rounds; rows carry medians and the ratios between tools.

    `packets` and `content_bytes` describe a compressed file (what it holds once decompressed: the
    header walk cannot read it); MB/s is then of the decompressed bytes, so containers compare."""
    path = os.path.abspath(file)
    fsize = os.path.getsize(path)
    st = capture.load_stats(path)
    if packets is not None:
        npk, cap_fmt, gen_flows = packets, None, None
    elif st:
        npk, cap_fmt, gen_flows = st["packets"], st.get("format"), st.get("flows")
    else:
        npk, _, cap_fmt = capture.walk_capture(path)
        gen_flows = None
    res = Results(path, fsize, npk, cap_fmt, gen_flows, runs)
    measured = []
    for t in tools:
        row = {"tool": t.name, "label": t.label, "note": t.note}
        res.rows.append(row)
        if t.cmd is None:
            row["skipped"] = True
            continue
        f = t.file or path
        t.file = f
        small = f != path
        row.update(
            cmd=t.cmd,
            file=f,
            file_bytes=os.path.getsize(f),
            file_packets=capture.walk_capture(f)[0] if small else npk,
        )
        measured.append((t, row))
    gots = measure.rounds([t for t, _ in measured], runs, timeout, log)
    for (_t, row), got in zip(measured, gots, strict=True):
        _summarise(row, got, path, fsize, content_bytes)
    _ratios(res.rows)
    return res


def _summarise(row: dict, got: measure.Got, path: str, fsize: int, content_bytes: int | None) -> None:
    walls, fbytes, fpk = got.walls, row["file_bytes"], row["file_packets"]
    if got.import_s:
        row["import_s"] = got.import_s
    row["skipped"] = True
    if got.error:
        row["error"] = got.error
        row["note"] = "failed: " + got.error
    if not walls:
        return
    med = statistics.median(walls)
    content = content_bytes if content_bytes and row["file"] == path else fbytes
    row.update(
        runs_s=[round(w, 4) for w in walls],
        wall_s=round(med, 4),
        best_s=round(min(walls), 4),
        mb_s=round(content / 1e6 / med, 2),
        mpkt_s=round(fpk / 1e6 / med, 4) if fpk else None,
        peak_rss_mib=round(max(got.rss_mib), 1),
        flows=got.flows,
        skipped=bool(got.error),
    )
    if row["file"] != path:
        row["extrapolated_full_file_s"] = round(fsize * med / fbytes, 1)
        row["note"] = (
            row.get("note") or ""
        ) + f"; whole file would take ~{row['extrapolated_full_file_s']:.0f} s"


def _ratios(rows: list[dict]) -> None:
    live = [r for r in rows if not r.get("skipped")]
    pw = next((r for r in live if r["tool"] == "portwitness-cli"), None)
    # How far each tool is from the bare record walk measured in the same run (the limit):
    # ratios, not absolute times, are what survive a noisy machine.
    limit = next((r for r in live if r["tool"] == "walk-rust"), None)
    for r in live:
        r["pw_speedup"] = round(pw["mb_s"] / r["mb_s"], 2) if pw else None
        if pw:
            r["pw_rss_ratio"] = (
                round(pw["peak_rss_mib"] / r["peak_rss_mib"], 3) if r["peak_rss_mib"] else None
            )
        r["of_walk"] = round(r["mb_s"] / limit["mb_s"], 4) if limit else None
        # The fastest runs of both: what the code can do, least disturbed by the machine.
        r["of_walk_best"] = round(limit["best_s"] / r["best_s"], 4) if limit else None


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    ap.add_argument("file", nargs="?", help="capture to benchmark")
    ap.add_argument(
        "--against",
        help=f"comma separated peers to measure beside portwitness ({','.join(PEERS)}); default: all installed",
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma separated tool names")
    ap.add_argument("--only", default="", help="comma separated tool names to run")
    ap.add_argument("--json", help="write results as JSON here")
    ap.add_argument("--scapy-mb", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=3600.0, help="per run, seconds")
    ap.add_argument("--portwitness", default="portwitness", help="CLI command")
    ap.add_argument("--cache", help="directory for the truncated scapy copy (default: a temporary one)")
    return ap


def selection(a, ap, extra: bool = False) -> tuple[set, set]:
    """The --skip and --only names, --against folded into --only."""
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    if a.against:
        peers = {s.strip() for s in a.against.split(",") if s.strip()}
        unknown = peers - set(PEERS)
        if unknown:
            ap.error(f"unknown peer(s) {', '.join(sorted(unknown))}: choose from {', '.join(PEERS)}")
        only |= {"portwitness", *peers}
        if extra:
            only |= {"walk", "flowwalk"}
    return skip, only


def chosen(t: Tool, skip: set, only: set) -> Tool:
    """`t`, or its skipped row when --skip/--only leave it out."""
    if skipped_by(t.name, skip) or (only and not skipped_by(t.name, only)):
        return Tool(t.name, t.label, None, note="skipped (--skip/--only)")
    return t


def main(argv=None, *, prog: str | None = None, ap=None, prepare=None, extra_tools=None) -> int:
    """The command line. `prepare(args) -> path` may make the capture (benches/run.py generates
    one); `extra_tools(args, path, tmp) -> [Tool]` adds tools measured first (the bare walks)."""
    ap = ap or parser(prog)
    a = ap.parse_args(argv)
    skip, only = selection(a, ap, extra_tools is not None)
    path = prepare(a) if prepare else a.file
    if not path:
        ap.error("a capture file is needed")
    if not os.path.isfile(path):
        ap.error(f"{path}: no such file")
    path = os.path.abspath(path)
    tmp = tempfile.mkdtemp(prefix="pwbench-")
    try:
        small = None
        if not skipped_by("scapy", skip) and (not only or "scapy" in only):
            cache = a.cache or tmp
            os.makedirs(cache, exist_ok=True)
            small = os.path.join(cache, f"scapy-{a.scapy_mb:g}MB-{os.path.basename(path)}")
            if not os.path.exists(small) or os.path.getmtime(small) < os.path.getmtime(path):
                capture.truncate_capture(path, small, int(a.scapy_mb * 1e6))
        all_tools = list(extra_tools(a, path, tmp)) if extra_tools else []
        all_tools += tools.portwitness_tools(a.portwitness, path, tmp)
        all_tools += tools.peer_tools(path, small, a.scapy_mb, tmp)
        picked = [chosen(t, skip, only) for t in all_tools]
        st = capture.load_stats(path)
        npk = st["packets"] if st else capture.walk_capture(path)[0]
        print(
            f"# file: {path}\n# {os.path.getsize(path) / 1e6:.1f} MB, {npk} packets"
            + (f", {st['flows']} flows (generator)" if st and st.get("flows") else "")
            + f", runs={a.runs}",
            flush=True,
        )
        res = run(path, picked, a.runs, timeout=a.timeout, log=lambda m: print(m, flush=True))
        report(res, a.json)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(res: Results, json_out: str | None) -> None:
    """Prints the table and its notes; writes the JSON if asked."""
    text, notes = table.markdown(res.rows)
    print()
    print(
        f"File: `{os.path.basename(res.file)}` — {res.file_bytes / 1e6:.1f} MB, {res.packets} packets"
        + (f", {res.generator_flows} flows" if res.generator_flows else "")
        + f"; median of {res.runs} runs, warm page cache"
    )
    print()
    print(text)
    if notes:
        print()
        print("\n".join(notes))
    if json_out:
        from portwitness.outputs import open_output

        with open_output(json_out, "w") as fh:
            json.dump(res.to_json(), fh, indent=1, default=str)
        print(f"\n# wrote {json_out}")


if __name__ == "__main__":
    sys.exit(main())
