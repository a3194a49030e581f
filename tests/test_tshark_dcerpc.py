"""Differential tests: DCE/RPC calls, endpoint-mapper facts and TLS handshakes agree field for field
with tshark's dissection, on the real DCE/RPC and TLS captures and on every committed fixture.

tshark (4.0) is run once per capture, two-pass, reassembling out-of-order TCP segments, writing PDML
restricted to the protocols compared, so that each DCE/RPC PDU, each EPM stub and each TLS record
keeps its own fields in tree order (`-T fields -E occurrence=a` would concatenate the PDUs of one
frame and lose which context item or tower a value belongs to). No `-d` is given: DCE/RPC on
ports other than 135 is found by tshark's TCP/UDP heuristic (`is_dcerpc()`, on by default), and
TLS off 443 by its TCP heuristic (`tls_tcp`, on by default).

What tshark shows (tshark 4.0.17):

* scapy-dcerpc_msnrpc.pcapng (10 frames, no SYN): frame 1 bind to EPM v3.0 (ctx 0, NDR), frame 2
  bind_ack sec_addr "135" acceptance; frames 3/4 ept_map (opnum 3) whose response carries two
  5-floor towers for NETLOGON 12345678-…-cffb, `epm.uuid_version` 256 (= `01 00` read big-endian,
  printed "1.00"; the LE major is 1), `epm.ver_min` 0, ports 49676 and 49667, IP 192.168.122.17;
  frames 5/6 bind NETLOGON v1.0 on 49676 and bind_ack sec_addr "49676"; frames 7-10 requests
  opnum 4 (call 1) and 26 (call 2), both answered.
* zeek-dce-rpc-mapi.pcap (800 frames): over TCP 135, three EPM associations from 192.168.0.173:
  an ept_map for NSPI f5cc5a18-…-8426 (`uuid_version` 14336 = `38 00`, v56.0) answered 4997, an
  ept_lookup (opnum 2, inquiry 1 naming NSPI v56.0) answered one entry whose tower is ncacn_http
  (floor 4 id 0x1f, port 5000, floor 5 id 0x20 "Unix Domain Socket", no IPv4 floor) with the
  annotation "MS Exchange Directory NSP Interface", and an ept_map for MAPI/EMSMDB a4f1db00-…-62da
  (`uuid_version` 0, `ver_min` 20736 = `51 00`, v0.81) answered 1032. Binds with NTLMSSP (auth type
  10, level 2) to NSPI on 4997 (bind_ack sec_addr "4997") and to EMSMDB on 1032 ("1032"). Three
  connections to 1032 (from 192.168.0.129:2482, .141:1734, .168:3647) start before the capture or
  before the ept_map that names 1032, carry no bind, and tshark's heuristic decodes their requests
  (opnum 2 …, ctx 0) and responses; one frame of the .129 flow (frame 2) is a response whose request
  precedes the capture. LSARPC binds ride on SMB over NetBIOS (port 139, sec_addr "\\PIPE\\lsass"),
  compared like the rest: DCE/RPC over SMB named pipes is keyed by its TCP conversation.
* zeek-tls13-ech.pcap: a mid-stream connection (application data only: no handshake, no row) and
  two TLS 1.3 handshakes: ClientHello record version 0x0301, legacy version 0x0303,
  supported_versions 0x8a8a/0x3a3a (GREASE), 0x0304, 0x0303, SNI cloudflare-ech.com (the outer
  ClientHello of ECH), ALPN h2,http/1.1; ServerHello 0x0303 with supported_version 0x0304, cipher
  0x1301.
* rusticata-err-buffertoosmall.pcapng: one TLS 1.3 connection with a HelloRetryRequest (frame 6,
  random = SHA-256("HelloRetryRequest"), cipher 0x1302), a second ClientHello (frame 7, record
  version 0x0303) and the real ServerHello (frame 8, 0x0304, 0x1302); SNI example.com, ALPN
  http/1.1. The row describes the first ClientHello and the final ServerHello (whose version and
  cipher a conformant server keeps from its HelloRetryRequest, RFC 8446 §4.1.4) and its time;
  `hello_retry` says a HelloRetryRequest came first.
* Fixtures in pcaps/: the ONC RPC and link-layer fixtures show neither DCE/RPC nor TLS to tshark.
  The DCE/RPC and TLS fixtures (a `.dcerpc_calls.json` or `.tls.json` beside them):
  epm_dynamic (ept_map over TCP 135 answering 49703 with tower IP 0.0.0.0, one answering
  ept_s_not_registered 0x16c9a0d6 with no tower, one answering two towers 49704/49705 with the
  server's IP; the tape engine bound on 49703, opnum 43), epm_tape_engine (ept_map, then the tape
  engine on the learned port, opnum 43), dcerpc_bigendian (ept_map, then the message engine,
  opnum 47, every PDU with big-endian drep), epm_udp (ept_map over UDP 135 as CL
  DCE/RPC, if_vers 3 = v3.0, answering a UDP tower 49710 with the server's IP and a TCP tower
  6503 with 0.0.0.0; then a CL request opnum 47 to 49710), dcerpc_fragmented (a two-item bind,
  the second provider-rejected; a multi-entry ept_lookup with TCP, UDP, HTTP, named-pipe and
  ncalrpc towers and annotations, then an empty one; an alter_context with one rejected item and
  a request on it answered by a fault nca_unk_if 0x1c010003; a request in three fragments; a
  bind_nak, reason 4), sample (EPM, tape engine and a TLS 1.3 handshake among the ONC traffic),
  tls_mgmt (TLS 1.2 and 1.3 on 7099, a server-initiated handshake on 20050, a ClientHello split
  over two segments, an SSLv2-compatible ClientHello, and plaintext on 2099).

Conversions applied to tshark's side (nothing is skipped): the EPM tower floor versions are
byte-swapped back to the little-endian reading of protocols.md §4.4; a tower IP 0.0.0.0 or no IPv4
floor becomes the address of the EPM server that answered; a CL header's if_vers is split into
major (low 16 bits) and minor (high 16 bits) and a nil CL object UUID is no object; tshark's SSLv2
record-layer version 0x0002 is the contract's `SSLv2` record; TLS versions are named as the
contract names them; timestamps are those of the frame that completes the PDU or message.
"""

