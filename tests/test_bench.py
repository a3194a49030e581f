"""`portwitness bench`: the peer comparison on a user's own file (the harness of benches/run.py)."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from portwitness.cli import main

DEMO = Path(str(files("portwitness") / "demo" / "demo.pcap"))


def test_bench_against_scapy_writes_the_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", str(DEMO), "--against", "scapy", "--runs", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "| portwitness flows (CLI) |" in printed and "| scapy PcapReader" in printed
    doc = json.loads(out.read_text())
    rows = {r["tool"]: r for r in doc["results"]}
    assert doc["packets"] == 304 and doc["file_bytes"] == DEMO.stat().st_size
    for tool in ("portwitness-cli", "portwitness-py", "scapy"):
        assert rows[tool]["skipped"] is False, rows[tool]
        assert rows[tool]["wall_s"] > 0 and rows[tool]["peak_rss_mib"] > 0
    assert rows["portwitness-cli"]["flows"] == 21 and rows["portwitness-py"]["flows"] == 21
    assert rows["portwitness-cli"]["pw_speedup"] == 1.0
    assert rows["tshark"]["skipped"] is True


def test_bench_unknown_peer_is_one_line_and_exit_2(capsys):
    code = main(["bench", str(DEMO), "--against", "wireshark"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("portwitness: error:") == 1


def test_bench_runs_every_tool_once_per_round(capsys):
    # Rounds, not one tool's runs back to back: a machine whose speed drifts moves every median.
    code = main(["bench", str(DEMO), "--against", "scapy", "--runs", "2"])
    printed = capsys.readouterr().out
    assert code == 0
    runs = [line.split()[:3] for line in printed.splitlines() if " run " in line and line.startswith("  ")]
    order = [(tool, int(n.rstrip(":"))) for tool, _, n in runs]
    tools = [tool for tool, n in order if n == 1]
    assert {"portwitness-cli", "portwitness-py", "scapy"} <= set(tools)
    assert order == [(t, 1) for t in tools] + [(t, 2) for t in tools]
