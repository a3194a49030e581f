"""The command line: output on stdout, one-line errors on stderr, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest
from click.testing import CliRunner

import portwitness
from conftest import PCAPS, expected_flows
from portwitness.cli import cli, main


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"portwitness, version {portwitness.__version__}"


@pytest.mark.parametrize("command", [[], ["flows"], ["rpcinfo"]])
def test_help_on_every_command(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_flows_table_on_terminal(capsys):
    code, out, err = run(["flows", str(PCAPS / "tcp_basic.pcap"), "--limit", "3"], capsys)
    assert code == 0 and "error" not in err
    assert "6 flows, top 3 by bytes" in out
    assert "10.0.0.1:40000" in out and "10.0.0.2:111" in out


@pytest.mark.parametrize("ext", ["parquet", "csv", "json", "ndjson"])
def test_flows_to_file_by_extension(tmp_path, capsys, ext):
    out_file = tmp_path / f"flows.{ext}"
    code, out, err = run(["flows", str(PCAPS / "sample.pcap"), "-o", str(out_file)], capsys)
    assert code == 0 and out == ""
    assert all(line.startswith("portwitness: warning: ") for line in err.splitlines())
    if ext == "parquet":
        df = pl.read_parquet(out_file)
    elif ext == "csv":
        df = pl.read_csv(out_file)
    elif ext == "json":
        df = pl.DataFrame(json.loads(out_file.read_text()))
    else:
        df = pl.read_ndjson(out_file)
    assert df.height == len(expected_flows(PCAPS / "sample.pcap"))
    assert set(df["server_port"].to_list()) >= {111, 135, 7099}


def test_csv_to_stdout():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "portwitness.cli",
            "flows",
            str(PCAPS / "tcp_basic.pcap"),
            "--format",
            "csv",
            "-o",
            "-",
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    assert out.stdout.splitlines()[0].startswith("flow_id,capture,first_record,transport,client_ip")
    assert len(out.stdout.splitlines()) == 7


def test_anomalies_warned_in_one_line(tmp_path, capsys):
    an = tmp_path / "an.csv"
    code, _, err = run(
        ["flows", str(PCAPS / "broken" / "truncated_last_record.pcap"), "--anomalies", str(an)], capsys
    )
    assert code == 0
    (line,) = err.splitlines()
    assert line.startswith("portwitness: warning: ") and "truncated_record 1" in line
    assert line.endswith("; write them with --anomalies FILE")
    assert "truncated_record" in pl.read_csv(an)["kind"].to_list()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["flows", "nope.pcap"], 1, "portwitness: error: nope.pcap: no such file"),
        (
            ["flows", str(PCAPS / "broken" / "bad_magic.pcap")],
            1,
            "not a pcap or pcapng capture (bad magic 48 45 4c 4f)",
        ),
        # The fixtures' folder holds broken captures too: each is named, and nothing is written.
        (["flows", str(PCAPS)], 1, "truncated_global_header.pcap: truncated inside the pcap file header"),
        (["flows", "--skip-unreadable", str(PCAPS)], 0, None),
        (["flows"], 2, "portwitness: error: Missing argument 'CAPTURES...'."),
        (["flows", str(PCAPS / "tcp_basic.pcap"), "-o", "x.xlsx"], 2, "cannot tell the format of 'x.xlsx'"),
        (["flows", str(PCAPS / "tcp_basic.pcap"), "--limit", "-1"], 2, "Invalid value for '--limit'"),
        (["frobnicate"], 2, "No such command 'frobnicate'"),
    ],
)
def test_errors_are_one_line(capsys, args, code, message):
    got, _, err = run(args, capsys)
    assert got == code
    if message is None:
        return
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("portwitness: error: ")
    assert message in lines[0]
    assert "Traceback" not in err


def test_console_script_installed():
    out = subprocess.run(["portwitness", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("portwitness, version ")


def test_the_console_script_exits_with_its_output_whole(tmp_path):
    # The console script skips the interpreter's teardown: what it printed must all be there,
    # piped, and its exit codes must be main's.
    sample = str(PCAPS / "sample.pcap")
    piped = subprocess.run(
        ["portwitness", "flows", sample, "--format", "csv"], capture_output=True, text=True
    )
    assert piped.returncode == 0, piped.stderr
    assert pl.read_csv(piped.stdout.encode()).height == portwitness.decode(sample).flows.height > 0
    out = tmp_path / "flows.parquet"
    done = subprocess.run(["portwitness", "flows", sample, "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0 and pl.read_parquet(out).height > 0
    missing = subprocess.run(
        ["portwitness", "flows", str(tmp_path / "nope.pcap")], capture_output=True, text=True
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("portwitness: error: ") and missing.stderr.count("\n") == 1


def test_polars_loads_beside_the_decode():
    # The command line reaches the core's decode without polars, which then loads on another
    # thread while the core decodes; the package keeps its API whichever submodule loads first.
    probe = (
        "import sys, portwitness, portwitness.cli\n"
        "assert 'polars' not in sys.modules, 'polars loaded before the decode'\n"
        "import portwitness.audit.usage\n"
        "assert callable(portwitness.audit) and portwitness.audit.__module__ == 'portwitness.audit'\n"
        "assert portwitness.decode.__module__ == 'portwitness.capture'\n"
        "assert portwitness.config.port_plan.__module__ == 'portwitness.config.plan'\n"
        "assert {'audit', 'decode', 'load_config'} <= set(dir(portwitness))\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_dataset_error_is_one_line(tmp_path, capsys):
    # DatasetError comes from a module the command line loads on demand.
    code, _, err = run(["report", "--from-dataset", str(tmp_path)], capsys)
    assert code == 1 and err.count("\n") == 1 and "not a portwitness dataset" in err


@pytest.mark.parametrize("option", ["-o", "--anomalies"])
def test_unwritable_output_names_the_file(tmp_path, capsys, option):
    target = str(tmp_path / "missing" / "out.parquet")
    args = ["flows", str(PCAPS / "tcp_basic.pcap"), option, target]
    if option == "--anomalies":
        args += ["-o", str(tmp_path / "flows.csv")]
    code, _, err = run(args, capsys)
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 1 and errors == [f"portwitness: error: {target}: no such file"]