from __future__ import annotations

import functools
import ipaddress
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

import portwitness as pw
from conftest import SHARED_CAPTURES, fixtures, with_planted

pytestmark = pytest.mark.tshark

REAL = [
    "scapy-dcerpc_msnrpc.pcapng",
    "zeek-dce-rpc-mapi.pcap",
    "zeek-tls13-ech.pcap",
    "rusticata-err-buffertoosmall.pcapng",
    # TLS after a plaintext preamble
    "real-networks/sv-smtp-startssl.pcap",
    "real-networks/zeek-imap-starttls.pcap",
    "real-networks/ndpi-pop3_stls.pcap",
    "real-networks/sv-ldap-starttls.pcap",
    "real-networks/zeek-ftp-auth-tls.pcap",
    "real-networks/zeek-xmpp-starttls.pcap",
    "real-networks/sv-pgsql-upgrade-tls.pcap",
    "real-networks/ndpi-rdp_over_tls.pcap",
    "real-networks/zeek-mysql-tls-12-amazon-rds.pcap",
    # the endpoint mapper in NDR64; connectionless DCE/RPC on ports of its own
    "real-networks/attack-LM_smbexec_smb_dcerpc_svcctl_epm.pcapng",
    "real-networks/attack-zerologon_mimikatz_ntlm_privacy_scan_and_exploit_encrypted.pcapng",
    "real-networks/ndpi-profinet-io-le.pcap",
    "real-networks/mercury-dns_packet.capture2.pcap",
    "real-networks/zeek-raw_ntlm_in_smb.pcap",
    "real-networks/attack-Discovery_dcerp_srvsvc_NetShareEnum.pcapng",
]
# tshark finds every STARTTLS switch by itself but RDP's, whose TPKT dissector keeps the port.
DECODE_AS = {"ndpi-rdp_over_tls.pcap": ["-d", "tcp.port==3389,tls"]}
DCERPC_FIXTURES = with_planted("dcerpc_calls")
TLS_FIXTURES = with_planted("tls")
CAPTURES = [SHARED_CAPTURES / name for name in REAL] + sorted(
    set(fixtures()) | set(DCERPC_FIXTURES) | set(TLS_FIXTURES)
)

HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
TLS_VERSIONS = {
    0x0200: "SSLv2",
    0x0300: "SSLv3",
    0x0301: "TLSv1.0",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}
BIND_RESULTS = {0: "acceptance", 1: "user_rejection", 2: "provider_rejection", 3: "negotiate_ack"}
CO_REPLIES = {2: "response", 3: "fault", 12: "bind_ack", 13: "bind_nak", 15: "alter_context_resp"}
# Tower floor 4: (transport, protocol sequence).
TOWER_ENDPOINTS = {0x07: ("tcp", "ncacn_ip_tcp"), 0x08: ("udp", "ncadg_ip_udp"), 0x1F: ("tcp", "ncacn_http")}


# --- tshark's side ---------------------------------------------------------------------------


@dataclass
class Pdu:
    """One `<proto>` of a frame: its fields as (name, show, value) in tree order."""

    proto: str
    fields: list[tuple[str, str, str]]

    def first(self, name: str) -> str | None:
        return next((show for n, show, _ in self.fields if n == name), None)

    def int(self, name: str) -> int | None:
        v = self.first(name)
        return None if v is None else int(v, 0)


@dataclass
class Frame:
    number: int
    ts_ns: int
    transport: str
    src: str
    sport: int
    dst: str
    dport: int
    pdus: list[Pdu] = field(default_factory=list)
    seq: int = 0  # relative, as tshark counts: the first byte after the SYN (or seen) is 1
    nxtseq: int = 0
    # The SMB file id of the named pipe that carried the PDUs (None: TCP or UDP itself, or an
    # SMB2 read response, which does not name its file).
    pipe: str | None = None

    def key(self, from_client: bool) -> tuple:
        """(transport, client ip, client port, server ip, server port) of the conversation."""
        if from_client:
            return (self.transport, self.src, self.sport, self.dst, self.dport)
        return (self.transport, self.dst, self.dport, self.src, self.sport)


def _epoch_ns(text: str) -> int:
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


