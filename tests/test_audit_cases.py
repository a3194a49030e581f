"""Verdicts you can act on: every audit case of pcaps/make_audit_cases.py (a generated capture, its
configuration and what the report must say, written from what was planted), and the refusals: an
input that is no capture, a configuration given to the wrong option, a filter that names nothing
or leaves nothing, each with its exit code, its one line, and no output left behind."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS, ROOT
from portwitness.audit import AuditError, HostFilterError, audit
from portwitness.audit.reconnections import reconnections
from portwitness.cli import main
from portwitness.config import load_config

sys.path.insert(0, str(ROOT / "pcaps"))
import make_audit_cases  # noqa: E402

DEMO = ROOT / "python" / "portwitness" / "demo"


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cases")
    for name in make_audit_cases.CASES:
        make_audit_cases.build(name, out)
    return out


def load_case(where: Path):
    files = {f.name: f for f in where.iterdir()}
    policy = load_config(
        config=files.get("PortsConfig.cfg"),
        mgmt=files.get("mgmt.properties"),
        policy=files.get("policy.toml"),
    )
    cap = pw.decode(where / make_audit_cases.CAPTURE)
    return cap, policy, json.loads((where / "expect.json").read_text())


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def by_line(df: pl.DataFrame) -> dict[str, dict]:
    return {r["origin"].rsplit("/", 1)[-1]: r for r in df.iter_rows(named=True)}


# --- host-specific lines ------------------------------------------------------------------------


def test_host_specific_lines_shadow_the_generic_line(cases):
    cap, policy, want = load_case(cases / "hosts")
    a = audit(cap, policy)
    got = by_line(a.services)
    for line, (used, servers) in want["services"].items():
        assert (got[line]["used"], got[line]["servers"].split(";")) == (used, servers), line
    # The generic line never names a host that has its own line: no port seen there, no row.
    assert got["PortsConfig.cfg:1"]["ports_seen"] == "7000"
    assert [
        [r["host"], r["ip"], r["evidence"], r["name_seen"]] for r in a.host_matches.iter_rows(named=True)
    ] == (want["matched"])
    assert [
        [r["service"], r["host"], r["origin"].rsplit("/", 1)[-1]]
        for r in a.unmatched_hosts.iter_rows(named=True)
    ] == want["unmatched"]
    # The host never seen is said so, not reported unused.
    assert a.unused.is_empty() and want["unused"] == []
    assert [[r["server_ip"], r["transport"], r["port"]] for r in a.uncovered.iter_rows(named=True)] == (
        want["uncovered"]
    )
    assert "Host-specific lines whose host the captures never named: caservd on srvz" in a.verdict


def test_host_named_only_by_a_dns_answer(cases):
    cap, policy, want = load_case(cases / "dns")
    a = audit(cap, policy)
    got = by_line(a.services)
    for line, (used, servers) in want["services"].items():
        assert (got[line]["used"], got[line]["servers"].split(";")) == (used, servers), line
    assert [
        [r["host"], r["ip"], r["evidence"], r["name_seen"]] for r in a.host_matches.iter_rows(named=True)
    ] == (want["matched"])
    # The generic line saw no traffic on 7000: unused; the host's own line is not.
    assert a.unmatched_hosts.is_empty()
    assert [(r["service"], r["configured"]) for r in a.unused.iter_rows(named=True)] == [("caservd", "7000")]


def test_host_matches_in_every_form(cases, tmp_path, capsys):
    where = cases / "hosts"
    args = ["report", where / "capture.pcap", "--config", where / "PortsConfig.cfg"]
    code, _, _ = run([*args, "-o", tmp_path / "r.json"], capsys)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and doc["schema"] == "portwitness.report/2"
    assert [(m["host"], m["ip"], m["evidence"]) for m in doc["hosts"]["matched"]] == [
        ("srvb", "10.30.0.11", "sni")
    ]
    assert [u["host"] for u in doc["hosts"]["unmatched"]] == ["srvz"]
    code, out, _ = run(args, capsys)
    assert "Host names matched to addresses" in out and "Host-specific lines whose host was never seen" in out
    code, _, _ = run([*args, "-o", tmp_path / "r.csv"], capsys)
    rows = pl.read_csv(tmp_path / "r.csv")
    assert rows.filter(pl.col("finding") == "unmatched-host")["servers"].to_list() == ["srvz"]


# --- dynamic ranges -----------------------------------------------------------------------------


def test_dynamic_range_learned_inside_and_outside(cases):
    cap, policy, want = load_case(cases / "dynamic")
    a = audit(cap, policy)
    (row,) = a.services.iter_rows(named=True)
    assert (row["used"], row["learned_inside"]) == (want["used"], want["learned_inside"])
    (v,) = a.violations.iter_rows(named=True)
    (exp,) = want["dynamic_outside"]
    assert (v["type"], v["port"], v["flows"], v["server_ips"]) == (
        "dynamic-outside",
        exp["port"],
        exp["flows"],
        [exp["server"]],
    )
    assert exp["interface"] in v["service"] and exp["interface"] in v["detail"]
    assert v["detail"].startswith(f"{exp['source']} on {exp['server']} handed out port {exp['port']}")
    assert v["learned_from"].startswith(f"{exp['source']} answer at 2026-03-01T02:00:00")


# --- reconnections ------------------------------------------------------------------------------


def test_only_the_first_connection_after_a_reset_is_a_reconnection(cases):
    cap, policy, want = load_case(cases / "reconnect")
    a = audit(cap, policy)
    rc = reconnections(a.flows)
    assert [[r["range_port"], r["server_port"]] for r in rc.iter_rows(named=True)] == want["reconnections"]
    (rng,) = a.ranges.iter_rows(named=True)
    assert {k: rng[k] for k in want["range"]} == want["range"]
    # The later connection from 40002 is ordinary: no reconnection-outside.
    assert a.violations.height == len(want["violations"]) == 0


# --- service names ------------------------------------------------------------------------------


def test_misspelt_service_warns_and_its_used_port_is_not_unused(cases, capsys):
    cap, policy, want = load_case(cases / "misspelt")
    assert [str(w).rsplit("/", 1)[-1] for w in policy.warnings] == [want["warning"]]
    a = audit(cap, policy)
    assert {k: r["used"] for k, r in by_line(a.services).items()} == want["used"]
    assert a.unused.is_empty()
    where = cases / "misspelt"
    code, _, err = run(["report", where / "capture.pcap", "--config", where / "PortsConfig.cfg"], capsys)
    assert code == 0 and "did you mean 'tapeengine'?" in err


def test_used_means_traffic_on_the_port_whatever_attribution_said(tmp_path):
    """A configured port that carried traffic attributed to another service is still used."""
    cfg = tmp_path / "PortsConfig.cfg"
    cfg.write_text("caservd 6502\n")  # the demo's tape engine listens on 6502 (learned as tapeengine)
    cap, _ = __import__("portwitness.demo", fromlist=["load"]).load()
    a = audit(cap, load_config(config=cfg))
    (row,) = a.services.iter_rows(named=True)
    assert row["used"] and row["flows_on_configured"] == 0 and row["port_flows"] == 1


# --- uncovered ----------------------------------------------------------------------------------


def test_uncovered_traffic_grouped_with_its_payload(cases, tmp_path, capsys):
    cap, policy, want = load_case(cases / "uncovered")
    a = audit(cap, policy)
    got = [
        [r["server_ip"], r["transport"], r["port"], r["payload"], r["flows"], r["clients"]]
        for r in a.uncovered.iter_rows(named=True)
    ]
    assert got == want["uncovered"]
    assert "4 flows to 3 server ports nothing configured or known explains" in a.verdict
    where = cases / "uncovered"
    args = ["report", where / "capture.pcap", "--config", where / "PortsConfig.cfg"]
    assert run([*args, "--fail-on", "violations"], capsys)[0] == 0
    code, _, err = run([*args, "--fail-on", "uncovered"], capsys)
    assert code == 3 and "failing on 3 uncovered" in err
    code, out, _ = run([*args, "--limit", "1"], capsys)
    assert "Uncovered: traffic nothing explains (3)" in out and "... and 2 more" in out
    run([*args, "-o", tmp_path / "r.json"], capsys)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert len(doc["uncovered"]) == 3 and doc["summary"]["uncovered_flows"] == 4


# --- grouping and evidence ----------------------------------------------------------------------


def test_findings_grouped_by_type_service_and_port(cases):
    cap, policy, want = load_case(cases / "grouped")
    a = audit(cap, policy)
    assert [
        [r["type"], r["service"], r["port"], r["flows"], r["servers"], r["clients"]]
        for r in a.violations.iter_rows(named=True)
    ] == want["violations"]
    assert [
        [r["outcome"], r["service"], r["port"], r["attempts"], r["servers"], r["clients"]]
        for r in a.blocked.iter_rows(named=True)
    ] == want["blocked"]
    (v,) = a.violations.iter_rows(named=True)
    # Up to 100 example flows, in time order, and the first one's whereabouts.
    assert len(v["example_flows"]) == 100 and len(v["client_ips"]) == 100
    first = a.flows.filter(pl.col("server_port") == 2099).sort("first_ts").row(0, named=True)
    assert v["example_flows"][0] == v["first_flow"] == first["flow_id"]
    assert v["first_capture"] == first["capture"] and v["first_seen"] == first["first_ts"]


def test_every_violation_carries_its_evidence():
    from portwitness.demo import load

    cap, policy = load()
    a = audit(cap, policy)
    for v in a.violations.iter_rows(named=True):
        assert v["origin"] and v["first_flow"] is not None and v["first_capture"].endswith("demo.pcap")
    (pin,) = a.violations.filter(type="pinned-dynamic").iter_rows(named=True)
    assert pin["learned_from"].startswith("portmap.getport answer at 2026-03-01T02:00:00")
    assert all(r["detail"] for r in a.unused.iter_rows(named=True))


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "file", "says"),
    [
        ("--config", "mgmt.properties", "looks like the CA Management Service's settings"),
        ("--mgmt-config", "PortsConfig.cfg", "looks like Arcserve's PortsConfig.cfg"),
        ("--config", "policy.toml", "looks like a TOML port policy"),
        ("--policy", "notes.txt", "is not a TOML port policy (--policy), nor any configuration"),
    ],
)
def test_configuration_given_to_the_wrong_option(tmp_path, capsys, option, file, says):
    (tmp_path / "mgmt.properties").write_text((DEMO / "mgmt.properties").read_text())
    (tmp_path / "PortsConfig.cfg").write_text((DEMO / "PortsConfig.cfg").read_text())
    (tmp_path / "policy.toml").write_text('[[service]]\nname = "nfs"\nports = [2049]\n')
    (tmp_path / "notes.txt").write_text("Meeting notes\nthe firewall blocks the backup again\n")
    out = tmp_path / "r.json"
    code, stdout, err = run(["report", DEMO / "demo.pcap", option, tmp_path / file, "-o", out], capsys)
    assert code == 2 and stdout == "" and not out.exists()
    (line,) = err.splitlines()
    assert line.startswith(f"portwitness: error: {tmp_path / file}:") and says in line
    right = {"mgmt.properties": "--mgmt-config", "PortsConfig.cfg": "--config", "policy.toml": "--policy"}
    if file in right:
        assert line.endswith(f"give it to {right[file]}, not {option}")


def test_unreadable_input_among_good_ones(tmp_path, capsys):
    bad = tmp_path / "notcap.pcap"
    bad.write_text("this is no capture\n")
    out = tmp_path / "r.json"
    args = ["report", bad, DEMO / "demo.pcap", "-o", out]
    code, stdout, err = run(args, capsys)
    assert (code, stdout) == (1, "") and not out.exists()
    assert err == (
        f"portwitness: error: {bad}: not a pcap or pcapng capture (bad magic 74 68 69 73); "
        "nothing was read (--skip-unreadable reads the rest)\n"
    )
    code, _, err = run([*args, "--skip-unreadable"], capsys)
    doc = json.loads(out.read_text())
    assert code == 0 and f"skipped {bad}" in err
    assert doc["verdict"].startswith(f"1 input skipped, not audited: {bad} (not a pcap or pcapng capture")
    assert [(i["path"], i["status"]) for i in doc["inputs"]] == [
        (str(DEMO / "demo.pcap"), "read"),
        (str(bad), "skipped"),
    ]
    assert doc["inputs"][0]["packets"] == 304 and doc["inputs"][1]["reason"].startswith("not a pcap")
    assert doc["captures"] == [str(DEMO / "demo.pcap")]
    # The same through the API.
    cap = pw.decode([bad, DEMO / "demo.pcap"], skip_unreadable=True)
    assert audit(cap).verdict.startswith("1 input skipped, not audited:")


def test_a_capture_cut_short_is_read_and_said(tmp_path, capsys):
    cut = tmp_path / "cut.pcap"
    data = (DEMO / "demo.pcap").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    code, out, _ = run(["report", cut, "--format", "json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["inputs"][0]["status"] == "read" and doc["summary"]["cut_short"] == [str(cut)]
    assert f"1 capture cut short (read up to where it ends): {cut}." in doc["verdict"]


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (
            ["--host", "not_a host!"],
            2,
            "--host 'not_a host!': not an IP address, a network (CIDR) or a host name",
        ),
        (["--host", "nosuchhost"], 2, "--host 'nosuchhost': not an IP address or network, and no DNS"),
        (["--host", "10.70.0.0/33"], 2, "--host '10.70.0.0/33': not a network in CIDR form"),
        (["--host", "192.0.2.7"], 1, "no flow to or from 192.0.2.7: nothing to audit"),
        (
            ["--since", "2027-01-01"],
            1,
            "--since 2027-01-01T00:00:00Z is after the captures end (2026-03-01T02:00:05Z)",
        ),
        (["--until", "2025-01-01"], 1, "--until 2025-01-01T00:00:00Z is before the captures begin"),
        (
            ["--since", "2026-03-01T02:00:04.5", "--until", "2026-03-01T02:00:04.6", "--host", "10.70.0.51"],
            1,
            "no flow matches the filters given",
        ),
    ],
)
def test_filters_that_cannot_silently_empty_the_audit(cases, tmp_path, capsys, extra, code, message):
    where = cases / "uncovered"
    out = tmp_path / "r.json"
    got, stdout, err = run(["report", where / "capture.pcap", *extra, "-o", out], capsys)
    assert (got, stdout) == (code, "") and not out.exists()
    (line,) = err.splitlines()
    assert line.startswith("portwitness: error: ") and message in line


def test_host_filter_takes_addresses_networks_and_learned_names(cases):
    cap, policy, _ = load_case(cases / "uncovered")
    every = audit(cap, policy).flows.height
    assert audit(cap, policy, hosts=["10.70.0.0/24"]).flows.height == every
    assert audit(cap, policy, hosts=["10.70.0.51"]).flows.height == 1
    # portal.corp.example is the SNI its clients asked 10.70.0.10 for.
    assert audit(cap, policy, hosts=["portal.corp.example"]).flows.height == every
    assert audit(cap, policy, hosts=["PORTAL"]).flows.height == every
    with pytest.raises(HostFilterError):
        audit(cap, policy, hosts=["nosuchhost"])
    with pytest.raises(AuditError):
        audit(cap, policy, hosts=["fe80::1"])


def test_cases_are_deterministic(tmp_path):
    for name in ("hosts", "grouped"):
        a = make_audit_cases.build(name, tmp_path / "a")
        b = make_audit_cases.build(name, tmp_path / "b")
        assert (a / "capture.pcap").read_bytes() == (b / "capture.pcap").read_bytes()
    shutil.rmtree(tmp_path / "a")


def test_sample_capture_reads_as_before():
    cap = pw.decode(PCAPS / "sample.pcap")
    assert [i.status for i in cap.inputs] == ["read"] and cap.skipped == []
