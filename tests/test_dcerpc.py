"""DCE/RPC and the endpoint mapper: calls, learned endpoints and the flows on learned ports, against
what the fixture generator planted (pcaps/make_fixtures.py writes `<capture>.dcerpc_calls.json` and
the DCE/RPC rows of `<capture>.mappings.json` from the values it put in each PDU)."""

from __future__ import annotations

import polars as pl
import pytest

import portwitness as pw
from conftest import FLOW_ID, PCAPS, canonical, expected_flows, fixtures, ns_rows, planted, with_planted

DCE_FIXTURES = with_planted("dcerpc_calls")
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
TAPE_ENGINE = "62b93df0-8b02-11ce-876c-00805f842837"
JOB_ENGINE = "dc246bf0-7a7a-11ce-9f88-00805fe43838"
DB_ENGINE = "506b1890-14c8-11d1-bbc3-00805fa6962e"
LSARPC = "12345778-1234-abcd-ef00-0123456789ab"
ARCSRV = "10.20.0.20"

CALL_COLUMNS = [
    "ts_ns",
    "reply_ts_ns",
    "transport",
    "client_ip",
    "server_ip",
    "server_port",
    "call_id",
    "ptype",
    "reply",
    "context_id",
    "interface_uuid",
    "interface_version",
    "transfer_syntaxes",
    "bind_result",
    "sec_addr",
    "opnum",
    "object_uuid",
    "fragments",
    "stub_bytes",
    "fault_status",
    "reject_reason",
    "auth_type",
    "auth_level",
    "byte_order",
]
MAPPING_COLUMNS = [
    "ts_ns",
    "source",
    "server_ip",
    "transport",
    "port",
    "interface_uuid",
    "interface_version",
    "protocol",
    "annotation",
    "registered",
]


def dce_mappings(capture) -> pl.DataFrame:
    return pw.decode(capture).mappings.filter(pl.col("rpc_program").is_null())


def planted_dce_mappings(capture) -> list[dict]:
    return [r for r in planted(capture, "mappings") if r["rpc_program"] is None]


@pytest.mark.parametrize("capture", DCE_FIXTURES, ids=lambda p: p.name)
def test_dcerpc_calls_match_planted(capture):
    got = ns_rows(pw.decode(capture).dcerpc_calls, CALL_COLUMNS)
    assert canonical(got, CALL_COLUMNS) == canonical(planted(capture, "dcerpc_calls"), CALL_COLUMNS)


@pytest.mark.parametrize("capture", DCE_FIXTURES, ids=lambda p: p.name)
def test_endpoint_mappings_match_planted(capture):
    got = ns_rows(dce_mappings(capture), MAPPING_COLUMNS)
    assert canonical(got, MAPPING_COLUMNS) == canonical(planted_dce_mappings(capture), MAPPING_COLUMNS)


@pytest.mark.parametrize("capture", fixtures(), ids=lambda p: p.name)
def test_flow_app_and_interface_match_planted(capture):
    columns = [*FLOW_ID, "app", "dcerpc_interface"]
    got = pw.decode(capture).flows.to_dicts()
    assert canonical(got, columns) == canonical(expected_flows(capture), columns)


@pytest.mark.parametrize(
    ("name", "port"), [("epm_tape_engine.pcap", 6502), ("epm_dynamic.pcap", 49703), ("sample.pcap", 6502)]
)
def test_learned_port_carries_the_tape_engine(name, port):
    cap = pw.decode(PCAPS / name)
    learned = cap.mappings.filter(source="epm.map", port=port).row(0, named=True)
    # epm_dynamic's tower says 0.0.0.0: the endpoint mapper that answered is meant
    assert (learned["server_ip"], learned["interface_uuid"], learned["interface_version"]) == (
        ARCSRV,
        TAPE_ENGINE,
        "1.0",
    )
    flow = cap.flows.filter(server_port=port).row(0, named=True)
    assert (flow["app"], flow["dcerpc_interface"], flow["server_ip"]) == ("dcerpc", TAPE_ENGINE, ARCSRV)
    assert flow["first_ts"] > learned["ts"]