@functools.cache
def tshark_frames(path: Path) -> tuple[Frame, ...]:
    """The frames that carry DCE/RPC over TCP/UDP or an SMB named pipe, or a TLS record directly
    over TCP."""
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: apt-get install tshark (.ci/run does)")
    args = [
        exe,
        "-2",
        "-n",
        "-r",
        str(path),
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        *DECODE_AS.get(path.name, []),
    ]
    args += [
        "-Y",
        "dcerpc || tls",
        "-T",
        "pdml",
        "-J",
        "frame ip ipv6 tcp udp smb smb_pipe smb2 dcerpc epm tls",
    ]
    proc = subprocess.run(args, capture_output=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"tshark failed on {path}: {proc.stderr.decode(errors='replace').strip()}")
    frames = []
    for packet in ET.fromstring(proc.stdout).iter("packet"):
        pdus, info = [], {}
        for proto in packet.iter("proto"):
            name = proto.get("name", "")
            fields = [(f.get("name", ""), f.get("show", ""), f.get("value", "")) for f in proto.iter("field")]
            if name in ("dcerpc", "epm", "tls"):
                pdus.append(Pdu(name, fields))
            elif name in ("frame", "ip", "ipv6", "tcp", "udp"):
                for n, show, _ in fields:
                    info.setdefault(n, show)
                if name in ("tcp", "udp"):
                    info.setdefault("transport", name)
            elif name in ("smb", "smb_pipe", "smb2"):
                fid = next((show for n, show, _ in fields if n in ("smb.fid", "smb2.fid")), None)
                if fid is not None:
                    info.setdefault("pipe", fid)
        layers = info.get("frame.protocols", "").split(":")
        # What rides on TCP/UDP or in an SMB named pipe (SMB1 TransactNmPipe, SMB2 read, write or
        # ioctl): DCE/RPC inside HTTP is out of scope.
        pdus = [p for p in pdus if _carrier(layers, p.proto) in ("tcp", "udp", "smb", "smb2")]
        src = info.get("ip.src") or info.get("ipv6.src")
        if not pdus or src is None or info.get("transport") is None:
            continue
        tp = info["transport"]
        frames.append(
            Frame(
                number=int(info["frame.number"]),
                ts_ns=_epoch_ns(info["frame.time_epoch"]),
                transport=tp,
                src=str(ipaddress.ip_address(src)),
                sport=int(info[f"{tp}.srcport"]),
                dst=str(ipaddress.ip_address(info.get("ip.dst") or info["ipv6.dst"])),
                dport=int(info[f"{tp}.dstport"]),
                pdus=pdus,
                seq=int(info.get("tcp.seq", 0)),
                nxtseq=int(info.get("tcp.nxtseq", 0)),
                pipe=info.get("pipe"),
            )
        )
    return tuple(frames)


def _carrier(layers: list[str], proto: str) -> str | None:
    """The layer right below the first `proto` (epm rides on dcerpc)."""
    below = "dcerpc" if proto == "epm" else proto
    if below not in layers:
        return None
    i = layers.index(below)
    return layers[i - 1] if i else None


def _swap16(v: int) -> int:
    """tshark reads the tower floor-1 versions big-endian (protocols.md §4.4): swap back."""
    return ((v & 0xFF) << 8) | (v >> 8)


def _co_items(pdu: Pdu) -> list[dict]:
    """The context items of a bind/alter_context PDU, in order."""
    items: list[dict] = []
    for name, show, _ in pdu.fields:
        if name == "dcerpc.cn_ctx_id":
            items.append({"context_id": int(show), "trans": []})
        elif not items:
            continue
        elif name == "dcerpc.cn_bind_to_uuid":
            items[-1]["uuid"] = show
        elif name == "dcerpc.cn_bind_if_ver":
            items[-1]["major"] = int(show)
        elif name == "dcerpc.cn_bind_if_ver_minor":
            items[-1]["minor"] = int(show)
        elif name == "dcerpc.cn_bind_trans_id":
            items[-1]["trans"].append(show)
    return items


def _auth(pdu: Pdu) -> dict:
    return {
        "auth_type": pdu.int("dcerpc.auth_type"),
        "auth_level": pdu.int("dcerpc.auth_level"),
        "byte_order": {0: "big", 1: "little"}[pdu.int("dcerpc.drep.byteorder")],
    }


CALL_KEYS = ["ts_ns", "reply_ts_ns", "ptype", "call_id", "context_id", "interface_uuid", "interface_version"]
BIND_KEYS = CALL_KEYS + ["transfer_syntaxes", "reply", "bind_result", "sec_addr", "reject_reason"]
# The transfer syntax the bind_ack accepted for the row's context (NDR or NDR64), on a bind row and on
# each call on that context.
CALL_KEYS += ["transfer_syntax"]
BIND_KEYS += ["transfer_syntax"]
BIND_KEYS += ["auth_type", "auth_level", "byte_order"]
REQUEST_KEYS = CALL_KEYS + ["opnum", "object_uuid", "reply", "fault_status", "fragments"]
REQUEST_KEYS += ["auth_type", "auth_level", "byte_order"]
MAPPING_KEYS = ["source", "server_ip", "transport", "port", "interface_uuid", "interface_version"]
MAPPING_KEYS += ["protocol", "annotation", "registered", "ts_ns"]
NEGATIVE_KEYS = ["source", "server_ip", "transport", "port", "interface_uuid", "registered", "ts_ns"]
CL_REPLIES = {2: "response", 3: "fault", 6: "reject"}
NIL_UUID = "00000000-0000-0000-0000-000000000000"
NDR64 = "71710533-beba-4937-8319-b5dbef9ccc36"


