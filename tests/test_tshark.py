"""Differential test: per 5-tuple packet and byte counts agree with tshark's, on every fixture and
every real capture in shared/captures (real-networks/ included).

tshark's per-frame fields are aggregated here rather than read from `-z conv`, so that the two
counting rules portwitness states can be applied on tshark's side too: every fragment of a datagram
is attributed (through `ip.reassembled_in`) to the flow of the reassembled datagram, and a frame
whose snaplen cut the TCP header after the ports still counts toward its conversation.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

import portwitness as pw
from conftest import PCAPS, SHARED_CAPTURES, fixtures

pytestmark = pytest.mark.tshark

FIELDS = [
    "frame.number",
    "frame.len",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "ip.reassembled_in",
    "ipv6.reassembled.in",
    "frame.protocols",
    "frame.interface_id",
    "vxlan.vni",
    "geneve.vni",
    "gre.key",
]
TENANT_FIELDS = {"vxlan": "vxlan.vni", "geneve": "geneve.vni", "gre": "gre.key"}


def _tshark() -> str:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: apt-get install tshark (.ci/run does)")
    return exe


def _first(v: str) -> str:
    return v.split(",")[0] if v else ""


def _tenant(row: dict) -> int | None:
    """The id of the innermost tunnel that names a tenant, None outside one (or id 0)."""
    for proto in reversed(row.get("frame.protocols", "").split(":")):
        field = TENANT_FIELDS.get(proto)
        if field and row.get(field):
            value = _first(row[field])
            return int(value, 0) or None
    return None


def tshark_conversations(path: Path, *, damaged: bool = False, firsts: dict | None = None) -> dict:
    """Packets and bytes per direction of each conversation; `firsts` gets each conversation's
    first frame number."""
    args = [
        _tshark(),
        "-2",
        "-n",
        "-r",
        str(path),
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=l",
    ]
    for f in FIELDS:
        args += ["-e", f]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    # On a damaged capture tshark prints what it read, then exits non-zero with "cut short".
    if proc.returncode != 0 and not (damaged and "cut short" in proc.stderr):
        raise AssertionError(f"tshark failed on {path}: {proc.stderr.strip()}")
    out = proc.stdout
    frames: dict[int, dict] = {}
    for line in out.splitlines():
        row = dict(zip(FIELDS, line.split("\t"), strict=False))
        frames[int(row["frame.number"])] = row
    conv: dict = defaultdict(lambda: [0, 0, 0, 0])
    # tshark 4 numbers a pcapng custom block as a frame too (it has no interface): the records
    # portwitness numbers are the packets, so a frame's record number skips those.
    pcapng = path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    record, skipped = {}, 0
    for n in sorted(frames):
        if pcapng and not frames[n].get("frame.interface_id"):
            skipped += 1
        record[n] = n - skipped

    def five_tuple(row: dict):
        protos = row.get("frame.protocols", "").split(":")
        transport = next((i for i, p in enumerate(protos) if p in ("tcp", "udp")), len(protos))
        if "icmp" in protos[:transport] or "icmpv6" in protos[:transport]:
            # An ICMP error quotes another packet's headers: not a conversation frame. (ICMPv6
            # carried inside UDP, as Teredo does, is that UDP flow's payload.)
            return None
        # The innermost IP header (the last of ip and ipv6 in the frame's protocol path) and the
        # transport header after it, if any (a Teredo bubble is an IPv6 header alone).
        at = max((i for i, p in enumerate(protos) if p in ("ip", "ipv6")), default=0)
        family = protos[at] if protos[at : at + 1] == ["ipv6"] else "ip"
        src = _first(row.get(f"{family}.src", ""))
        dst = _first(row.get(f"{family}.dst", ""))
        inner = next((p for p in protos[at:] if p in ("tcp", "udp")), None)
        for proto in [inner] if inner else []:
            sp, dp = _first(row.get(f"{proto}.srcport", "")), _first(row.get(f"{proto}.dstport", ""))
            if sp and dp and src and dst:
                return (
                    proto,
                    str(ipaddress.ip_address(src)),
                    int(sp),
                    str(ipaddress.ip_address(dst)),
                    int(dp),
                    _tenant(row),
                )
        return None

    for row in frames.values():
        target = row
        reassembled = _first(row.get("ip.reassembled_in", "")) or _first(row.get("ipv6.reassembled.in", ""))
        if reassembled:
            target = frames.get(int(reassembled), row)
        t = five_tuple(target)
        if t is None:
            continue
        proto, src, sp, dst, dp, tenant = t
        a, b = (src, sp), (dst, dp)
        key = (proto, *min(a, b), *max(a, b), tenant)
        forward = a <= b
        if firsts is not None:
            firsts.setdefault(key, record[int(target["frame.number"])])
        c = conv[key]
        c[0 if forward else 1] += 1
        c[2 if forward else 3] += int(row["frame.len"])
    return dict(conv)


def portwitness_conversations(path: Path) -> dict:
    conv: dict = defaultdict(lambda: [0, 0, 0, 0])
    for f in pw.decode(path).flows.iter_rows(named=True):
        c, s = (f["client_ip"], f["client_port"]), (f["server_ip"], f["server_port"])
        key = (f["transport"], *min(c, s), *max(c, s), f["tunnel_id"] or None)
        forward = c <= s
        v = conv[key]
        v[0 if forward else 1] += f["packets_c2s"]
        v[1 if forward else 0] += f["packets_s2c"]
        v[2 if forward else 3] += f["bytes_c2s"]
        v[3 if forward else 2] += f["bytes_s2c"]
    return dict(conv)


# The real-networks captures of TLS after a plaintext preamble, the endpoint mapper in NDR64 and
# connectionless DCE/RPC (the folder's README says what each must yield).
REAL_NETWORKS = [
    "sv-smtp-startssl.pcap",
    "zeek-imap-starttls.pcap",
    "ndpi-pop3_stls.pcap",
    "sv-ldap-starttls.pcap",
    "zeek-ftp-auth-tls.pcap",
    "zeek-xmpp-starttls.pcap",
    "sv-pgsql-upgrade-tls.pcap",
    "ndpi-rdp_over_tls.pcap",
    "zeek-mysql-tls-12-amazon-rds.pcap",
    "attack-LM_smbexec_smb_dcerpc_svcctl_epm.pcapng",
    "attack-zerologon_mimikatz_ntlm_privacy_scan_and_exploit_encrypted.pcapng",
    "ndpi-profinet-io-le.pcap",
    "mercury-dns_packet.capture2.pcap",
]


def _captures() -> list[Path]:
    real = sorted(SHARED_CAPTURES.glob("*.pcap*")) if SHARED_CAPTURES.is_dir() else []
    networks = SHARED_CAPTURES / "real-networks"
    real += sorted(networks.glob("*.pcap*")) if networks.is_dir() else []
    return fixtures() + real


@pytest.mark.parametrize("capture", _captures(), ids=lambda p: p.name)
def test_same_conversations_as_tshark(capture):
    assert portwitness_conversations(capture) == tshark_conversations(capture)


@pytest.mark.parametrize("capture", _captures(), ids=lambda p: p.name)
def test_first_record_is_tsharks_first_frame(capture):
    """Every flow names the record that opened it: Wireshark's frame number less one (the first
    frame of the conversation; a 5-tuple split into several flows by time starts at its first;
    in pcapng, less the custom blocks tshark numbers as frames before it)."""
    firsts: dict = {}
    tshark_conversations(capture, firsts=firsts)
    ours: dict = {}
    flows = pw.decode(capture).flows
    for f in flows.iter_rows(named=True):
        c, s = (f["client_ip"], f["client_port"]), (f["server_ip"], f["server_port"])
        key = (f["transport"], *min(c, s), *max(c, s), f["tunnel_id"] or None)
        ours[key] = min(ours.get(key, f["first_record"] + 1), f["first_record"] + 1)
    assert ours == {k: v for k, v in firsts.items() if k in ours}
    if flows.height:
        assert flows["first_record"].max() < pw.decode(capture).stats["records"]


def test_real_captures_present(shared_captures):
    assert len(list(shared_captures.glob("*.pcap*"))) >= 10


def test_broken_fixture_agrees_on_what_both_read():
    # tshark stops at the cut record; so do we, with the same conversations before it.
    capture = PCAPS / "broken" / "truncated_last_record.pcap"
    assert portwitness_conversations(capture) == tshark_conversations(capture, damaged=True)
