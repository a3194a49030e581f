"""The frames' columns and types are DESIGN.md's contract."""

from __future__ import annotations

import polars as pl

import portwitness as pw
from conftest import PCAPS

TS = pl.Datetime("ns", "UTC")
FLOWS = {
    "flow_id": pl.UInt64,
    "capture": pl.String,
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
    "outcome": pl.String,
    "app": pl.String,
    "rpc_program": pl.UInt32,
    "rpc_version": pl.UInt32,
    "dcerpc_interface": pl.String,
    "tls_version": pl.String,
    "tls_sni": pl.String,
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


def test_anomalies_schema_even_when_empty():
    assert dict(pw.decode(PCAPS / "sample.pcap").anomalies.schema) == ANOMALIES
    assert dict(pw.decode(PCAPS / "broken" / "huge_caplen.pcap").anomalies.schema) == ANOMALIES