@dataclass
class DceView:
    """tshark's DCE/RPC over one capture: the call rows per conversation (in the contract's terms:
    one per bind/alter_context context item, one per request), and the mapping rows."""

    calls: dict = field(default_factory=lambda: defaultdict(list))
    mappings: list = field(default_factory=list)
    binds: dict = field(default_factory=dict)  # (conversation, call_id) -> that bind's item rows
    bind_pipes: dict = field(default_factory=dict)  # (conversation, call_id) -> the bind's pipe
    # (conversation, pipe, context_id) -> accepted (uuid, version): a named pipe is an association
    # of its own, so the contexts of one pipe do not name the calls on another.
    contexts: dict = field(default_factory=dict)
    open_calls: dict = field(default_factory=dict)  # (conversation, call_id) -> latest request row
    epm_requests: dict = field(default_factory=dict)  # (conversation, call_id) -> EPM request stub
    cl_calls: dict = field(default_factory=dict)  # (activity, seqnum) -> the CL call's row
    ndr64: set = field(default_factory=set)  # (conversation, context_id) that negotiated NDR64
    # (server, time) of NDR64 ept_lookup answers, which tshark 4.0 misreads (see _epm)
    ndr64_lookups: set = field(default_factory=set)

    def request(self, conv: tuple, call_id: int, pdu: Pdu, ts_ns: int | None, **values) -> dict:
        row = {
            "ts_ns": ts_ns,
            "reply_ts_ns": None,
            "ptype": "request",
            "call_id": call_id,
            "context_id": None,
            "interface_uuid": None,
            "interface_version": None,
            "opnum": None,
            "transfer_syntax": None,
            "object_uuid": None,
            "reply": None,
            "fault_status": None,
            "fragments": 0,
            **_auth(pdu),
            **values,
        }
        self.open_calls[(conv, call_id)] = row
        self.calls[conv].append(row)
        return row

    def context(self, conv: tuple, pipe: str | None, ctx: int | None) -> tuple:
        """The interface bound to ``ctx`` on the pipe (or connection). A bind written in a
        compound chain right after its CREATE names the file as all ones (SMB2 related
        operations): the pipe's first call takes over what such a bind accepted."""
        if (conv, pipe, ctx) not in self.contexts:
            related = (conv, "ffffffff-ffff-ffff-ffff-ffffffffffff", ctx)
            if pipe is not None and related in self.contexts:
                self.contexts[(conv, pipe, ctx)] = self.contexts.pop(related)
        return self.contexts.get((conv, pipe, ctx), (None, None, None))

    def co(self, fr: Frame, pdu: Pdu) -> tuple:
        ptype, call_id = pdu.int("dcerpc.pkt_type"), pdu.int("dcerpc.cn_call_id")
        conv = fr.key(ptype in (0, 11, 14, 16))
        if ptype in (11, 14):
            rows = [
                {
                    "ts_ns": fr.ts_ns,
                    "reply_ts_ns": None,
                    "ptype": "bind" if ptype == 11 else "alter_context",
                    "call_id": call_id,
                    "context_id": item["context_id"],
                    "interface_uuid": item.get("uuid"),
                    "interface_version": f"{item.get('major')}.{item.get('minor')}",
                    "transfer_syntaxes": ",".join(item["trans"]) or None,
                    "transfer_syntax": None,
                    "reply": None,
                    "bind_result": None,
                    "sec_addr": None,
                    "reject_reason": None,
                    **_auth(pdu),
                }
                for item in _co_items(pdu)
            ]
            self.binds[(conv, call_id)] = rows
            self.bind_pipes[(conv, call_id)] = fr.pipe
            self.calls[conv].extend(rows)
        elif ptype in (12, 13, 15) and (conv, call_id) in self.binds:
            pipe = self.bind_pipes.get((conv, call_id))
            for row in _answer_bind(self, fr, pdu, ptype, self.binds[(conv, call_id)]):
                self.contexts[(conv, pipe, row["context_id"])] = (
                    row["interface_uuid"],
                    row["interface_version"],
                    row["transfer_syntax"],
                )
        elif ptype == 0:
            row = self.open_calls.get((conv, call_id))
            first = (pdu.int("dcerpc.cn_flags") or 0) & 0x01
            if row is None or first or row["reply"] is not None:
                ctx = pdu.int("dcerpc.cn_ctx_id")
                iface, version, transfer = self.context(conv, fr.pipe, ctx)
                row = self.request(
                    conv,
                    call_id,
                    pdu,
                    fr.ts_ns,
                    context_id=ctx,
                    interface_uuid=iface,
                    interface_version=version,
                    transfer_syntax=transfer,
                    opnum=pdu.int("dcerpc.opnum"),
                    object_uuid=pdu.first("dcerpc.obj_id"),
                )
            row["fragments"] += 1
        elif ptype in (2, 3):
            row = self.open_calls.get((conv, call_id))
            if row is None:  # a reply whose request is not in the capture: no opnum
                ctx = pdu.int("dcerpc.cn_ctx_id")
                iface, version, transfer = self.context(conv, fr.pipe, ctx)
                row = self.request(conv, call_id, pdu, None, context_id=ctx, interface_uuid=iface)
                row["interface_version"], row["transfer_syntax"] = version, transfer
            row["reply"] = CO_REPLIES[ptype]
            row["reply_ts_ns"] = row["reply_ts_ns"] or fr.ts_ns
            if ptype == 3:
                row["fault_status"] = pdu.int("dcerpc.cn_status")
        return conv, call_id, ptype

    def cl(self, fr: Frame, pdu: Pdu) -> tuple:
        ptype, seq = pdu.int("dcerpc.pkt_type"), pdu.int("dcerpc.dg_seqnum")
        conv = fr.key(ptype in (0, 1, 7, 8))
        if_vers = pdu.int("dcerpc.dg_if_ver")
        obj = pdu.first("dcerpc.obj_id")
        header = {
            "interface_uuid": pdu.first("dcerpc.dg_if_id"),
            # C706: the major version in the low 16 bits of if_vers, the minor in the high ones.
            "interface_version": f"{if_vers & 0xFFFF}.{if_vers >> 16}",
            "opnum": pdu.int("dcerpc.opnum"),
            "object_uuid": None if obj in (None, NIL_UUID) else obj,
        }
        # A connectionless call is its activity and sequence number, whichever ports carry its
        # datagrams: servers answer from another port than the one called. A copy of a datagram
        # (two taps, a SPAN of both directions) is the same call and the same fragment; the same
        # activity and number sent to another endpoint is another call.
        key = (pdu.first("dcerpc.dg_act_id"), seq)
        row = self.cl_calls.get(key)
        if ptype == 0:
            if row is None or row["_conv"] != conv:
                row = self.request(conv, seq, pdu, fr.ts_ns, **header)
                row["_conv"], row["_fragnums"] = conv, set()
                self.cl_calls[key] = row
            if row["reply"] is None:
                row["_fragnums"].add(pdu.int("dcerpc.dg_frag_num"))
                row["fragments"] = len(row["_fragnums"])
        elif ptype in CL_REPLIES:
            if row is None:  # a reply whose request is not in the capture
                row = self.request(conv, seq, pdu, None, **header)
                row["_conv"], row["_fragnums"] = conv, set()
                self.cl_calls[key] = row
            elif row["reply"] is not None:
                return row["_conv"], seq, None  # a copy of an answer already seen: no new facts
            row["reply"] = CL_REPLIES[ptype]
            row["reply_ts_ns"] = row["reply_ts_ns"] or fr.ts_ns
            if ptype != 2:
                row["fault_status"] = pdu.int("dcerpc.dg_status")
        return conv, seq, ptype


