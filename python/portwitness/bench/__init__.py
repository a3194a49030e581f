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
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DPKT_PEER = os.path.join(HERE, "dpkt_flows.py")
PEERS = ("tshark", "dpkt", "scapy", "nfpcapd", "argus")

TSHARK_MIN_KEEP = {"frame", "eth", "vlan", "ethertype", "ip", "ipv6", "tcp", "udp"}
TSHARK_MIN_PREFS = [
    "tcp.desegment_tcp_streams:FALSE",
    "tcp.analyze_sequence_numbers:FALSE",
    "tcp.relative_sequence_numbers:FALSE",
    "tcp.track_bytes_in_flight:FALSE",
    "tcp.calculate_timestamps:FALSE",
    "udp.calculate_timestamps:FALSE",
    "ip.defragment:FALSE",
    "ipv6.defragment:FALSE",
    "ip.use_geoip:FALSE",
    "ipv6.use_geoip:FALSE",
]
# name resolution off in the profile as well (besides -n)
TSHARK_MIN_PROFILE_ONLY = [
    "nameres.mac_name:FALSE",
    "nameres.transport_name:FALSE",
    "nameres.network_name:FALSE",
    "nameres.dns_pkt_addr_resolution:FALSE",
    "nameres.use_external_name_resolver:FALSE",
]


# --------------------------------------------------------------------------
# capture helpers


def warm(path: str) -> None:
    """Read the file once so it sits in the page cache (cat FILE >/dev/null)."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 << 20)
        while f.readinto(buf):
            pass


def _pcap_endian(magic: bytes):
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return "<"
    if magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        return ">"
    return None


def walk_capture(path: str, stop_after: int | None = None):
    """Fast header walk (chunked reads, no mmap: keeps this process small).
    Returns (packets, end offset of the last complete packet record/block
    within stop_after bytes, format)."""
    size = os.path.getsize(path)
    limit = size if stop_after is None else min(size, stop_after)
    chunk = 4 << 20
    with open(path, "rb") as f:
        head = f.read(24)
        end = _pcap_endian(head[:4])
        if end is not None:
            unpack = struct.Struct(end + "I").unpack_from
            pos, n, last = 24, 0, 24
            while pos + 16 <= size:
                f.seek(pos)
                buf = f.read(chunk)
                off, lb = 0, len(buf)
                while off + 16 <= lb:
                    nxt = off + 16 + unpack(buf, off + 8)[0]
                    if pos + nxt > limit:
                        return n, last, "pcap"
                    n += 1
                    last = pos + nxt
                    off = nxt
                if off == 0:
                    break
                pos += off
            return n, last, "pcap"
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            pos, n, last, endc = 0, 0, 0, "<"
            while pos + 12 <= size:
                f.seek(pos)
                buf = f.read(chunk)
                off, lb = 0, len(buf)
                while off + 12 <= lb:
                    if buf[off : off + 4] == b"\x0a\x0d\x0d\x0a":
                        endc = "<" if buf[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                    btype, blen = struct.unpack_from(endc + "II", buf, off)
                    if blen < 12:
                        return n, last, "pcapng"
                    nxt = off + blen
                    if btype in (2, 3, 6):
                        if pos + nxt > limit:
                            return n, last, "pcapng"
                        n += 1
                    last = pos + nxt
                    off = nxt
                if off == 0:
                    break
                pos += off
            return n, last, "pcapng"
    raise SystemExit(f"{path}: not a pcap/pcapng file")


def truncate_capture(src: str, dst: str, max_bytes: int) -> int:
    """Copy the first max_bytes of src, cut at a record/block boundary."""
    n, end, _ = walk_capture(src, max_bytes)
    with open(src, "rb") as fi, open(dst + ".tmp", "wb") as fo:
        left = end
        while left:
            b = fi.read(min(left, 8 << 20))
            fo.write(b)
            left -= len(b)
    os.replace(dst + ".tmp", dst)
    return n


def load_stats(path: str):
    p = path + ".stats.json"
    try:
        with open(p) as f:
            st = json.load(f)
        if st.get("bytes") == os.path.getsize(path):
            return st
    except (OSError, ValueError):
        pass
    return None


# --------------------------------------------------------------------------
# child process measurement


class Result:
    def __init__(self, wall, rss_kib, rc, stdout, stderr, inproc=None):
        self.wall = wall
        self.rss_kib = rss_kib
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.inproc = inproc  # dict printed by an in-process harness


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
# Fallback (no GNU time): os.wait4's ru_maxrss.  With vfork+exec the child
# inherits this process's RSS high-water mark, so use plain fork.
if hasattr(subprocess, "_USE_VFORK"):
    subprocess._USE_VFORK = False


def run_child(cmd, env=None, timeout=None) -> Result:
    """Run cmd; wall time measured here, peak RSS via /usr/bin/time -f %M
    (the tool is then forked from a ~1 MB process) or else os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        tfile = None
        full = list(cmd)
        if TIME:
            fd, tfile = tempfile.mkstemp(prefix="pwbench-time-")
            os.close(fd)
            full = [TIME, "-f", "PWTIME %e %M", "-o", tfile] + full
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=out, stderr=err, env=env, stdin=subprocess.DEVNULL)
        timer = None
        if timeout:
            timer = threading.Timer(timeout, lambda: _kill(p.pid))
            timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        if timer:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        rss = ru.ru_maxrss
        if tfile:
            with open(tfile) as fh:
                tl = [ln for ln in fh.read().splitlines() if ln.startswith("PWTIME ")]
            os.unlink(tfile)
            if tl:
                rss = int(tl[-1].split()[2])
        out.seek(0)
        err.seek(0)
        so = out.read().decode(errors="replace")
        se = err.read().decode(errors="replace")
    inproc = None
    for line in so.splitlines():
        if line.startswith("PWBENCH "):
            inproc = json.loads(line[8:])
    return Result(wall, rss, p.returncode, so, se, inproc)


