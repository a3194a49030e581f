"""Filters everywhere: `flows`, `usage`, `rpcinfo` and `report` take the same `--host` (address,
CIDR, learned name), `--port` (ports and ranges, either end), `--transport`, `--since`/`--until`
and `--where` (a SQL predicate over the flows table, run by Polars' SQL engine). Each selects the
rows a direct polars filter of the decoded flows selects; a bad value exits 2, filters that leave
nothing exit 1 with one line."""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timezone

import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS
from portwitness.cli import main

SAMPLE = str(PCAPS / "sample.pcap")


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def flows() -> pl.DataFrame:
    return pw.decode(SAMPLE).flows


def flow_ids(args: list[str], capsys) -> set[int]:
    code, out, err = run(["flows", SAMPLE, "--format", "ndjson", *args], capsys)
    assert code == 0, err
    return {json.loads(line)["flow_id"] for line in out.splitlines()}


def ids(df: pl.DataFrame) -> set[int]:
    return set(df["flow_id"].to_list())


def _in_net(col: str, net: str) -> pl.Expr:
    network = ipaddress.ip_network(net)
    return pl.col(col).map_elements(
        lambda a: ipaddress.ip_address(a) in network if ":" not in a else False, return_dtype=pl.Boolean
    )


def test_flows_filters_select_what_polars_selects(flows, capsys):
    both = pl.col("client_port").is_between(20000, 20100) | pl.col("server_port").is_between(20000, 20100)
    cases = [
        (
            ["--host", "10.20.0.21"],
            (pl.col("client_ip") == "10.20.0.21") | (pl.col("server_ip") == "10.20.0.21"),
        ),
        (
            ["--host", "10.20.0.8/30"],
            _in_net("client_ip", "10.20.0.8/30") | _in_net("server_ip", "10.20.0.8/30"),
        ),
        # A learned name: the TLS SNI the capture taught for 10.20.0.21.
        (
            ["--host", "casmgmt"],
            (pl.col("client_ip") == "10.20.0.21") | (pl.col("server_ip") == "10.20.0.21"),
        ),
        (["--port", "111"], (pl.col("client_port") == 111) | (pl.col("server_port") == 111)),
        (["--port", "20000-20100"], both),
        (["--port", "135,7099", "--port", "111"], pl.col("server_port").is_in([111, 135, 7099])),
        (["--transport", "udp"], pl.col("transport") == "udp"),
        (
            ["--since", "2026-03-01T02:00:00.3Z"],
            pl.col("last_ts") >= datetime(2026, 3, 1, 2, 0, 0, 300000, timezone.utc),
        ),
        (
            ["--until", "2026-03-01T02:00:00.1"],
            pl.col("first_ts") <= datetime(2026, 3, 1, 2, 0, 0, 100000, timezone.utc),
        ),
        (
            ["--where", "server_port BETWEEN 20000 AND 20100 AND security = 'plaintext'"],
            pl.col("server_port").is_between(20000, 20100) & (pl.col("security") == "plaintext"),
        ),
        (["--where", "tls_version = 'TLSv1.3'", "--transport", "tcp"], pl.col("tls_version") == "TLSv1.3"),
    ]
    for args, expr in cases:
        want = ids(flows.filter(expr))
        assert want and want != ids(flows), args  # each case selects some flows, not all
        assert flow_ids(args, capsys) == want, args


def test_flows_filters_on_the_spilled_path_and_the_table(flows, tmp_path, capsys):
    out = tmp_path / "f.parquet"
    code, _, err = run(["flows", SAMPLE, "--transport", "udp", "--spill-rows", "2", "-o", str(out)], capsys)
    assert code == 0, err
    assert ids(pl.read_parquet(out)) == ids(flows.filter(pl.col("transport") == "udp"))
    code, text, _ = run(["flows", SAMPLE, "--port", "7099", "--limit", "0"], capsys)
    assert code == 0 and text.startswith("2 flows") and ":7099" in text


def test_usage_and_report_take_the_filters(capsys):
    code, out, err = run(["usage", SAMPLE, "--format", "json", "--port", "111", "--transport", "tcp"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert {(r["service"], r["transport"], r["port"]) for r in rows} == {("catirpc", "tcp", 111)}
    code, out, err = run(["usage", SAMPLE, "--format", "json", "--where", "security = 'tls'"], capsys)
    assert (
        code == 0 and sum(r["flows"] for r in json.loads(out)) == sum(r["tls"] for r in json.loads(out)) > 0
    )
    code, out, err = run(["report", SAMPLE, "--format", "json", "--transport", "udp"], capsys)
    doc = json.loads(out)
    assert doc["summary"]["flows"] == 5 and all(u["transport"] == "udp" for u in doc["uncovered"])


def test_rpcinfo_takes_the_filters(capsys):
    def views(*args: str) -> tuple[set, set]:
        code, out, err = run(["rpcinfo", SAMPLE, "--format", "json", *args], capsys)
        assert code == 0, err
        doc = json.loads(out)
        return {(r["proto"], r["port"]) for r in doc["oncrpc"]}, {r["port"] for r in doc["msrpc"]}

    assert views() == (
        {("tcp", 111), ("udp", 111), ("tcp", 1025), ("tcp", 1026), ("tcp", 1027)},
        {135, 6502, 6503},
    )
    assert views("--port", "1025-1026") == ({("tcp", 1025), ("tcp", 1026)}, set())
    assert views("--transport", "udp") == ({("udp", 111)}, set())
    assert views("--host", "10.20.0.20", "--port", "6502") == (set(), {6502})
    # --where selects the flows whose replies are read: the bind_ack on the tape engine's port
    # names only that port.
    assert views("--where", "server_port = 6502") == (set(), {6502})


@pytest.mark.parametrize("command", ["flows", "usage", "rpcinfo", "report"])
@pytest.mark.parametrize(
    ("filters", "code", "message"),
    [
        (["--where", "nope = 1"], 2, 'unable to find column "nope"'),
        (["--where", "server_port BETWEEN"], 2, "unable to parse"),
        (["--port", "1-2-3"], 2, "--port '1-2-3'"),
        (["--host", "not a host!"], 2, "--host 'not a host!'"),
        (["--port", "9"], 1, "no "),
        (["--host", "192.0.2.99"], 1, "no flow to or from 192.0.2.99"),
    ],
)
def test_bad_values_exit_2_and_empty_results_exit_1(tmp_path, capsys, command, filters, code, message):
    out = tmp_path / "out.json"
    got, stdout, err = run([command, SAMPLE, *filters, "-o", str(out)], capsys)
    assert got == code, err
    (line,) = err.splitlines()
    assert line.startswith("portwitness: error: ") and message in line
    assert not out.exists() and stdout == ""