@functools.cache
def tshark_dcerpc(path: Path) -> DceView:
    view = DceView()
    for fr in tshark_frames(path):
        last = None  # (conversation, call id, ptype) of the DCE/RPC PDU an EPM stub belongs to
        for pdu in fr.pdus:
            if pdu.proto == "epm":
                assert last is not None, f"frame {fr.number}: EPM stub without its DCE/RPC PDU"
                _epm(view, fr, *last, pdu)
            elif pdu.proto == "dcerpc":
                last = view.co(fr, pdu) if pdu.int("dcerpc.ver") == 5 else view.cl(fr, pdu)
    return view


def _answer_bind(view: DceView, fr: Frame, pdu: Pdu, ptype: int, rows: list[dict]) -> list[dict]:
    """Answers a bind's context items; returns the accepted ones."""
    results = [int(show) for name, show, _ in pdu.fields if name == "dcerpc.cn_ack_result"]
    transfers = [show for name, show, _ in pdu.fields if name == "dcerpc.cn_ack_trans_id"]
    for row, result, transfer in zip(rows, results, transfers, strict=False):
        if result == 0 and transfer == NDR64:
            view.ndr64.add((fr.key(False), row["context_id"]))
    sec_addr = pdu.first("dcerpc.cn_sec_addr") or None
    for i, row in enumerate(rows):
        row["reply"] = CO_REPLIES[ptype]
        row["reply_ts_ns"] = fr.ts_ns
        row["sec_addr"] = sec_addr
        row["reject_reason"] = pdu.int("dcerpc.cn_reject_reason")
        accepted = i < len(results) and results[i] == 0 and i < len(transfers)
        row["transfer_syntax"] = transfers[i] if accepted else None
        if i < len(results):
            row["bind_result"] = BIND_RESULTS.get(results[i], str(results[i]))
        if ptype == 12 and sec_addr and sec_addr.isdigit() and row["bind_result"] == "acceptance":
            view.mappings.append(
                {
                    "source": "dcerpc.bind_ack",
                    "server_ip": fr.src,
                    "transport": "tcp",
                    "port": int(sec_addr),
                    "interface_uuid": row["interface_uuid"],
                    "interface_version": row["interface_version"],
                    "protocol": "ncacn_ip_tcp",
                    "annotation": None,
                    "registered": True,
                    "ts_ns": fr.ts_ns,
                }
            )
    return [row for row in rows if row["bind_result"] == "acceptance"]


def _towers(pdu: Pdu) -> list[dict]:
    """The towers of an EPM stub in tree order; each with its floors and the lookup entry's
    annotation (tshark puts an entry's tower and annotation under the entry)."""
    towers: list[dict] = []
    entry: dict = {}
    for name, show, _ in pdu.fields:
        floors = towers[-1]["floors"] if towers else None
        if name == "epm.object":
            entry = {"annotation": None}
        elif name == "epm.tower.num_floors":
            towers.append({"floors": [], "entry": entry})
        elif name == "epm.annotation":
            entry["annotation"] = show or None
        elif floors is None:
            continue
        elif name == "epm.tower.proto_id":
            floors.append({"id": int(show, 16)})
        elif name == "epm.uuid" and floors:
            floors[-1]["uuid"] = show
        elif name == "epm.uuid_version" and floors:
            floors[-1]["major"] = _swap16(int(show))
        elif name == "epm.ver_min" and floors:
            floors[-1]["minor"] = _swap16(int(show))
        elif name in ("epm.proto.tcp_port", "epm.proto.udp_port", "epm.proto.http_port") and floors:
            floors[-1]["port"] = int(show)
        elif name == "epm.proto.ip" and floors:
            floors[-1]["ip"] = show
    return towers


def _epm(view: DceView, fr: Frame, conv: tuple, call_id: int, ptype: int, pdu: Pdu) -> None:
    opnum = pdu.int("epm.opnum")
    if ptype is None:
        return
    if ptype == 0:
        view.epm_requests[(conv, call_id)] = pdu
        return
    if opnum not in (2, 3):
        return
    call = view.open_calls.get((conv, call_id))
    if opnum == 2 and call is not None and (conv, call["context_id"]) in view.ndr64:
        # tshark 4.0's EPM dissector reads an ept_entry_t's annotation offset and length as
        # 4-byte integers whatever the syntax; NDR64 makes them 8 bytes (MS-RPCE 2.2.5.3.2.2), so
        # it calls such an answer malformed. Its facts are held against the fixture's oracle
        # (test_dcerpc.py) instead.
        view.ndr64_lookups.add((fr.src, fr.ts_ns))
        return
    source = "epm.map" if opnum == 3 else "epm.lookup"
    server = fr.src
    found = 0
    for tower in _towers(pdu):
        floors = tower["floors"]
        if len(floors) < 4 or floors[0]["id"] != 0x0D or floors[2]["id"] not in (0x0A, 0x0B):
            continue
        if floors[3]["id"] not in TOWER_ENDPOINTS:
            continue
        transport, protocol = TOWER_ENDPOINTS[floors[3]["id"]]
        ip = next((f.get("ip") for f in floors[4:] if f["id"] == 0x09), None)
        found += 1
        view.mappings.append(
            {
                "source": source,
                "server_ip": server if ip in (None, "0.0.0.0") else ip,
                "transport": transport,
                "port": floors[3]["port"],
                "interface_uuid": floors[0]["uuid"],
                "interface_version": f"{floors[0]['major']}.{floors[0]['minor']}",
                "protocol": protocol,
                "annotation": tower["entry"].get("annotation") if opnum == 2 else None,
                "registered": True,
                "ts_ns": fr.ts_ns,
            }
        )
    status = pdu.int("epm.rc") or 0
    empty = (pdu.int("epm.num_towers") if opnum == 3 else pdu.int("epm.num_ents")) == 0
    if status != 0 or empty:
        request = view.epm_requests.get((conv, call_id))
        view.mappings.append(_negative(source, server, fr.ts_ns, request))
    elif found == 0 and opnum == 3:
        raise AssertionError(f"frame {fr.number}: an ept_map answer with towers but none on IP")