def test_pipe_and_lrpc_towers_give_no_mappings():
    lookup = dce_mappings(PCAPS / "dcerpc_fragmented.pcap").filter(source="epm.lookup", registered=True)
    assert set(lookup["protocol"]) == {"ncacn_ip_tcp", "ncadg_ip_udp", "ncacn_http"}
    assert lookup["port"].null_count() == 0 and LSARPC not in lookup["interface_uuid"].to_list()
    # the tape engine has a TCP tower and a named-pipe tower: one mapping
    assert lookup.filter(interface_uuid=TAPE_ENGINE)["port"].to_list() == [6502]
    assert lookup.filter(annotation="Event log TCPIP")["port"].to_list() == [49666]


def test_negative_facts():
    unregistered = dce_mappings(PCAPS / "epm_dynamic.pcap").filter(~pl.col("registered")).row(0, named=True)
    assert (unregistered["interface_uuid"], unregistered["port"], unregistered["server_ip"]) == (
        DB_ENGINE,
        None,
        ARCSRV,
    )
    end = dce_mappings(PCAPS / "dcerpc_fragmented.pcap").filter(~pl.col("registered"))
    assert end.select("source", "interface_uuid", "port").rows() == [("epm.lookup", None, None)]


def test_one_interface_on_two_ports():
    job = dce_mappings(PCAPS / "epm_dynamic.pcap").filter(interface_uuid=JOB_ENGINE)
    assert sorted(job["port"]) == [49704, 49705] and set(job["ts"]) == {job["ts"][0]}


def test_rejected_contexts_and_faults():
    cap = pw.decode(PCAPS / "dcerpc_fragmented.pcap")
    calls = cap.dcerpc_calls.filter(server_port=135)
    results = calls.filter(pl.col("bind_result").is_not_null()).select("context_id", "bind_result").rows()
    assert sorted(results) == [
        (0, "acceptance"),
        (1, "provider_rejection"),
        (2, "acceptance"),
        (3, "provider_rejection"),
    ]
    # only the accepted EPM context is learned from the bind_ack; the refused database engine never
    assert dce_mappings(PCAPS / "dcerpc_fragmented.pcap").filter(interface_uuid=DB_ENGINE).is_empty()
    fault = calls.filter(reply="fault").row(0, named=True)
    assert (fault["context_id"], fault["interface_uuid"], fault["fault_status"]) == (5, None, 0x1C010003)
    nak = cap.dcerpc_calls.filter(reply="bind_nak").row(0, named=True)
    assert (nak["server_port"], nak["reject_reason"], nak["bind_result"]) == (6504, 4, None)
    assert cap.flows.filter(server_port=6504).row(0, named=True)["dcerpc_interface"] is None


def test_fragments_segments_and_auth_trailer():
    calls = pw.decode(PCAPS / "dcerpc_fragmented.pcap").dcerpc_calls.filter(ptype="request")
    three = calls.filter(opnum=38).row(0, named=True)
    assert (three["fragments"], three["stub_bytes"], three["reply"]) == (3, 1800, "response")
    sealed = calls.filter(server_port=6503).row(0, named=True)
    assert (sealed["auth_type"], sealed["auth_level"], sealed["stub_bytes"]) == (10, 6, 37)
    assert calls.filter(opnum=43)["object_uuid"].to_list() == ["4c0a9d3e-1b2f-4e6a-8d7c-5b4a3f2e1d0c"]


def test_big_endian_data_representation():
    cap = pw.decode(PCAPS / "dcerpc_bigendian.pcap")
    assert set(cap.dcerpc_calls["byte_order"]) == {"big"}
    mapped = cap.mappings.filter(source="epm.map").row(0, named=True)
    assert (mapped["port"], mapped["interface_uuid"], mapped["interface_version"]) == (
        6503,
        JOB_ENGINE,
        "1.0",
    )


def test_connectionless_over_udp():
    cap = pw.decode(PCAPS / "epm_udp.pcap")
    assert set(cap.dcerpc_calls["transport"]) == {"udp"} and cap.dcerpc_calls["context_id"].null_count() == 2
    learned = {(r["transport"], r["port"], r["protocol"]) for r in cap.mappings.to_dicts()}
    assert learned == {("udp", 49710, "ncadg_ip_udp"), ("tcp", 6503, "ncacn_ip_tcp")}
    flow = cap.flows.filter(server_port=49710).row(0, named=True)
    assert (flow["transport"], flow["app"], flow["dcerpc_interface"]) == ("udp", "dcerpc", JOB_ENGINE)
