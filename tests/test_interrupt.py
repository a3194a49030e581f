"""Ctrl-C within a second: a decode of any size (a large file, or a feed on stdin that never ends)
stops within a second of SIGINT, exits 130 with one line, leaves no spilled part behind and keeps
an existing output file as it was."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benches"))
import hostile  # noqa: E402

KEPT = "an earlier run's output\n"


def _spill_dirs(directory: Path) -> list[Path]:
    return sorted(directory.glob(".portwitness-spill-*"))


def _interrupt(proc: subprocess.Popen, directory: Path, wait_for_parts: bool) -> float:
    """Sends SIGINT once the decode is under way (parts spilled, when asked); returns how long
    the process took to end after it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        spilled = [p for d in _spill_dirs(directory) for p in d.glob("part-*.parquet")]
        if spilled or not wait_for_parts:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("no part was spilled within a minute")
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    return time.monotonic() - sent


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "portwitness.cli", "flows", *args]


def test_ctrl_c_stops_a_feed_that_never_ends(tmp_path):
    feed = tmp_path / "feed.pcap"
    hostile.write_synflood(feed, n=30_000)
    out = tmp_path / "flows.csv"
    out.write_text(KEPT)
    # Few live flows and small parts: the decode spills while the feed is still open.
    cmd = _command("-", "-o", str(out), "--max-flows", "1000", "--spill-rows", "1000")
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(feed.read_bytes())
        proc.stdin.flush()  # and left open: the decode waits for more, for ever
        took = _interrupt(proc, tmp_path, wait_for_parts=True)
        err = proc.stderr.read().decode()
    assert proc.returncode == 130 and took < 1.0, (proc.returncode, took, err)
    assert err == "portwitness: interrupted\n"
    assert out.read_text() == KEPT
    assert _spill_dirs(tmp_path) == []


def test_ctrl_c_stops_the_decode_of_a_large_file(tmp_path):
    big = tmp_path / "big.pcap"
    hostile.write_synflood(big, n=2_500_000)  # 190 MB of SYNs: seconds of decoding
    out = tmp_path / "flows.parquet"
    out.write_text(KEPT)
    cmd = _command(str(big), "-o", str(out), "--max-flows", "20000", "--spill-rows", "20000")
    with subprocess.Popen(cmd, stderr=subprocess.PIPE) as proc:
        took = _interrupt(proc, tmp_path, wait_for_parts=True)
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
    assert proc.returncode == 130 and took < 1.0, (proc.returncode, took, err)
    assert err == "portwitness: interrupted\n"
    assert out.read_text() == KEPT
    assert _spill_dirs(tmp_path) == []


def test_ctrl_c_during_a_report(tmp_path):
    feed = tmp_path / "feed.pcap"
    hostile.write_synflood(feed, n=5_000)
    cmd = [sys.executable, "-m", "portwitness.cli", "report", "-", "-o", str(tmp_path / "r.html")]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(feed.read_bytes())
        proc.stdin.flush()
        time.sleep(1.0)
        took = _interrupt(proc, tmp_path, wait_for_parts=False)
        err = proc.stderr.read().decode()
    assert proc.returncode == 130 and took < 1.0 and err == "portwitness: interrupted\n", (took, err)
    assert not (tmp_path / "r.html").exists()
