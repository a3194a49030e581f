"""What the real captures of TLS after a plaintext preamble, the endpoint mapper in NDR64 and
connectionless DCE/RPC must yield (shared/captures/real-networks/README.md, tshark 4.0.17's frame
numbers), and a connectionless exchange captured twice and answered from another port, built here.

The STARTTLS offsets are tshark's relative `tcp.seq` of the ClientHello frame minus one: the client's
bytes before its first TLS record."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import polars as pl
import pytest

import portwitness as pw
from conftest import SHARED_CAPTURES
from portwitness.config import read_policy

REAL = SHARED_CAPTURES / "real-networks"

# capture: (client, server, server port, preamble bytes, SNI, record version, client version, version),
# the versions as tshark shows them.
V10, V12, V13 = "TLSv1.0", "TLSv1.2", "TLSv1.3"
UPGRADES = {
    "sv-smtp-startssl.pcap": ("10.16.1.11", "142.250.123.27", 25, 31, None, V10, V12, V13),
    "zeek-imap-starttls.pcap": ("192.168.17.53", "212.227.17.186", 143, 26, None, V10, V12, V12),
    "ndpi-pop3_stls.pcap": ("192.168.20.18", "72.249.41.52", 110, 18, "pop.lavabit.com", V10, V10, V10),
    "sv-ldap-starttls.pcap": ("::1", "::1", 389, 31, None, "SSLv3", V12, V12),
    "zeek-ftp-auth-tls.pcap": ("127.0.0.1", "127.0.0.1", 21, 16, "127.0.0.1", V12, V12, V13),
    "zeek-xmpp-starttls.pcap": ("198.128.203.95", "146.255.57.229", 5222, 169, None, V10, V12, V12),
    "sv-pgsql-upgrade-tls.pcap": ("192.168.50.11", "192.168.50.12", 5432, 8, None, V10, V12, V12),
    "ndpi-rdp_over_tls.pcap": ("91.238.181.21", "89.31.79.12", 3389, 47, None, V12, V12, V12),
    "zeek-mysql-tls-12-amazon-rds.pcap": ("82.239.87.25", "79.107.90.25", 3306, 36, None, V10, V12, V12),
}


@pytest.fixture(scope="module")
def real() -> Path:
    if not REAL.is_dir():
        pytest.fail(f"the real captures are expected in {REAL}")
    return REAL


@pytest.mark.parametrize("name", sorted(UPGRADES))
def test_tls_after_a_plaintext_preamble(real, name):
    client, server, port, offset, sni, record, legacy, version = UPGRADES[name]
    cap = pw.decode(real / name)
    (flow,) = cap.flows.filter(server_port=port, security="starttls").to_dicts()
    assert (flow["client_ip"], flow["server_ip"], flow["app"], flow["tls_sni"]) == (
        client,
        server,
        "tls",
        sni,
    )
    (row,) = cap.tls.to_dicts()
    assert (row["flow_id"], row["client_ip"], row["server_port"], row["client_offset"], row["sni"]) == (
        flow["flow_id"],
        client,
        port,
        offset,
        sni,
    )
    assert (row["record_version"], row["client_version"], row["version"]) == (record, legacy, version)
    assert flow["tls_version"] == version


def test_the_postgresql_connection_that_stays_plaintext_is_not_tls(real):
    flows = pw.decode(real / "sv-pgsql-upgrade-tls.pcap").flows.sort("client_port")
    assert flows.select("client_port", "security", "app").rows() == [
        (60358, "starttls", "tls"),
        (60359, "plaintext", None),
    ]


def test_the_audit_counts_an_upgraded_session_as_encrypted(real):
    """A policy that wants TLS on 5432: the upgraded connection complies; the one that stayed
    plaintext is the only `plaintext-ssl` finding."""
    cap = pw.decode(real / "sv-pgsql-upgrade-tls.pcap")
    pol = read_policy("policy.toml", text='[[service]]\nname = "postgres"\nports = [5432]\ntls = true\n')
    found = pw.audit(cap, pol).violations.filter(pl.col("type") == "plaintext-ssl").to_dicts()
    assert [(v["port"], v["flows"]) for v in found] == [(5432, 1)]
    smtp = pw.decode(real / "sv-smtp-startssl.pcap")
    pol = read_policy("policy.toml", text='[[service]]\nname = "smtp"\nports = [25]\ntls = true\n')
    assert pw.audit(smtp, pol).violations.filter(pl.col("type") == "plaintext-ssl").is_empty()
    # Where plaintext is configured, an upgraded session is TLS on a plaintext port.
    pol = read_policy("policy.toml", text='[[service]]\nname = "smtp"\nports = [25]\ntls = false\n')
    found = pw.audit(smtp, pol).violations.filter(pl.col("type") == "tls-on-plain")
    assert found.select("port", "flows").rows() == [(25, 1)]


SVCCTL = "367abb81-9844-35f1-ad32-98f038001003"
NETLOGON = "12345678-1234-abcd-ef00-01234567cffb"
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
NDR64 = "71710533-beba-4937-8319-b5dbef9ccc36"
DC = "172.16.66.36"


def _map_facts(cap) -> list[tuple]:
    return (
        cap.mappings.filter(source="epm.map")
        .select("server_ip", "transport", "port", "interface_uuid", "interface_version", "registered")
        .rows()
    )


def test_ndr64_ept_map_teaches_the_svcctl_port(real):
    cap = pw.decode(real / "attack-LM_smbexec_smb_dcerpc_svcctl_epm.pcapng")
    assert _map_facts(cap) == [(DC, "tcp", 49683, SVCCTL, "2.0", True)]
    # The bind: ctx 0 NDR refused, ctx 1 NDR64 accepted, ctx 2 bind-time features.
    bind = cap.dcerpc_calls.filter(ptype="bind", server_port=135).sort("context_id")
    assert bind.select("context_id", "bind_result", "transfer_syntax").rows() == [
        (0, "provider_rejection", None),
        (1, "acceptance", NDR64),
        (2, "negotiate_ack", None),
    ]
    (req,) = cap.dcerpc_calls.filter(ptype="request", server_port=135).to_dicts()
    assert (req["opnum"], req["context_id"], req["interface_uuid"], req["transfer_syntax"]) == (
        3,
        1,
        EPM,
        NDR64,
    )
    (svcctl,) = cap.flows.filter(server_port=49683).to_dicts()
    assert (svcctl["client_ip"], svcctl["client_port"], svcctl["server_ip"]) == ("172.16.66.1", 50059, DC)
    assert (svcctl["app"], svcctl["dcerpc_interface"]) == ("dcerpc", SVCCTL)
    opnums = cap.dcerpc_calls.filter(ptype="request", server_port=49683)["opnum"].to_list()
    assert opnums[:3] == [27, 24, 31]  # OpenSCManagerA, CreateServiceA, StartServiceA


def test_ndr64_ept_map_with_two_towers_and_a_repeat(real):
    cap = pw.decode(real / "attack-zerologon_mimikatz_ntlm_privacy_scan_and_exploit_encrypted.pcapng")
    tower = [(DC, "tcp", 49669, NETLOGON, "1.0", True), (DC, "tcp", 49667, NETLOGON, "1.0", True)]
    assert sorted(_map_facts(cap)) == sorted(tower * 2)
    (netlogon,) = cap.flows.filter(server_port=49669).to_dicts()
    assert (netlogon["client_ip"], netlogon["client_port"], netlogon["server_ip"]) == (
        "172.16.66.37",
        49704,
        DC,
    )
    assert netlogon["dcerpc_interface"] == NETLOGON
    assert cap.flows.filter(server_port=49667).is_empty()
    requests = cap.dcerpc_calls.filter(ptype="request", server_port=49669)["opnum"].value_counts()
    assert dict(requests.rows()) == {4: 96, 15: 96, 30: 1}


def test_ndr64_fixture_names_the_interface_a_not_registered_answer_was_asked_for():
    cap = pw.decode(Path(__file__).resolve().parent.parent / "pcaps" / "epm_ndr64.pcap")
    negative = cap.mappings.filter(registered=False).select("source", "interface_uuid", "transport").rows()
    assert negative == [("epm.map", "12345778-1234-abcd-ef00-0123456789ac", "tcp")]
    lookup = cap.mappings.filter(source="epm.lookup").sort("port")["port"].to_list()
    assert lookup == [593, 6502, 6503, 6504, 49666, 49710]


# --- connectionless DCE/RPC ------------------------------------------------------------------

MESSENGER = "5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc"
PNIO = "dea00001-6c97-11d1-8271-00a02442df7d"


def test_profinet_io_cm_on_its_own_port(real):
    cap = pw.decode(real / "ndpi-profinet-io-le.pcap")
    (flow,) = cap.flows.to_dicts()
    assert (flow["client_ip"], flow["client_port"], flow["server_ip"], flow["server_port"]) == (
        "10.10.0.150",
        1566,
        "10.10.0.129",
        34964,
    )
    assert (flow["app"], flow["dcerpc_interface"], flow["outcome"]) == ("dcerpc", PNIO, "completed")
    (call,) = cap.dcerpc_calls.to_dicts()
    assert (call["interface_uuid"], call["interface_version"], call["opnum"], call["reply"]) == (
        PNIO,
        "1.0",
        5,
        "response",
    )
    assert (call["object_uuid"], call["call_id"], call["byte_order"]) == (
        "dea00000-6c97-11d1-8271-00010003015a",
        0,
        "little",
    )


def test_messenger_requests_to_two_ports_with_one_activity(real):
    cap = pw.decode(real / "mercury-dns_packet.capture2.pcap")
    calls = cap.dcerpc_calls.filter(interface_uuid=MESSENGER).sort("server_port")
    assert calls.select("client_ip", "server_ip", "server_port", "opnum", "reply", "fragments").rows() == [
        ("202.97.238.204", "192.168.1.2", 1026, 0, None, 1),
        ("202.97.238.204", "192.168.1.2", 1027, 0, None, 1),
    ]
    flows = cap.flows.filter(pl.col("server_port").is_in([1026, 1027]), transport="udp").sort("server_port")
    assert flows.select("client_port", "server_port", "app", "dcerpc_interface").rows() == [
        (59310, 1026, "dcerpc", MESSENGER),
        (59310, 1027, "dcerpc", MESSENGER),
    ]


def _cl_pdu(ptype: int, activity: str, seqnum: int, body: bytes, fragnum: int = 0, flags1: int = 0) -> bytes:
    """A little-endian connectionless header (C706 12.5.1), 80 bytes, then the body."""
    return (
        struct.pack("<BBBB3sB", 4, ptype, flags1, 0, b"\x10\x00\x00", 0)
        + uuid.UUID(int=0).bytes_le
        + uuid.UUID(MESSENGER).bytes_le
        + uuid.UUID(activity).bytes_le
        + struct.pack("<IIIHHHHHBB", 0, 1, seqnum, 0, 0xFFFF, 0xFFFF, len(body), fragnum, 0, 0)
        + body
    )


def test_a_connectionless_exchange_captured_twice_and_answered_from_another_port(tmp_path):
    """Two taps see every datagram twice; the server answers from port 1028, not the 1026 that was
    called. One call, one fragment, answered; both flows oriented from the caller and answered."""
    scapy = pytest.importorskip("scapy.all")
    act = "1c3256dc-1021-b4ca-a37f-a8cdd62934e3"
    c, s = "10.1.0.1", "10.1.0.2"
    request = _cl_pdu(0, act, 7, b"hello messenger!")
    response = _cl_pdu(2, act, 7, b"\x00" * 8)
    pkts = []
    for i, (src, sport, dst, dport, data) in enumerate(
        [(c, 40000, s, 1026, request)] * 2 + [(s, 1028, c, 40000, response)] * 2
    ):
        p = scapy.Ether() / scapy.IP(src=src, dst=dst) / scapy.UDP(sport=sport, dport=dport) / data
        p.time = 1_700_000_000 + i / 1000
        pkts.append(p)
    path = tmp_path / "cl_twice.pcap"
    scapy.wrpcap(str(path), pkts)
    cap = pw.decode(path)
    (call,) = cap.dcerpc_calls.to_dicts()
    assert (call["fragments"], call["reply"], call["server_port"], call["opnum"]) == (1, "response", 1026, 0)
    flows = cap.flows.sort("first_ts").select(
        "client_ip", "client_port", "server_ip", "server_port", "outcome"
    )
    assert flows.rows() == [(c, 40000, s, 1026, "completed"), (c, 40000, s, 1028, "completed")]