def _kill(pid):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


# in-process harnesses (run with `python -c`)
PY_PORTWITNESS = r"""
import json, sys, time
path = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 0
t0 = time.perf_counter()
import portwitness
# The package loads its API and polars on first use: load them here, outside the timed decode.
import polars
decode = portwitness.decode
t1 = time.perf_counter()
res = decode([path], threads=threads)
t2 = time.perf_counter()
flows = None
for obj in (getattr(res, "flows", None), res):
    for attr in ("height", "num_rows"):
        if flows is None and isinstance(getattr(obj, attr, None), int):
            flows = getattr(obj, attr)
if flows is None:
    try: flows = len(res)
    except Exception: pass
print("PWBENCH " + json.dumps({"seconds": t2 - t1, "import_s": t1 - t0, "flows": flows}))
"""

PY_SCAPY = r"""
import json, sys, time
path = sys.argv[1]
t0 = time.perf_counter()
from scapy.all import PcapReader
t1 = time.perf_counter()
n = 0
with PcapReader(path) as rd:
    for pkt in rd:
        n += 1
t2 = time.perf_counter()
print("PWBENCH " + json.dumps({"seconds": t2 - t1, "import_s": t1 - t0, "packets": n}))
"""

PY_CHECK_PORTWITNESS = "import portwitness; portwitness.decode"


# --------------------------------------------------------------------------
# tools


def count_conv_lines(text: str):
    n = sum(1 for line in text.splitlines() if "<->" in line)
    return n or None


def count_dpkt(text: str):
    for tok in text.split():
        if tok.startswith("flows="):
            return int(tok[6:])
    return None


def parquet_rows(path: str):
    """Row count of the CLI's output (in a subprocess: keeps this one small)."""
    code = "import sys, polars as pl; print(pl.scan_parquet(sys.argv[1]).select(pl.len()).collect().item())"
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True)
    try:
        return int(r.stdout.strip())
    except ValueError:
        return None


