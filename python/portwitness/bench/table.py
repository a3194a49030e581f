"""Rendering: the markdown table of one capture's results, and what the machine was."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

from .measure import TIME


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def markdown(rows: list[dict]) -> tuple[str, list[str]]:
    """The table of the measured rows, and the notes (skipped tools, remarks)."""
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
    if not any(r["tool"] == "portwitness-cli" and not r.get("skipped") for r in rows):
        notes.append("- pw speedup: n/a (portwitness CLI not measured)")
    return "\n".join(lines), notes


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
