"""Terminal output that never cuts an identity: addresses (IPv6 included), ports, program numbers,
interfaces, service names and violation types are printed whole at 80 and 120 columns, in every
table, with rich consoles of that width and with the real command on a terminal of that width;
off a terminal the tables are plain aligned text without box drawing."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

import portwitness as pw
from conftest import PCAPS, requires
from portwitness.audit import audit
from portwitness.render import flows_table, rpcinfo_table
from portwitness.render.fit import ID, TEXT, Col, print_table
from portwitness.render.terminal import print_frame, print_report
from portwitness.rpcinfo import msrpc_endpoints, rpcinfo

WIDTHS = [80, 120]
BOX = re.compile(r"[┃│┏┓┗┛━┳┻╇┡┩└┘┴┬─╋┼┌┐├┤]")
DEMO = Path(pw.__file__).parent / "demo"


def render(width: int, draw) -> str:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system=None, legacy_windows=False)
    draw(console)
    text = buf.getvalue()
    assert all(len(line.rstrip()) <= width for line in text.splitlines()), text
    return text


def whole(text: str, values: list[str]) -> None:
    """Every value appears unbroken on one line, and nothing was cut with an ellipsis."""
    assert "…" not in text
    lines = text.splitlines()
    for v in values:
        assert any(v in line for line in lines), (v, text)


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def long_ipv6_flows() -> pl.DataFrame:
    """Flows of the sample with the longest IPv6 addresses there are, so nothing fits at 80."""
    flows = pw.decode(PCAPS / "sample.pcap").flows.head(4)
    return flows.with_columns(
        pl.format("2001:db8:1234:5678:9abc:def0:1234:{}", pl.col("flow_id")).alias("client_ip"),
        pl.lit("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff").alias("server_ip"),
    )


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("capture", ["sample.pcap", "linktypes.pcapng"])
def test_flows_table_keeps_endpoints_whole(width, capture):
    cap = pw.decode(PCAPS / capture)
    text = render(width, lambda c: flows_table(cap.flows, limit=0, stats=cap.stats, console=c))
    ids = [_endpoint(r["client_ip"], r["client_port"]) for r in cap.flows.iter_rows(named=True)]
    ids += [_endpoint(r["server_ip"], r["server_port"]) for r in cap.flows.iter_rows(named=True)]
    ids += [v for v in cap.flows["security"].drop_nulls().unique().to_list()]
    ids += [v for v in cap.flows["tls_version"].drop_nulls().unique().to_list()]
    whole(text, ids)
    assert "security" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_flows_of_long_ipv6_addresses_fall_back_to_one_record_per_block(width):
    flows = long_ipv6_flows()
    text = render(width, lambda c: flows_table(flows, limit=0, stats={}, console=c))
    ids = [_endpoint(r["client_ip"], r["client_port"]) for r in flows.iter_rows(named=True)]
    whole(text, ids + ["[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:111"])
    if width == 80:
        assert re.search(r"^ +client: \[2001:db8:1234:5678:9abc:def0:1234:0\]:51001$", text, re.M)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("capture", ["sample.pcap", "rpcbind_getaddr.pcap", "epm_dynamic.pcap"])
def test_rpcinfo_keeps_programs_ports_interfaces_and_names_whole(width, capture):
    path = PCAPS / capture
    cap = pw.decode(path)
    onc, ms = rpcinfo(cap), msrpc_endpoints(cap)
    text = render(width, lambda c: rpcinfo_table(onc, ms, console=c))
    ids = [str(v) for c in ("server", "program", "port", "name") for v in onc[c].to_list()]
    ids += [str(v) for c in ("server", "interface", "name", "protocol", "port") for v in ms[c].to_list()]
    assert ids
    whole(text, ids)


@pytest.mark.parametrize("width", WIDTHS)
def test_report_keeps_violation_types_services_ports_and_hosts_whole(width):
    from portwitness.demo import load

    cap, pol = load()
    a = audit(cap, pol)
    text = render(width, lambda c: print_report(a, c, limit=0))
    ids = [str(v) for c in ("type", "service", "port") for v in a.violations[c].to_list()]
    ids += [str(v) for c in ("outcome", "service", "port") for v in a.blocked[c].to_list()]
    ids += [str(v) for c in ("service",) for v in a.services[c].to_list()]
    ids += [str(v) for v in a.ranges["range"].to_list()]
    whole(text, ids)


@pytest.mark.parametrize("width", WIDTHS)
def test_usage_counts_tls_and_plaintext_and_keeps_identities_whole(width):
    from portwitness.audit.usage import usage

    a = audit(pw.decode(PCAPS / "sample.pcap"))
    df = usage(a.flows, "port")
    assert {"tls", "plaintext"} <= set(df.columns)
    text = render(width, lambda c: print_frame(c, "usage", df))
    whole(text, [str(v) for c in ("server_ip", "port", "service") for v in df[c].to_list()])
    assert re.search(r"\btls\b", text) and "plaintext" in text


def test_descriptive_columns_fold_or_go_first_and_are_named():
    cols = [Col("host", ID), Col("service", ID), Col("why", TEXT)]
    rows = [["2001:db8::1", "mgmt-callback", "a long explanation " * 6]]
    text = render(80, lambda c: print_table(c, "t", cols, rows))
    whole(text, ["2001:db8::1", "mgmt-callback"])
    assert "explanation" in text  # folded, still there
    narrow = render(
        40, lambda c: print_table(c, "t", cols, [["2001:db8:1:2:3:4:5:6", "mgmt-callback", "x" * 60]])
    )
    whole(narrow, ["2001:db8:1:2:3:4:5:6", "mgmt-callback"])


def test_off_a_terminal_tables_are_plain_aligned_text():
    buf = io.StringIO()
    cap = pw.decode(PCAPS / "sample.pcap")
    flows_table(cap.flows, limit=0, stats=cap.stats, console=Console(file=buf, width=80))
    text = buf.getvalue()
    assert not BOX.search(text)
    lines = text.splitlines()
    header = lines[1]
    assert header.split()[:4] == ["proto", "client", "server", "outcome"]
    # Aligned: every row's server column starts where the header's does, however wide the table.
    at = header.index("server")
    assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines[2:23])
    assert max(len(line) for line in lines) > 80  # never cut to a width a pipe does not have


def _on_a_terminal(columns: int, *args: str) -> str:
    """The real command on a pseudo-terminal `columns` wide (util-linux `script`), colours off."""
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "NO_COLOR": "1", "TERM": "xterm"}
    env["PYTHONPATH"] = str(Path(pw.__file__).resolve().parent.parent)
    command = " ".join([sys.executable, "-m", "portwitness.cli", *args])
    proc = subprocess.run(
        ["script", "-qec", command, "/dev/null"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stdout).replace("\r", "")


@requires("script")
@pytest.mark.parametrize("width", WIDTHS)
def test_the_real_command_on_a_terminal_of_that_width(width):
    text = _on_a_terminal(width, "rpcinfo", str(PCAPS / "rpcbind_getaddr.pcap"))
    assert all(len(line) <= width for line in text.splitlines())
    whole(text, ["2001:db8:2::1", "100024", "status", "20048", "mountd"])
    text = _on_a_terminal(width, "usage", str(PCAPS / "sample.pcap"))
    whole(text, ["10.20.0.20", "20042", "mgmt-callback", "tapeengine"])
    text = _on_a_terminal(width, "demo")
    whole(
        text,
        ["callback-outside", "pinned-dynamic", "plaintext-ssl", "service-port", "20150", "mgmt-callback"],
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_config_check_plan_keeps_services_and_ports_whole(width):
    from portwitness.config import load_config, port_plan

    plan = port_plan(load_config(str(DEMO / "PortsConfig.cfg"), str(DEMO / "mgmt.properties")))
    text = render(width, lambda c: print_frame(c, "plan", plan))
    whole(text, [str(v) for c in ("service", "ports", "transport") for v in plan[c].to_list()])
    assert not text.lstrip().splitlines()[1].startswith("host:")  # a table, not blocks
