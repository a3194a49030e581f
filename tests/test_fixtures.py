"""Flows decoded from the generated fixtures equal what the generator planted."""

from __future__ import annotations

import json

import pytest

import portwitness as pw
from conftest import PCAPS, canonical, expected_flows, fixtures


@pytest.mark.parametrize("capture", fixtures(), ids=lambda p: p.name)
def test_flows_match_planted(capture):
    cap = pw.decode(capture)
    assert canonical(cap.flows.to_dicts()) == canonical(expected_flows(capture))


@pytest.mark.parametrize("capture", fixtures(), ids=lambda p: p.name)
def test_clean_fixtures_have_no_anomalies_except_unknown_link(capture):
    cap = pw.decode(capture)
    kinds = set(cap.anomalies["kind"].to_list())
    # Filler bytes on port 111 or 135 are reported once per flow as not being ONC RPC / DCE/RPC.
    assert kinds <= {"unknown_link_type", "not_oncrpc", "not_dcerpc"}, cap.anomalies.to_dicts()


def test_tcp_basic_values():
    cap = pw.decode(PCAPS / "tcp_basic.pcap")
    f = cap.flows.filter(server_port=111, transport="tcp").row(0, named=True)
    assert (f["client_ip"], f["client_port"], f["server_ip"]) == ("10.0.0.1", 40000, "10.0.0.2")
    assert f["orientation"] == "syn" and f["outcome"] == "completed"
    assert str(f["first_ts"].tzinfo) == "UTC"
    assert f["first_ts"].isoformat().startswith("2026-03-01T02:00:00")
    assert cap.stats["icmp"] == 2 and cap.stats["non_ip"] == 1
    outcomes = dict(zip(cap.flows["server_port"].to_list(), cap.flows["outcome"].to_list(), strict=True))
    assert outcomes[6502] == "refused" and outcomes[7099] == "unanswered" and outcomes[2099] == "reset"


def test_byte_order_and_resolution_do_not_change_flows():
    le = pw.decode(PCAPS / "tcp_basic.pcap").flows.drop("capture")
    be = pw.decode(PCAPS / "tcp_basic_be_ns.pcap").flows.drop("capture", "first_ts", "last_ts")
    assert le.drop("first_ts", "last_ts").equals(be)


def test_nanosecond_timestamps_kept():
    be = pw.decode(PCAPS / "tcp_basic_be_ns.pcap").flows
    ns = be.select(pw_ns=be["first_ts"].dt.nanosecond()).to_series().to_list()
    assert any(n % 1000 for n in ns), "nanosecond fractions must survive"


def test_fragments_reassembled_and_counted():
    cap = pw.decode(PCAPS / "ipv4_frag.pcap")
    nfs = cap.flows.filter(server_port=2049).row(0, named=True)
    assert nfs["packets_c2s"] == 3 and nfs["payload_c2s"] == 4000
    assert cap.stats["fragments"] == 3 and cap.stats["reassembled"] == 1


def test_ipv6_fragments_and_extension_headers():
    cap = pw.decode(PCAPS / "ipv6_ext.pcapng")
    assert set(cap.flows["client_ip"].to_list()) == {"2001:db8::1"}
    dns = cap.flows.filter(server_port=53).row(0, named=True)
    assert dns["payload_c2s"] == 3000
    assert cap.stats["reassembled"] >= 1 and cap.stats["icmpv6"] >= 1


def test_unknown_link_type_is_an_anomaly_not_fatal():
    cap = pw.decode(PCAPS / "linktypes.pcapng")
    assert cap.anomaly_counts().get("unknown_link_type") == 1
    assert cap.stats["unknown_link"] == 1
    links = cap.captures["link_types"][0].split(",")
    assert {"0", "12", "108", "147", "228", "229", "276"} <= set(links)


def test_manifest_packet_totals():
    manifest = json.loads((PCAPS / "manifest.json").read_text())
    for name, entry in manifest["fixtures"].items():
        cap = pw.decode(PCAPS / name)
        assert cap.stats["records"] == entry["packets"], name
        assert cap.flows["first_ts"].dt.epoch("ns").sort().to_list() == sorted(entry["flow_first_ts_ns"]), (
            name
        )
