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


def _client_hello_records(sni: str, body_len: int) -> bytes:
    """A ClientHello naming `sni` whose body declares and carries `body_len` bytes (8,000 bytes of
    cipher suites and a padding extension make up the length: one extensions block holds at most
    65,535), as TLS records of at most 16 KiB."""
    suites = 8000
    body = (
        b"\x03\x03" + bytes([0x11]) * 32 + b"\x00" + suites.to_bytes(2, "big") + b"\x13\x01" * (suites // 2)
    )
    body += b"\x01\x00"
    name = b"\x00" + len(sni).to_bytes(2, "big") + sni.encode()
    server_name = len(name).to_bytes(2, "big") + name
    exts = b"\x00\x00" + len(server_name).to_bytes(2, "big") + server_name
    pad = body_len - len(body) - 2 - len(exts) - 4
    exts += b"\x00\x15" + pad.to_bytes(2, "big") + bytes(pad)
    body += len(exts).to_bytes(2, "big") + exts
    assert len(body) == body_len
    handshake = b"\x01" + body_len.to_bytes(3, "big") + body
    return b"".join(
        b"\x16\x03\x01" + len(rec).to_bytes(2, "big") + rec
        for rec in (handshake[i : i + (1 << 14)] for i in range(0, len(handshake), 1 << 14))
    )


def _hello_flow(scapy, client_port: int, hello: bytes, t: float) -> list:
    """A TCP handshake to port 443, then `hello` in segments of 1460 bytes, each acknowledged."""
    c, s = "10.9.0.1", "10.9.0.2"
    ip_c, ip_s = scapy.Ether() / scapy.IP(src=c, dst=s), scapy.Ether() / scapy.IP(src=s, dst=c)
    seq, ack = 1000, 5000
    pkts = [
        ip_c / scapy.TCP(sport=client_port, dport=443, flags="S", seq=seq - 1),
        ip_s / scapy.TCP(sport=443, dport=client_port, flags="SA", seq=ack - 1, ack=seq),
        ip_c / scapy.TCP(sport=client_port, dport=443, flags="A", seq=seq, ack=ack),
    ]
    for i in range(0, len(hello), 1460):
        seg = hello[i : i + 1460]
        pkts.append(ip_c / scapy.TCP(sport=client_port, dport=443, flags="PA", seq=seq + i, ack=ack) / seg)
        pkts.append(
            ip_s / scapy.TCP(sport=443, dport=client_port, flags="A", seq=ack, ack=seq + i + len(seg))
        )
    for n, p in enumerate(pkts):
        p.time = t + n / 1000
    return pkts


def test_a_hello_longer_than_the_bound_is_an_anomaly_naming_its_flow(tmp_path):
    import scapy.all as scapy

    path = tmp_path / "long_hello.pcap"
    over = _hello_flow(scapy, 40001, _client_hello_records("over.example", 70_000), 1_700_000_000)
    # 65,532 bytes and its 4-byte header: the longest hello the bound holds.
    under = _hello_flow(scapy, 40002, _client_hello_records("under.example", 65_532), 1_700_000_010)
    scapy.wrpcap(str(path), over + under)
    cap = pw.decode(path)
    flows = {r["client_port"]: r for r in cap.flows.to_dicts()}
    long, short = flows[40001], flows[40002]
    assert (long["security"], long["app"], long["tls_sni"]) == ("tls", "tls", None)
    assert (short["security"], short["tls_sni"]) == ("tls", "under.example")
    (row,) = cap.anomalies.filter(kind="tls_hello_too_long").to_dicts()
    # Said at the segment whose bytes complete the hello's header (the first, after the
    # handshake's three packets): record 4 of the capture.
    assert (row["layer"], row["record_index"], row["capture"]) == ("tls", 3, str(path))
    assert row["detail"] == (
        f"flow {long['flow_id']} on port 443: ClientHello of 70000 bytes, longer than the 65532 bytes "
        "reassembled to decode it; its SNI, versions and cipher are not read"
    )
    assert cap.anomaly_counts() == {"tls_hello_too_long": 1}
    assert [r["sni"] for r in cap.tls.to_dicts()] == ["under.example"]
