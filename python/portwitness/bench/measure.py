"""One tool's run as a child process: wall time and peak RSS; runs in rounds, medians."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time

from .capture import warm


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


def run_child(cmd, env=None, timeout=None, discard_output=False) -> Result:
    """Run cmd; wall time measured here, peak RSS via /usr/bin/time -f %M
    (the tool is then forked from a ~1 MB process) or else os.wait4. `discard_output`: the
    standard output goes to /dev/null (a decompressor's stream)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        tfile = None
        full = list(cmd)
        if TIME:
            fd, tfile = tempfile.mkstemp(prefix="pwbench-time-")
            os.close(fd)
            full = [TIME, "-f", "PWTIME %e %M", "-o", tfile] + full
        t0 = time.perf_counter()
        stdout = subprocess.DEVNULL if discard_output else out
        p = subprocess.Popen(full, stdout=stdout, stderr=err, env=env, stdin=subprocess.DEVNULL)
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


class Got:
    """One tool's runs so far."""

    def __init__(self):
        self.walls: list[float] = []
        self.rss_mib: list[float] = []
        self.import_s: list[float] = []
        self.flows = None
        self.error: str | None = None


def run_once(tool, got: Got, timeout: float, i: int, log=print) -> None:
    """Runs `tool` once (run `i`), adding its wall time, RSS and flow count to `got`, or its error."""
    # Before every run: a machine may drop page-cache pages at any time, even with memory to
    # spare, and re-reading them from disk would be charged to the tool.
    warm(tool.file)
    r = run_child(tool.cmd, env=tool.env, timeout=timeout, discard_output=tool.discard_output)
    if r.rc != 0:
        got.error = f"exit {r.rc}: " + " | ".join(r.stderr.strip().splitlines()[-3:])
        return
    w = r.wall
    if tool.inproc:
        if not r.inproc:
            got.error = "no PWBENCH line in output"
            return
        w = r.inproc["seconds"]
        got.import_s.append(round(r.inproc.get("import_s", 0), 3))
    got.walls.append(w)
    got.rss_mib.append(r.rss_kib / 1024)
    if tool.post and got.flows is None:
        got.flows = tool.post(r)
    log(f"  {tool.name:16s} run {i + 1}: {w:8.3f} s  {r.rss_kib / 1024:8.1f} MiB")


def rounds(tools: list, runs: int, timeout: float, log=print) -> list[Got]:
    """Every tool `runs` times, in rounds (each tool once per round): a machine whose speed drifts
    during the minutes of a run then moves every tool's median alike, and the ratios hold."""
    gots = [Got() for _ in tools]
    for i in range(runs):
        for tool, got in zip(tools, gots, strict=True):
            if got.error:
                continue
            run_once(tool, got, timeout, i, log)
            if got.error:
                log(f"  {tool.name}: {got.error}")
    return gots