def _negative(source: str, server: str, ts_ns: int, request: Pdu | None) -> dict:
    transport = iface = None
    if request is not None and source == "epm.map":
        floors = next(iter(_towers(request)), {"floors": []})["floors"]
        if floors and floors[0]["id"] == 0x0D:
            iface = floors[0]["uuid"]
        if len(floors) > 3 and floors[3]["id"] in (0x07, 0x08):
            transport = TOWER_ENDPOINTS[floors[3]["id"]][0]
    elif request is not None and request.int("epm.inq_type") in (1, 3):
        iface = request.first("epm.if_id")
    return {
        "source": source,
        "server_ip": server,
        "transport": transport,
        "port": None,
        "interface_uuid": iface,
        "registered": False,
        "ts_ns": ts_ns,
    }


def _tls_messages(pdu: Pdu) -> list[dict]:
    """The handshake messages of a frame's TLS records, each with its record's version."""
    messages: list[dict] = []
    record: dict = {}
    for name, show, value in pdu.fields:
        if name == "tls.record.content_type":
            record = {"content_type": int(show)}
        elif name == "tls.record.version":
            record.setdefault("version", int(show, 16))
        elif name == "tls.handshake.type":
            messages.append({"type": int(show), "record_version": record.get("version"), "versions": []})
            messages[-1]["alpn"] = []
        elif not messages:
            continue
        elif name == "tls.handshake.version":
            messages[-1]["version"] = int(show, 16)
        elif name == "tls.handshake.random":
            messages[-1]["random"] = value
        elif name == "tls.handshake.ciphersuite":
            messages[-1].setdefault("cipher", int(show, 16))
        elif name == "tls.handshake.extensions.supported_version":
            messages[-1]["versions"].append(int(show, 16))
        elif name == "tls.handshake.extensions_server_name":
            messages[-1]["sni"] = show
        elif name == "tls.handshake.extensions_alpn_str":
            messages[-1]["alpn"].append(show)
    return messages


def _client_offset(fr: Frame) -> int:
    """Client bytes before the TLS records of a frame that completes a ClientHello: the records
    end where the segment does, so they start their total length (5-byte headers, 2 for an
    SSLv2-compatible hello) before tshark's next sequence number; relative sequence numbers
    start at 1."""
    total = 0
    for pdu in fr.pdus:
        if pdu.proto != "tls":
            continue
        version = None
        for name, show, _ in pdu.fields:
            if name == "tls.record.version":
                version = int(show, 16)
            elif name == "tls.record.length":
                total += int(show) + (2 if version == 0x0002 else 5)
    return fr.nxtseq - 1 - total


def _version_name(v: int | None) -> str | None:
    return None if v is None else TLS_VERSIONS.get(v, f"0x{v:04x}")


@functools.cache
def tshark_tls(path: Path) -> dict:
    """One row per TCP conversation with a ClientHello or ServerHello, keyed by conversation."""
    hellos: dict = defaultdict(lambda: {"client": [], "server": []})
    for fr in tshark_frames(path):
        for pdu in fr.pdus:
            if pdu.proto != "tls" or fr.transport != "tcp":
                continue
            for m in _tls_messages(pdu):
                m["ts_ns"] = fr.ts_ns  # the frame that completes the message
                m["offset"] = _client_offset(fr)
                if m["type"] == 1:
                    hellos[fr.key(True)]["client"].append(m)
                elif m["type"] == 2:
                    hellos[fr.key(False)]["server"].append(m)
    rows = {}
    for conv, h in hellos.items():
        ch = h["client"][0] if h["client"] else {}
        final = [m for m in h["server"] if m.get("random") != HRR_RANDOM] or h["server"] or [{}]
        sh = final[-1]
        offered = [v for v in ch.get("versions", []) if (v & 0x0F0F) != 0x0A0A]
        negotiated = sh.get("versions", [None])[0] if sh.get("versions") else sh.get("version")
        sslv2 = ch.get("record_version") == 0x0002
        rows[conv] = {
            "ts_ns": ch.get("ts_ns"),
            # The final ServerHello, the one after a HelloRetryRequest when there is one.
            "server_ts_ns": sh.get("ts_ns"),
            # tshark dissects an SSLv2-compatible ClientHello as an "SSLv2 Record Layer" whose
            # version it shows as 0x0002 (SSL 2.0); the contract names that record SSLv2.
            "sslv2": sslv2,
            # 0 for a connection that opens with TLS; the plaintext preamble's length after
            # STARTTLS and its kin.
            "client_offset": ch.get("offset", 0),
            "record_version": "SSLv2" if sslv2 else _version_name(ch.get("record_version")),
            "client_version": _version_name(ch.get("version")),
            "supported_versions": ",".join(_version_name(v) for v in offered) or None,
            "sni": ch.get("sni"),
            "alpn": ",".join(ch.get("alpn", [])) or None,
            "version": _version_name(negotiated),
            "cipher": sh.get("cipher"),
            "server_alpn": ",".join(sh.get("alpn", [])) or None,
            "hello_retry": any(m.get("random") == HRR_RANDOM for m in h["server"]),
        }
    return rows


