"""Encapsulations: the packets inside become flows as if captured bare, named by the tunnel that
carried them (and its tenant), on the real captures of shared/captures/real-networks and the
generated tunnels.pcapng."""

from __future__ import annotations

import struct

import pytest

import portwitness as pw
from conftest import PCAPS, SHARED_CAPTURES

NETWORKS = SHARED_CAPTURES / "real-networks"


def flows(name: str):
    return pw.decode(NETWORKS / name).flows


def one(frame, **where):
    rows = frame.filter(**where).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


def test_mpls_stacks_and_pseudowire():
    cap = pw.decode(NETWORKS / "zeek-mpls-in-vlan.pcap")
    by_port = {r["client_port"]: r for r in cap.flows.to_dicts()}
    # Frame 1: VLAN 3199, no MPLS; frame 2: VLAN 0 then one label; frame 3: VLAN 3399, two labels.
    assert (by_port[19244]["vlan"], by_port[19244]["encap"]) == (3199, None)
    assert (by_port[32828]["vlan"], by_port[32828]["encap"]) == (0, "mpls")
    assert (by_port[61193]["vlan"], by_port[61193]["encap"]) == (3399, "mpls")
    assert cap.stats["malformed"] == 0


def test_pppoe_session_and_qinq():
    f = one(flows("sv-pppoe-session-http.pcap"))
    assert (f["client_ip"], f["client_port"], f["server_ip"], f["server_port"]) == (
        "10.100.0.0",
        57013,
        "142.250.179.131",
        80,
    )
    assert (f["encap"], f["orientation"], f["packets_c2s"] + f["packets_s2c"]) == ("pppoe", "syn", 30)
    f = one(flows("zeek-pppoe-over-qinq.pcap"))
    assert (f["server_ip"], f["server_port"], f["vlan"], f["encap"]) == ("2.2.2.2", 443, 2474, "pppoe")
    assert (f["tls_sni"], f["security"]) == ("xp.apple.com", "tls")


def test_radiotap_fcs_and_htc():
    fl = flows("zeek-radiotap.pcap")
    dns = one(fl, server_port=53)
    assert (dns["client_ip"], dns["client_port"], dns["server_ip"]) == (
        "172.17.156.76",
        61738,
        "208.67.220.220",
    )
    assert (dns["packets_c2s"], dns["packets_s2c"]) == (1, 1)
    # The FCS the radiotap flags announce is not payload: the UDP lengths are what remains.
    mdns = one(fl, server_port=5353)
    assert mdns["client_ip"] == "fe80::a667:6ff:fef7:ec54" and mdns["server_ip"] == "ff02::fb"
    dhcp = one(flows("tcpdump-ieee802.11_htc.pcap"))
    assert (dhcp["client_ip"], dhcp["client_port"], dhcp["server_ip"], dhcp["server_port"]) == (
        "0.0.0.0",
        68,
        "255.255.255.255",
        67,
    )


def test_erspan_types_two_and_three():
    cap = pw.decode(NETWORKS / "sv-decode-erspan-typeII-01.pcap")
    # CDP and ICMP inside: no flow, but every frame's tunnel was opened.
    assert cap.flows.height == 0 and cap.stats["tunnelled"] == 6 and cap.stats["icmp"] == 4
    assert cap.stats["non_ip"] == 2
    cap = pw.decode(NETWORKS / "tcpdump-erspan-type-iii-ft-0.pcap")
    assert cap.stats["tunnelled"] == 9 and cap.stats["icmp"] == 9 and cap.stats["malformed"] == 0


def test_gre_inner_flows():
    fl = flows("zeek-gre-sample.pcap")
    ssh = one(fl, server_port=22)
    assert (ssh["client_ip"], ssh["client_port"], ssh["server_ip"]) == ("66.59.111.190", 40264, "172.28.2.3")
    assert ssh["packets_c2s"] + ssh["packets_s2c"] == 22
    assert set(fl["encap"].to_list()) == {"gre"} and fl["tunnel_id"].null_count() == fl.height
    assert (fl["transport"] == "udp").sum() == 4


def test_vxlan_vni_and_sni():
    fl = flows("ndpi-vxlan.pcap")
    assert set(fl["encap"].to_list()) == {"vxlan"} and set(fl["tunnel_id"].to_list()) == {1111}
    # VLAN 5 is outside the tunnel: the inner frames carry no tag.
    assert fl["vlan"].null_count() == fl.height
    assert sorted(fl.filter(server_port=443)["tls_sni"].to_list()) == ["facebook.com", "www.facebook.com"]
    assert set(fl.filter(server_port=53)["server_ip"].to_list()) == {"8.8.8.8"}


