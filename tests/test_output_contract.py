"""One output contract for every command: `-o FILE`'s extension chooses the format, an extension
and a `--format` that disagree or a format a command cannot write exit 2 before anything is
decoded, `-o`'s directory is checked first too; times in text outputs are RFC 3339 UTC with `Z`,
lists are JSON arrays, CSV cells that a spreadsheet would run are neutralised, and a reader that
closes the pipe ends the command quietly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS, ROOT
from portwitness.cli import EXIT_CLOSED_PIPE, main
from portwitness.formats import text_frame

sys.path.insert(0, str(ROOT / "benches"))
import hostile  # noqa: E402

SAMPLE = str(PCAPS / "sample.pcap")
DEMO = Path(pw.__file__).parent / "demo"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


# --- the format: one resolver, refused before decoding ---------------------------------------------

WRITERS = [
    ["flows", SAMPLE],
    ["rpcinfo", SAMPLE],
    ["usage", SAMPLE],
    ["report", SAMPLE],
    ["config", "check", str(DEMO / "PortsConfig.cfg")],
    ["demo"],
]


@pytest.mark.parametrize("command", WRITERS, ids=lambda c: c[0])
def test_the_extension_chooses_json_for_every_command(tmp_path, capsys, command):
    out = tmp_path / "out.json"
    code, stdout, _ = run([*command, "-o", str(out)], capsys)
    assert code == 0 and stdout == ""
    json.loads(out.read_text())  # JSON, whatever the command


def test_rpcinfo_o_json_writes_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert run(["rpcinfo", SAMPLE, "-o", str(out)], capsys)[0] == 0
    doc = json.loads(out.read_text())
    assert set(doc) == {"oncrpc", "msrpc"} and len(doc["oncrpc"]) == 5
    # Lists are arrays, times RFC 3339 with Z.
    assert ["dump", "getport"] in [r["source"] for r in doc["oncrpc"]]
    assert all(RFC3339.match(r["first_seen"]) for r in doc["oncrpc"] + doc["msrpc"])


NOWHERE = "/nonexistent-capture.pcap"  # decoding it would exit 1: exit 2 proves nothing was decoded


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["flows", NOWHERE, "-o", "f.json", "--format", "csv"],
            "is JSON by its extension but --format is csv",
        ),
        (["rpcinfo", NOWHERE, "-o", "r.parquet"], "rpcinfo cannot write Parquet"),
        (["rpcinfo", NOWHERE, "--format", "csv", "-o", "r.json"], "--format is csv"),
        (["usage", NOWHERE, "-o", "u.html"], "usage cannot write HTML"),
        (["report", NOWHERE, "-o", "r.parquet"], "report cannot write Parquet"),
        (["report", NOWHERE, "--format", "html", "-o", "r.md"], "is Markdown by its extension"),
        (["flows", NOWHERE, "-o", "f.xlsx"], "cannot tell the format of 'f.xlsx'"),
        (["flows", NOWHERE, "--format", "parquet"], "Parquet needs an output file"),
        (["config", "check", NOWHERE, "-o", "plan.parquet"], "config check cannot write Parquet"),
        (["demo", "-o", "d.ndjson"], "demo cannot write NDJSON"),
        (["flows", NOWHERE, "--where", "server_port BETWEEN"], "--where 'server_port BETWEEN'"),
        (["flows", NOWHERE, "--port", "70000"], "--port '70000'"),
    ],
)
def test_disagreements_exit_2_before_decoding(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(args, capsys)
    assert code == 2, err
    (line,) = err.splitlines()
    assert line.startswith("portwitness: error: ") and message in line
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_directory_is_refused_before_decoding(capsys):
    code, _, err = run(["flows", NOWHERE, "-o", "/nonexistent-dir/flows.csv"], capsys)
    assert code == 1 and err == "portwitness: error: /nonexistent-dir/flows.csv: no such file\n"
    code, _, err = run(["rpcinfo", NOWHERE, "-o", "/nonexistent-dir/r.json"], capsys)
    assert code == 1 and "/nonexistent-dir/r.json: no such file" in err


def test_a_txt_file_gets_the_plain_table(tmp_path, capsys):
    out = tmp_path / "r.txt"
    assert run(["rpcinfo", SAMPLE, "-o", str(out)], capsys)[0] == 0
    text = out.read_text()
    assert "10.20.0.20   395648     1  tcp    1026  caauthd" in text
    assert not re.search(r"[┃│━─┏]", text)


# --- cells: times, lists, CSV injection ---------------------------------------------------------


def _time_cells(df: pl.DataFrame, columns: list[str]) -> list[str]:
    return [v for c in columns for v in df[c].to_list() if v is not None]


def test_times_are_rfc3339_utc_with_z_in_every_text_output(tmp_path, capsys):
    code, out, _ = run(["flows", SAMPLE, "--format", "csv"], capsys)
    flows = pl.read_csv(out.encode(), infer_schema=False)
    cells = _time_cells(flows, ["first_ts", "last_ts"])
    code, out, _ = run(["flows", SAMPLE, "--format", "ndjson"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    cells += [r[k] for r in rows for k in ("first_ts", "last_ts")]
    code, out, _ = run(["usage", SAMPLE, "--format", "json"], capsys)
    cells += [r[k] for r in json.loads(out) for k in ("first_seen", "last_seen")]
    code, out, _ = run(["rpcinfo", SAMPLE, "--format", "csv"], capsys)
    cells += _time_cells(pl.read_csv(out.encode(), infer_schema=False), ["first_seen", "last_seen"])
    code, out, _ = run(["report", SAMPLE, "--format", "csv"], capsys)
    cells += _time_cells(pl.read_csv(out.encode(), infer_schema=False), ["first_seen", "last_seen"])
    assert len(cells) > 80
    assert all(RFC3339.match(c) for c in cells), [c for c in cells if not RFC3339.match(c)][:3]
    # On the terminal too (off a terminal here: the plain table).
    code, out, _ = run(["flows", SAMPLE, "--limit", "1"], capsys)
    assert re.search(r"  2026-03-01T02:00:00\.\d{3}Z  ", out)


def test_lists_are_arrays_in_json_and_ndjson_and_joined_in_csv(capsys):
    _, out, _ = run(["usage", SAMPLE, "--by", "service", "--format", "ndjson"], capsys)
    rows = {(r["service"], r["transport"]): r for r in map(json.loads, out.splitlines())}
    assert rows[("unknown", "tcp")]["ports"] == [20000, 20031, 20042, 20100]
    assert rows[("unknown", "tcp")]["evidence"] == ["unknown:4"]
    _, out, _ = run(["usage", SAMPLE, "--by", "service", "--format", "csv"], capsys)
    csv = pl.read_csv(out.encode(), infer_schema=False)
    assert "20000;20031;20042;20100" in csv["ports"].to_list()
    _, out, _ = run(["rpcinfo", SAMPLE, "--format", "ndjson"], capsys)
    assert {tuple(json.loads(line)["source"]) for line in out.splitlines()} >= {("dump", "getport"), ("map",)}


def test_csv_cells_a_spreadsheet_would_run_are_neutralised():
    df = pl.DataFrame(
        {
            "text": ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "plain", "a=b", None],
            "number": [-1, 2, -3, 4, 5, 6, 7, 8, 9],
            "list": [["=x", "y"], [], None, ["-1"], ["ok"], ["ok"], ["ok"], ["ok"], ["ok"]],
        }
    )
    csv = text_frame(df, "csv")
    assert csv["text"].to_list() == [
        "'=1+1",
        "'+SUM(A1)",
        "'-2+3",
        "'@cmd",
        "'\tx",
        "'\rx",
        "plain",
        "a=b",
        None,
    ]
    assert csv["number"].to_list() == df["number"].to_list()  # numbers in numeric columns stay
    assert csv["list"].to_list()[:4] == ["'=x;y", "", None, "'-1"]
    # JSON keeps the strings as they are: JSON readers run nothing.
    assert text_frame(df, "json")["text"].to_list() == df["text"].to_list()


def test_a_hostile_sni_is_neutralised_in_the_flows_csv(tmp_path, capsys):
    from test_report import _evil_capture

    pcap = tmp_path / "evil.pcap"
    _evil_capture(pcap, sni='=HYPERLINK("http://x/","y")', machine="@SUM(1)")
    code, out, _ = run(["flows", str(pcap), "--format", "csv"], capsys)
    assert code == 0
    sni = [v for v in pl.read_csv(out.encode(), infer_schema=False)["tls_sni"].to_list() if v]
    assert sni == ['\'=HYPERLINK("http://x/","y")']
    code, out, _ = run(["flows", str(pcap), "--format", "json"], capsys)
    assert '=HYPERLINK("http://x/","y")' in [r["tls_sni"] for r in json.loads(out)]


# --- a closed stdout ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_flows(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pipe") / "synflood.pcap"
    hostile.write_synflood(path, n=40_000)
    return path


@pytest.mark.parametrize("args", [["--format", "csv"], ["--format", "ndjson"], ["--limit", "0"]])
def test_a_closed_pipe_ends_quietly(many_flows, args):
    cmd = [sys.executable, "-m", "portwitness.cli", "flows", str(many_flows), *args]
    shell = " ".join(map(repr, cmd)) + ' | head -n 1 >/dev/null; echo "${PIPESTATUS[0]}" >&2'
    proc = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120)
    status = proc.stderr.strip().splitlines()
    # Nothing but the status: no traceback, no "Broken pipe" line.
    assert status == [str(EXIT_CLOSED_PIPE)], proc.stderr


def test_the_report_json_gives_lists_as_arrays(capsys):
    code, out, _ = run(["demo", "--format", "json"], capsys)
    doc = json.loads(out)
    catirpc = next(s for s in doc["services"] if s["service"] == "catirpc")
    assert catirpc["ports_seen"] == [111] and catirpc["servers"] == ["10.20.0.10"]
    callback = next(r for r in doc["ranges"] if r["range"] == "20000-20100")
    assert callback["ports_used"] == [20010, 20055, 20077] and callback["outside_ports"] == [20150]
    assert RFC3339.match(doc["summary"]["first_ts"]) and "2026-03-01T02:00:00Z to" in doc["verdict"]