# --- our side --------------------------------------------------------------------------------


@functools.cache
def decoded(path: Path) -> pw.Capture:
    return pw.decode(path)


def _with_conversation(cap: pw.Capture, table: pl.DataFrame) -> pl.DataFrame:
    """Rows of a table keyed by flow_id, with the conversation (transport, client ip and port,
    server ip and port), the client being the side the table says (the caller / ClientHello)."""
    flows = cap.flows.select(
        "flow_id",
        "transport",
        pl.col("client_ip").alias("_fc_ip"),
        pl.col("client_port").alias("_fc_port"),
        pl.col("server_port").alias("_fs_port"),
    )
    client_port = pl.when(pl.col("client_ip") == pl.col("_fc_ip")).then("_fc_port").otherwise("_fs_port")
    joined = table.join(flows, on="flow_id", how="left")
    return joined.with_columns(client_port.alias("client_port")).drop("_fc_ip", "_fc_port", "_fs_port")


# The columns that name a row's conversation rather than describe it.
CONVERSATION = {"flow_id", "transport", "client_ip", "client_port", "server_ip", "server_port"}


def _conv(r: dict) -> tuple:
    return (r["transport"], r["client_ip"], r["client_port"], r["server_ip"], r["server_port"])


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: repr(sorted(r.items(), key=lambda kv: kv[0])))


def our_calls(path: Path) -> dict:
    cap = decoded(path)
    table = cap.dcerpc_calls.drop("transport").with_columns(
        pl.col("ts").dt.epoch("ns").alias("ts_ns"), pl.col("reply_ts").dt.epoch("ns").alias("reply_ts_ns")
    )
    out: dict = defaultdict(list)
    for r in _with_conversation(cap, table).to_dicts():
        keys = REQUEST_KEYS if r["ptype"] == "request" else BIND_KEYS
        out[_conv(r)].append({k: r[k] for k in keys})
    return {conv: _sorted(rows) for conv, rows in out.items()}


def expected_calls(path: Path) -> dict:
    out = {}
    for conv, rows in tshark_dcerpc(path).calls.items():
        keys = [REQUEST_KEYS if r["ptype"] == "request" else BIND_KEYS for r in rows]
        out[conv] = _sorted([{k: r[k] for k in ks} for r, ks in zip(rows, keys, strict=True)])
    return out


