"""TLS hellos and plaintext on the management ports, against what the fixture generator planted
(pcaps/make_fixtures.py writes `<capture>.tls.json` from the values it put in each hello)."""

from __future__ import annotations

import pytest

import portwitness as pw
from conftest import FLOW_ID, PCAPS, canonical, expected_flows, fixtures, ns_rows, planted, with_planted

TLS_FIXTURES = with_planted("tls")
TLS_COLUMNS = [
    "ts_ns",
    "server_ts_ns",
    "client_ip",
    "server_ip",
    "server_port",
    "sslv2",
    "client_offset",
    "record_version",
    "client_version",
    "supported_versions",
    "sni",
    "alpn",
    "version",
    "cipher",
    "server_alpn",
    "hello_retry",
]
MGMT = PCAPS / "tls_mgmt.pcap"


@pytest.mark.parametrize("capture", TLS_FIXTURES, ids=lambda p: p.name)
def test_tls_rows_match_planted(capture):
    got = ns_rows(pw.decode(capture).tls, TLS_COLUMNS)
    assert canonical(got, TLS_COLUMNS) == canonical(planted(capture, "tls"), TLS_COLUMNS)


@pytest.mark.parametrize("capture", fixtures(), ids=lambda p: p.name)
def test_flow_tls_columns_match_planted(capture):
    columns = [*FLOW_ID, "tls_version", "tls_sni", "security"]
    got = pw.decode(capture).flows.to_dicts()
    assert canonical(got, columns) == canonical(expected_flows(capture), columns)


def test_management_ports():
    flows = pw.decode(MGMT).flows
    plain = flows.filter(server_port=2099).row(0, named=True)
    assert (plain["security"], plain["app"], plain["tls_version"]) == ("plaintext", None, None)
    on_7099 = flows.filter(server_port=7099, outcome="completed")
    assert set(on_7099["security"]) == {"tls"} and set(on_7099["app"]) == {"tls"}
    assert sorted(on_7099["tls_version"]) == ["TLSv1.0", "TLSv1.2", "TLSv1.3", "TLSv1.3"]
    refused = flows.filter(outcome="refused").row(0, named=True)
    assert (refused["server_port"], refused["security"], refused["app"]) == (7099, None, None)


def test_callback_from_the_server():
    flow = pw.decode(MGMT).flows.filter(server_port=20050).row(0, named=True)
    assert (flow["client_ip"], flow["orientation"], flow["app"], flow["tls_version"], flow["tls_sni"]) == (
        "10.20.0.20",
        "syn",
        "tls",
        "TLSv1.3",
        None,
    )


def test_hello_details():
    rows = {(r["client_ip"], r["sni"]): r for r in pw.decode(MGMT).tls.to_dicts()}
    grease = rows[("10.20.0.21", "casmgmt.arcsrv01.example")]
    assert (grease["supported_versions"], grease["alpn"], grease["cipher"]) == (
        "TLSv1.3,TLSv1.2",
        "h2,http/1.1",
        0x1301,
    )
    tls12 = rows[("10.20.0.10", "casmgmt.arcsrv01.example")]
    assert (tls12["record_version"], tls12["client_version"], tls12["version"], tls12["server_alpn"]) == (
        "TLSv1.0",
        "TLSv1.2",
        "TLSv1.2",
        "http/1.1",
    )
    sslv2 = rows[("10.20.0.21", None)]
    assert (sslv2["sslv2"], sslv2["client_version"], sslv2["version"], sslv2["cipher"]) == (
        True,
        "TLSv1.0",
        "TLSv1.0",
        0x2F,
    )


def test_client_hello_over_two_segments():
    """The post-quantum key share makes a 1.5 kB ClientHello: its row is dated by the second segment."""
    (big,) = [r for r in planted(MGMT, "tls") if r["sni"] == "pq.casmgmt.arcsrv01.example"]
    (row,) = ns_rows(pw.decode(MGMT).tls.filter(sni=big["sni"]), ["ts_ns", "version"])
    assert row == {"ts_ns": big["ts_ns"], "version": "TLSv1.3"}