def test_geneve_options_and_per_direction_vni():
    f = one(flows("zeek-geneve-many-options.pcap"))
    assert (f["client_ip"], f["client_port"], f["server_ip"], f["server_port"]) == (
        "10.0.0.226",
        39088,
        "95.217.228.176",
        80,
    )
    assert (f["encap"], f["tunnel_id"], f["outcome"]) == ("geneve", 0x0C012E, "completed")
    fl = flows("mercury-geneve.pcap")
    # (a) VNI 0 is no tenant: the tunnelled and the plain half of each connection are one flow.
    tls = fl.filter(server_port=443, transport="tcp")
    assert tls.height == 42
    assert (tls["packets_c2s"] > 0).all() and (tls["packets_s2c"] > 0).all()
    assert set(tls["encap"].to_list()) == {"geneve"} and set(tls["tunnel_id"].to_list()) == {0}
    # (b) VNI 10 one way, 11 the other: two tenants, so two one-way flows.
    ssh = fl.filter(server_port=22)
    assert sorted(ssh["tunnel_id"].to_list()) == [10, 11]


def test_nflog():
    f = one(flows("zeek-nflog-http.pcap"))
    assert (f["client_ip"], f["client_port"], f["server_ip"], f["server_port"]) == (
        "10.0.2.15",
        49762,
        "93.184.216.34",
        80,
    )
    assert (f["packets_c2s"], f["outcome"], f["encap"]) == (8, "completed", None)


def test_teredo_and_pptp():
    # Teredo: frames 3524-3525, 3546-3547 (ICMPv6 inside) and 4660-4661 (bubbles: an IPv6 header
    # alone), none a UDP flow on port 3544; PPTP: 17 enhanced GRE frames (LCP, IPCP, PAP, two
    # ICMP inside PPP, two acknowledgments without a payload).
    cap = pw.decode(NETWORKS / "mercury-dns_packet.capture2.pcap")
    assert cap.stats["tunnelled"] == 6 + 17 and cap.stats["encap_undecoded"] == 0
    udp = cap.flows.filter(transport="udp")
    assert udp.filter(server_port=3544).height == 0 and udp.filter(client_port=3544).height == 0


def test_tenants_of_the_fixture_never_merge():
    fl = pw.decode(PCAPS / "tunnels.pcapng").flows
    web = fl.filter(server_ip="10.72.0.2", server_port=80)
    assert sorted(web["tunnel_id"].to_list()) == [5001, 5002]
    assert set(web["vlan"].to_list()) == {26} and set(web["encap"].to_list()) == {"vxlan"}
    encaps = set(fl["encap"].drop_nulls().to_list())
    assert encaps == {"mpls", "pppoe", "gre", "erspan2", "erspan3", "geneve", "ipip", "vxlan"}


def _pcap(frames: list[bytes], link: int = 1) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1772330400 + i, 0, len(f), len(f)) + f
    return out


def _ipv4(proto: int, payload: bytes) -> bytes:
    total = 20 + len(payload)
    return (
        struct.pack(
            ">BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, proto, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
        )
        + payload
    )


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        # GRE version 2 (not defined).
        (
            b"\x02" * 12 + b"\x08\x00" + _ipv4(47, b"\x30\x82\x88\x0b\x00\x04\x00\x01\xff\x03\xc0\x21"),
            "gre_not_decoded",
        ),
        # ERSPAN III with frame type 2 (IP).
        (
            b"\x02" * 12
            + b"\x08\x00"
            + _ipv4(
                47, b"\x00\x00\x22\xeb" + b"\x20\x14\x00\x00" + b"\x00" * 4 + b"\x00\x00\x08\x00" + b"\x45"
            ),
            "erspan_frame_type_not_decoded",
        ),
        # An MPLS associated channel (first nibble 1).
        (
            b"\x02" * 12 + b"\x88\x47" + b"\x00\x01\x01\xff" + b"\x10\x00\x00\x07" + b"\x00" * 20,
            "mpls_payload_not_decoded",
        ),
    ],
)
def test_encapsulation_not_decoded_is_counted_by_kind(tmp_path, frame, kind):
    path = tmp_path / "undecoded.pcap"
    path.write_bytes(_pcap([frame, frame]))
    cap = pw.decode(path)
    assert cap.flows.height == 0
    assert cap.stats["encap_undecoded"] == 2 and cap.stats["malformed"] == 0
    assert cap.anomaly_counts() == {kind: 2}


def test_nested_encapsulation_is_bounded(tmp_path):
    # IP in IP in IP ... deeper than any network nests: refused with one anomaly, no panic.
    inner = _ipv4(17, struct.pack(">HHHH", 1, 2, 8, 0))
    for _ in range(20):
        inner = _ipv4(4, inner)
    path = tmp_path / "deep.pcap"
    path.write_bytes(_pcap([b"\x02" * 12 + b"\x08\x00" + inner]))
    cap = pw.decode(path)
    assert cap.flows.height == 0 and cap.anomaly_counts() == {"too_many_encapsulations": 1}
