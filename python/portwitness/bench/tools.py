"""What each tool runs: the command line, its environment, and how its flow count is read back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

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


@dataclass
class Tool:
    """One row of the comparison. `cmd` None: not measurable here (`note` says why)."""

    name: str
    label: str
    cmd: list[str] | None
    file: str | None = None
    env: dict | None = None
    note: str | None = None
    # Timed inside the child (it prints a PWBENCH line), not as the whole process.
    inproc: bool = False
    # Its standard output is the decompressed stream: thrown away, not kept for `post`.
    discard_output: bool = False
    # Reads the flow count from the finished run.
    post: Callable | None = field(default=None, repr=False)


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


def portwitness_tools(cli: str, path: str, tmp: str, threads: tuple[int, ...] = (0, 1)) -> list[Tool]:
    """The CLI (`flows FILE -o OUT.parquet`) and the in-process decode, per thread count (0: every
    core; the names of the others end in `-<n>t`)."""
    pw, pw_note = resolve_cli(cli)
    chk = subprocess.run([sys.executable, "-c", PY_CHECK_PORTWITNESS], capture_output=True, text=True)
    py_ok = chk.returncode == 0
    py_note = "skipped: import portwitness failed: " + (chk.stderr.strip().splitlines() or ["?"])[-1]
    out = []
    for n in threads:
        suffix, says = ("", "") if n == 0 else (f"-{n}t", f", {n} thread" + ("s" if n > 1 else ""))
        parquet = os.path.join(tmp, f"flows{suffix}.parquet")
        cmd = [pw, "flows", path, "-o", parquet] + (["--threads", str(n)] if n else [])
        out.append(
            Tool(
                name="portwitness-cli" + suffix,
                label=f"portwitness flows (CLI{says})",
                cmd=cmd if pw else None,
                note=pw_note if pw else f"skipped: `{cli}` not on PATH",
                file=path,
                post=lambda r, p=parquet: parquet_rows(p),
            )
        )
    for n in threads:
        suffix, says = ("", "") if n == 0 else (f"-{n}t", f", {n} thread" + ("s" if n > 1 else ""))
        out.append(
            Tool(
                name="portwitness-py" + suffix,
                label=f"portwitness.decode (in-process{says})",
                cmd=[sys.executable, "-c", PY_PORTWITNESS, path, str(n)] if py_ok else None,
                note=None if py_ok else py_note,
                file=path,
                inproc=True,
                post=lambda r: (r.inproc or {}).get("flows"),
            )
        )
    return out


def tshark_tools(path: str, tmp: str) -> list[Tool]:
    """tshark's conversation tables with factory defaults, and with a minimal profile."""
    ts = shutil.which("tshark")
    if not ts:
        return [Tool(n, n, None, note="skipped: tshark not installed") for n in ("tshark", "tshark-min")]
    plain, mincfg, ndis = make_tshark_profiles(tmp)
    minimal = [ts, "-n", "-C", "pwbench-min"]
    for p in TSHARK_MIN_PREFS:
        minimal += ["-o", p]
    conv = ["-q", "-z", "conv,tcp", "-z", "conv,udp", "-r", path]
    return [
        Tool(
            name="tshark",
            label="tshark conv,tcp+udp (defaults)",
            cmd=[ts, *conv],
            env=dict(os.environ, WIRESHARK_CONFIG_DIR=plain),
            file=path,
            post=lambda r: count_conv_lines(r.stdout),
        ),
        Tool(
            name="tshark-min",
            label="tshark -n, minimal profile",
            cmd=minimal + conv,
            env=dict(os.environ, WIRESHARK_CONFIG_DIR=mincfg),
            file=path,
            note=f"{ndis} protocols disabled",
            post=lambda r: count_conv_lines(r.stdout),
        ),
    ]


def python_peer_tools(path: str, small: str | None, scapy_mb: float) -> list[Tool]:
    """dpkt over the whole file; scapy over `small`, the file's first `scapy_mb` MB."""
    out = []
    if have_module("dpkt"):
        out.append(
            Tool(
                name="dpkt",
                label="dpkt flow dict (python)",
                cmd=[sys.executable, DPKT_PEER, path],
                file=path,
                post=lambda r: count_dpkt(r.stdout),
            )
        )
    else:
        out.append(Tool("dpkt", "dpkt", None, note="skipped: dpkt not installed"))
    if have_module("scapy") and small:
        out.append(
            Tool(
                name="scapy",
                label=f"scapy PcapReader (first {scapy_mb:g} MB)",
                cmd=[sys.executable, "-c", PY_SCAPY, small],
                file=small,
                inproc=True,
                note="in-process loop over a truncated copy, import excluded",
            )
        )
    else:
        why = "skipped: scapy not installed" if small is not None else "skipped (--skip/--only)"
        out.append(Tool("scapy", "scapy", None, note=why))
    return out


def flow_exporter_tools(path: str, tmp: str) -> list[Tool]:
    """nfdump's nfpcapd and argus, each reading the capture into its own flow records."""
    nf = shutil.which("nfpcapd")
    nfdir = os.path.join(tmp, "nfcapd")
    os.makedirs(nfdir, exist_ok=True)
    ar = shutil.which("argus")
    return [
        Tool(
            name="nfpcapd",
            label="nfpcapd -r",
            cmd=[nf, "-r", path, "-w", nfdir] if nf else None,
            note=None if nf else "skipped: nfpcapd (nfdump) not installed",
            file=path,
        ),
        Tool(
            name="argus",
            label="argus -r",
            cmd=[ar, "-r", path, "-w", os.path.join(tmp, "out.argus")] if ar else None,
            note=None if ar else "skipped: argus not installed",
            file=path,
        ),
    ]


def decompressor_tool(path: str) -> Tool | None:
    """`zcat` or `zstd -dc` of a compressed capture to /dev/null: the speed a decompressing
    reader can at best reach. None for an uncompressed file."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        name, cmd = "zcat", ["zcat", path]
    elif magic == b"\x28\xb5\x2f\xfd":
        name, cmd = "zstd-dc", ["zstd", "-dc", path]
    else:
        return None
    exe = shutil.which(cmd[0])
    return Tool(
        name=name,
        label=" ".join(cmd[:-1]) + " > /dev/null",
        cmd=[exe, *cmd[1:]] if exe else None,
        note=None if exe else f"skipped: {cmd[0]} not installed",
        file=path,
        discard_output=True,
    )


def peer_tools(path: str, small: str | None, scapy_mb: float, tmp: str) -> list[Tool]:
    """Every peer `portwitness bench --against` knows, in PEERS order."""
    return tshark_tools(path, tmp) + python_peer_tools(path, small, scapy_mb) + flow_exporter_tools(path, tmp)