def have_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def resolve_cli(name: str):
    """Path of the CLI; a pyenv shim is resolved to the real executable so
    the shim's bash start-up is not measured."""
    p = shutil.which(name)
    if p and os.sep + "shims" + os.sep in p and shutil.which("pyenv"):
        r = subprocess.run(["pyenv", "which", os.path.basename(p)], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip(), f"pyenv shim resolved to {r.stdout.strip()}"
    return p, None


def make_tshark_profiles(tmp: str):
    """Empty config dir (factory defaults) and a minimal profile."""
    plain = os.path.join(tmp, "ws-default")
    os.makedirs(plain)
    mincfg = os.path.join(tmp, "ws-min")
    prof = os.path.join(mincfg, "profiles", "pwbench-min")
    os.makedirs(prof)
    protos = subprocess.run(
        ["tshark", "-G", "protocols"],
        capture_output=True,
        text=True,
        env=dict(os.environ, WIRESHARK_CONFIG_DIR=plain),
    ).stdout
    names = [ln.split("\t")[2] for ln in protos.splitlines() if ln.count("\t") >= 2]
    with open(os.path.join(prof, "disabled_protos"), "w") as f:
        for name in names:
            if name not in TSHARK_MIN_KEEP:
                f.write(name + "\n")
    with open(os.path.join(prof, "preferences"), "w") as f:
        f.write("# portwitness bench minimal profile (the same prefs are also passed as -o)\n")
        for p in TSHARK_MIN_PREFS + TSHARK_MIN_PROFILE_ONLY:
            k, v = p.split(":", 1)
            f.write(f"{k}: {v}\n")
    return plain, mincfg, len(names) - len(TSHARK_MIN_KEEP)


def tool_specs(a, path, small, tmp):
    """Yield dicts: name, label, cmd | None (skip), note, env, file, flows_fn."""
    specs = []
    pw, pw_note = resolve_cli(a.portwitness)
    out_parquet = os.path.join(tmp, "flows.parquet")
    specs.append(
        dict(
            name="portwitness-cli",
            label="portwitness flows (CLI)",
            cmd=[pw, "flows", path, "-o", out_parquet] if pw else None,
            note=pw_note if pw else f"skipped: `{a.portwitness}` not on PATH",
            file=path,
            post=lambda r: parquet_rows(out_parquet),
        )
    )
    out_parquet_1t = os.path.join(tmp, "flows-1t.parquet")
    specs.append(
        dict(
            name="portwitness-cli-1t",
            label="portwitness flows (CLI, 1 thread)",
            cmd=[pw, "flows", path, "-o", out_parquet_1t, "--threads", "1"] if pw else None,
            note=pw_note if pw else f"skipped: `{a.portwitness}` not on PATH",
            file=path,
            post=lambda r: parquet_rows(out_parquet_1t),
        )
    )

    chk = subprocess.run([sys.executable, "-c", PY_CHECK_PORTWITNESS], capture_output=True, text=True)
    ok = chk.returncode == 0
    specs.append(
        dict(
            name="portwitness-py",
            label="portwitness.decode (in-process)",
            cmd=[sys.executable, "-c", PY_PORTWITNESS, path] if ok else None,
            note=None
            if ok
            else "skipped: import portwitness failed: " + (chk.stderr.strip().splitlines() or ["?"])[-1],
            file=path,
            inproc=True,
            post=lambda r: (r.inproc or {}).get("flows"),
        )
    )
    specs.append(
        dict(
            name="portwitness-py-1t",
            label="portwitness.decode (in-process, 1 thread)",
            cmd=[sys.executable, "-c", PY_PORTWITNESS, path, "1"] if ok else None,
            note=None if ok else "skipped: import portwitness failed",
            file=path,
            inproc=True,
            post=lambda r: (r.inproc or {}).get("flows"),
        )
    )

    ts = shutil.which("tshark")
    if ts:
        plain, mincfg, ndis = make_tshark_profiles(tmp)
        specs.append(
            dict(
                name="tshark",
                label="tshark conv,tcp+udp (defaults)",
                cmd=[ts, "-q", "-z", "conv,tcp", "-z", "conv,udp", "-r", path],
                env=dict(os.environ, WIRESHARK_CONFIG_DIR=plain),
                file=path,
                post=lambda r: count_conv_lines(r.stdout),
            )
        )
        cmd = [ts, "-n", "-C", "pwbench-min"]
        for p in TSHARK_MIN_PREFS:
            cmd += ["-o", p]
        cmd += ["-q", "-z", "conv,tcp", "-z", "conv,udp", "-r", path]
        specs.append(
            dict(
                name="tshark-min",
                label="tshark -n, minimal profile",
                cmd=cmd,
                env=dict(os.environ, WIRESHARK_CONFIG_DIR=mincfg),
                file=path,
                note=f"{ndis} protocols disabled",
                post=lambda r: count_conv_lines(r.stdout),
            )
        )
    else:
        for n in ("tshark", "tshark-min"):
            specs.append(dict(name=n, label=n, cmd=None, note="skipped: tshark not installed"))

    if have_module("dpkt"):
        specs.append(
            dict(
                name="dpkt",
                label="dpkt flow dict (python)",
                cmd=[sys.executable, DPKT_PEER, path],
                file=path,
                post=lambda r: count_dpkt(r.stdout),
            )
        )
    else:
        specs.append(dict(name="dpkt", label="dpkt", cmd=None, note="skipped: dpkt not installed"))

    if have_module("scapy") and small:
        specs.append(
            dict(
                name="scapy",
                label=f"scapy PcapReader (first {a.scapy_mb:g} MB)",
                cmd=[sys.executable, "-c", PY_SCAPY, small],
                file=small,
                inproc=True,
                note="in-process loop over a truncated copy, import excluded",
            )
        )
    else:
        specs.append(
            dict(
                name="scapy",
                label="scapy",
                cmd=None,
                note="skipped: scapy not installed" if small is not None else "skipped (--skip/--only)",
            )
        )

    nf = shutil.which("nfpcapd")
    nfdir = os.path.join(tmp, "nfcapd")
    os.makedirs(nfdir, exist_ok=True)
    specs.append(
        dict(
            name="nfpcapd",
            label="nfpcapd -r",
            cmd=[nf, "-r", path, "-w", nfdir] if nf else None,
            note=None if nf else "skipped: nfpcapd (nfdump) not installed",
            file=path,
        )
    )
    ar = shutil.which("argus")
    specs.append(
        dict(
            name="argus",
            label="argus -r",
            cmd=[ar, "-r", path, "-w", os.path.join(tmp, "out.argus")] if ar else None,
            note=None if ar else "skipped: argus not installed",
            file=path,
        )
    )
    return specs


def skipped_by(name: str, skip: set) -> bool:
    return name in skip or name.split("-")[0] in skip


# --------------------------------------------------------------------------


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


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


def _one_run(sp: dict, row: dict, got: dict, a, i: int) -> str | None:
    """Run `sp` once (run `i`), adding its wall time, RSS and flow count to `got`; the error, if
    it failed."""
    # Before every run: a machine may drop page-cache pages at any time, even with memory to
    # spare, and re-reading them from disk would be charged to the tool.
    warm(sp["file"])
    r = run_child(sp["cmd"], env=sp.get("env"), timeout=a.timeout)
    if r.rc != 0:
        return f"exit {r.rc}: " + " | ".join(r.stderr.strip().splitlines()[-3:])
    w = r.wall
    if sp.get("inproc"):
        if not r.inproc:
            return "no PWBENCH line in output"
        w = r.inproc["seconds"]
        row.setdefault("import_s", []).append(round(r.inproc.get("import_s", 0), 3))
    got["walls"].append(w)
    got["rss"].append(r.rss_kib / 1024)
    post = sp.get("post")
    if post and got["flows"] is None:
        got["flows"] = post(r)
    print(f"  {sp['name']:16s} run {i + 1}: {w:8.3f} s  {r.rss_kib / 1024:8.1f} MiB", flush=True)
    return None


def main(argv=None, *, prog: str | None = None, ap=None, prepare=None, extra_specs=None) -> int:
    """Runs the comparison. `prepare(args) -> path` may make the capture (benches/run.py generates
    one); `extra_specs(args, path, tmp) -> [spec]` adds tools measured first (the bare walks)."""
    ap = ap or parser(prog)
    a = ap.parse_args(argv)
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    if a.against:
        peers = {s.strip() for s in a.against.split(",") if s.strip()}
        unknown = peers - set(PEERS)
        if unknown:
            ap.error(f"unknown peer(s) {', '.join(sorted(unknown))}: choose from {', '.join(PEERS)}")
        only |= {"portwitness", *peers}
        if extra_specs:
            only |= {"walk", "flowwalk"}

    path = prepare(a) if prepare else a.file
    if not path:
        ap.error("a capture file is needed")
    if not os.path.isfile(path):
        ap.error(f"{path}: no such file")
    path = os.path.abspath(path)
    fsize = os.path.getsize(path)
    st = load_stats(path)
    if st:
        npk, cap_fmt, gen_flows = st["packets"], st.get("format"), st.get("flows")
    else:
        npk, _, cap_fmt = walk_capture(path)
        gen_flows = None

    tmp = tempfile.mkdtemp(prefix="pwbench-")
    cache = a.cache or tmp
    os.makedirs(cache, exist_ok=True)
    try:
        small = os.path.join(cache, f"scapy-{a.scapy_mb:g}MB-{os.path.basename(path)}")
        need_scapy = not skipped_by("scapy", skip) and (not only or "scapy" in only)
        small_pk = None
        if need_scapy:
            if not os.path.exists(small) or os.path.getmtime(small) < os.path.getmtime(path):
                truncate_capture(path, small, int(a.scapy_mb * 1e6))
            small_pk = walk_capture(small)[0]

        print(
            f"# file: {path}\n# {fsize / 1e6:.1f} MB, {npk} packets ({cap_fmt})"
            + (f", {gen_flows} flows (generator)" if gen_flows else "")
            + f", runs={a.runs}",
            flush=True,
        )
        specs = list(extra_specs(a, path, tmp)) if extra_specs else []
        specs += tool_specs(a, path, small if need_scapy else None, tmp)
        rows = []
        measured = []
        for sp in specs:
            name = sp["name"]
            row = {"tool": name, "label": sp["label"], "note": sp.get("note")}
            rows.append(row)
            if skipped_by(name, skip) or (only and name not in only and name.split("-")[0] not in only):
                row["skipped"] = True
                row["note"] = "skipped (--skip/--only)"
                continue
            if sp["cmd"] is None:
                row["skipped"] = True
                continue
            f = sp["file"]
            row.update(
                cmd=sp["cmd"],
                file=f,
                file_bytes=os.path.getsize(f),
                file_packets=small_pk if f == small else npk,
            )
            measured.append((sp, row, {"walls": [], "rss": [], "flows": None, "error": None}))
        # In rounds, every tool once per round: a machine whose speed drifts during the minutes
        # of a run then moves every tool's median alike, and the ratios between them hold.
        for i in range(a.runs):
            for sp, row, got in measured:
                if got["error"]:
                    continue
                got["error"] = _one_run(sp, row, got, a, i)
                if got["error"]:
                    print(f"  {row['tool']}: {got['error']}", flush=True)
        for _sp, row, got in measured:
            walls, f, fbytes, fpk = got["walls"], row["file"], row["file_bytes"], row["file_packets"]
            if got["error"]:
                row["error"] = got["error"]
                row["skipped"] = True
                row["note"] = "failed: " + got["error"]
                if not walls:
                    continue
            med = statistics.median(walls)
            row.update(
                runs_s=[round(w, 4) for w in walls],
                wall_s=round(med, 4),
                best_s=round(min(walls), 4),
                mb_s=round(fbytes / 1e6 / med, 2),
                mpkt_s=round(fpk / 1e6 / med, 4) if fpk else None,
                peak_rss_mib=round(max(got["rss"]), 1),
                flows=got["flows"],
            )
            row["skipped"] = False
            if f != path:
                row["extrapolated_full_file_s"] = round(fsize * med / fbytes, 1)
                row["note"] = (
                    row.get("note") or ""
                ) + f"; whole file would take ~{row['extrapolated_full_file_s']:.0f} s"

        pw = next((r for r in rows if r["tool"] == "portwitness-cli" and not r.get("skipped")), None)
        for r in rows:
            if r.get("skipped"):
                continue
            if pw:
                r["pw_speedup"] = round(pw["mb_s"] / r["mb_s"], 2)
                r["pw_rss_ratio"] = (
                    round(pw["peak_rss_mib"] / r["peak_rss_mib"], 3) if r["peak_rss_mib"] else None
                )
            else:
                r["pw_speedup"] = None
        # How far each tool is from the bare record walk measured in the same run (the limit):
        # ratios, not absolute times, are what survive a noisy machine.
        limit = next((r for r in rows if r["tool"] == "walk-rust" and not r.get("skipped")), None)
        for r in rows:
            if not r.get("skipped"):
                r["of_walk"] = round(r["mb_s"] / limit["mb_s"], 4) if limit else None
                # The fastest runs of both: what the code can do, least disturbed by the machine.
                r["of_walk_best"] = round(limit["best_s"] / r["best_s"], 4) if limit else None

        lines = [
            "| tool | wall s | MB/s | Mpkt/s | peak RSS MiB | flows | pw speedup | of walk |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        notes = []
        for r in rows:
            if r.get("skipped"):
                notes.append(f"- {r['tool']}: {r.get('note') or 'skipped'}")
                continue
            sp = r.get("pw_speedup")
            cells = [
                r["label"],
                fmt(r["wall_s"], ".3f"),
                fmt(r["mb_s"], ".1f"),
                fmt(r["mpkt_s"], ".3f"),
                fmt(r["peak_rss_mib"], ".0f"),
                r["flows"] if r.get("flows") is not None else "-",
                f"{sp:.2f}x" if sp else "n/a",
                f"{r['of_walk']:.3f}" if r.get("of_walk") else "-",
            ]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
            if r.get("note"):
                notes.append(f"- {r['tool']}: {r['note']}")
        if not pw:
            notes.append("- pw speedup: n/a (portwitness CLI not measured)")
        table = "\n".join(lines)
        print()
        print(
            f"File: `{os.path.basename(path)}` — {fsize / 1e6:.1f} MB, {npk} packets"
            + (f", {gen_flows} flows" if gen_flows else "")
            + f"; median of {a.runs} runs, warm page cache"
        )
        print()
        print(table)
        if notes:
            print()
            print("\n".join(notes))

        if a.json:
            doc = {
                "file": path,
                "file_bytes": fsize,
                "packets": npk,
                "format": cap_fmt,
                "generator_flows": gen_flows,
                "runs": a.runs,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": host_info(),
                "results": rows,
                "markdown": table,
            }
            from portwitness.outputs import open_output

            with open_output(a.json, "w") as fh:
                json.dump(doc, fh, indent=1, default=str)
            print(f"\n# wrote {a.json}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def host_info():
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_total"] = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    from importlib import metadata

    for mod in ("dpkt", "scapy", "portwitness", "polars"):
        try:
            info[mod] = metadata.version(mod)
        except metadata.PackageNotFoundError:
            pass
    info["rss_method"] = "GNU time %M" if TIME else "os.wait4 ru_maxrss (fork, no vfork)"
    if shutil.which("tshark"):
        v = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout
        info["tshark"] = v.splitlines()[0] if v else None
    return info


if __name__ == "__main__":
    sys.exit(main())