def _mapping_rows(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    positive = _sorted([{k: r[k] for k in MAPPING_KEYS} for r in rows if r["registered"]])
    negative = _sorted([{k: r[k] for k in NEGATIVE_KEYS} for r in rows if not r["registered"]])
    return positive, negative


def our_mappings(path: Path) -> tuple[list[dict], list[dict]]:
    m = decoded(path).mappings.filter(
        pl.col("source").str.starts_with("epm.") | (pl.col("source") == "dcerpc.bind_ack")
    )
    rows = m.with_columns(pl.col("ts").dt.epoch("ns").alias("ts_ns")).to_dicts()
    for r in rows:
        r["server_ip"] = str(ipaddress.ip_address(r["server_ip"]))
    return _mapping_rows(rows)


# --- the tests -------------------------------------------------------------------------------


def _ids(p: Path) -> str:
    return p.name


@pytest.mark.parametrize("capture", CAPTURES, ids=_ids)
def test_dcerpc_calls_agree_with_tshark(capture):
    """Binds and alter_contexts (one row per context item: call id, context id, interface UUID and
    version, transfer syntaxes, the answer, its result, secondary address and reject reason) and
    requests (call id, context id, the interface its context was bound to or the CL header names,
    opnum, object UUID, reply, fault status, fragments), with the call's and reply's times, auth
    type and level and byte order, per conversation."""
    ours = our_calls(capture)
    theirs = expected_calls(capture)
    view = tshark_dcerpc(capture)
    # The contract's DCE/RPC flows: port 135, a port learned before the flow, or a client whose
    # first PDU is a bind/alter_context. Those must be decoded. tshark's heuristic also decodes
    # flows caught mid-stream (zeek-dce-rpc-mapi's flows to 1032 that started before the ept_map
    # naming 1032): the core may leave those alone, but what it decodes must agree in full.
    for conv, rows in theirs.items():
        if conv in ours or _must_decode(view, conv):
            assert ours.get(conv) == rows, f"{capture.name} {conv}"
    assert set(ours) <= set(theirs), f"{capture.name}: conversations tshark does not see as DCE/RPC"


def _must_decode(view: DceView, conv: tuple) -> bool:
    first = view.calls[conv][0]  # in capture order
    start = first["ts_ns"] or first["reply_ts_ns"]
    learned = any(
        (m["server_ip"], m["transport"], m["port"]) == (conv[3], conv[0], conv[4]) and m["ts_ns"] <= start
        for m in view.mappings
        if m["registered"]
    )
    return conv[4] == 135 or learned or first["ptype"] in ("bind", "alter_context")


@pytest.mark.parametrize("capture", CAPTURES, ids=_ids)
def test_endpoint_mapper_and_bind_ack_mappings_agree_with_tshark(capture):
    """Every IP tower of an ept_map/ept_lookup answer (server, transport, port, interface UUID and
    version, protocol sequence, annotation, time), the negative facts, and the accepted contexts of
    bind_acks whose secondary address is a port."""
    view = tshark_dcerpc(capture)
    ours = tuple(
        [
            r
            for r in rows
            if not (r["source"] == "epm.lookup" and (r["server_ip"], r["ts_ns"]) in view.ndr64_lookups)
        ]
        for rows in our_mappings(capture)
    )
    theirs = _mapping_rows(view.mappings)
    only_ours = [r for rows, other in zip(ours, theirs, strict=True) for r in rows if r not in other]
    only_theirs = [r for rows, other in zip(theirs, ours, strict=True) for r in rows if r not in other]
    assert ours == theirs, f"{capture.name}: ours only {only_ours}; tshark only {only_theirs}"


@pytest.mark.parametrize("capture", CAPTURES, ids=_ids)
def test_tls_handshakes_agree_with_tshark(capture):
    """Per TCP conversation whose ClientHello or ServerHello was seen: the first ClientHello's
    record version, legacy version, supported_versions (GREASE left out), SNI and ALPN; the final
    ServerHello's negotiated version, cipher suite and ALPN; whether a HelloRetryRequest came; and
    the flow's own `app`, `tls_sni` and `tls_version`."""
    cap = decoded(capture)
    table = cap.tls.with_columns(
        pl.col("ts").dt.epoch("ns").alias("ts_ns"), pl.col("server_ts").dt.epoch("ns").alias("server_ts_ns")
    ).drop("ts", "server_ts")
    ours = {}
    for r in _with_conversation(cap, table).to_dicts():
        ours[_conv(r)] = {k: v for k, v in r.items() if k not in CONVERSATION}
    assert ours == tshark_tls(capture)
    flows = {_conv(r): r for r in cap.flows.to_dicts()}
    for conv, row in ours.items():
        flow = flows[conv] if conv in flows else flows[(conv[0], conv[3], conv[4], conv[1], conv[2])]
        assert (flow["app"], flow["tls_sni"], flow["tls_version"]) == ("tls", row["sni"], row["version"])
        # TLS from the client's first byte, or after a plaintext preamble.
        assert flow["security"] == ("starttls" if row["client_offset"] else "tls"), conv


@pytest.mark.parametrize("capture", CAPTURES, ids=_ids)
def test_flow_interface_is_the_first_accepted_bind(capture):
    """A flow whose bind tshark shows carries app `dcerpc` and the interface of its first accepted
    context."""
    cap = decoded(capture)
    flows = {_conv(r): r for r in cap.flows.to_dicts()}
    for conv, rows in tshark_dcerpc(capture).calls.items():
        accepted = [
            r for r in rows if r["ptype"] in ("bind", "alter_context") and r["bind_result"] == "acceptance"
        ]
        if not accepted:
            continue
        flow = flows[conv]
        assert (flow["app"], flow["dcerpc_interface"]) == ("dcerpc", accepted[0]["interface_uuid"]), conv


def test_the_real_captures_are_not_vacuous(shared_captures):
    """What tshark shows in the real captures is what the comparisons above rest on."""
    msnrpc = tshark_dcerpc(shared_captures / "scapy-dcerpc_msnrpc.pcapng")
    facts = {(r["source"], r["port"], r["interface_version"]) for r in msnrpc.mappings}
    assert facts == {
        ("epm.map", 49676, "1.0"),
        ("epm.map", 49667, "1.0"),
        ("dcerpc.bind_ack", 49676, "1.0"),
        ("dcerpc.bind_ack", 135, "3.0"),
    }
    mapi = tshark_dcerpc(shared_captures / "zeek-dce-rpc-mapi.pcap")
    facts = {(r["source"], r["port"], r["interface_version"], r["protocol"]) for r in mapi.mappings}
    assert facts == {
        ("epm.map", 4997, "56.0", "ncacn_ip_tcp"),
        ("epm.map", 1032, "0.81", "ncacn_ip_tcp"),
        ("epm.lookup", 5000, "56.0", "ncacn_http"),
        ("dcerpc.bind_ack", 4997, "56.0", "ncacn_ip_tcp"),
        ("dcerpc.bind_ack", 1032, "0.81", "ncacn_ip_tcp"),
        ("dcerpc.bind_ack", 135, "3.0", "ncacn_ip_tcp"),
    }
    assert sum(len(rows) for rows in mapi.calls.values()) > 100
    ech = tshark_tls(shared_captures / "zeek-tls13-ech.pcap")
    assert [r["sni"] for r in ech.values()] == ["cloudflare-ech.com"] * 2
    lm = tshark_dcerpc(shared_captures / "real-networks" / "attack-LM_smbexec_smb_dcerpc_svcctl_epm.pcapng")
    assert {(r["source"], r["port"]) for r in lm.mappings} >= {("epm.map", 49683)}
    on_ndr64 = [r for rows in lm.calls.values() for r in rows if r["transfer_syntax"] == NDR64]
    assert {(r["ptype"], r["context_id"]) for r in on_ndr64} == {("bind", 1), ("request", 1)}
    smtp = tshark_tls(shared_captures / "real-networks" / "sv-smtp-startssl.pcap")
    assert [r["client_offset"] for r in smtp.values()] == [31]
    hrr = tshark_tls(shared_captures / "rusticata-err-buffertoosmall.pcapng")
    assert [(r["version"], r["cipher"], r["hello_retry"]) for r in hrr.values()] == [
        ("TLSv1.3", 0x1302, True)
    ]


@pytest.mark.parametrize("capture", DCERPC_FIXTURES, ids=_ids)
def test_dcerpc_fixtures_are_not_vacuous(capture):
    assert tshark_dcerpc(capture).calls, f"tshark sees no DCE/RPC in {capture.name}"


@pytest.mark.parametrize("capture", TLS_FIXTURES, ids=_ids)
def test_tls_fixtures_are_not_vacuous(capture):
    assert tshark_tls(capture), f"tshark sees no TLS handshake in {capture.name}"
