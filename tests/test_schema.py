"""The frames' columns and types are DESIGN.md's contract."""

from __future__ import annotations

import polars as pl

import portwitness as pw
from conftest import PCAPS

TS = pl.Datetime("ns", "UTC")
FLOWS = {
    "flow_id": pl.UInt64,
    "capture": pl.String,
    "first_record": pl.UInt64,
    "transport": pl.String,
    "client_ip": pl.String,
    "client_port": pl.UInt16,
    "server_ip": pl.String,
    "server_port": pl.UInt16,
    "orientation": pl.String,
    "first_ts": TS,
    "last_ts": TS,
    "packets_c2s": pl.UInt64,
    "packets_s2c": pl.UInt64,
    "bytes_c2s": pl.UInt64,
    "bytes_s2c": pl.UInt64,
    "payload_c2s": pl.UInt64,
    "payload_s2c": pl.UInt64,
    "vlan": pl.UInt16,
    "encap": pl.String,
    "tunnel_id": pl.UInt32,
    "outcome": pl.String,
    "app": pl.String,
    "rpc_program": pl.UInt32,
    "rpc_version": pl.UInt32,
    "dcerpc_interface": pl.String,
    "tls_version": pl.String,
    "tls_sni": pl.String,
    "security": pl.String,
    "community_id": pl.String,
}
MAPPINGS = {
    "ts": TS,
    "source": pl.String,
    "server_ip": pl.String,
    "transport": pl.String,
    "port": pl.UInt16,
    "rpc_program": pl.UInt32,
    "rpc_version": pl.UInt32,
    "interface_uuid": pl.String,
    "interface_version": pl.String,
    "protocol": pl.String,
    "annotation": pl.String,
    "registered": pl.Boolean,
    "flow_id": pl.UInt64,
}
DCERPC_CALLS = {
    "flow_id": pl.UInt64,
    "ts": TS,
    "reply_ts": TS,
    "transport": pl.String,
    "client_ip": pl.String,
    "server_ip": pl.String,
    "server_port": pl.UInt16,
    "call_id": pl.UInt32,
    "ptype": pl.String,
    "reply": pl.String,
    "context_id": pl.UInt16,
    "interface_uuid": pl.String,
    "interface_version": pl.String,
    "transfer_syntaxes": pl.String,
    "transfer_syntax": pl.String,
    "bind_result": pl.String,
    "sec_addr": pl.String,
    "opnum": pl.UInt16,
    "object_uuid": pl.String,
    "fragments": pl.UInt32,
    "stub_bytes": pl.UInt64,
    "fault_status": pl.UInt32,
    "reject_reason": pl.UInt16,
    "auth_type": pl.UInt8,
    "auth_level": pl.UInt8,
    "byte_order": pl.String,
    "pipe": pl.String,
}
TLS = {
    "flow_id": pl.UInt64,
    "ts": TS,
    "server_ts": TS,
    "client_ip": pl.String,
    "server_ip": pl.String,
    "server_port": pl.UInt16,
    "sslv2": pl.Boolean,
    "client_offset": pl.UInt64,
    "record_version": pl.String,
    "client_version": pl.String,
    "supported_versions": pl.String,
    "sni": pl.String,
    "alpn": pl.String,
    "version": pl.String,
    "cipher": pl.UInt16,
    "server_alpn": pl.String,
    "hello_retry": pl.Boolean,
}
NAMES = {
    "ts": TS,
    "flow_id": pl.UInt64,
    "name": pl.String,
    "ip": pl.String,
    "source": pl.String,
    "record": pl.String,
    "ttl": pl.UInt32,
    "canonical": pl.String,
    "sender_ip": pl.String,
}
ANOMALIES = {
    "capture": pl.String,
    "record_index": pl.UInt64,
    "byte_offset": pl.UInt64,
    "layer": pl.String,
    "kind": pl.String,
    "detail": pl.String,
}


def test_flows_schema():
    assert dict(pw.decode(PCAPS / "sample.pcap").flows.schema) == FLOWS


# The values a column may take, where the contract names them.
SECURITY = {"tls", "starttls", "plaintext", None}


def test_security_values_are_the_contracts():
    for path in (PCAPS / "sample.pcap", PCAPS / "tls_mgmt.pcap", PCAPS / "epm_ndr64.pcap"):
        assert set(pw.decode(path).flows["security"].to_list()) <= SECURITY


def test_anomalies_schema_even_when_empty():
    assert dict(pw.decode(PCAPS / "sample.pcap").anomalies.schema) == ANOMALIES
    assert dict(pw.decode(PCAPS / "broken" / "huge_caplen.pcap").anomalies.schema) == ANOMALIES


def test_application_tables_schema_even_when_empty():
    for path in (PCAPS / "sample.pcap", PCAPS / "tcp_basic.pcap"):
        cap = pw.decode(path)
        assert dict(cap.mappings.schema) == MAPPINGS
        assert dict(cap.dcerpc_calls.schema) == DCERPC_CALLS
        assert dict(cap.tls.schema) == TLS
        assert dict(cap.names.schema) == NAMES


def test_names_schema_with_rows_and_for_old_datasets():
    from portwitness.dataset import ADDED_LATER

    cap = pw.decode(PCAPS / "names.pcap")
    assert cap.names.height > 0 and dict(cap.names.schema) == NAMES
    assert ADDED_LATER["names"] == NAMES
