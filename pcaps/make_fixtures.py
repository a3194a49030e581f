#!/usr/bin/env python3
"""Generate the portwitness capture fixtures and their expected results.

Run from anywhere:  python pcaps/make_fixtures.py

Everything is deterministic: fixed addresses, fixed timestamps starting at
2026-03-01T02:00:00Z, fixed sequence numbers / IP ids, seeded RNGs for the
interleaving of ``sample.pcap`` and the bytes of ``rpc_garbage_111.pcap``,
gzip mtime=0.  Re-running rewrites
byte-identical files.

Packets (Ethernet, VLAN tags, IPv4/IPv6, extension headers, TCP, UDP, ICMP,
ARP, fragmentation) are built with scapy; the capture containers (pcap in
both byte orders and resolutions, pcapng blocks in both byte orders, the
small non-Ethernet link headers) are written with ``struct``.

The expected flows (``<capture file name>.flows.json``) are an independent
oracle: every packet is registered together with a ``Meta`` record that
states what was planted (addresses, ports, TCP flags, transport payload
length, VLAN id).  The flow table is computed from those records and the
recorded frame lengths only; no capture decoder (scapy's or ours) ever reads
the produced bytes back.

The ONC RPC fixtures (``RPC_FIXTURES``) and the portmapper and Arcserve
conversations of ``sample.pcap`` carry RPC messages written here with
``struct`` (XDR, TCP record marking).  Their two further oracles,
``<file>.rpc_calls.json`` and ``<file>.mappings.json``, are kept by ``RpcLog``
from the values planted in each call and reply, in the same way.

The DCE/RPC, endpoint mapper and TLS fixtures (``APP_FIXTURES``) and the
endpoint mapper, tape engine and management conversations of ``sample.pcap``
are built with scapy's DCE/RPC, MS-RPCE and TLS layers.  ``DceLog`` keeps
``<file>.dcerpc_calls.json`` and the DCE/RPC rows of ``<file>.mappings.json``,
``TlsLog`` keeps ``<file>.tls.json``; each message tells the flow oracle what
it planted (``Meta.facts``: protocol, interface, SNI, negotiated version).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import accumulate, pairwise
from pathlib import Path
from uuid import UUID

import zstandard
from scapy.layers.dcerpc import (
    CommonAuthVerifier,
    DceRpc4,
    DceRpc5,
    DceRpc5AbstractSyntax,
    DceRpc5AlterContext,
    DceRpc5AlterContextResp,
    DceRpc5Bind,
    DceRpc5BindAck,
    DceRpc5BindNak,
    DceRpc5Context,
    DceRpc5Fault,
    DceRpc5PortAny,
    DceRpc5Request,
    DceRpc5Response,
    DceRpc5Result,
    DceRpc5TransferSyntax,
    DceRpc5Version,
    NDRConformantArray,
    NDRContextHandle,
    NDRPointer,
    NDRVaryingArray,
)
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR, fragment
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    PadN,
    RouterAlert,
    fragment6,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.layers.msrpce.ept import prot_and_addr_t, protocol_tower_t
from scapy.layers.msrpce.raw import ept as ndr_ept
from scapy.layers.ntlm import NTLMSSP_MESSAGE_SIGNATURE
from scapy.layers.tls.extensions import (
    ProtocolName,
    ServerName,
    TLS_Ext_ALPN,
    TLS_Ext_RenegotiationInfo,
    TLS_Ext_ServerName,
    TLS_Ext_SignatureAlgorithms,
    TLS_Ext_SupportedGroups,
    TLS_Ext_SupportedVersion_CH,
    TLS_Ext_SupportedVersion_SH,
)
from scapy.layers.tls.handshake import (
    TLS13ServerHello,
    TLSClientHello,
    TLSClientKeyExchange,
    TLSServerHello,
    TLSServerHelloDone,
)
from scapy.layers.tls.handshake_sslv2 import SSLv2ClientHello
from scapy.layers.tls.keyexchange import ClientECDiffieHellmanPublic
from scapy.layers.tls.keyexchange_tls13 import KeyShareEntry, TLS_Ext_KeyShare_CH, TLS_Ext_KeyShare_SH
from scapy.layers.tls.record import TLS, TLSApplicationData, TLSChangeCipherSpec
from scapy.layers.tls.record_sslv2 import SSLv2
from scapy.packet import Raw

HERE = Path(__file__).resolve().parent
BROKEN = HERE / "broken"

BASE_NS = 1772330400 * 1_000_000_000  # 2026-03-01T02:00:00Z
WELL_KNOWN = {111, 135, 2049, 53, 514, 443, 7099, 2099}
SNAPLEN = 262144

# Small deterministic cycle of inter-packet gaps, in microseconds ("a few ms").
STEPS_US = [1270, 2315, 980, 3140, 1875, 2590, 1430, 4025, 760, 2205]

LINKTYPE_ETHERNET = 1
LINKTYPE_NULL = 0
LINKTYPE_RAW_12 = 12
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_USER0 = 147
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276


# --------------------------------------------------------------------------
# Planted-packet model
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    """What the generator planted in one frame (the oracle's only input)."""

    transport: str  # "tcp" | "udp"
    src: str
    sport: int
    dst: str
    dport: int
    flags: str = ""  # TCP flags as scapy letters, e.g. "S", "SA", "PA", "FA", "R"
    payload: int = 0  # transport payload bytes carried (counted once per datagram)
    vlan: int | None = None  # innermost VLAN id
    encap: str | None = None  # the encapsulation that carried the packet (innermost)
    tunnel_id: int | None = None  # its tenant: VXLAN/Geneve VNI, GRE key
    # What the payload tells the flow oracle, as (column, value) pairs: ("app", "dcerpc"),
    # ("dcerpc_interface", uuid), ("tls_sni", name), ("tls_version", name).
    facts: tuple[tuple[str, str], ...] = ()


@dataclass
class Frame:
    ts_ns: int
    data: bytes  # captured bytes (including link-layer header)
    orig_len: int  # length on the wire
    meta: Meta | None  # None: not part of any flow (ARP, ICMP, unknown link type)
    ifid: int = 0
    block: str = "epb"  # pcapng only: "epb" | "spb" | "opb"
    kind: str = "flow"  # "flow" | "arp" | "icmp" | "icmpv6" | "unknown_linktype"


def mac_for(ip: str) -> str:
    """Deterministic locally administered MAC derived from an IP address."""
    if ":" in ip:
        import ipaddress

        tail = ipaddress.IPv6Address(ip).packed[-4:]
    else:
        tail = bytes(int(x) for x in ip.split("."))
    return "02:00:" + ":".join(f"{b:02x}" for b in tail)


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def blob(n: int, tag: str) -> bytes:
    """Deterministic printable payload of n bytes."""
    if n <= 0:
        return b""
    seed = (tag + "|").encode()
    return (seed * (n // len(seed) + 1))[:n]


def noise(n: int, tag: str) -> bytes:
    """Deterministic pseudo-random bytes (keys, randoms, encrypted data)."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{tag}|{i}".encode()).digest()
        i += 1
    return out[:n]


# --------------------------------------------------------------------------
# Link layers
# --------------------------------------------------------------------------

ETH = ("eth", ())


def eth_vlan(*tags):
    """tags: outer..inner tuples ("ad"|"q", vid)."""
    return ("eth", tuple(tags))


def link_frame(link, l3, src: str, dst: str, capture_host: str | None = None) -> bytes:
    """Wrap an L3 scapy packet into link-layer bytes."""
    v6 = ":" in src
    kind = link[0]
    if kind == "eth":
        p = Ether(src=mac_for(src), dst=mac_for(dst))
        for tkind, vid in link[1]:
            p = p / (Dot1AD(vlan=vid) if tkind == "ad" else Dot1Q(vlan=vid))
        raw = bytes(p / l3)
        minimum = 60 + 4 * len(link[1])  # receivers see padded minimum-size frames
        if len(raw) < minimum:
            raw += b"\x00" * (minimum - len(raw))
        return raw
    l3b = bytes(l3)
    proto = 0x86DD if v6 else 0x0800
    outgoing = capture_host is not None and src == capture_host
    if kind == "raw":
        return l3b
    if kind == "sll":  # Linux cooked v1, 16 bytes, always big-endian
        pkttype = 4 if outgoing else 0
        addr = mac_bytes(mac_for(src)) + b"\x00\x00"
        return struct.pack(">HHH8sH", pkttype, 1, 6, addr, proto) + l3b
    if kind == "sll2":  # Linux cooked v2, 20 bytes, always big-endian
        pkttype = 4 if outgoing else 0
        addr = mac_bytes(mac_for(src)) + b"\x00\x00"
        return struct.pack(">HHIHBB8s", proto, 0, link[1], 1, pkttype, 6, addr) + l3b
    if kind == "null":  # BSD loopback, AF in (little-endian) host byte order
        return struct.pack("<I", 30 if v6 else 2) + l3b
    if kind == "loop":  # OpenBSD loopback, AF in network byte order
        return struct.pack(">I", 24 if v6 else 2) + l3b
    if kind == "tun":
        return link[1].frame(l3b, src, dst, v6)
    raise ValueError(link)


# --------------------------------------------------------------------------
# Capture builder
# --------------------------------------------------------------------------


class Capture:
    def __init__(self, link=ETH, steps_us=None, quantum_ns=None, capture_host=None):
        self.frames: list[Frame] = []
        self.link = link
        self.t = BASE_NS
        self._first = True
        self._steps = list(steps_us or STEPS_US)
        self._si = 0
        self.quantum_ns = quantum_ns or {}  # ifid -> timestamp quantum
        self.capture_host = capture_host
        self._ipid: dict[str, int] = {}

    # time ---------------------------------------------------------------
    def tick(self, step_us: int | None = None, ifid: int = 0) -> int:
        if self._first:
            self._first = False
        else:
            if step_us is None:
                step_us = self._steps[self._si % len(self._steps)]
                self._si += 1
            self.t += step_us * 1000
        q = self.quantum_ns.get(ifid, 1000)
        if self.t % q:
            self.t += q - self.t % q
        return self.t

    def ipid(self, src: str) -> int:
        if src not in self._ipid:
            self._ipid[src] = (0x1000 + 0x100 * len(self._ipid)) & 0xFFFF
        self._ipid[src] = (self._ipid[src] + 1) & 0xFFFF
        return self._ipid[src]

    # adding ---------------------------------------------------------------
    def add_l3(
        self,
        l3,
        src,
        dst,
        meta,
        *,
        link=None,
        step=None,
        ifid=0,
        block="epb",
        kind="flow",
        capture_host=None,
    ):
        link = link or self.link
        data = link_frame(link, l3, src, dst, capture_host or self.capture_host)
        if meta is not None and link[0] == "eth" and link[1]:
            meta = Meta(**{**meta.__dict__, "vlan": link[1][-1][1]})
        if meta is not None and link[0] == "tun":
            t = link[1]
            meta = replace(meta, vlan=t.flow_vlan(), encap=t.encap, tunnel_id=t.tenant)
        ts = self.tick(step, ifid)
        self.frames.append(Frame(ts, data, len(data), meta, ifid, block, kind))
        return data

    def add_bytes(self, data, *, step=None, ifid=0, block="epb", kind="arp"):
        ts = self.tick(step, ifid)
        self.frames.append(Frame(ts, data, len(data), None, ifid, block, kind))

    def ip(self, src, dst, l4, ipopts=None, ext6=None):
        if ":" in src:
            p = IPv6(src=src, dst=dst, hlim=64)
            if ext6 is not None:
                for h in ext6():
                    p = p / h
            return p / l4
        if ipopts is not None:
            return (
                IP(
                    src=src,
                    dst=dst,
                    id=self.ipid(src),
                    ttl=64,
                    flags="DF",
                    options=ipopts,
                )
                / l4
            )
        return IP(src=src, dst=dst, id=self.ipid(src), ttl=64, flags="DF") / l4

    def udp(self, src, sport, dst, dport, payload: bytes, facts=(), **kw):
        l3 = self.ip(src, dst, UDP(sport=sport, dport=dport) / Raw(payload))
        meta = Meta("udp", src, sport, dst, dport, "", len(payload), facts=facts)
        return self.add_l3(l3, src, dst, meta, **kw)

    def arp(self, src, dst, **kw):
        p = Ether(src=mac_for(src), dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=mac_for(src), psrc=src, hwdst="00:00:00:00:00:00", pdst=dst
        )
        raw = bytes(p)
        raw += b"\x00" * (60 - len(raw))
        self.add_bytes(raw, kind="arp", **kw)

    def ping(self, src, dst, ident, seq, **kw):
        data = blob(32, "portwitness-ping")
        for a, b, typ in ((src, dst, 8), (dst, src, 0)):
            l3 = IP(src=a, dst=b, id=self.ipid(a), ttl=64) / ICMP(type=typ, id=ident, seq=seq) / Raw(data)
            self.add_l3(l3, a, b, None, kind="icmp", **kw)

    def ping6(self, src, dst, ident, seq, **kw):
        data = blob(24, "portwitness-ping6")
        l3 = IPv6(src=src, dst=dst, hlim=64) / ICMPv6EchoRequest(id=ident, seq=seq, data=data)
        self.add_l3(l3, src, dst, None, kind="icmpv6", **kw)
        l3 = IPv6(src=dst, dst=src, hlim=64) / ICMPv6EchoReply(id=ident, seq=seq, data=data)
        self.add_l3(l3, dst, src, None, kind="icmpv6", **kw)


class Tcp:
    """One TCP connection; tracks sequence numbers so the packets are sane."""

    def __init__(
        self,
        cap: Capture,
        c: str,
        cport: int,
        s: str,
        sport: int,
        isn_c: int = 1000,
        isn_s: int = 5000,
        link=None,
        ext6=None,
    ):
        self.cap, self.c, self.s = cap, (c, cport), (s, sport)
        self.isn = {True: isn_c, False: isn_s}
        self.nxt = dict(self.isn)
        self.link, self.ext6 = link, ext6

    def send(
        self,
        from_client: bool,
        flags: str,
        data: bytes = b"",
        *,
        seq=None,
        ack_no=None,
        ipopts=None,
        facts=(),
        **kw,
    ):
        (src, sport), (dst, dport) = (self.c, self.s) if from_client else (self.s, self.c)
        advance = seq is None
        if seq is None:
            seq = self.nxt[from_client]
        if ack_no is None:
            ack_no = self.nxt[not from_client]
        ack = ack_no if "A" in flags else 0
        opts = []
        if "S" in flags:
            opts = [
                ("MSS", 1460 if ":" not in src else 1440),
                ("SAckOK", b""),
                ("NOP", None),
                ("WScale", 7),
            ]
        seg = TCP(
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            window=64240 if from_client else 65160,
            options=opts,
        )
        if data:
            seg = seg / Raw(data)
        if advance:
            self.nxt[from_client] = (seq + len(data) + ("S" in flags) + ("F" in flags)) & 0xFFFFFFFF
        l3 = self.cap.ip(src, dst, seg, ipopts=ipopts, ext6=self.ext6)
        meta = Meta("tcp", src, sport, dst, dport, flags, len(data), facts=facts)
        if self.link is not None and "link" not in kw:
            kw["link"] = self.link
        return self.cap.add_l3(l3, src, dst, meta, **kw)

    # canned sequences -------------------------------------------------------
    def handshake(self):
        return [
            lambda: self.send(True, "S"),
            lambda: self.send(False, "SA"),
            lambda: self.send(True, "A"),
        ]

    def exchange(self, req: int, resp: int, tag: str):
        return [
            lambda: self.send(True, "PA", blob(req, tag + "-req")),
            lambda: self.send(False, "PA", blob(resp, tag + "-resp")),
            lambda: self.send(True, "A"),
        ]

    def close(self):
        return [
            lambda: self.send(True, "FA"),
            lambda: self.send(False, "FA"),
            lambda: self.send(True, "A"),
        ]


def run(actions):
    for a in actions:
        a()


# --------------------------------------------------------------------------
# Oracle
# --------------------------------------------------------------------------


def _qualifies(port: int) -> bool:
    return port < 1024 or port in WELL_KNOWN


FACT_COLUMNS = ("app", "dcerpc_interface", "tls_version", "tls_sni")


def flow_facts(transport: str, client, pkts) -> dict:
    """The application columns of a flow: each fact column takes the first value planted in
    the flow's packets; ``security`` (TCP only) says whether the client's first payload is a
    TLS record (or an SSLv2-compatible hello): ``tls``; any other payload followed later by a
    ClientHello from the client (STARTTLS and its kin): ``starttls``; else ``plaintext``; no
    client payload: null."""
    out: dict = dict.fromkeys(FACT_COLUMNS)
    for _, m in pkts:
        for column, value in m.facts:
            if column in out and out[column] is None:
                out[column] = value
    first = next((m for _, m in pkts if m.payload and (m.src, m.sport) == client), None)
    upgraded = any(("starttls", "client_hello") in m.facts for _, m in pkts if (m.src, m.sport) == client)
    if transport == "tcp" and first is not None:
        out["security"] = "tls" if ("app", "tls") in first.facts else "starttls" if upgraded else "plaintext"
    else:
        out["security"] = None
    return out


def expected_flows(frames: list[Frame], first_ts_out: list | None = None) -> list[dict]:
    groups: dict[tuple, list[tuple[Frame, Meta]]] = {}
    for fr in frames:
        m = fr.meta
        if m is None:
            continue
        # A tenant id of 0 is no tenant (portwitness's flow key).
        key = (m.transport, m.vlan, m.tunnel_id or None, frozenset([(m.src, m.sport), (m.dst, m.dport)]))
        groups.setdefault(key, []).append((fr, m))

    out = []
    for (transport, vlan, _, _), pkts in groups.items():
        first_fr, first_m = pkts[0]
        a, b = (first_m.src, first_m.sport), (first_m.dst, first_m.dport)
        client = None
        orientation = None
        if transport == "tcp":
            for _, m in pkts:
                if "S" in m.flags and "A" not in m.flags:
                    client, orientation = (m.src, m.sport), "syn"
                    break
        if client is None:
            qa, qb = _qualifies(a[1]), _qualifies(b[1])
            if qa != qb:
                client, orientation = (b if qa else a), "well_known"
            else:
                client, orientation = a, "first_packet"
        server = b if client == a else a

        acc = {
            k: 0
            for k in (
                "packets_c2s",
                "packets_s2c",
                "bytes_c2s",
                "bytes_s2c",
                "payload_c2s",
                "payload_s2c",
            )
        }
        syn = synack = fin = rst = False
        for fr, m in pkts:
            d = "c2s" if (m.src, m.sport) == client else "s2c"
            acc["packets_" + d] += 1
            acc["bytes_" + d] += fr.orig_len
            acc["payload_" + d] += m.payload
            if transport == "tcp":
                if "S" in m.flags and "A" not in m.flags and d == "c2s":
                    syn = True
                if "S" in m.flags and "A" in m.flags and d == "s2c":
                    synack = True
                fin |= "F" in m.flags
                rst |= "R" in m.flags
        if transport == "tcp":
            if not syn:
                outcome = "midstream"
            elif synack:
                outcome = "reset" if rst else ("completed" if fin else "open")
            else:
                outcome = "refused" if rst else "unanswered"
        else:
            both = acc["packets_c2s"] > 0 and acc["packets_s2c"] > 0
            outcome = "completed" if both else "unanswered"

        out.append(
            (
                first_fr.ts_ns,
                client[1],
                {
                    "transport": transport,
                    "client_ip": client[0],
                    "client_port": client[1],
                    "server_ip": server[0],
                    "server_port": server[1],
                    **acc,
                    "vlan": vlan,
                    # Only where a tunnel carried the flow: the other fixtures' files stay as they were.
                    **(
                        {"encap": first_m.encap, "tunnel_id": first_m.tunnel_id}
                        if first_m.encap is not None
                        else {}
                    ),
                    "outcome": outcome,
                    "orientation": orientation,
                    **flow_facts(transport, client, pkts),
                },
            )
        )
    out.sort(key=lambda x: (x[0], x[1]))
    firsts = [x[0] for x in out]
    assert len(set(firsts)) == len(firsts), "flows must have distinct first timestamps"
    if first_ts_out is not None:
        first_ts_out.extend(firsts)
    return [x[2] for x in out]


# --------------------------------------------------------------------------
# Container writers
# --------------------------------------------------------------------------


def pcap_header(endian: str, nano: bool, snaplen: int, linktype: int, magic=None) -> bytes:
    if magic is None:
        magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    return struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(
    endian: str,
    nano: bool,
    ts_ns: int,
    data: bytes,
    orig_len: int,
    incl_len: int | None = None,
) -> bytes:
    sec, rem = divmod(ts_ns, 1_000_000_000)
    if nano:
        frac = rem
    else:
        assert rem % 1000 == 0, "microsecond pcap needs microsecond timestamps"
        frac = rem // 1000
    incl = len(data) if incl_len is None else incl_len
    return struct.pack(endian + "IIII", sec, frac, incl, orig_len) + data


def write_pcap(frames, linktype, endian="<", nano=False, snaplen=SNAPLEN) -> bytes:
    out = [pcap_header(endian, nano, snaplen, linktype)]
    for fr in frames:
        out.append(pcap_record(endian, nano, fr.ts_ns, fr.data, fr.orig_len))
    return b"".join(out)


def _pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def ng_options(e: str, opts) -> bytes:
    if not opts:
        return b""
    out = b""
    for code, value in opts:
        out += struct.pack(e + "HH", code, len(value)) + _pad4(value)
    return out + struct.pack(e + "HH", 0, 0)


def ng_block(e: str, btype: int, body: bytes) -> bytes:
    body = _pad4(body)
    total = 12 + len(body)
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


def ng_shb(e: str, section_len: int, opts=()) -> bytes:
    body = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, section_len) + ng_options(e, list(opts))
    return ng_block(e, 0x0A0D0D0A, body)


def ng_idb(e: str, linktype: int, name: str, tsresol: int | None = None, snaplen=SNAPLEN) -> bytes:
    opts = [(2, name.encode())]
    if tsresol is not None:
        opts.append((9, bytes([tsresol])))
    return ng_block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + ng_options(e, opts))


def units_per_sec(tsresol: int | None) -> int:
    if tsresol is None:
        return 1_000_000
    return (2 ** (tsresol & 0x7F)) if tsresol & 0x80 else 10**tsresol


def ts_units(ts_ns: int, tsresol: int | None) -> int:
    ups = units_per_sec(tsresol)
    assert (ts_ns * ups) % 1_000_000_000 == 0, (ts_ns, tsresol)
    return ts_ns * ups // 1_000_000_000


def ng_packet(e: str, fr: Frame, tsresol: int | None, opts=()) -> bytes:
    if fr.block == "spb":
        return ng_block(e, 3, struct.pack(e + "I", fr.orig_len) + _pad4(fr.data))
    u = ts_units(fr.ts_ns, tsresol)
    hi, lo = u >> 32, u & 0xFFFFFFFF
    if fr.block == "opb":
        head = struct.pack(e + "HHIIII", fr.ifid, 0, hi, lo, len(fr.data), fr.orig_len)
        return ng_block(e, 2, head + _pad4(fr.data) + ng_options(e, list(opts)))
    head = struct.pack(e + "IIIII", fr.ifid, hi, lo, len(fr.data), fr.orig_len)
    return ng_block(e, 6, head + _pad4(fr.data) + ng_options(e, list(opts)))


def ng_nrb(e: str, v4=(), v6=()) -> bytes:
    import ipaddress

    body = b""
    for ip, name in v4:
        val = ipaddress.IPv4Address(ip).packed + name.encode() + b"\x00"
        body += struct.pack(e + "HH", 1, len(val)) + _pad4(val)
    for ip, name in v6:
        val = ipaddress.IPv6Address(ip).packed + name.encode() + b"\x00"
        body += struct.pack(e + "HH", 2, len(val)) + _pad4(val)
    body += struct.pack(e + "HH", 0, 0)
    return ng_block(e, 4, body)


def ng_isb(e: str, ifid: int, ts_us: int, start_us: int, end_us: int, recv: int, drop: int) -> bytes:
    def split(u):
        return struct.pack(e + "II", u >> 32, u & 0xFFFFFFFF)

    opts = [
        (2, split(start_us)),
        (3, split(end_us)),
        (4, struct.pack(e + "Q", recv)),
        (5, struct.pack(e + "Q", drop)),
    ]
    return ng_block(e, 5, struct.pack(e + "I", ifid) + split(ts_us) + ng_options(e, opts))


def ng_custom(e: str, pen: int, data: bytes) -> bytes:
    return ng_block(e, 0x00000BAD, struct.pack(e + "I", pen) + data)


SHB_OPTS = [(4, b"portwitness pcaps/make_fixtures.py")]


def simple_pcapng(frames, linktype=LINKTYPE_ETHERNET, e="<", tsresol=None) -> bytes:
    body = ng_idb(e, linktype, "eth0", tsresol) + b"".join(ng_packet(e, f, tsresol) for f in frames)
    return ng_shb(e, -1, SHB_OPTS) + body


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


def build_tcp_basic() -> Capture:
    cap = Capture()
    A, B, C, S9 = "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9"
    cap.arp(A, B)
    # full session A:40000 -> B:111
    t = Tcp(cap, A, 40000, B, 111, isn_c=0x1A2B0000, isn_s=0x5C6D0000)
    run(t.handshake() + t.exchange(64, 28, "pmap") + t.close())
    # UDP exchange A:700 -> B:111 (both ports < 1024: first_packet orientation)
    cap.udp(A, 700, B, 111, blob(56, "getport-call"))
    cap.udp(B, 111, A, 700, blob(28, "getport-reply"))
    cap.ping(A, B, 0x1D2C, 1)
    # refused A:40002 -> B:6502
    r = Tcp(cap, A, 40002, B, 6502, isn_c=0x22220000)
    r.send(True, "S")
    r.send(False, "RA", seq=0)
    # unanswered A:40003 -> B:7099, SYN sent 3 times; interleaved with the reset session
    u = Tcp(cap, A, 40003, B, 7099, isn_c=0x33330000)
    x = Tcp(cap, C, 40001, B, 2099, isn_c=0x44440000, isn_s=0x55550000)
    u.send(True, "S")
    x.send(True, "S")
    x.send(False, "SA")
    u.send(True, "S", seq=0x33330000)
    x.send(True, "A")
    x.send(True, "PA", blob(40, "reset-req"))
    x.send(False, "PA", blob(12, "reset-resp"))
    u.send(True, "S", seq=0x33330000)
    x.send(True, "R")
    # one-way syslog datagram; last record (cut by broken/truncated_last_record.pcap)
    cap.udp(A, 5000, S9, 514, blob(60, "<13>Mar  1 02:00:00 host1 portwitness: hello"))
    return cap


def build_vlan_qinq() -> Capture:
    cap = Capture()
    t = Tcp(
        cap,
        "10.100.0.1",
        41000,
        "10.100.0.2",
        2099,
        link=eth_vlan(("q", 100)),
        isn_c=0x01000000,
        isn_s=0x02000000,
    )
    run(t.handshake() + t.exchange(48, 96, "vlan100") + t.close())
    qinq = eth_vlan(("ad", 200), ("q", 300))
    cap.udp("10.30.0.1", 42000, "10.30.0.2", 111, blob(56, "qinq-call"), link=qinq)
    cap.udp("10.30.0.2", 111, "10.30.0.1", 42000, blob(28, "qinq-reply"), link=qinq)
    return cap


def _ext6():
    return [
        IPv6ExtHdrHopByHop(options=[RouterAlert()]),
        IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00\x00\x00\x00")]),
    ]


def build_ipv6_ext() -> Capture:
    cap = Capture()
    A, B = "2001:db8::1", "2001:db8::2"
    t = Tcp(cap, A, 50443, B, 443, isn_c=0x60000000, isn_s=0x70000000, ext6=_ext6)
    run(t.handshake() + t.exchange(120, 300, "tls-ish") + t.close())
    # 3000-byte UDP datagram, fragmented to an MTU of 1280
    payload = blob(3000, "dns-over-big-udp")
    dgram = (
        IPv6(src=A, dst=B, hlim=64)
        / IPv6ExtHdrFragment(id=0x00C0FFEE)
        / UDP(sport=5353, dport=53)
        / Raw(payload)
    )
    for i, frag in enumerate(fragment6(dgram, 1280)):
        meta = Meta("udp", A, 5353, B, 53, "", len(payload) if i == 0 else 0)
        cap.add_l3(frag, A, B, meta)
    cap.udp(B, 53, A, 5353, blob(90, "dns-reply"))
    cap.ping6(A, B, 0x0606, 1)
    return cap


def build_ipv4_frag() -> Capture:
    cap = Capture()
    A, B = "10.1.0.1", "10.1.0.2"
    payload = blob(4000, "nfs-write")
    dgram = IP(src=A, dst=B, id=0x4242, ttl=64) / UDP(sport=2049, dport=2049) / Raw(payload)
    frags = fragment(dgram, fragsize=1480)
    assert len(frags) == 3
    for i in (2, 0, 1):  # out of order: last, first, middle
        meta = Meta("udp", A, 2049, B, 2049, "", len(payload) if i == 0 else 0)
        cap.add_l3(frags[i], A, B, meta)
    cap.udp(B, 2049, A, 2049, blob(100, "nfs-write-reply"))
    # SYN carrying IPv4 options (Record Route), answered with SYN/ACK, then ACK
    t = Tcp(cap, "10.1.0.3", 40135, B, 135, isn_c=0x13500000, isn_s=0x13600000)
    t.send(True, "S", ipopts=[IPOption_RR(routers=["0.0.0.0"] * 4)])
    t.send(False, "SA")
    t.send(True, "A")
    return cap


def build_multi_section():
    """Returns (bytes, frames) for multi_section_be.pcapng."""
    # Section 1 (little-endian, one Ethernet IDB, default resolution 1 us)
    c1 = Capture()
    A, B = "192.168.1.10", "192.168.1.20"
    t = Tcp(c1, A, 50010, B, 2099, isn_c=0x0A000000, isn_s=0x0B000000)
    run(t.handshake()[:2])
    t.send(True, "A", block="spb")
    run(t.exchange(32, 64, "sec1"))
    run(t.close())
    f1 = c1.frames
    e = "<"
    blocks = [ng_idb(e, LINKTYPE_ETHERNET, "eth0")]
    for i, fr in enumerate(f1):
        opts = [(1, b"first packet of section 1")] if i == 0 else ()
        blocks.append(ng_packet(e, fr, None, opts))
        if i == 2:
            blocks.append(ng_nrb(e, v4=[(B, "srv-a.example")], v6=[("2001:db8::2", "srv6.example")]))
        if i == 3:
            blocks.append(ng_custom(e, 32473, b"portwitness: custom block, skip me"))
    last_us = f1[-1].ts_ns // 1000
    blocks.append(ng_isb(e, 0, last_us + 1000, f1[0].ts_ns // 1000, last_us, len(f1), 0))
    rest = b"".join(blocks)
    sec1 = ng_shb(e, len(rest), SHB_OPTS) + rest

    # Section 2 (big-endian): if0 raw IP with 2^-9 s resolution, if1 Linux SLL (1 us)
    RES0 = 0x89
    c2 = Capture(quantum_ns={0: 1_000_000_000 // 512, 1: 1000}, capture_host="192.168.2.10")
    c2.t = f1[-1].ts_ns + 50_000_000
    c2._first = True
    A2, B2, C2 = "192.168.2.10", "192.168.2.20", "192.168.2.30"
    raw0 = {"link": ("raw",), "ifid": 0}
    sll1 = {"link": ("sll",), "ifid": 1}
    t = Tcp(c2, A2, 50020, B2, 111, isn_c=0x0C000000, isn_s=0x0D000000)
    t.send(True, "S", **raw0)
    t.send(False, "SA", **sll1)
    t.send(True, "A", **raw0)
    t.send(True, "PA", blob(44, "sec2-call"), block="opb", **raw0)
    t.send(False, "PA", blob(24, "sec2-reply"), **sll1)
    t.send(True, "FA", **sll1)
    t.send(False, "FA", **sll1)
    t.send(True, "A", **raw0)
    c2.udp(A2, 50021, C2, 2049, blob(72, "sec2-nfs-call"), **sll1)
    c2.udp(C2, 2049, A2, 50021, blob(36, "sec2-nfs-reply"), **raw0)
    e = ">"
    blocks = [
        ng_idb(e, LINKTYPE_RAW, "rawip0", RES0),
        ng_idb(e, LINKTYPE_LINUX_SLL, "any"),
    ]
    for fr in c2.frames:
        blocks.append(ng_packet(e, fr, RES0 if fr.ifid == 0 else None))
    sec2 = ng_shb(e, -1, SHB_OPTS) + b"".join(blocks)
    return sec1 + sec2, f1 + c2.frames


LT_IFACES = [  # (linktype, name)
    (LINKTYPE_LINUX_SLL2, "sll2"),
    (LINKTYPE_NULL, "lo0-null"),
    (LINKTYPE_LOOP, "lo0-loop"),
    (LINKTYPE_IPV4, "ipv4"),
    (LINKTYPE_IPV6, "ipv6"),
    (LINKTYPE_RAW_12, "raw12"),
    (LINKTYPE_USER0, "user0"),
]


def build_linktypes():
    cap = Capture(capture_host="172.16.1.1")
    # if0 SLL2: TCP session
    t = Tcp(
        cap,
        "172.16.1.1",
        41001,
        "172.16.1.2",
        7099,
        isn_c=0x27600000,
        isn_s=0x27700000,
        link=("sll2", 2),
    )
    run(t.handshake() + t.exchange(20, 40, "sll2") + t.close())
    # if1 BSD NULL: IPv4 (AF 2) and IPv6 (AF 30) exchanges
    for a, b, sp in (
        ("172.16.2.1", "172.16.2.2", 42002),
        ("fd00:2::1", "fd00:2::2", 42003),
    ):
        cap.udp(a, sp, b, 53, blob(33, "null-q"), link=("null",), ifid=1)
        cap.udp(b, 53, a, sp, blob(49, "null-a"), link=("null",), ifid=1)
    # if2 LOOP (AF big-endian)
    cap.udp(
        "172.16.3.1",
        42004,
        "172.16.3.2",
        111,
        blob(40, "loop-call"),
        link=("loop",),
        ifid=2,
    )
    cap.udp(
        "172.16.3.2",
        111,
        "172.16.3.1",
        42004,
        blob(24, "loop-reply"),
        link=("loop",),
        ifid=2,
    )
    # if6 user link type 147: one opaque packet, must not become a flow
    cap.add_bytes(b"USR0" + blob(60, "opaque-user-dlt"), ifid=6, kind="unknown_linktype")
    # if3 raw IPv4 (228)
    cap.udp(
        "172.16.4.1",
        42005,
        "172.16.4.2",
        2049,
        blob(64, "ipv4-call"),
        link=("raw",),
        ifid=3,
    )
    cap.udp(
        "172.16.4.2",
        2049,
        "172.16.4.1",
        42005,
        blob(32, "ipv4-reply"),
        link=("raw",),
        ifid=3,
    )
    # if4 raw IPv6 (229)
    cap.udp("fd00:5::1", 42006, "fd00:5::2", 443, blob(50, "ipv6-q"), link=("raw",), ifid=4)
    cap.udp("fd00:5::2", 443, "fd00:5::1", 42006, blob(70, "ipv6-a"), link=("raw",), ifid=4)
    # if5 linktype 12 (raw IP, version taken from the first nibble): IPv6 here
    cap.udp("fd00:6::1", 42007, "fd00:6::2", 514, blob(45, "raw12-a"), link=("raw",), ifid=5)
    cap.udp("fd00:6::2", 514, "fd00:6::1", 42007, blob(15, "raw12-b"), link=("raw",), ifid=5)
    e = "<"
    blocks = [ng_idb(e, lt, name) for lt, name in LT_IFACES]
    blocks += [ng_packet(e, fr, None) for fr in cap.frames]
    return ng_shb(e, -1, SHB_OPTS) + b"".join(blocks), cap.frames


# --------------------------------------------------------------------------
# Encapsulations (tunnels.pcapng)
# --------------------------------------------------------------------------

LINKTYPE_PPP = 9
LINKTYPE_PPP_HDLC = 50
LINKTYPE_PPP_ETHER = 51
LINKTYPE_IEEE802_11 = 105
LINKTYPE_RADIOTAP = 127
LINKTYPE_NFLOG = 239

TUN_IFACES = [  # (linktype, name); ifid = position
    (LINKTYPE_ETHERNET, "span0"),
    (LINKTYPE_PPP, "ppp0"),
    (LINKTYPE_PPP_HDLC, "hdlc0"),
    (LINKTYPE_PPP_ETHER, "pppoe0"),
    (LINKTYPE_IEEE802_11, "wlan0"),
    (LINKTYPE_RADIOTAP, "wlan0mon"),
    (LINKTYPE_NFLOG, "nflog"),
]


def vlan_tags(vlans) -> bytes:
    """802.1Q tags (TPID 0x8100), outer first, each followed by the next TPID or ethertype."""
    return b"".join(struct.pack(">HH", 0x8100, v) for v in vlans)


def eth_header(src: str, dst: str, vlans, ethertype: int) -> bytes:
    return mac_bytes(mac_for(dst)) + mac_bytes(mac_for(src)) + vlan_tags(vlans) + struct.pack(">H", ethertype)


def ipv4_header(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    return bytes(IP(src=src, dst=dst, proto=proto, id=0x4242, ttl=64, flags="DF") / Raw(payload))


def udp_header(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


@dataclass(frozen=True)
class Tun:
    """One encapsulation, written with ``struct`` from its RFC's layout (never read back).

    ``outer``/``inner``: VLAN tags outside the tunnel and on the carried Ethernet frame; ``tenant``:
    the VNI or GRE key; ``header_vlan``: the VLAN an ERSPAN header names."""

    kind: str
    encap: str | None
    outer: tuple = ()
    inner: tuple = ()
    tenant: int | None = None
    header_vlan: int | None = None

    def flow_vlan(self) -> int | None:
        """The flow's VLAN: the carried frame's innermost tag, else what the tunnel header names,
        else (for a tunnel without an inner Ethernet frame) the outermost path's innermost tag."""
        if self.kind in ("mpls_pw", "gre_teb", "erspan2", "erspan3", "vxlan", "geneve_eth"):
            return self.inner[-1] if self.inner else self.header_vlan
        return self.outer[-1] if self.outer else None

    def frame(self, l3: bytes, src: str, dst: str, v6: bool) -> bytes:
        et = 0x86DD if v6 else 0x0800
        # The tunnel's endpoints: one direction each way, by the carried packet's direction.
        a, b = ("192.0.2.1", "192.0.2.2") if src < dst else ("192.0.2.2", "192.0.2.1")
        inner_eth = eth_header(src, dst, self.inner, et) + l3
        k = self.kind
        if k == "mpls_v4":
            stack = struct.pack(">II", (18 << 12) | 0xFE, (16 << 12) | 0x100 | 0xFE)
            return eth_header(a, b, self.outer, 0x8847) + stack + l3
        if k == "mpls_v6":
            # Label 2: IPv6 explicit null.
            return eth_header(a, b, self.outer, 0x8848) + struct.pack(">I", (2 << 12) | 0x100 | 0x40) + l3
        if k == "mpls_pw":
            stack = struct.pack(">II", (19 << 12) | 0xFF, (16 << 12) | 0x100 | 0xFF)
            return eth_header(a, b, self.outer, 0x8847) + stack + b"\x00\x00\x00\x00" + inner_eth
        if k == "pppoe":
            ppp = struct.pack(">H", 0x0057 if v6 else 0x0021) + l3
            return eth_header(a, b, self.outer, 0x8864) + struct.pack(">BBHH", 0x11, 0, 0x2D, len(ppp)) + ppp
        if k == "gre_teb":  # key and sequence number, transparent Ethernet bridging
            gre = struct.pack(">HHII", 0x3000, 0x6558, self.tenant, 7) + inner_eth
            return eth_header(a, b, self.outer, 0x0800) + ipv4_header(a, b, 47, gre)
        if k == "gre_ip":  # over IPv6, no optional fields
            gre = struct.pack(">HH", 0, et) + l3
            outer = bytes(IPv6(src="2001:db8:7::1", dst="2001:db8:7::2", nh=47, hlim=64) / Raw(gre))
            return eth_header(a, b, self.outer, 0x86DD) + outer
        if k == "erspan2":  # GRE with a sequence number, ERSPAN II (En 00: untagged original)
            hdr = struct.pack(">HHI", 0x1000 | self.header_vlan, 0x0064, 0)
            gre = struct.pack(">HHI", 0x1000, 0x88BE, 1794) + hdr + inner_eth
            return eth_header(a, b, self.outer, 0x0800) + ipv4_header(a, b, 47, gre)
        if k == "erspan3":  # GRE without sequence number, ERSPAN III, FT 0, no sub-header
            hdr = struct.pack(">HHIHH", 0x2000 | self.header_vlan, 0, 0x12345678, 0, 0)
            gre = struct.pack(">HH", 0, 0x22EB) + hdr + inner_eth
            return eth_header(a, b, self.outer, 0x0800) + ipv4_header(a, b, 47, gre)
        if k == "vxlan":
            vx = struct.pack(">II", 0x08000000, self.tenant << 8) + inner_eth
            return eth_header(a, b, self.outer, 0x0800) + ipv4_header(a, b, 17, udp_header(49152, 4789, vx))
        if k in ("geneve_eth", "geneve_ip"):
            # Two options (class 0x0102: type 1 with 4 bytes, type 2 with 8), 4 words in all.
            opts = (
                struct.pack(">HBB", 0x0102, 1, 1)
                + b"\xaa" * 4
                + struct.pack(">HBB", 0x0102, 2, 2)
                + b"\xbb" * 8
            )
            proto, body = (0x6558, inner_eth) if k == "geneve_eth" else (et, l3)
            gen = struct.pack(">BBHI", len(opts) // 4, 0, proto, self.tenant << 8) + opts + body
            return eth_header(a, b, self.outer, 0x0800) + ipv4_header(a, b, 17, udp_header(50000, 6081, gen))
        if k == "ipip":
            return eth_header(a, b, self.outer, 0x0800) + ipv4_header(a, b, 41 if v6 else 4, l3)
        if k == "ppp":  # link type 9: HDLC address and control, then the protocol
            return b"\xff\x03" + struct.pack(">H", 0x0057 if v6 else 0x0021) + l3
        if k == "chdlc":  # link type 50 carrying Cisco HDLC
            return struct.pack(">BBH", 0x0F, 0, et) + l3
        if k == "pppoe_link":  # link type 51: the PPPoE header without Ethernet
            ppp = struct.pack(">H", 0x0021) + l3
            return struct.pack(">BBHH", 0x11, 0, 0x2E, len(ppp)) + ppp
        if k in ("wifi", "radiotap"):
            # QoS Data To-DS (radiotap: with +HTC), LLC/SNAP.
            order = 0x80 if k == "radiotap" else 0
            wlan = (
                struct.pack("<BBH", 0x88, 0x01 | order, 0) + mac_bytes(mac_for(dst)) + mac_bytes(mac_for(src))
            )
            wlan += mac_bytes(mac_for(dst)) + struct.pack("<H", 0x10) + struct.pack("<H", 0)
            if order:
                wlan += b"\xff\xff\xff\xff"  # HT Control
            wlan += b"\xaa\xaa\x03\x00\x00\x00" + struct.pack(">H", et) + l3
            if k == "wifi":
                return wlan
            # version 0, length 9: present = Flags; Flags 0x10: the frame ends in its FCS.
            rt = struct.pack("<BBHIB", 0, 0, 9, 0x00000002, 0x10)
            return rt + wlan + b"\x5a\x5a\x5a\x5a"
        if k == "nflog":
            # AF_INET, version 0, group 42; hardware-protocol TLV, prefix TLV, payload TLV (9).
            # (TLV length and type in the host's order; the hardware protocol in network order.)
            tlvs = struct.pack("<HH", 8, 1) + struct.pack(">HBB", 0x0800, 3, 0)
            tlvs += struct.pack("<HH", 5, 10) + b"\x00\x00\x00\x00"
            pad = (-len(l3)) % 4
            tlvs += struct.pack("<HH", 4 + len(l3), 9) + l3 + b"\x00" * pad
            return struct.pack(">BBH", 2, 0, 42) + tlvs
        raise ValueError(k)


def build_tunnels():
    """Every encapsulation portwitness opens, with VLAN tags outside and inside, one exchange
    each (distinct inner addresses), and two VXLAN tenants with the same inner conversation."""
    cap = Capture()
    eth = [
        (Tun("mpls_v4", "mpls", outer=(10,)), "10.61.0.1", "10.61.0.2"),
        (Tun("mpls_v6", "mpls"), "2001:db8:62::1", "2001:db8:62::2"),
        (Tun("mpls_pw", "mpls", outer=(11,), inner=(21,)), "10.63.0.1", "10.63.0.2"),
        (Tun("pppoe", "pppoe", outer=(12, 13)), "10.64.0.1", "10.64.0.2"),
        (Tun("gre_teb", "gre", outer=(14,), inner=(24,), tenant=77), "10.65.0.1", "10.65.0.2"),
        (Tun("gre_ip", "gre"), "10.66.0.1", "10.66.0.2"),
        (Tun("erspan2", "erspan2", header_vlan=30), "10.67.0.1", "10.67.0.2"),
        (Tun("erspan3", "erspan3", outer=(15,), inner=(31,), header_vlan=31), "10.68.0.1", "10.68.0.2"),
        (Tun("geneve_eth", "geneve", inner=(27,), tenant=7), "2001:db8:69::1", "2001:db8:69::2"),
        (Tun("geneve_ip", "geneve", outer=(17,), tenant=8), "10.70.0.1", "10.70.0.2"),
        (Tun("ipip", "ipip"), "2001:db8:71::1", "2001:db8:71::2"),
    ]
    port = 42100
    for tun, c, s in eth:
        port += 1
        link = ("tun", tun)
        cap.udp(c, port, s, 53, blob(30, f"{tun.kind}-q"), link=link)
        cap.udp(s, 53, c, port, blob(60, f"{tun.kind}-a"), link=link)
    # Two tenants, one inner conversation each: never one flow.
    for vni, isn in ((5001, 0x5001000), (5002, 0x5002000)):
        t = Tcp(
            cap,
            "10.72.0.1",
            40000,
            "10.72.0.2",
            80,
            isn_c=isn,
            isn_s=isn + 0x10000,
            link=("tun", Tun("vxlan", "vxlan", outer=(16,), inner=(26,), tenant=vni)),
        )
        run(t.handshake() + t.exchange(40, 120, f"vni{vni}") + t.close())
    links = [
        ("ppp", None),
        ("chdlc", None),
        ("pppoe_link", "pppoe"),
        ("wifi", None),
        ("radiotap", None),
        ("nflog", None),
    ]
    for ifid, (kind, encap) in enumerate(links, start=1):
        port += 1
        link = ("tun", Tun(kind, encap))
        c, s = f"10.8{ifid}.0.1", f"10.8{ifid}.0.2"
        cap.udp(c, port, s, 123, blob(48, f"{kind}-q"), link=link, ifid=ifid)
        cap.udp(s, 123, c, port, blob(48, f"{kind}-a"), link=link, ifid=ifid)
    e = "<"
    blocks = [ng_idb(e, lt, name) for lt, name in TUN_IFACES]
    blocks += [ng_packet(e, fr, None) for fr in cap.frames]
    return ng_shb(e, -1, SHB_OPTS) + b"".join(blocks), cap.frames


SAMPLE_ARCSERVE = [  # (program, port on 10.20.0.20): caservd, caauthd, cadiscovd
    (395644, 1025),
    (395648, 1026),
    (395649, 1027),
]


def build_sample():
    """A mixed capture; returns (capture, RpcLog).

    Client 10.20.0.10 asks the portmapper on 10.20.0.20 (UDP GETPORTs, then a
    TCP GETPORT and a DUMP) and then calls caservd and caauthd on the learned
    TCP ports 1025 and 1026; 10.20.0.21 makes one GETPORT over TCP.  All other
    conversations carry patterned filler.  Every conversation is a list of
    one-packet steps; the RPC steps write the oracle (``RpcLog``) when they run,
    so its rows follow the interleaved capture order."""
    rng = random.Random(20260301)
    cap, rpc, dce, tls = Capture(), RpcLog(), DceLog(), TlsLog()
    A, B, C, D = "10.20.0.10", "10.20.0.11", "10.20.0.20", "10.20.0.21"
    convs: list[list] = []

    def isns(isn):
        return {
            "isn_c": 0x10000000 + isn * 0x01000000,
            "isn_s": 0x80000000 + isn * 0x01000000,
        }

    def tcp(c, cp, s, sp, exchanges, end="fin", isn=0):
        t = Tcp(cap, c, cp, s, sp, **isns(isn))
        acts = t.handshake()
        for i, (q, r) in enumerate(exchanges):
            acts += t.exchange(q, r, f"{sp}-{i}")
        if end == "fin":
            acts += t.close()
        elif end == "rst":
            acts.append(lambda: t.send(True, "R"))
        convs.append(acts)

    def rpc_tcp(c, cp, s, sp, steps, end="fin", isn=0):
        """An RPC-over-TCP conversation; ``steps(conv)`` gives its RPC steps."""
        conv = TcpConv(cap, c, cp, s, sp, handshake=False, **isns(isn))
        acts = conv.t.handshake() + steps(conv)
        if end == "fin":
            acts += conv.t.close()
        elif end == "rst":
            acts.append(lambda: conv.t.send(True, "R"))
        convs.append(acts)

    def udp(pairs, c, cp, s, sp, q, r):
        acts = []
        for i in range(pairs):
            acts.append(lambda i=i: cap.udp(c, cp, s, sp, blob(q, f"u{sp}-q{i}")))
            acts.append(lambda i=i: cap.udp(s, sp, c, cp, blob(r, f"u{sp}-r{i}")))
        convs.append(acts)

    convs.append([lambda: cap.arp(A, C), lambda: cap.arp(B, D), lambda: cap.arp(D, C)])
    # portmapper lookups over UDP: the three Arcserve services, and one unregistered
    pm = UdpConv(cap, A, 51000, C, 111)
    convs.append(
        [
            step
            for i, (prog, port) in enumerate(SAMPLE_ARCSERVE + [(395650, 0)])
            for step in pmap_getport_steps(rpc, pm, 0x5A4D0001 + i, prog, 1, "tcp", port)
        ]
    )
    # portmapper over TCP: GETPORT(caauthd), then DUMP
    dump = [(PMAP_PROG, 2, "tcp", 111), (PMAP_PROG, 2, "udp", 111)] + [
        (prog, 1, "tcp", port) for prog, port in SAMPLE_ARCSERVE
    ]
    rpc_tcp(
        A,
        51001,
        C,
        111,
        lambda conv: (
            pmap_getport_steps(rpc, conv, 0x5A4D0011, 395648, 1, "tcp", 1026)
            + pmap_dump_steps(rpc, conv, 0x5A4D0012, dump)
        ),
        isn=1,
    )
    # the endpoint mapper: where do the tape engine and the job engine listen?
    epm = dce_assoc(cap, 51100, 135, 0x12000000, c=B, s=C, handshake=False)
    convs.append(
        epm.conv.t.handshake()
        + bind_steps(dce, epm, EPM, "135")
        + call_steps(epm.conv, *dce.ept_map(epm, 2, 0, TAPE_ENGINE, [Endpoint("ncacn_ip_tcp", 6502, C)]))
        + call_steps(epm.conv, *dce.ept_map(epm, 3, 0, JOB_ENGINE, [Endpoint("ncacn_ip_tcp", 6503, C)]))
        + epm.conv.t.close()
    )
    tcp(B, 51101, C, 20042, [(180, 60), (120, 40), (96, 24), (64, 200)], isn=3)
    # the CA management service on 7099 speaks TLS 1.3
    mgmt = conn(cap, A, 51002, D, 7099, 0x14000000, "tls", handshake=False)
    hello = {"sni": "casmgmt.arcsrv02.example", "alpn": ("http/1.1",), "versions": (TLS13, TLS12)}
    convs.append(mgmt.t.handshake() + tls13_steps(tls, mgmt, "sample-7099", 1, flight=160, **hello))
    tcp(D, 51200, C, 2099, [(52, 30), (40, 30)], isn=5)
    udp(8, B, 6050, D, 6050, 24, 24)  # same port both sides
    tcp(B, 51102, D, 20000, [(16, 16), (16, 16)], isn=6)
    tcp(B, 51103, D, 20100, [(16, 48)], isn=7)
    tcp(C, 51301, D, 20077, [(24, 8), (24, 8), (24, 8)], isn=10)
    # caservd on the port learned above (395644 v1 proc 3)
    gui = auth_unix("gui-host", 0, 0, stamp=0x65E13A10)
    rpc_tcp(
        A,
        51006,
        C,
        1025,
        lambda conv: rpc_exchange_steps(
            rpc,
            conv,
            0x5A4D0101,
            395644,
            1,
            3,
            gui,
            xdr_string("BAB_JOBQUEUE") + xdr_u32(7),
            xdr_u32(0) + xdr_string("queue ok"),
        ),
        isn=11,
    )
    tcp(B, 51104, D, 20031, [(16, 16), (20, 40)], isn=12)
    # another host asks the portmapper over TCP: GETPORT(cadiscovd)
    rpc_tcp(
        D,
        51202,
        C,
        111,
        lambda conv: pmap_getport_steps(rpc, conv, 0x5A4D0021, 395649, 1, "tcp", 1027),
        isn=13,
    )
    # caauthd on the port learned above (395648 v1 proc 1), then the client resets
    rpc_tcp(
        A,
        51003,
        C,
        1026,
        lambda conv: rpc_exchange_steps(
            rpc,
            conv,
            0x5A4D0201,
            395648,
            1,
            1,
            gui,
            xdr_string("caroot"),
            xdr_u32(0, 1),
        ),
        end="rst",
        isn=8,
    )
    # the tape engine on the port the endpoint mapper named
    tape = dce_assoc(cap, 51105, 6502, 0x1E000000, c=B, s=C, handshake=False)
    convs.append(tape.conv.t.handshake() + interface_steps(dce, tape, TAPE_ENGINE, 43, ENGINE_STUB[:32]))
    udp(3, A, 51005, D, 20010, 20, 36)
    # refused: A -> D:6050/tcp
    r = Tcp(cap, A, 51004, D, 6050, isn_c=0x1A000000)
    convs.append([lambda: r.send(True, "S"), lambda: r.send(False, "RA", seq=0)])
    # unanswered: D -> B:7099 SYN + 2 retransmissions
    u = Tcp(cap, D, 51201, B, 7099, isn_c=0x1B000000)
    convs.append(
        [
            lambda: u.send(True, "S"),
            lambda: u.send(True, "S", seq=0x1B000000),
            lambda: u.send(True, "S", seq=0x1B000000),
        ]
    )
    # open at end of capture: C -> D:2099, data but no FIN/RST
    tcp(C, 51300, D, 2099, [(36, 12), (36, 12)], end=None, isn=9)
    # server-first datagram: only D:53 -> A:40053 seen (client A by port rule)
    convs.append([lambda: cap.udp(D, 53, A, 40053, blob(64, "late-dns-answer"))])
    # both ports < 1024: NTP C:123 <-> D:123
    udp(1, C, 123, D, 123, 48, 48)
    convs.append(
        [
            lambda: cap.ping(A, C, 0x0A0A, 1),
            lambda: cap.ping(A, C, 0x0A0A, 2),
            lambda: cap.ping(B, D, 0x0B0B, 1),
        ]
    )

    # deterministic interleaving: conversations start in list order, a few at a time
    pending = list(convs)
    active: list[list] = []
    while pending or active:
        while pending and (len(active) < 4 or rng.random() < 0.15):
            active.append(pending.pop(0))
        i = int(rng.random() * len(active))
        step = 300 + int(rng.random() * 4700)
        act = active[i].pop(0)
        cap._steps = [step]
        cap._si = 0
        act()
        if not active[i]:
            active.pop(i)

    # the client connects to a learned port only after a reply revealed it
    for mappings, port in [(rpc.mappings, 1025), (rpc.mappings, 1026), (dce.mappings, 6502)]:
        learned = min(m["ts_ns"] for m in mappings if m["port"] == port and m["server_ip"] == C)
        first = min(
            f.ts_ns for f in cap.frames if f.meta is not None and (f.meta.dst, f.meta.dport) == (C, port)
        )
        assert learned < first, port
    return cap, rpc, dce, tls


# --------------------------------------------------------------------------
# ONC RPC fixtures (portmap v2, rpcbind v3/v4, NFS)
# --------------------------------------------------------------------------
#
# The RPC messages are written here with struct (XDR, big-endian; RFC 5531,
# RFC 1833, RFC 1813).  Besides the flows, each RPC fixture gets two oracles
# kept by ``RpcLog`` from what was planted (never from the bytes written):
#   <file>.rpc_calls.json  one row per call, or per reply whose call is not in
#                          the capture, in the order the message first appears
#   <file>.mappings.json   one row per port fact revealed by a reply

PMAP_PROG = 100000  # portmapper / rpcbind
PMAPPROC_SET, PMAPPROC_UNSET, PMAPPROC_GETPORT = 1, 2, 3
PMAPPROC_DUMP, PMAPPROC_CALLIT = 4, 5
RPCBPROC_GETADDR, RPCBPROC_DUMP = 3, 4
NFS_PROG, MOUNT_PROG = 100003, 100005
IPPROTO = {"tcp": 6, "udp": 17}
NETID_TRANSPORT = {"tcp": "tcp", "udp": "udp", "tcp6": "tcp", "udp6": "udp"}

MSG_CALL, MSG_REPLY = 0, 1
MSG_ACCEPTED, MSG_DENIED = 0, 1
SUCCESS, PROG_UNAVAIL = 0, 1  # accept_stat
AUTH_ERROR = 1  # reject_stat
AUTH_TOOWEAK = 5  # auth_stat


def xdr_u32(*values: int) -> bytes:
    return struct.pack(f">{len(values)}I", *values)


def xdr_u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def xdr_opaque(data: bytes) -> bytes:
    """Variable-length opaque / string: length, bytes, zero padding to 4."""
    return xdr_u32(len(data)) + _pad4(data)


def xdr_string(s: str) -> bytes:
    return xdr_opaque(s.encode())


@dataclass(frozen=True)
class Auth:
    """An opaque_auth: flavor and body; ``machine`` is what the oracle reports."""

    flavor: int
    body: bytes = b""
    machine: str | None = None

    def xdr(self) -> bytes:
        return xdr_u32(self.flavor) + xdr_opaque(self.body)


AUTH_NULL = Auth(0)


def auth_unix(machine: str, uid: int, gid: int, gids=(), stamp: int = 0) -> Auth:
    """AUTH_SYS / AUTH_UNIX (flavor 1): stamp, machinename, uid, gid, gids<16>."""
    body = xdr_u32(stamp) + xdr_string(machine) + xdr_u32(uid, gid, len(gids), *gids)
    return Auth(1, body, machine)


def rpc_call_msg(xid, prog, vers, proc, cred=AUTH_NULL, args=b"", verf=AUTH_NULL):
    return xdr_u32(xid, MSG_CALL, 2, prog, vers, proc) + cred.xdr() + verf.xdr() + args


def rpc_accepted_msg(xid, accept_stat=SUCCESS, results=b"", verf=AUTH_NULL):
    return xdr_u32(xid, MSG_REPLY, MSG_ACCEPTED) + verf.xdr() + xdr_u32(accept_stat) + results


def rpc_denied_auth_msg(xid, auth_stat):
    """MSG_DENIED / AUTH_ERROR: no verifier, just the auth_stat."""
    return xdr_u32(xid, MSG_REPLY, MSG_DENIED, AUTH_ERROR, auth_stat)


def record_mark(msg: bytes, cuts=()) -> bytes:
    """RFC 5531 §11 record marking; ``cuts`` are offsets where a new fragment starts.
    Only the last fragment has bit 31 set."""
    bounds = [0, *cuts, len(msg)]
    out = b""
    for i in range(len(bounds) - 1):
        frag = msg[bounds[i] : bounds[i + 1]]
        last = 0x80000000 if i == len(bounds) - 2 else 0
        out += xdr_u32(last | len(frag)) + frag
    return out


def uaddr(ip: str, port: int) -> str:
    """Universal address: the IP's presentation form, then ".p1.p2"."""
    return f"{ip}.{port >> 8}.{port & 0xFF}"


def pmap_mapping(prog: int, vers: int, prot: int, port: int) -> bytes:
    return xdr_u32(prog, vers, prot, port)


def rpcb(prog: int, vers: int, netid: str, addr: str = "", owner: str = "") -> bytes:
    return xdr_u32(prog, vers) + xdr_string(netid) + xdr_string(addr) + xdr_string(owner)


@dataclass
class Msg:
    """One application message: its bytes, the facts its packets tell the flow oracle, and
    ``sent``, called with the timestamp of the frame that completes the message (this is
    how the oracles learn when a call or reply was seen)."""

    data: bytes
    facts: tuple[tuple[str, str], ...] = ()
    sent: Callable[[int], None] | None = None


def stamper(*targets: tuple[dict, str]) -> Callable[[int], None]:
    """A ``Msg.sent`` callback writing the timestamp into each (row, column)."""

    def sent(ts: int) -> None:
        for row, column in targets:
            row[column] = ts

    return sent


class Conv(ABC):
    """A client/server conversation carrying application messages.  ``app`` is the
    protocol its messages speak (a flow fact of every packet carrying one); ``c2s`` and
    ``s2c`` send one ONC RPC message (record-marked on TCP) and return its timestamp."""

    transport = ""

    def __init__(self, cap: Capture, c: str, cport: int, s: str, sport: int, app: str | None):
        self.cap, self.c, self.cport, self.s, self.sport, self.app = cap, c, cport, s, sport, app

    def facts(self, msgs) -> tuple:
        out = [("app", self.app)] if self.app else []
        for m in msgs:
            out += [f for f in m.facts if f not in out]
        return tuple(out)

    @abstractmethod
    def send_steps(self, from_client: bool, msgs, cuts=()) -> list:
        """The steps that put `msgs` on the wire (record-marked and cut on TCP)."""

    def send(self, from_client: bool, msgs, cuts=()) -> int:
        """Send messages; returns the timestamp of the last frame."""
        run(self.send_steps(from_client, msgs, cuts))
        return self.cap.frames[-1].ts_ns

    def frame(self, msg: bytes) -> bytes:
        return msg

    def c2s(self, msg: bytes) -> int:
        return self.send(True, [Msg(self.frame(msg))])

    def s2c(self, msg: bytes, ack: bool = True) -> int:
        """Send a reply; with ``ack`` the client acknowledges it at once (TCP)."""
        ts = self.send(False, [Msg(self.frame(msg))])
        if ack:
            self.ack()
        return ts

    def ack(self) -> None:
        """Nothing acknowledges a datagram."""
        return


class UdpConv(Conv):
    """A UDP client/server pair: one datagram is one message."""

    transport = "udp"

    def __init__(self, cap: Capture, c: str, cport: int, s: str, sport: int, app="oncrpc"):
        super().__init__(cap, c, cport, s, sport, app)

    def send_steps(self, from_client: bool, msgs, cuts=()) -> list:
        assert not cuts, "a datagram is never cut"
        ends = [(self.c, self.cport), (self.s, self.sport)]
        src, dst = ends if from_client else ends[::-1]

        def step(m: Msg) -> None:
            self.cap.udp(*src, *dst, m.data, facts=self.facts([m]))
            if m.sent:
                m.sent(self.cap.frames[-1].ts_ns)

        return [lambda m=m: step(m) for m in msgs]


class TcpConv(Conv):
    """A TCP connection.  Messages sent together are written back to back and cut into
    segments at the byte offsets ``cuts`` (none: one segment); a message is complete in
    the segment holding its last byte.  For ONC RPC each message is one record (record
    marking) in one segment, and the client acknowledges every reply."""

    transport = "tcp"

    def __init__(self, cap, c, cport, s, sport, isn_c, isn_s, handshake=True, app="oncrpc"):
        super().__init__(cap, c, cport, s, sport, app)
        self.t = Tcp(cap, c, cport, s, sport, isn_c=isn_c, isn_s=isn_s)
        if handshake:
            run(self.t.handshake())

    def frame(self, msg: bytes) -> bytes:
        return record_mark(msg)

    def send_steps(self, from_client: bool, msgs, cuts=()) -> list:
        data = b"".join(m.data for m in msgs)
        ends = list(accumulate(len(m.data) for m in msgs))
        mss = 1440 if ":" in self.c else 1460
        bounds = [0, *(cuts or range(mss, len(data), mss)), len(data)]

        def step(lo: int, hi: int) -> None:
            inside = [m for m, end in zip(msgs, ends, strict=True) if end - len(m.data) < hi and end > lo]
            self.t.send(from_client, "PA", data[lo:hi], facts=self.facts(inside))
            for m, end in zip(msgs, ends, strict=True):
                if lo < end <= hi and m.sent:
                    m.sent(self.cap.frames[-1].ts_ns)

        return [lambda lo=lo, hi=hi: step(lo, hi) for lo, hi in pairwise(bounds)]

    def ack(self, from_client: bool = True) -> None:
        self.t.send(from_client, "A")

    def close(self):
        run(self.t.close())


class RpcLog:
    """The RPC oracle: what the generator planted, call by call."""

    def __init__(self):
        self.calls: list[dict] = []
        self.mappings: list[dict] = []
        self._pending: dict[int, dict] = {}
        self._xids: set[int] = set()

    def tables(self) -> dict[str, list[dict]]:
        return {"mappings": self.mappings, "rpc_calls": self.calls}

    def _new_xid(self, xid: int) -> None:
        assert xid not in self._xids, f"xid {xid:#x} reused"
        self._xids.add(xid)

    def call(self, conv, xid, prog, vers, proc, cred=AUTH_NULL, args=b"") -> bytes:
        self._new_xid(xid)
        row = {
            "xid": xid,
            "program": prog,
            "version": vers,
            "procedure": proc,
            "transport": conv.transport,
            "server_port": conv.sport,
            "reply": "none",
            "accept_stat": None,
            "auth_flavor": cred.flavor,
            "auth_machine": cred.machine,
        }
        self.calls.append(row)
        self._pending[xid] = row
        return rpc_call_msg(xid, prog, vers, proc, cred, args)

    def accepted(self, xid, results=b"", accept_stat=SUCCESS) -> bytes:
        row = self._pending.pop(xid)
        row["reply"], row["accept_stat"] = "accepted", accept_stat
        return rpc_accepted_msg(xid, accept_stat, results)

    def denied(self, xid, auth_stat) -> bytes:
        row = self._pending.pop(xid)
        row["reply"] = "denied"
        return rpc_denied_auth_msg(xid, auth_stat)

    def reply_only(self, conv, xid, results=b"") -> bytes:
        """An accepted SUCCESS reply whose call is not in the capture.  Its
        auth_flavor is the reply verifier's flavor (AUTH_NULL)."""
        self._new_xid(xid)
        self.calls.append(
            {
                "xid": xid,
                "program": None,
                "version": None,
                "procedure": None,
                "transport": conv.transport,
                "server_port": conv.sport,
                "reply": "accepted",
                "accept_stat": SUCCESS,
                "auth_flavor": AUTH_NULL.flavor,
                "auth_machine": None,
            }
        )
        return rpc_accepted_msg(xid, SUCCESS, results)

    def learn(self, source, server_ip, transport, port, prog, vers, registered, ts_ns):
        self.mappings.append(
            mapping_row(
                source=source,
                server_ip=server_ip,
                transport=transport,
                port=port,
                rpc_program=prog,
                rpc_version=vers,
                registered=registered,
                ts_ns=ts_ns,
            )
        )


def mapping_row(**values) -> dict:
    """A row of ``<file>.mappings.json``: ONC RPC rows leave the DCE/RPC columns null and
    DCE/RPC rows the ONC RPC ones."""
    row = dict.fromkeys(MAPPING_COLUMNS)
    assert set(values) <= set(row), values
    return {**row, **values}


MAPPING_COLUMNS = (
    "source",
    "server_ip",
    "transport",
    "port",
    "rpc_program",
    "rpc_version",
    "interface_uuid",
    "interface_version",
    "protocol",
    "annotation",
    "registered",
    "ts_ns",
)


# portmap v2 / rpcbind v3-v4 exchanges ------------------------------------------


def reply_steps(conv, send_reply) -> list:
    """The reply, then (TCP) the client's ACK as a separate step."""
    steps = [send_reply]
    if conv.transport == "tcp":
        steps.append(conv.ack)
    return steps


def pmap_getport_steps(rpc, conv, xid, prog, vers, transport, port, cred=AUTH_NULL):
    """GETPORT (port 0 in the call); the reply's port 0 means not registered.
    Returns one callable per packet, so that ``build_sample`` can interleave
    them with other conversations; the oracle is written when they run."""
    args = pmap_mapping(prog, vers, IPPROTO[transport], 0)

    def call():
        conv.c2s(rpc.call(conv, xid, PMAP_PROG, 2, PMAPPROC_GETPORT, cred, args))

    def reply():
        ts = conv.s2c(rpc.accepted(xid, xdr_u32(port)), ack=False)
        rpc.learn("portmap.getport", conv.s, transport, port or None, prog, vers, port != 0, ts)

    return [call, *reply_steps(conv, reply)]


def pmap_getport(rpc, conv, xid, prog, vers, transport, port, cred=AUTH_NULL):
    run(pmap_getport_steps(rpc, conv, xid, prog, vers, transport, port, cred))


def pmap_dump_steps(rpc, conv, xid, entries, cred=AUTH_NULL):
    """Portmap v2 DUMP; ``entries`` are (prog, vers, transport, port), listed in
    that order in one reply message."""

    def call():
        conv.c2s(rpc.call(conv, xid, PMAP_PROG, 2, PMAPPROC_DUMP, cred))

    def reply():
        body = b"".join(
            xdr_u32(1) + pmap_mapping(prog, vers, IPPROTO[p], port) for prog, vers, p, port in entries
        ) + xdr_u32(0)
        ts = conv.s2c(rpc.accepted(xid, body), ack=False)
        for prog, vers, p, port in entries:
            rpc.learn("portmap.dump", conv.s, p, port, prog, vers, True, ts)

    return [call, *reply_steps(conv, reply)]


def rpc_exchange_steps(rpc, conv, xid, prog, vers, proc, cred, args, results):
    """One call of any program and its accepted SUCCESS reply."""

    def call():
        conv.c2s(rpc.call(conv, xid, prog, vers, proc, cred, args))

    def reply():
        conv.s2c(rpc.accepted(xid, results), ack=False)

    return [call, *reply_steps(conv, reply)]


def pmap_set(rpc, conv, xid, prog, vers, transport, port, ok, cred):
    args = pmap_mapping(prog, vers, IPPROTO[transport], port)
    conv.c2s(rpc.call(conv, xid, PMAP_PROG, 2, PMAPPROC_SET, cred, args))
    ts = conv.s2c(rpc.accepted(xid, xdr_u32(int(ok))))
    rpc.learn("portmap.set", conv.s, transport, port, prog, vers, ok, ts)


def pmap_unset(rpc, conv, xid, prog, vers, transport, ok, cred):
    """UNSET: the server ignores prot and port; this call plants the prot of the
    mapping being removed and port 0.  The fact is negative whatever the reply."""
    args = pmap_mapping(prog, vers, IPPROTO[transport], 0)
    conv.c2s(rpc.call(conv, xid, PMAP_PROG, 2, PMAPPROC_UNSET, cred, args))
    ts = conv.s2c(rpc.accepted(xid, xdr_u32(int(ok))))
    rpc.learn("portmap.unset", conv.s, transport, None, prog, vers, False, ts)


def rpcb_getaddr(rpc, conv, xid, rpcbvers, prog, vers, netid, where, cred=AUTH_NULL):
    """GETADDR (v3 or v4); ``where`` = (ip, port) planted in the reply's uaddr,
    or None for the empty uaddr of an unregistered program."""
    args = rpcb(prog, vers, netid)
    conv.c2s(rpc.call(conv, xid, PMAP_PROG, rpcbvers, RPCBPROC_GETADDR, cred, args))
    answer = uaddr(*where) if where else ""
    ts = conv.s2c(rpc.accepted(xid, xdr_string(answer)))
    transport = NETID_TRANSPORT[netid]
    if where:
        rpc.learn("rpcbind.getaddr", where[0], transport, where[1], prog, vers, True, ts)
    else:
        rpc.learn("rpcbind.getaddr", conv.s, transport, None, prog, vers, False, ts)


# ----------------------------------------------------------------------------


def build_rpc_getport_udp():
    cap, rpc = Capture(), RpcLog()
    C, S = "10.0.1.10", "10.0.1.1"
    pm = UdpConv(cap, C, 800, S, 111)
    pmap_getport(rpc, pm, 0x6A3F1C01, 395644, 1, "tcp", 1025)  # caservd
    pmap_getport(rpc, pm, 0x6A3F1C02, MOUNT_PROG, 3, "udp", 20048)
    pmap_getport(rpc, pm, 0x6A3F1C03, 395650, 1, "tcp", 0)  # not registered
    # CALLIT of the unregistered program: the portmapper stays silent (reply "none")
    callit = xdr_u32(395650, 1, 0) + xdr_opaque(b"")
    pm.c2s(rpc.call(pm, 0x6A3F1C04, PMAP_PROG, 2, PMAPPROC_CALLIT, AUTH_NULL, callit))
    # the learned TCP port: one call of program 395644 v1 proc 3 and its reply
    svc = TcpConv(cap, C, 40010, S, 1025, isn_c=0x0A010000, isn_s=0x0A020000)
    cred = auth_unix("gui-host", 0, 0, stamp=0x65E13A01)
    args = xdr_string("BAB_JOBQUEUE") + xdr_u32(7)
    svc.c2s(rpc.call(svc, 0x2C5D0001, 395644, 1, 3, cred, args))
    svc.s2c(rpc.accepted(0x2C5D0001, xdr_u32(0) + xdr_string("queue ok")))
    svc.close()
    # the learned UDP port: mountd NULL
    mnt = UdpConv(cap, C, 45010, S, 20048)
    mnt.c2s(rpc.call(mnt, 0x4D4E0001, MOUNT_PROG, 3, 0))
    mnt.s2c(rpc.accepted(0x4D4E0001))
    return cap, rpc


def build_rpc_getport_tcp():
    cap, rpc = Capture(), RpcLog()
    C, S = "10.0.1.20", "10.0.1.1"
    pm = TcpConv(cap, C, 40020, S, 111, isn_c=0x0B010000, isn_s=0x0B020000)
    pmap_getport(rpc, pm, 0x7B000001, 395648, 1, "tcp", 1026)  # caauthd
    pm.close()
    svc = TcpConv(cap, C, 40021, S, 1026, isn_c=0x0B030000, isn_s=0x0B040000)
    cred = auth_unix("ca-mgr", 0, 0, (0, 1), stamp=0x65E13A02)
    svc.c2s(rpc.call(svc, 0x7B000002, 395648, 1, 1, cred, xdr_string("caroot")))
    svc.s2c(rpc.accepted(0x7B000002, xdr_u32(0, 1)))
    # a program the port does not serve: accepted, PROG_UNAVAIL, no results
    svc.c2s(rpc.call(svc, 0x7B000003, 395650, 1, 0, cred))
    svc.s2c(rpc.accepted(0x7B000003, accept_stat=PROG_UNAVAIL))
    svc.close()
    return cap, rpc


DUMP_ENTRIES = (  # (prog, vers, transport, port): 30 entries
    [(PMAP_PROG, v, p, 111) for p in ("tcp", "udp") for v in (4, 3, 2)]
    + [
        (NFS_PROG, 3, "tcp", 2049),
        (NFS_PROG, 4, "tcp", 2049),
        (NFS_PROG, 3, "udp", 2049),
    ]
    + [(MOUNT_PROG, v, p, 20048) for p in ("udp", "tcp") for v in (1, 2, 3)]
    + [(100021, v, "udp", 40001) for v in (1, 3, 4)]
    + [(100021, v, "tcp", 38713) for v in (1, 3, 4)]
    + [(100024, 1, "udp", 662), (100024, 1, "tcp", 662)]
    + [
        (395644 + i, 1, "udp" if i == 3 else "tcp", 1025 + i)  # 395644..395650
        for i in range(7)
    ]
)


def build_rpc_dump_ooo():
    cap, rpc = Capture(), RpcLog()
    C, S = "10.0.1.30", "10.0.1.1"
    assert len(DUMP_ENTRIES) == 30
    pm = TcpConv(cap, C, 40030, S, 111, isn_c=0x0C010000, isn_s=0x0C020000)
    xid = 0x8C000001
    pm.c2s(rpc.call(pm, xid, PMAP_PROG, 2, PMAPPROC_DUMP))
    body = b"".join(
        xdr_u32(1) + pmap_mapping(prog, vers, IPPROTO[p], port) for prog, vers, p, port in DUMP_ENTRIES
    ) + xdr_u32(0)
    rec = record_mark(rpc.accepted(xid, body))
    # four segments, on the wire in the order 1, 3, 2, 4 (true sequence numbers)
    cuts = [0, 160, 320, 480, len(rec)]
    base = pm.t.nxt[False]
    segs = [(base + cuts[i], rec[cuts[i] : cuts[i + 1]]) for i in range(4)]
    t = pm.t
    t.send(False, "PA", segs[0][1], seq=segs[0][0])
    t.send(True, "A", ack_no=base + cuts[1])
    t.send(False, "PA", segs[2][1], seq=segs[2][0])
    t.send(True, "A", ack_no=base + cuts[1])  # duplicate ACK: a hole at segment 2
    t.send(False, "PA", segs[1][1], seq=segs[1][0])
    t.send(True, "A", ack_no=base + cuts[3])
    t.send(False, "PA", segs[3][1], seq=segs[3][0])
    ts = cap.frames[-1].ts_ns  # the record is complete only now
    t.nxt[False] = (base + len(rec)) & 0xFFFFFFFF
    t.send(True, "A")
    for prog, vers, p, port in DUMP_ENTRIES:
        rpc.learn("portmap.dump", S, p, port, prog, vers, True, ts)
    pm.close()
    return cap, rpc


def build_rpc_set_unset():
    """Local registration: a service registers with the portmapper over loopback
    UDP from a privileged port (Ethernet link type, as Linux captures on lo)."""
    cap, rpc = Capture(), RpcLog()
    L = "127.0.0.1"
    pm = UdpConv(cap, L, 870, L, 111)
    cred = auth_unix("srv-a", 0, 0, (0,), stamp=0x65E13A04)
    pmap_set(rpc, pm, 0x9D000001, 395645, 1, "tcp", 1030, True, cred)
    pmap_set(rpc, pm, 0x9D000002, 395646, 1, "tcp", 1031, True, cred)
    pmap_unset(rpc, pm, 0x9D000003, 395646, 1, "tcp", True, cred)
    # 395645 v1 tcp is already registered (1030): a second SET is refused
    pmap_set(rpc, pm, 0x9D000004, 395645, 1, "tcp", 1040, False, cred)
    return cap, rpc


def build_rpcbind_getaddr():
    cap, rpc = Capture(), RpcLog()
    C, S = "10.0.2.10", "10.0.2.1"
    C6, S6 = "2001:db8:2::10", "2001:db8:2::1"
    tc = TcpConv(cap, C, 40100, S, 111, isn_c=0x0D010000, isn_s=0x0D020000)
    rpcb_getaddr(rpc, tc, 0xAE000001, 4, NFS_PROG, 3, "tcp", (S, 2049))
    rpcb_getaddr(rpc, tc, 0xAE000002, 4, 395650, 1, "tcp", None)  # "" = unregistered
    # v4 DUMP: rpcbind's own entries, wildcard universal addresses
    entries = [
        (PMAP_PROG, 4, "tcp", "0.0.0.0", 111),
        (PMAP_PROG, 3, "udp", "0.0.0.0", 111),
        (PMAP_PROG, 3, "tcp6", "::", 111),
    ]
    xid = 0xAE000003
    tc.c2s(rpc.call(tc, xid, PMAP_PROG, 4, RPCBPROC_DUMP))
    body = b"".join(
        xdr_u32(1) + rpcb(prog, vers, netid, uaddr(ip, port), "superuser")
        for prog, vers, netid, ip, port in entries
    ) + xdr_u32(0)
    ts = tc.s2c(rpc.accepted(xid, body))
    for prog, vers, netid, _wildcard, port in entries:
        # A `::` wildcard told over IPv4 is rpcbind's IPV6_V6ONLY socket: not on S.
        if not netid.endswith("6"):
            rpc.learn("rpcbind.dump", S, NETID_TRANSPORT[netid], port, prog, vers, True, ts)
    tc.close()
    uc = UdpConv(cap, C, 45100, S, 111)
    cred = auth_unix("nfs-client", 0, 0, (0,), stamp=0x65E13A05)
    rpcb_getaddr(rpc, uc, 0xAE000004, 3, MOUNT_PROG, 3, "udp", (S, 20048), cred)
    t6 = TcpConv(cap, C6, 40101, S6, 111, isn_c=0x0D030000, isn_s=0x0D040000)
    rpcb_getaddr(rpc, t6, 0xAE000005, 4, 100024, 1, "tcp6", (S6, 1023))
    t6.close()
    return cap, rpc


def build_rpc_reply_only():
    """Capture started mid-conversation: no handshake, a reply whose call was
    before the capture, then a complete GETPORT; plus a lone UDP reply."""
    cap, rpc = Capture(), RpcLog()
    C, S = "10.0.1.40", "10.0.1.1"
    pm = TcpConv(cap, C, 40040, S, 111, isn_c=0x0E010000, isn_s=0x0E020000, handshake=False)
    pm.s2c(rpc.reply_only(pm, 0xBF000001, xdr_u32(1027)))
    pmap_getport(rpc, pm, 0xBF000002, 395649, 1, "tcp", 1028)
    pm.close()
    uc = UdpConv(cap, C, 45040, S, 111)
    uc.s2c(rpc.reply_only(uc, 0xBF000003, xdr_u32(32771)))
    return cap, rpc


def _not_rpc(data: bytes, tcp: bool) -> bool:
    """Planted garbage must not even look like an RPC message header."""
    at = 8 if tcp else 4  # msg_type after (TCP) the record mark
    msg_type = struct.unpack_from(">I", data, at)[0]
    also = struct.unpack_from(">I", data, 4)[0] if tcp else 2
    return msg_type not in (0, 1) and also not in (0, 1)


def build_rpc_garbage_111():
    cap, rpc = Capture(), RpcLog()
    C, S = "10.0.1.50", "10.0.1.1"
    rng = random.Random(0x0111)

    def garbage(n: int, tcp: bool) -> bytes:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        assert _not_rpc(data, tcp)
        return data

    t = Tcp(cap, C, 40050, S, 111, isn_c=0x0F010000, isn_s=0x0F020000)
    run(t.handshake())
    t.send(True, "PA", garbage(64, True))
    t.send(False, "PA", garbage(48, True))
    t.send(True, "PA", garbage(36, True))
    t.send(False, "A")
    run(t.close())
    cap.udp(C, 45050, S, 111, garbage(40, False))
    cap.udp(C, 45050, S, 111, garbage(52, False))
    cap.udp(S, 111, C, 45050, garbage(28, False))
    h = Tcp(cap, C, 40051, S, 8080, isn_c=0x0F030000, isn_s=0x0F040000)
    run(h.handshake())
    h.send(
        True,
        "PA",
        b"GET /status HTTP/1.1\r\nHost: 10.0.1.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    )
    h.send(
        False,
        "PA",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
    )
    run(h.close())
    return cap, rpc


NFS_FH = bytes.fromhex("0100070100fe0300000000005f2a9c1e8b3d4e11a0b1c2d30000000200000000")


def nfs_fattr3(fileid: int) -> bytes:
    """fattr3 of a directory (84 bytes)."""
    t = 1772320000
    return (
        xdr_u32(2, 0o755, 2, 0, 0)  # NF3DIR, mode, nlink, uid, gid
        + xdr_u64(4096)  # size
        + xdr_u64(4096)  # used
        + xdr_u32(0, 0)  # rdev
        + xdr_u64(0x5F2A9C1E8B3D4E11)  # fsid
        + xdr_u64(fileid)
        + xdr_u32(t, 0, t, 0, t, 0)  # atime, mtime, ctime
    )


def build_nfs_session():
    cap, rpc = Capture(), RpcLog()
    C, S = "10.0.3.10", "10.0.3.1"
    pm = UdpConv(cap, C, 45300, S, 111)
    pmap_getport(rpc, pm, 0xC0000001, NFS_PROG, 3, "tcp", 2049)
    nfs = TcpConv(cap, C, 900, S, 2049, isn_c=0x10010000, isn_s=0x10020000)
    t = nfs.t
    cred = auth_unix("nfs-client", 0, 0, (0,), stamp=0x65E13A08)
    fh = xdr_opaque(NFS_FH)
    # NULL and GETATTR pipelined: two records in one segment
    null = rpc.call(nfs, 0xC0000002, NFS_PROG, 3, 0)
    getattr_ = rpc.call(nfs, 0xC0000003, NFS_PROG, 3, 1, cred, fh)
    t.send(True, "PA", record_mark(null) + record_mark(getattr_))
    nfs.s2c(rpc.accepted(0xC0000002))
    nfs.s2c(rpc.accepted(0xC0000003, xdr_u32(0) + nfs_fattr3(2)))
    # FSINFO whose record is two fragments, one per segment
    fsinfo = rpc.call(nfs, 0xC0000004, NFS_PROG, 3, 19, cred, fh)
    two = record_mark(fsinfo, cuts=[40])
    t.send(True, "PA", two[:44])  # fragment 1: 40 bytes, last-fragment bit clear
    t.send(True, "PA", two[44:])  # fragment 2: the rest, last-fragment bit set
    res = (
        xdr_u32(0)  # NFS3_OK
        + xdr_u32(1)
        + nfs_fattr3(2)  # post_op_attr
        + xdr_u32(1048576, 1048576, 4096, 1048576, 1048576, 4096, 1048576)
        + xdr_u64(0x7FFFFFFFFFFFFFFF)  # maxfilesize
        + xdr_u32(0, 1)  # time_delta 1 ns
        + xdr_u32(0x1B)  # LINK | SYMLINK | HOMOGENEOUS | CANSETTIME
    )
    nfs.s2c(rpc.accepted(0xC0000004, res))
    # GETATTR with AUTH_NULL: the server refuses the flavor
    nfs.c2s(rpc.call(nfs, 0xC0000005, NFS_PROG, 3, 1, AUTH_NULL, fh))
    nfs.s2c(rpc.denied(0xC0000005, AUTH_TOOWEAK))
    nfs.close()
    return cap, rpc


RPC_FIXTURES = [
    ("rpc_getport_udp.pcap", build_rpc_getport_udp),
    ("rpc_getport_tcp.pcap", build_rpc_getport_tcp),
    ("rpc_dump_ooo.pcap", build_rpc_dump_ooo),
    ("rpc_set_unset.pcap", build_rpc_set_unset),
    ("rpcbind_getaddr.pcap", build_rpcbind_getaddr),
    ("rpc_reply_only.pcap", build_rpc_reply_only),
    ("rpc_garbage_111.pcap", build_rpc_garbage_111),
    ("nfs_session.pcap", build_nfs_session),
]


# --------------------------------------------------------------------------
# DCE/RPC and the endpoint mapper (C706, MS-RPCE)
# --------------------------------------------------------------------------
#
# The PDUs are built with scapy's layers: DceRpc5 (connection-oriented, in either
# data representation), DceRpc4 (connectionless), and the NDR stubs and towers of
# the endpoint mapper from scapy.layers.msrpce.ept.  Besides the flows, each fixture
# gets two oracles kept by ``DceLog`` from what was planted:
#   <file>.dcerpc_calls.json  one row per bind/alter_context context item and per request
#   <file>.mappings.json      one row per endpoint fact revealed by an EPM reply or a bind_ack


@dataclass(frozen=True)
class Iface:
    """An interface or transfer syntax: UUID (lowercase) and version."""

    uuid: str
    major: int
    minor: int = 0

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def wire_version(self) -> int:
        """The u32 of a p_syntax_id_t (and of a CL header): major in the low half."""
        return self.major | self.minor << 16

    def syntax(self, cls=DceRpc5AbstractSyntax):
        return cls(if_uuid=UUID(self.uuid), if_version=self.wire_version)


EPM = Iface("e1af8308-5d1f-11c9-91a4-08002b14a0fa", 3)
MGMT = Iface("afa8bd80-7d8a-11c9-bef4-08002b102989", 1)
TAPE_ENGINE = Iface("62b93df0-8b02-11ce-876c-00805f842837", 1)  # Arcserve, 6502
JOB_ENGINE = Iface("dc246bf0-7a7a-11ce-9f88-00805fe43838", 1)  # Arcserve message engine, 6503
DB_ENGINE = Iface("506b1890-14c8-11d1-bbc3-00805fa6962e", 1)  # Arcserve database engine, 6504
SAMR = Iface("12345778-1234-abcd-ef00-0123456789ac", 1)
LSARPC = Iface("12345778-1234-abcd-ef00-0123456789ab", 0)
EVENTLOG6 = Iface("f6beaff7-1e19-4fbb-9f8f-b89e2018337c", 1)
NDR = Iface("8a885d04-1ceb-11c9-9fe8-08002b104860", 2)
NDR64 = Iface("71710533-beba-4937-8319-b5dbef9ccc36", 1)
NIL_UUID = "00000000-0000-0000-0000-000000000000"

PFC_FIRST_FRAG, PFC_LAST_FRAG, PFC_OBJECT_UUID = 0x01, 0x02, 0x80
DCE_REQUEST, DCE_RESPONSE, DCE_FAULT = 0, 2, 3
DCE_BIND, DCE_BIND_ACK, DCE_BIND_NAK, DCE_ALTER, DCE_ALTER_RESP = 11, 12, 13, 14, 15
BIND_RESULTS = {"acceptance": 0, "user_rejection": 1, "provider_rejection": 2, "negotiate_ack": 3}
ABSTRACT_SYNTAX_NOT_SUPPORTED, TRANSFER_SYNTAXES_NOT_SUPPORTED = 1, 2  # p_provider_reason_t
PROTOCOL_VERSION_NOT_SUPPORTED = 4  # bind_nak reject reason
NCA_S_UNK_IF = 0x1C010003
EPT_S_NOT_REGISTERED = 0x16C9A0D6
EPT_LOOKUP, EPT_MAP = 2, 3
RPC_C_AUTHN_WINNT, RPC_C_AUTHN_LEVEL_PKT_PRIVACY = 10, 6

# protocol sequence -> (floor 3 id, floor 4 id, transport of a port endpoint)
PROTSEQ = {
    "ncacn_ip_tcp": (0x0B, 0x07, "tcp"),
    "ncadg_ip_udp": (0x0A, 0x08, "udp"),
    "ncacn_http": (0x0B, 0x1F, "tcp"),
    "ncacn_np": (0x0B, 0x0F, None),
    "ncalrpc": (0x0C, 0x10, None),
}
FLOOR_IPV4, FLOOR_NETBIOS, FLOOR_UUID = 0x09, 0x11, 0x0D


@dataclass(frozen=True)
class Endpoint:
    """Where a tower points: a port and IPv4 address for the IP protocol sequences, a
    pipe or LRPC name (and NetBIOS host for pipes) for the others."""

    protseq: str
    port: int | None = None
    ip: str = "0.0.0.0"
    name: str | None = None
    host: str | None = None

    @property
    def transport(self) -> str | None:
        return PROTSEQ[self.protseq][2]

    def server(self, epm_server: str) -> str:
        """The address the endpoint is on: the tower's, unless 0.0.0.0, which means the
        endpoint mapper that answered."""
        return epm_server if self.ip == "0.0.0.0" else self.ip


def _floor(proto_id: int, rhs, rhs_length: int, **lhs) -> prot_and_addr_t:
    return prot_and_addr_t(
        lhs_length=19 if lhs else 1,
        protocol_identifier=proto_id,
        rhs_length=rhs_length,
        rhs=rhs,
        **lhs,
    )


def _name_floor(proto_id: int, name: str) -> prot_and_addr_t:
    value = name.encode() + b"\x00"
    return _floor(proto_id, value, len(value))


def tower(iface: Iface, ep: Endpoint) -> bytes:
    """A protocol tower (C706 Appendix L): not NDR, always little-endian, but a port
    floor's port and an IPv4 floor's address are big-endian."""
    f3, f4, _ = PROTSEQ[ep.protseq]
    floors = [
        _floor(FLOOR_UUID, iface.minor, 2, uuid=UUID(iface.uuid), version=iface.major),
        _floor(FLOOR_UUID, NDR.minor, 2, uuid=UUID(NDR.uuid), version=NDR.major),
        _floor(f3, b"\x00\x00" if f3 == 0x0C else 0, 2),
    ]
    if ep.port is not None:
        floors += [_floor(f4, ep.port, 2), _floor(FLOOR_IPV4, ep.ip, 4)]
    else:
        floors.append(_name_floor(f4, ep.name))
        if ep.host:
            floors.append(_name_floor(FLOOR_NETBIOS, ep.host))
    return bytes(protocol_tower_t(floors=floors))


def uuid_fields(value: str) -> dict:
    """An NDR uuid_t's fields (C706 Appendix A)."""
    u = UUID(value)
    return {"Data1": u.time_low, "Data2": u.time_mid, "Data3": u.time_hi_version, "Data4": u.bytes[8:]}


def ndr_uuid(value: str) -> ndr_ept.UUID:
    return ndr_ept.UUID(**uuid_fields(value))


def handle_bytes(tag: str | None) -> bytes:
    return noise(16, tag) if tag else b"\x00" * 16


def ndr_handle(tag: str | None = None) -> NDRContextHandle:
    """An EPM entry handle: nil, or a deterministic non-nil one."""
    return NDRContextHandle(attributes=0, uuid=handle_bytes(tag))


def twr_ptr(referent: int, iface: Iface, ep: Endpoint) -> NDRPointer:
    return NDRPointer(referent_id=referent, value=ndr_ept.twr_p_t(tower_octet_string=tower(iface, ep)))


def conf_var(items: list, max_count: int) -> NDRConformantArray:
    """A conformant-varying array of ``max_count`` elements of which ``items`` are sent."""
    return NDRConformantArray(
        max_count=max_count, value=[NDRVaryingArray(actual_count=len(items), value=items)]
    )


def ndr(cls, endian: str, **fields) -> bytes:
    """An NDR 2.0 (32-bit) stub in the given byte order."""
    return bytes(cls(ndr64=False, ndrendian=endian, **fields))


def ept_lookup_reply(endian: str, handle: str | None, entries, max_ents: int, status: int) -> bytes:
    """The ept_lookup response stub: entry_handle, num_ents, the conformant-varying array of
    ept_entry_t {object, tower pointer, annotation}, the deferred towers, status.  The
    array is written here with struct: scapy 2.8 builds the elements of an array of
    structures one at a time, so it neither aligns each element to 4 bytes after a
    varying annotation nor defers the towers until after the whole array, as NDR wants
    (tshark then calls the stub malformed).  The pieces are scapy's."""
    e = {"big": ">", "little": "<"}[endian]

    def u32(*values: int) -> bytes:
        return struct.pack(f"{e}{len(values)}I", *values)

    out = [ndr(NDRContextHandle, endian, attributes=0, uuid=handle_bytes(handle)), u32(len(entries))]
    out.append(u32(max_ents, 0, len(entries)))  # max_count, offset, actual_count
    for referent, (_, _, note) in enumerate(entries, 1):
        text = note.encode() + b"\x00"
        out += [ndr(ndr_ept.UUID, endian, **uuid_fields(NIL_UUID)), u32(referent, 0, len(text)), _pad4(text)]
    for iface, ep, _ in entries:
        octets = tower(iface, ep)
        out += [u32(len(octets), len(octets)), _pad4(octets)]
    return b"".join([*out, u32(status)])


def split(data: bytes, parts: int) -> list[bytes]:
    step = -(-len(data) // parts)
    return [data[i * step : (i + 1) * step] for i in range(parts)]


@dataclass(eq=False)
class Assoc:
    """A DCE/RPC association on one connection (or CL exchanges on one UDP pair): its data
    representation and the presentation contexts the server accepted."""

    conv: Conv
    endian: str = "little"
    contexts: dict[int, Iface] = field(default_factory=dict)
    first_accepted: Iface | None = None

    @property
    def drep(self) -> int:
        return {"big": 0, "little": 1}[self.endian]


class DceLog:
    """The DCE/RPC oracle: what the generator planted, PDU by PDU."""

    def __init__(self):
        self.calls: list[dict] = []
        self.mappings: list[dict] = []
        self._pending: dict[tuple[Assoc, int], list[dict]] = {}
        self._offers: dict[tuple[Assoc, int], list] = {}

    def tables(self) -> dict[str, list[dict]]:
        return {"mappings": self.mappings, "dcerpc_calls": self.calls}

    # rows -------------------------------------------------------------------
    def _call(self, a: Assoc, call_id: int, ptype: str, iface: Iface | None, pending=True, **values) -> dict:
        c = a.conv
        row = {
            "ts_ns": None,
            "reply_ts_ns": None,
            "transport": c.transport,
            "client_ip": c.c,
            "server_ip": c.s,
            "server_port": c.sport,
            "call_id": call_id,
            "ptype": ptype,
            "reply": None,
            "context_id": None,
            "interface_uuid": iface and iface.uuid,
            "interface_version": iface and iface.version,
            "transfer_syntaxes": None,
            "bind_result": None,
            "sec_addr": None,
            "opnum": None,
            "object_uuid": None,
            "fragments": 1,
            "stub_bytes": 0,
            "fault_status": None,
            "reject_reason": None,
            "auth_type": None,
            "auth_level": None,
            "byte_order": a.endian,
        }
        assert set(values) <= set(row), values
        row.update(values)
        self.calls.append(row)
        if pending:
            self._pending.setdefault((a, call_id), []).append(row)
        return row

    def _answer(self, a: Assoc, call_id: int) -> list[dict]:
        return self._pending.pop((a, call_id))

    def learn(self, source, server_ip, iface, ep: Endpoint | None, registered=True, annotation=None) -> dict:
        """A mapping row; its ts is written when the reply revealing it is complete."""
        row = mapping_row(
            source=source,
            server_ip=server_ip,
            transport=ep and ep.transport,
            port=(ep and ep.port) if registered else None,
            interface_uuid=iface and iface.uuid,
            interface_version=iface and iface.version,
            protocol=ep and ep.protseq,
            annotation=annotation or None,
            registered=registered,
        )
        self.mappings.append(row)
        return row

    # connection-oriented PDUs -----------------------------------------------
    def _pdu(
        self, a: Assoc, ptype: int, call_id: int, body, flags=PFC_FIRST_FRAG | PFC_LAST_FRAG, **hdr
    ) -> bytes:
        return bytes(DceRpc5(ptype=ptype, pfc_flags=flags, endian=a.drep, call_id=call_id, **hdr) / body)

    def bind(self, a: Assoc, call_id: int, items, alter=False, minor=0) -> Msg:
        """bind (or alter_context); ``items`` are (context id, interface, transfer syntaxes)."""
        ptype = "alter_context" if alter else "bind"
        rows = [
            self._call(
                a,
                call_id,
                ptype,
                iface,
                context_id=ctx,
                transfer_syntaxes=",".join(t.uuid for t in syntaxes),
            )
            for ctx, iface, syntaxes in items
        ]
        elems = [
            DceRpc5Context(
                cont_id=ctx,
                abstract_syntax=iface.syntax(),
                transfer_syntaxes=[t.syntax(DceRpc5TransferSyntax) for t in syntaxes],
            )
            for ctx, iface, syntaxes in items
        ]
        self._offers[(a, call_id)] = items
        body = (DceRpc5AlterContext if alter else DceRpc5Bind)(context_elem=elems)
        pdu = self._pdu(a, DCE_ALTER if alter else DCE_BIND, call_id, body, rpc_vers_minor=minor)
        return Msg(pdu, sent=stamper(*((r, "ts_ns") for r in rows)))

    def bind_ack(self, a: Assoc, call_id: int, results, sec_addr="", alter=False) -> Msg:
        """bind_ack (or alter_context_resp); ``results`` are (result name, reason), one per
        context item in order; an accepted item gets the transfer syntax it offered first.
        A decimal secondary address reveals the port of every accepted interface."""
        rows, items = self._answer(a, call_id), self._offers.pop((a, call_id))
        wire, targets, facts = [], [], []
        for row, (ctx, iface, syntaxes), (result, reason) in zip(rows, items, results, strict=True):
            row.update(reply="alter_context_resp" if alter else "bind_ack", bind_result=result)
            row["sec_addr"] = sec_addr or None
            targets.append((row, "reply_ts_ns"))
            accepted = result == "acceptance"
            syntax = syntaxes[0] if accepted else Iface(NIL_UUID, 0)
            wire.append(
                DceRpc5Result(
                    result=BIND_RESULTS[result],
                    reason=reason,
                    transfer_syntax=syntax.syntax(DceRpc5TransferSyntax),
                )
            )
            if not accepted:
                continue
            a.contexts[ctx] = iface
            if a.first_accepted is None:
                a.first_accepted = iface
                facts.append(("dcerpc_interface", iface.uuid))
            if sec_addr.isdigit() and not alter:
                ep = Endpoint("ncacn_ip_tcp", int(sec_addr), a.conv.s)
                targets.append((self.learn("dcerpc.bind_ack", a.conv.s, iface, ep), "ts_ns"))
        port_spec = sec_addr.encode() + b"\x00" if sec_addr else b""
        body = (DceRpc5AlterContextResp if alter else DceRpc5BindAck)(
            assoc_group_id=0x0000A1B2,
            sec_addr=DceRpc5PortAny(port_spec=port_spec),
            results=wire,
        )
        pdu = self._pdu(a, DCE_ALTER_RESP if alter else DCE_BIND_ACK, call_id, body)
        return Msg(pdu, tuple(facts), stamper(*targets))

    def bind_nak(self, a: Assoc, call_id: int, reason: int) -> Msg:
        rows = self._answer(a, call_id)
        for row in rows:
            row.update(reply="bind_nak", reject_reason=reason)
        body = DceRpc5BindNak(provider_reject_reason=reason, protocols=[DceRpc5Version(major=5, minor=0)])
        return Msg(
            self._pdu(a, DCE_BIND_NAK, call_id, body), sent=stamper(*((r, "reply_ts_ns") for r in rows))
        )

    def request(self, a: Assoc, call_id, ctx, opnum, stub, frags=1, auth=None, object_uuid=None) -> list[Msg]:
        """A request whose stub is cut into ``frags`` PDUs; ``auth`` = (type, level, context
        id, token) adds a sec_trailer (scapy pads the stub to 16 bytes before it)."""
        row = self._call(
            a,
            call_id,
            "request",
            a.contexts.get(ctx),
            context_id=ctx,
            opnum=opnum,
            object_uuid=object_uuid,
            fragments=frags,
            stub_bytes=len(stub),
            auth_type=auth and auth[0],
            auth_level=auth and auth[1],
        )
        flags = PFC_OBJECT_UUID if object_uuid else 0
        obj = UUID(object_uuid) if object_uuid else None
        pdus = self._fragments(
            a, DCE_REQUEST, call_id, stub, frags, flags, auth, cont_id=ctx, opnum=opnum, object=obj
        )
        pdus[0].sent = stamper((row, "ts_ns"))
        return pdus

    def _fragments(self, a, ptype, call_id, stub, frags, flags, auth, **body) -> list[Msg]:
        """The PDUs of one call or reply; with ``auth`` each carries its own sec_trailer."""
        cls = DceRpc5Request if ptype == DCE_REQUEST else DceRpc5Response
        extra = {}
        if auth:
            auth_type, level, context_id, token = auth
            extra["auth_verifier"] = CommonAuthVerifier(
                auth_type=auth_type, auth_level=level, auth_context_id=context_id, auth_value=token
            )
        parts = split(stub, frags)
        out, left = [], len(stub)
        for i, part in enumerate(parts):
            frag = flags | (PFC_FIRST_FRAG if i == 0 else 0) | (PFC_LAST_FRAG if i == len(parts) - 1 else 0)
            pdu = self._pdu(a, ptype, call_id, cls(alloc_hint=left, **body) / Raw(part), frag, **extra)
            out.append(Msg(pdu))
            left -= len(part)
        return out

    def response(self, a: Assoc, call_id: int, stub: bytes, frags=1, maps=(), auth=None) -> list[Msg]:
        """The response; the reply and the mappings it reveals are complete with its last PDU."""
        (row,) = self._answer(a, call_id)
        row["reply"] = "response"
        pdus = self._fragments(a, DCE_RESPONSE, call_id, stub, frags, 0, auth, cont_id=row["context_id"])
        pdus[-1].sent = stamper((row, "reply_ts_ns"), *((m, "ts_ns") for m in maps))
        return pdus

    def fault(self, a: Assoc, call_id: int, status: int) -> Msg:
        (row,) = self._answer(a, call_id)
        row.update(reply="fault", fault_status=status)
        body = DceRpc5Fault(cont_id=row["context_id"], status=status)
        return Msg(self._pdu(a, DCE_FAULT, call_id, body), sent=stamper((row, "reply_ts_ns")))

    # the endpoint mapper ------------------------------------------------------
    def ept_map_stubs(self, a: Assoc, iface, answers, protseq="ncacn_ip_tcp", max_towers=4):
        """ept_map (opnum 3) for ``iface``: the request's template tower names port 135 and
        0.0.0.0; ``answers`` are the towers' endpoints (none: ept_s_not_registered, a
        negative fact).  A tower with IP 0.0.0.0 means the EPM server's address.  Returns
        the request and response stubs and the mapping rows of the response."""
        template = Endpoint(protseq, 135)
        request = ndr(
            ndr_ept.ept_map_Request,
            a.endian,
            obj=NDRPointer(referent_id=1, value=ndr_uuid(NIL_UUID)),
            map_tower=twr_ptr(2, iface, template),
            entry_handle=ndr_handle(),
            max_towers=max_towers,
        )
        server = a.conv.s
        if answers:
            maps = [self.learn("epm.map", ep.server(server), iface, ep) for ep in answers]
        else:
            maps = [self.learn("epm.map", server, iface, template, registered=False)]
        reply = ndr(
            ndr_ept.ept_map_Response,
            a.endian,
            entry_handle=ndr_handle(),
            ITowers=conf_var([twr_ptr(3 + i, iface, ep) for i, ep in enumerate(answers)], max_towers),
            status=0 if answers else EPT_S_NOT_REGISTERED,
        )
        return request, reply, maps

    def ept_map(self, a: Assoc, call_id, ctx, iface, answers):
        """ept_map over a connection: returns (request PDUs, response PDUs)."""
        request, reply, maps = self.ept_map_stubs(a, iface, answers)
        return self.request(a, call_id, ctx, EPT_MAP, request), self.response(a, call_id, reply, maps=maps)

    def ept_lookup(self, a: Assoc, call_id, ctx, entries, more: str | None = None, after=None, frags=1):
        """ept_lookup (opnum 2) of all elements; ``entries`` are (interface, endpoint,
        annotation).  ``more`` tags the entry handle returned when more entries remain,
        ``after`` the one the request carries.  No entries: ept_s_not_registered, one
        negative fact.  Returns (request, response)."""
        stub = ndr(
            ndr_ept.ept_lookup_Request,
            a.endian,
            inquiry_type=0,  # RPC_C_EP_ALL_ELTS
            object=None,
            Ifid=None,
            vers_option=1,  # RPC_C_VERS_ALL
            entry_handle=ndr_handle(after),
            max_ents=500,
        )
        request = self.request(a, call_id, ctx, EPT_LOOKUP, stub)
        server = a.conv.s
        maps = [
            self.learn("epm.lookup", ep.server(server), iface, ep, annotation=note)
            for iface, ep, note in entries
            if ep.port is not None
        ]
        if not entries:
            maps.append(self.learn("epm.lookup", server, None, None, registered=False))
        reply = ept_lookup_reply(a.endian, more, entries, 500, 0 if entries else EPT_S_NOT_REGISTERED)
        return request, self.response(a, call_id, reply, frags, maps)

    # connectionless ----------------------------------------------------------
    def cl_call(self, a: Assoc, iface, activity, seqnum, opnum, stub, reply, maps=()):
        """A connectionless request and its response (one datagram each, 80-byte header,
        scapy's DceRpc4).  With no bind in connectionless DCE/RPC, every PDU names its
        interface, which stands for the flow's bound interface.  Returns (request, response)."""
        row = self._call(
            a, seqnum, "request", iface, pending=False, opnum=opnum, stub_bytes=len(stub), reply="response"
        )
        facts = (("dcerpc_interface", iface.uuid),)

        def pdu(ptype, flags, boot, body):
            head = DceRpc4(
                ptype=ptype,
                flags1=flags,
                endian=a.drep,
                object=UUID(NIL_UUID),
                if_id=UUID(iface.uuid),
                act_id=UUID(activity),
                server_boot=boot,
                if_vers=iface.wire_version,
                seqnum=seqnum,
                opnum=opnum,
            )
            return bytes(head / Raw(body))

        request = Msg(pdu(DCE_REQUEST, 0x20, 0, stub), facts, stamper((row, "ts_ns")))  # idempotent
        response = Msg(
            pdu(DCE_RESPONSE, 0x08, 0x65E13A00, reply),  # no fack
            sent=stamper((row, "reply_ts_ns"), *((m, "ts_ns") for m in maps)),
        )
        return request, response


# --------------------------------------------------------------------------
# TLS (RFC 8446, RFC 5246, RFC 6066, RFC 7301)
# --------------------------------------------------------------------------
#
# The records are built with scapy's TLS layers (TLSClientHello, TLSServerHello,
# TLS13ServerHello, their extensions, SSLv2ClientHello); every random, key share and
# encrypted byte is fixed.  ``TlsLog`` keeps the oracle <file>.tls.json: one row per
# TCP flow whose handshake start was planted.

TLS_VERSIONS = {0x0200: "SSLv2", 0x0300: "SSLv3", 0x0301: "TLSv1.0", 0x0302: "TLSv1.1"}
TLS_VERSIONS |= {0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}
TLS12, TLS13 = 0x0303, 0x0304
X25519, SECP256R1, X25519MLKEM768 = 0x001D, 0x0017, 0x11EC
TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 = 0x1301, 0x1302
ECDHE_RSA_AES128_GCM_SHA256, ECDHE_RSA_AES256_GCM_SHA384 = 0xC02F, 0xC030
RSA_AES128_CBC_SHA = 0x002F
CLIENT_CIPHERS = [TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, ECDHE_RSA_AES128_GCM_SHA256]
CLIENT_CIPHERS += [ECDHE_RSA_AES256_GCM_SHA384, RSA_AES128_CBC_SHA]
# ECDSA / RSA-PSS / RSA PKCS#1 with SHA-256, SHA-384
SIG_ALGS = [0x0403, 0x0503, 0x0804, 0x0805, 0x0401, 0x0501]
# key share sizes: X25519 32, P-256 uncompressed 65, ML-KEM-768 + X25519 1184 + 32 / 1088 + 32
CLIENT_SHARE = {X25519: 32, SECP256R1: 65, X25519MLKEM768: 1184 + 32}
SERVER_SHARE = {X25519: 32, X25519MLKEM768: 1088 + 32}


def tls_name(version: int) -> str:
    return TLS_VERSIONS.get(version, f"0x{version:04x}")


def is_grease(value: int) -> bool:
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def tls_record(content_type: int, msgs, version=TLS12) -> bytes:
    return bytes(TLS(type=content_type, version=version, msg=msgs))


class TlsLog:
    """The TLS oracle: the hellos planted on each connection."""

    def __init__(self):
        self.rows: list[dict] = []
        self._by_conv: dict[Conv, dict] = {}

    def tables(self) -> dict[str, list[dict]]:
        return {"tls": self.rows}

    def _row(self, conv: Conv, **values) -> dict:
        row = {
            "ts_ns": None,
            "server_ts_ns": None,
            "client_ip": conv.c,
            "server_ip": conv.s,
            "server_port": conv.sport,
            "sslv2": False,
            "client_offset": 0,
            "record_version": None,
            "client_version": None,
            "supported_versions": None,
            "sni": None,
            "alpn": None,
            "version": None,
            "cipher": None,
            "server_alpn": None,
            "hello_retry": False,
            **values,
        }
        self.rows.append(row)
        self._by_conv[conv] = row
        return row

    def client_hello(self, conv, tag, sni=None, alpn=(), versions=(), shares=(X25519,), record=0x0301) -> Msg:
        """A ClientHello (legacy_version TLS 1.2) offering ``versions`` in supported_versions
        (GREASE values allowed) and a key share of each group in ``shares``."""
        ext = []
        if sni:
            ext.append(TLS_Ext_ServerName(servernames=[ServerName(servername=sni.encode())]))
        ext += [
            TLS_Ext_SupportedGroups(groups=[X25519MLKEM768, X25519, SECP256R1]),
            TLS_Ext_SignatureAlgorithms(sig_algs=SIG_ALGS),
        ]
        if alpn:
            ext.append(TLS_Ext_ALPN(protocols=[ProtocolName(protocol=p.encode()) for p in alpn]))
        if versions:
            ext.append(TLS_Ext_SupportedVersion_CH(versions=list(versions)))
            shares_ = [
                KeyShareEntry(group=g, key_exchange=noise(CLIENT_SHARE[g], f"{tag}-ks{g}")) for g in shares
            ]
            ext.append(TLS_Ext_KeyShare_CH(client_shares=shares_))
        ext.append(TLS_Ext_RenegotiationInfo())
        hello = TLSClientHello(
            version=TLS12,
            gmt_unix_time=int.from_bytes(noise(4, tag + "-t"), "big"),
            random_bytes=noise(28, tag + "-r"),
            sid=noise(32, tag + "-sid"),
            ciphers=CLIENT_CIPHERS,
            comp=[0],
            ext=ext,
        )
        row = self._row(
            conv,
            record_version=tls_name(record),
            client_version=tls_name(TLS12),
            supported_versions=",".join(tls_name(v) for v in versions if not is_grease(v)) or None,
            sni=sni,
            alpn=",".join(alpn) or None,
        )
        facts = (("tls_sni", sni),) if sni else ()
        return Msg(tls_record(22, [hello], record), facts, stamper((row, "ts_ns")))

    def sslv2_hello(self, conv, tag, version=0x0301) -> Msg:
        """An SSLv2-compatible ClientHello (RFC 5246 Appendix E.2): an SSLv2 record, whose
        header has no version field (its record version is SSLv2's, 0x0200), carrying the
        highest version the client speaks."""
        ciphers = [0x010080, 0x0700C0, RSA_AES128_CBC_SHA, ECDHE_RSA_AES128_GCM_SHA256]
        hello = SSLv2ClientHello(version=version, ciphers=ciphers, sid=b"", challenge=noise(16, tag))
        row = self._row(conv, sslv2=True, record_version=tls_name(0x0200), client_version=tls_name(version))
        return Msg(bytes(SSLv2(msg=[hello])), sent=stamper((row, "ts_ns")))

    def server_hello(self, conv, tag, version, cipher, alpn=None, group=X25519, done=False) -> Msg:
        """The ServerHello choosing ``version`` (echoing the session id of the hello with the
        same ``tag``): TLS 1.3 says so in supported_versions and answers a key share of
        ``group``; earlier versions say it in legacy_version, followed by ServerHelloDone
        when ``done``."""
        row = self._by_conv[conv]
        row.update(version=tls_name(version), cipher=cipher, server_alpn=alpn)
        ext = [TLS_Ext_ALPN(protocols=[ProtocolName(protocol=alpn.encode())])] if alpn else []
        if version == TLS13:
            share = KeyShareEntry(group=group, key_exchange=noise(SERVER_SHARE[group], tag + "-ks"))
            ext += [TLS_Ext_SupportedVersion_SH(version=TLS13), TLS_Ext_KeyShare_SH(server_share=share)]
            hello = TLS13ServerHello(
                version=TLS12,
                random_bytes=noise(32, tag + "-sr"),
                sid=noise(32, tag + "-sid"),
                cipher=cipher,
                ext=ext,
            )
        else:
            hello = TLSServerHello(
                version=version,
                gmt_unix_time=0x65E13A00,
                random_bytes=noise(28, tag + "-sr"),
                sid=noise(32, tag + "-sid"),
                cipher=cipher,
                ext=ext or None,
            )
        msgs = [hello, TLSServerHelloDone()] if done else [hello]
        data = tls_record(22, msgs, min(version, TLS12))
        return Msg(data, (("tls_version", tls_name(version)),), stamper((row, "server_ts_ns")))


def tls_opaque(content_type: int, n: int, tag: str) -> Msg:
    """An encrypted record (application data, or a TLS 1.2 Finished): ``n`` opaque bytes."""
    return Msg(tls_record(content_type, [TLSApplicationData(data=noise(n, tag))]))


CCS = Msg(tls_record(20, [TLSChangeCipherSpec()]))


# --------------------------------------------------------------------------
# DCE/RPC, EPM and TLS fixtures
# --------------------------------------------------------------------------

ARCSRV, ARCSRV_NB, GUI = "10.20.0.20", r"\\ARCSRV01", "10.20.0.10"
ACCEPT = ("acceptance", 0)
ENGINE_STUB = noise(96, "tape-engine-opnum-43")


def conn(cap, c, cport, s, sport, isn, app, handshake=True) -> TcpConv:
    """A TCP connection whose messages speak ``app``; the server's ISN mirrors the client's."""
    return TcpConv(cap, c, cport, s, sport, isn_c=isn, isn_s=isn ^ 0x80000000, handshake=handshake, app=app)


def dce_assoc(cap, cport, sport, isn, endian="little", c=GUI, s=ARCSRV, handshake=True) -> Assoc:
    """A new TCP connection for a DCE/RPC association."""
    return Assoc(conn(cap, c, cport, s, sport, isn, "dcerpc", handshake), endian)


def as_list(msgs) -> list[Msg]:
    return [msgs] if isinstance(msgs, Msg) else list(msgs)


def call_steps(conv: Conv, request, reply, cuts=()) -> list:
    """A call and its reply, each in one segment (the request cut at ``cuts``), and the
    client's acknowledgement."""
    steps = conv.send_steps(True, as_list(request), cuts) + conv.send_steps(False, as_list(reply))
    return [*steps, conv.ack]


def call(conv: Conv, request, reply, cuts=()) -> None:
    run(call_steps(conv, request, reply, cuts))


def bind_steps(log: DceLog, a: Assoc, iface: Iface, sec_addr: str) -> list:
    """bind (call_id 1, one NDR context) answered with acceptance and ``sec_addr``."""
    return call_steps(a.conv, log.bind(a, 1, [(0, iface, [NDR])]), log.bind_ack(a, 1, [ACCEPT], sec_addr))


def epm_session(log: DceLog, cap, cport: int, isn: int, endian="little") -> Assoc:
    """The client binds the endpoint mapper on TCP 135; the bind_ack names port "135"."""
    a = dce_assoc(cap, cport, 135, isn, endian)
    run(bind_steps(log, a, EPM, "135"))
    return a


def interface_steps(log: DceLog, a: Assoc, iface: Iface, opnum: int, stub=ENGINE_STUB) -> list:
    """On a connection to a learned port: bind (the bind_ack names the port), one request
    and its response, FIN."""
    port = a.conv.sport
    bind = bind_steps(log, a, iface, str(port))  # first: the request names the bound context
    request = log.request(a, 2, 0, opnum, stub)
    reply = log.response(a, 2, noise(24, f"reply-{port}"))
    return bind + call_steps(a.conv, request, reply) + a.conv.t.close()


def use_interface(log, cap, cport, isn, iface, port, opnum, endian="little") -> None:
    run(interface_steps(log, dce_assoc(cap, cport, port, isn, endian), iface, opnum))


def build_epm_tape_engine():
    cap, log = Capture(), DceLog()
    epm = epm_session(log, cap, 49801, 0x31000000)
    call(epm.conv, *log.ept_map(epm, 2, 0, TAPE_ENGINE, [Endpoint("ncacn_ip_tcp", 6502, ARCSRV)]))
    epm.conv.close()
    use_interface(log, cap, 49802, 0x31100000, TAPE_ENGINE, 6502, 43)
    return cap, log


def build_epm_dynamic():
    cap, log = Capture(), DceLog()
    epm = epm_session(log, cap, 49811, 0x32000000)
    # a system-assigned port; the tower's IP 0.0.0.0 stands for the EPM server
    call(epm.conv, *log.ept_map(epm, 2, 0, TAPE_ENGINE, [Endpoint("ncacn_ip_tcp", 49703)]))
    call(epm.conv, *log.ept_map(epm, 3, 0, DB_ENGINE, []))  # ept_s_not_registered
    two = [Endpoint("ncacn_ip_tcp", 49704, ARCSRV), Endpoint("ncacn_ip_tcp", 49705, ARCSRV)]
    call(epm.conv, *log.ept_map(epm, 4, 0, JOB_ENGINE, two))
    epm.conv.close()
    use_interface(log, cap, 49812, 0x32100000, TAPE_ENGINE, 49703, 43)
    return cap, log


def build_dcerpc_bigendian():
    """Everything in big-endian NDR (drep 0x00); the towers stay little-endian."""
    cap, log = Capture(), DceLog()
    epm = epm_session(log, cap, 49821, 0x33000000, "big")
    call(epm.conv, *log.ept_map(epm, 2, 0, JOB_ENGINE, [Endpoint("ncacn_ip_tcp", 6503, ARCSRV)]))
    epm.conv.close()
    use_interface(log, cap, 49822, 0x33100000, JOB_ENGINE, 6503, 47, "big")
    return cap, log


LOOKUP_ENTRIES = [  # (interface, endpoint, annotation) of ARCSRV's endpoint map
    (TAPE_ENGINE, Endpoint("ncacn_ip_tcp", 6502, ARCSRV), "Arcserve Tape Engine"),
    (TAPE_ENGINE, Endpoint("ncacn_np", name=r"\PIPE\tapeengine", host=ARCSRV_NB), "Arcserve Tape Engine"),
    (JOB_ENGINE, Endpoint("ncacn_ip_tcp", 6503, ARCSRV), "Arcserve Job Engine"),
    (SAMR, Endpoint("ncalrpc", name="LRPC-5c2e0c4a0b9f43d1aa"), ""),
    (LSARPC, Endpoint("ncacn_np", name=r"\PIPE\lsass", host=ARCSRV_NB), ""),
    (SAMR, Endpoint("ncacn_ip_tcp", 49668, ARCSRV), ""),
    (EVENTLOG6, Endpoint("ncalrpc", name="eventlog"), "Event log TCPIP"),
    (EVENTLOG6, Endpoint("ncacn_ip_tcp", 49666), "Event log TCPIP"),
    (EPM, Endpoint("ncacn_http", 593, ARCSRV), ""),
    (JOB_ENGINE, Endpoint("ncadg_ip_udp", 49710, ARCSRV), "Arcserve Job Engine"),
]


def ntlm_sealed(seq: int) -> tuple:
    """An NTLMSSP (auth_type 10) sec_trailer at packet privacy (level 6), context 1."""
    token = NTLMSSP_MESSAGE_SIGNATURE(Version=1, Checksum=noise(8, f"ntlm-{seq}"), SeqNum=seq)
    return (RPC_C_AUTHN_WINNT, RPC_C_AUTHN_LEVEL_PKT_PRIVACY, 1, token)


def build_dcerpc_fragmented():
    cap, log = Capture(), DceLog()
    epm = dce_assoc(cap, 49831, 135, 0x34000000)
    # two context items: NDR accepted, NDR64 refused
    items = [(0, EPM, [NDR]), (1, EPM, [NDR64])]
    refused = ("provider_rejection", TRANSFER_SYNTAXES_NOT_SUPPORTED)
    call(epm.conv, log.bind(epm, 1, items), log.bind_ack(epm, 1, [ACCEPT, refused], "135"))
    # the whole map in a response of 2 fragments, then the end of the enumeration
    call(epm.conv, *log.ept_lookup(epm, 2, 0, LOOKUP_ENTRIES, more="lookup-1", frags=2))
    call(epm.conv, *log.ept_lookup(epm, 3, 0, [], after="lookup-1"))
    # alter_context: mgmt accepted, the database engine unknown here
    items = [(2, MGMT, [NDR]), (3, DB_ENGINE, [NDR])]
    refused = ("provider_rejection", ABSTRACT_SYNTAX_NOT_SUPPORTED)
    call(epm.conv, log.bind(epm, 4, items, alter=True), log.bind_ack(epm, 4, [ACCEPT, refused], alter=True))
    call(epm.conv, log.request(epm, 5, 2, 0, b""), log.response(epm, 5, noise(48, "inq_if_ids")))
    # a request on a context never bound
    call(epm.conv, log.request(epm, 6, 5, 0, b""), log.fault(epm, 6, NCA_S_UNK_IF))
    epm.conv.close()

    # the tape engine: a 3-fragment request; FIRST and middle share a segment, LAST is cut in two
    tape = dce_assoc(cap, 49832, 6502, 0x34100000)
    run(bind_steps(log, tape, TAPE_ENGINE, "6502"))
    request = log.request(tape, 2, 0, 38, noise(1800, "tape-engine-opnum-38"), frags=3)
    two = len(request[0].data) + len(request[1].data)
    call(tape.conv, request, log.response(tape, 2, noise(16, "opnum-38-reply")), cuts=[two, two + 40])
    obj = "4c0a9d3e-1b2f-4e6a-8d7c-5b4a3f2e1d0c"
    call(
        tape.conv,
        log.request(tape, 3, 0, 43, ENGINE_STUB, object_uuid=obj),
        log.response(tape, 3, noise(8, "o")),
    )
    tape.conv.close()

    # the job engine: a request sealed with NTLMSSP at packet privacy
    job = dce_assoc(cap, 49833, 6503, 0x34200000)
    run(bind_steps(log, job, JOB_ENGINE, "6503"))
    request = log.request(job, 2, 0, 47, noise(37, "sealed-stub"), auth=ntlm_sealed(0))
    call(job.conv, request, log.response(job, 2, noise(20, "sealed-reply"), auth=ntlm_sealed(1)))
    job.conv.close()

    # the database engine refuses the protocol version 5.1
    db = dce_assoc(cap, 49834, 6504, 0x34300000)
    call(
        db.conv,
        log.bind(db, 1, [(0, DB_ENGINE, [NDR])], minor=1),
        log.bind_nak(db, 1, PROTOCOL_VERSION_NOT_SUPPORTED),
    )
    db.conv.close()
    return cap, log


def build_epm_udp():
    """Connectionless DCE/RPC: ept_map over UDP 135, then a call on the learned UDP port."""
    cap, log = Capture(), DceLog()
    epm = Assoc(UdpConv(cap, GUI, 49841, ARCSRV, 135, app="dcerpc"))
    answers = [Endpoint("ncadg_ip_udp", 49710, ARCSRV), Endpoint("ncacn_ip_tcp", 6503)]
    request, reply, maps = log.ept_map_stubs(epm, JOB_ENGINE, answers, "ncadg_ip_udp")
    act = "6d8c2a10-3f4e-4b5a-9c7d-1e2f3a4b5c6d"
    call(epm.conv, *log.cl_call(epm, EPM, act, 0, EPT_MAP, request, reply, maps))
    job = Assoc(UdpConv(cap, GUI, 49842, ARCSRV, 49710, app="dcerpc"))
    act = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
    call(job.conv, *log.cl_call(job, JOB_ENGINE, act, 0, 47, noise(40, "cl-call"), noise(12, "cl-reply")))
    return cap, log


class Ndr64:
    """An NDR64 stub (MS-RPCE 2.2.5), little-endian, written with struct: referent ids,
    conformance, offsets and counts are 8 bytes aligned to 8, as is a structure holding one;
    everything else keeps NDR's natural alignment.  scapy 2.8 has no NDR64 for the
    endpoint mapper's arrays, so the stubs of the NDR64 fixture are laid out here."""

    def __init__(self):
        self.b = bytearray()

    def align(self, n: int) -> Ndr64:
        self.b += b"\x00" * (-len(self.b) % n)
        return self

    def u32(self, v: int) -> Ndr64:
        self.align(4).b += struct.pack("<I", v)
        return self

    def u16(self, v: int) -> Ndr64:
        self.align(2).b += struct.pack("<H", v)
        return self

    def word(self, v: int) -> Ndr64:
        """A referent id, or an array's conformance, offset or count."""
        self.align(8).b += struct.pack("<Q", v)
        return self

    def raw(self, data: bytes) -> Ndr64:
        self.b += data
        return self

    def uuid(self, value: str) -> Ndr64:
        return self.align(4).raw(UUID(value).bytes_le)

    def handle(self, tag: str | None) -> Ndr64:
        return self.u32(0).raw(handle_bytes(tag))

    def twr(self, octets: bytes) -> Ndr64:
        """twr_t: its conformance (8 bytes), tower_length (4), the octets."""
        return self.word(len(octets)).u32(len(octets)).raw(octets)

    def bytes(self) -> bytes:
        return bytes(self.b)


def ndr64_map_stubs(log: DceLog, a: Assoc, iface: Iface, answers, max_towers=4):
    """ept_map in NDR64: the request's template tower (port 135, 0.0.0.0), the answer's
    towers (none: ept_s_not_registered, a negative fact naming ``iface``)."""
    template = Endpoint("ncacn_ip_tcp", 135)
    q = Ndr64().word(1).uuid(NIL_UUID).word(2).twr(tower(iface, template)).handle(None).u32(max_towers)
    server = a.conv.s
    if answers:
        maps = [log.learn("epm.map", ep.server(server), iface, ep) for ep in answers]
    else:
        maps = [log.learn("epm.map", server, iface, template, registered=False)]
    r = Ndr64().handle(None).u32(len(answers))
    r.word(max_towers).word(0).word(len(answers))
    for i in range(len(answers)):
        r.word(3 + i)
    for ep in answers:
        r.twr(tower(iface, ep))
    r.u32(0 if answers else EPT_S_NOT_REGISTERED)
    return q.bytes(), r.bytes(), maps


def ndr64_lookup_stubs(log: DceLog, a: Assoc, entries, more: str | None, max_ents=500):
    """ept_lookup of all elements in NDR64; ``entries`` are (interface, endpoint,
    annotation): each ept_entry_t (aligned to 8: it holds a pointer) carries its object,
    tower referent and varying annotation, and the towers follow the array."""
    q = Ndr64().u32(0).word(0).word(0).u32(1).handle(None).u32(max_ents)  # all elements, any version
    server = a.conv.s
    maps = [
        log.learn("epm.lookup", ep.server(server), iface, ep, annotation=note)
        for iface, ep, note in entries
        if ep.port is not None
    ]
    r = Ndr64().handle(more).u32(len(entries)).word(max_ents).word(0).word(len(entries))
    for referent, (_, _, note) in enumerate(entries, 1):
        text = note.encode() + b"\x00"
        r.align(8).uuid(NIL_UUID).word(referent).word(0).word(len(text)).raw(text)
    for iface, ep, _ in entries:
        r.twr(tower(iface, ep))
    r.u32(0 if entries else EPT_S_NOT_REGISTERED)
    return q.bytes(), r.bytes(), maps


NDR64_ENTRIES = [  # an endpoint map whose answer takes three fragments
    (TAPE_ENGINE, Endpoint("ncacn_ip_tcp", 6502, ARCSRV), "Arcserve Tape Engine"),
    (JOB_ENGINE, Endpoint("ncacn_ip_tcp", 6503, ARCSRV), "Arcserve Job Engine"),
    (LSARPC, Endpoint("ncacn_np", name=r"\PIPE\lsass", host=ARCSRV_NB), ""),
    (DB_ENGINE, Endpoint("ncacn_ip_tcp", 6504), "Arcserve Database Engine"),
    (JOB_ENGINE, Endpoint("ncadg_ip_udp", 49710, ARCSRV), "Arcserve Job Engine"),
    (EVENTLOG6, Endpoint("ncacn_ip_tcp", 49666), "Event log TCPIP"),
    (EPM, Endpoint("ncacn_http", 593, ARCSRV), ""),
]


def build_epm_ndr64():
    """The endpoint mapper in NDR64, as Windows clients speak it: the bind offers EPM with
    NDR (ctx 0) and NDR64 (ctx 1); the server refuses NDR and accepts NDR64, so every stub
    after it is NDR64 (the towers inside still name NDR for the interfaces they map).  An
    ept_lookup answered with seven towers in three response fragments, an ept_map answered
    with two towers, one answered ept_s_not_registered (the negative fact names the
    interface asked for); then the tape engine on the port learned from the NDR64 answers."""
    cap, log = Capture(), DceLog()
    epm = dce_assoc(cap, 49851, 135, 0x35000000)
    items = [(0, EPM, [NDR]), (1, EPM, [NDR64])]
    refused = ("provider_rejection", TRANSFER_SYNTAXES_NOT_SUPPORTED)
    call(epm.conv, log.bind(epm, 1, items), log.bind_ack(epm, 1, [refused, ACCEPT], "135"))
    request, reply, maps = ndr64_lookup_stubs(log, epm, NDR64_ENTRIES, more="ndr64-lookup")
    call(
        epm.conv,
        log.request(epm, 2, 1, EPT_LOOKUP, request),
        log.response(epm, 2, reply, frags=3, maps=maps),
    )
    two = [Endpoint("ncacn_ip_tcp", 6502, ARCSRV), Endpoint("ncacn_ip_tcp", 49703, ARCSRV)]
    request, reply, maps = ndr64_map_stubs(log, epm, TAPE_ENGINE, two)
    call(epm.conv, log.request(epm, 3, 1, EPT_MAP, request), log.response(epm, 3, reply, maps=maps))
    request, reply, maps = ndr64_map_stubs(log, epm, SAMR, [])
    call(epm.conv, log.request(epm, 4, 1, EPT_MAP, request), log.response(epm, 4, reply, maps=maps))
    epm.conv.close()
    use_interface(log, cap, 49852, 0x35100000, TAPE_ENGINE, 6502, 43)
    return cap, log


def tls13_steps(log: TlsLog, conv, tag, records=2, group=X25519, flight=1480, **hello) -> list:
    """A TLS 1.3 connection: ClientHello; ServerHello, the compatibility
    ChangeCipherSpec and the encrypted rest of the server's flight (``flight`` bytes:
    EncryptedExtensions, Certificate, CertificateVerify, Finished); the client's CCS and
    Finished; ``records`` requests and answers; FIN."""
    ch = log.client_hello(conv, tag, **hello)
    sh = log.server_hello(conv, tag, TLS13, TLS_AES_128_GCM_SHA256, group=group)
    steps = conv.send_steps(True, [ch])
    steps += conv.send_steps(False, [sh, CCS, tls_opaque(23, flight, tag + "-flight")])
    steps += conv.send_steps(True, [CCS, tls_opaque(23, 53, tag + "-fin")])
    return steps + data_steps(conv, tag, records)


def tls12_steps(log: TlsLog, conv, tag, cipher, server_alpn=None, records=2, **hello) -> list:
    """A TLS 1.2 connection: hellos (ServerHello and ServerHelloDone in one record);
    ClientKeyExchange, CCS and Finished; CCS and Finished; then ``records`` exchanges."""
    ch = log.client_hello(conv, tag, **hello)
    sh = log.server_hello(conv, tag, TLS12, cipher, alpn=server_alpn, done=True)
    cke = TLSClientKeyExchange(
        exchkeys=ClientECDiffieHellmanPublic(ecdh_Yc=b"\x04" + noise(64, tag + "-cke"))
    )
    finished = [CCS, tls_opaque(22, 40, tag + "-fin")]
    steps = conv.send_steps(True, [ch]) + conv.send_steps(False, [sh])
    steps += conv.send_steps(True, [Msg(tls_record(22, [cke])), *finished])
    steps += conv.send_steps(False, finished)
    return steps + data_steps(conv, tag, records)


def data_steps(conv, tag, records) -> list:
    """``records`` application_data requests and answers, then FIN."""
    steps = []
    for i in range(records):
        steps += call_steps(
            conv, tls_opaque(23, 120 + 16 * i, f"{tag}-q{i}"), tls_opaque(23, 340, f"{tag}-a{i}")
        )
    return steps + conv.t.close()


def build_tls_mgmt():
    """The CA management service: TLS on 7099, plaintext on 2099, TLS on a callback."""
    cap, log = Capture(), TlsLog()
    peer = "10.20.0.21"
    sni = "casmgmt.arcsrv01.example"
    run(
        tls12_steps(
            log,
            conn(cap, GUI, 50100, ARCSRV, 7099, 0x41000000, "tls"),
            "tls12",
            ECDHE_RSA_AES128_GCM_SHA256,
            server_alpn="http/1.1",
            sni=sni,
            alpn=("http/1.1",),
            versions=(TLS13, TLS12),
        )
    )
    run(
        tls13_steps(
            log,
            conn(cap, peer, 50200, ARCSRV, 7099, 0x42000000, "tls"),
            "tls13",
            sni=sni,
            alpn=("h2", "http/1.1"),
            versions=(0x5A5A, TLS13, TLS12),  # GREASE first, as browsers do
        )
    )
    # plaintext on the non-SSL port
    plain = conn(cap, GUI, 50101, ARCSRV, 2099, 0x41100000, None)
    login = Msg(b"CASMGMT/1.0 LOGIN caroot\r\nHost: arcsrv01\r\n\r\n")
    call(plain, login, Msg(struct.pack(">HHI", 0x00C8, 6, 0) + b"ok\r\n\r\n"))
    plain.close()
    # the server calls the client back on a port of the callback range, without SNI
    back = conn(cap, ARCSRV, 50310, GUI, 20050, 0x43000000, "tls")
    run(tls13_steps(log, back, "callback", records=1, versions=(TLS13, TLS12)))
    # a post-quantum key share makes the ClientHello span two segments
    big = conn(cap, GUI, 50102, ARCSRV, 7099, 0x41200000, "tls")
    shares = (X25519MLKEM768, X25519, SECP256R1)
    hello = {"sni": "pq." + sni, "alpn": ("h2", "http/1.1"), "versions": (TLS13,), "shares": shares}
    run(tls13_steps(log, big, "pq", 1, X25519MLKEM768, **hello))
    sent = [f.meta.payload for f in cap.frames if f.meta and f.meta.sport == 50102 and f.meta.payload]
    assert sent[0] == 1460, "the ClientHello fills a first segment"
    # an SSLv2-compatible ClientHello answered in TLS 1.0
    old = conn(cap, peer, 50201, ARCSRV, 7099, 0x42100000, "tls")
    call(
        old,
        log.sslv2_hello(old, "sslv2"),
        log.server_hello(old, "sslv2", 0x0301, RSA_AES128_CBC_SHA, done=True),
    )
    old.close()
    # refused: nothing listens on 7099 at the other host
    refused = Tcp(cap, GUI, 50103, peer, 7099, isn_c=0x41300000)
    refused.send(True, "S")
    refused.send(False, "RA", seq=0)
    return cap, log


# --------------------------------------------------------------------------
# Names: DNS over UDP and TCP, mDNS, NetBIOS name service
# --------------------------------------------------------------------------
# ``NameLog`` keeps the oracle <file>.names.json: one row per (name, address) each planted
# response or registration binds, in the order the decoder writes them (a message's address
# records under their own names first, then each CNAME alias in record order).

RESOLVER, WINS = "10.20.0.2", "10.20.0.3"


class NameLog:
    """The names oracle."""

    def __init__(self):
        self.rows: list[dict] = []

    def tables(self) -> dict[str, list[dict]]:
        return {"names": self.rows}

    def _rows(self, sender: str, source: str, bindings) -> Callable[[int], None]:
        planted = []
        for name, ip, record, ttl, canonical in bindings:
            row = {"ts_ns": None, "name": name, "ip": ip, "source": source, "record": record}
            row |= {"ttl": ttl, "canonical": canonical, "sender_ip": sender}
            planted.append(row)
        self.rows.extend(planted)
        return stamper(*((r, "ts_ns") for r in planted))

    def dns(self, sender: str, qname: str, qtype: str, records, *, rcode=0, mdns=False, compress=True) -> Msg:
        """A response to ``qname``: ``records`` are (owner, type, data, ttl), with type A, AAAA or
        CNAME; the oracle follows every alias's CNAME chain to the addresses it ends at."""
        an = [
            DNSRR(rrname=o, type=t, rdata=d, ttl=ttl, rclass=0x8001 if mdns else 1)
            for o, t, d, ttl in records
        ]
        q = [] if mdns else [DNSQR(qname=qname, qtype=qtype)]
        msg = DNS(
            id=0 if mdns else 0x5000 + len(self.rows), qr=1, aa=int(mdns), rd=int(not mdns), ra=int(not mdns)
        )
        msg.rcode, msg.qd, msg.an = rcode, q, an
        data = bytes(msg.compress() if compress else msg)
        addrs = [(o, d, t, ttl) for o, t, d, ttl in records if t in ("A", "AAAA")]
        cnames = {o: (d, ttl) for o, t, d, ttl in records if t == "CNAME"}
        bindings = [(o, ip, t, ttl, None) for o, ip, t, ttl in addrs]
        for alias in cnames:
            end, least = alias, 1 << 32
            while end in cnames:
                end, ttl = cnames[end]
                least = min(least, ttl)
            bindings += [(alias, ip, t, min(least, ttl), end) for o, ip, t, ttl in addrs if o == end]
        return Msg(data, sent=self._rows(sender, "mdns" if mdns else "dns", bindings))

    def nbns(self, sender: str, op: str, entries, ttl=300_000) -> Msg:
        """A NetBIOS name service message binding (name, suffix, group, address) ``entries``: a
        positive query response (``op`` "answer": one NB record per name in the answer section)
        or a registration (``op`` "register": the name as the question, its NB record in the
        additional section, the name compressed to a pointer). The oracle binds the unique names
        of suffix 0x00 and 0x20, once per name and address."""
        rr = b""
        bindings = []
        for name, suffix, group, ip in entries:
            if op == "register":
                rr += b"\xc0\x0c"
            else:
                rr += nb_name(name, suffix)
            flags = 0x8000 if group else 0x6000
            rr += struct.pack(">HHIHH", 0x20, 1, ttl, 6, flags) + bytes(map(int, ip.split(".")))
            binding = (name.lower(), ip, "NB", ttl, None)
            if not group and suffix in (0x00, 0x20) and binding not in bindings:
                bindings.append(binding)
        if op == "register":
            (name, suffix, _, _) = entries[0]
            head = struct.pack(">HHHHHH", 0x7C00 + len(self.rows), 0x2910, 1, 0, 0, len(entries))
            body = nb_name(name, suffix) + struct.pack(">HH", 0x20, 1) + rr
        else:
            head = struct.pack(">HHHHHH", 0x8A00 + len(self.rows), 0x8500, 0, len(entries), 0, 0)
            body = rr
        return Msg(head + body, sent=self._rows(sender, "nbns", bindings))


def nb_name(name: str, suffix: int) -> bytes:
    """A NetBIOS name in the first-level encoding (RFC 1001 §14.1), as a one-label DNS name."""
    raw = name.upper().ljust(15).encode()[:15] + bytes([suffix])
    return b"\x20" + bytes(c for b in raw for c in (0x41 + (b >> 4), 0x41 + (b & 15))) + b"\x00"


class DnsTcpConv(TcpConv):
    """DNS over TCP: each message behind its two-byte length (RFC 1035 §4.2.2)."""

    def frame(self, msg: bytes) -> bytes:
        return struct.pack(">H", len(msg)) + msg


def build_names():
    """Names a host-specific configuration line can be matched through: DNS answers over UDP (A,
    AAAA, a CNAME chain, an answer for nothing), DNS over TCP (two answers in one segment, one cut
    across three), mDNS, and NetBIOS name service answers and registrations."""
    cap, log = Capture(), NameLog()
    udp = UdpConv(cap, GUI, 53001, RESOLVER, 53, None)
    udp.c2s(bytes(DNS(id=0x4001, rd=1, qd=DNSQR(qname="arcsrv01.example.com", qtype="A"))))
    udp.send(
        False, [log.dns(RESOLVER, "arcsrv01.example.com", "A", [("arcsrv01.example.com", "A", ARCSRV, 3600)])]
    )
    chain = [
        ("backup.example.com", "CNAME", "arcsrv02.example.com", 300),
        ("arcsrv02.example.com", "A", "10.20.0.21", 60),
    ]
    udp2 = UdpConv(cap, GUI, 53002, RESOLVER, 53, None)
    udp2.c2s(bytes(DNS(id=0x4002, rd=1, qd=DNSQR(qname="backup.example.com", qtype="A"))))
    udp2.send(False, [log.dns(RESOLVER, "backup.example.com", "A", chain, compress=False)])
    six = [
        ("backup.example.com", "CNAME", "alias.example.com", 600),
        ("alias.example.com", "CNAME", "arcsrv02.example.com", 120),
        ("arcsrv02.example.com", "AAAA", "2001:db8::21", 3600),
    ]
    udp2.c2s(bytes(DNS(id=0x4003, rd=1, qd=DNSQR(qname="backup.example.com", qtype="AAAA"))))
    udp2.send(False, [log.dns(RESOLVER, "backup.example.com", "AAAA", six)])
    # No such name: a response that binds nothing.
    udp2.c2s(bytes(DNS(id=0x4004, rd=1, qd=DNSQR(qname="gone.example.com", qtype="A"))))
    udp2.send(False, [log.dns(RESOLVER, "gone.example.com", "A", [], rcode=3)])
    # DNS over TCP: two queries, both answers in one segment, then one answer cut in three.
    tcp = DnsTcpConv(cap, GUI, 53003, RESOLVER, 53, 0x53000000, 0x53800000, app=None)
    queries = [
        DNS(id=0x4010 + i, rd=1, qd=DNSQR(qname=q, qtype="A"))
        for i, q in enumerate(("mgmt.example.com", "agent01.example.com"))
    ]
    tcp.send(True, [Msg(tcp.frame(bytes(q))) for q in queries])
    answers = [
        log.dns(
            RESOLVER,
            "mgmt.example.com",
            "A",
            [
                ("mgmt.example.com", "CNAME", "arcsrv01.example.com", 900),
                ("arcsrv01.example.com", "A", ARCSRV, 3600),
            ],
        ),
        log.dns(
            RESOLVER,
            "agent01.example.com",
            "A",
            [
                ("agent01.example.com", "A", "10.20.0.31", 1200),
                ("agent01.example.com", "A", "10.20.0.131", 1200),
            ],
        ),
    ]
    tcp.send(False, [Msg(tcp.frame(m.data), sent=m.sent) for m in answers])
    tcp.ack()
    tcp.send(
        True, [Msg(tcp.frame(bytes(DNS(id=0x4020, rd=1, qd=DNSQR(qname="tape.example.com", qtype="A")))))]
    )
    cut = log.dns(RESOLVER, "tape.example.com", "A", [("tape.example.com", "A", "10.20.0.40", 30)])
    tcp.send(False, [Msg(tcp.frame(cut.data), sent=cut.sent)], cuts=(1, 20))
    tcp.ack()
    tcp.close()
    # mDNS: a host announces its name to the group.
    mdns = UdpConv(cap, "10.20.0.50", 5353, "224.0.0.251", 5353, None)
    mdns.send(True, [log.dns("10.20.0.50", "", "A", [("nas01.local", "A", "10.20.0.50", 120)], mdns=True)])
    # NetBIOS: WINS answers a query for ARCSRV03<20>; an agent registers its names by broadcast.
    nb = UdpConv(cap, GUI, 137, WINS, 137, None)
    nb.c2s(nb_query("ARCSRV03", 0x20))
    nb.send(False, [log.nbns(WINS, "answer", [("ARCSRV03", 0x20, False, "10.20.0.22")])])
    reg = UdpConv(cap, "10.20.0.23", 137, "10.20.0.255", 137, None)
    reg.send(True, [log.nbns("10.20.0.23", "register", [("AGENT04", 0x00, False, "10.20.0.23")])])
    reg.send(True, [log.nbns("10.20.0.23", "register", [("EXAMPLE", 0x00, True, "10.20.0.23")])])
    reg.send(True, [log.nbns("10.20.0.23", "register", [("EXAMPLE", 0x1B, False, "10.20.0.23")])])
    return cap, log


def nb_query(name: str, suffix: int) -> bytes:
    return (
        struct.pack(">HHHHHH", 0x8A00, 0x0110, 1, 0, 0, 0)
        + nb_name(name, suffix)
        + struct.pack(">HH", 0x20, 1)
    )


def build_starttls():
    """TLS after a plaintext preamble, with no port list to find it: SMTP STARTTLS on 25 (TLS
    1.2), PostgreSQL's SSLRequest answered `S` on 5432 (TLS 1.3), and a PostgreSQL connection
    that stays plaintext (its StartupMessage answered by an ErrorResponse)."""
    cap, log = Capture(), TlsLog()

    def upgrade(conv, preamble: list[tuple[bool, bytes]], tag: str, version: int, **hello) -> list:
        steps, offset = [], 0
        for from_client, data in preamble:
            steps += conv.send_steps(from_client, [Msg(data)])
            if from_client:
                steps.append(conv.ack)
                offset += len(data)
        ch = log.client_hello(conv, tag, **hello)
        log._by_conv[conv]["client_offset"] = offset
        ch.facts = (*ch.facts, ("app", "tls"), ("starttls", "client_hello"))
        if version == TLS13:
            sh = log.server_hello(conv, tag, TLS13, TLS_AES_128_GCM_SHA256)
            flight = [sh, CCS, tls_opaque(23, 900, tag + "-flight")]
        else:
            flight = [log.server_hello(conv, tag, TLS12, ECDHE_RSA_AES128_GCM_SHA256, done=True)]
        steps += conv.send_steps(True, [ch]) + conv.send_steps(False, flight)
        steps += conv.send_steps(True, [CCS, tls_opaque(22 if version == TLS12 else 23, 53, tag + "-fin")])
        return steps + data_steps(conv, tag, 1)

    smtp = conn(cap, GUI, 49861, ARCSRV, 25, 0x36000000, None)
    preamble = [
        (False, b"220 arcsrv01.example ESMTP\r\n"),
        (True, b"EHLO gui.example\r\n"),
        (False, b"250-arcsrv01.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
        (True, b"STARTTLS\r\n"),
        (False, b"220 2.0.0 Ready to start TLS\r\n"),
    ]
    run(upgrade(smtp, preamble, "smtp", TLS12, sni="mail.arcsrv01.example"))
    pg = conn(cap, GUI, 49862, ARCSRV, 5432, 0x36100000, None)
    ssl_request = struct.pack(">II", 8, 80877103)
    run(upgrade(pg, [(True, ssl_request), (False, b"S")], "pgsql", TLS13, versions=(TLS13, TLS12)))
    plain = conn(cap, GUI, 49863, ARCSRV, 5432, 0x36200000, None)
    params = b"user\x00arcserve\x00database\x00asdb\x00\x00"
    startup = struct.pack(">II", 8 + len(params), 196608) + params
    error = b"E" + struct.pack(">I", 31) + b"SFATAL\x00C28000\x00Mno SSL off\x00\x00"
    run(call_steps(plain, Msg(startup), Msg(error)) + plain.t.close())
    return cap, log


# --------------------------------------------------------------------------
# DCE/RPC over SMB2 named pipes (MS-SMB2, written with struct)
# --------------------------------------------------------------------------

SMB2_CREATE, SMB2_CLOSE, SMB2_READ, SMB2_WRITE, SMB2_IOCTL = 0x05, 0x06, 0x08, 0x09, 0x0B
FSCTL_PIPE_TRANSCEIVE = 0x0011C017
STATUS_BUFFER_OVERFLOW = 0x80000005
RELATED_FID = b"\xff" * 16


def smb2(command: int, mid: int, body: bytes, response=False, status=0, related=False) -> bytes:
    """One SMB2 message: the 64-byte sync header, then ``body``."""
    flags = (1 if response else 0) | (4 if related else 0)
    head = struct.pack(
        "<4sHHIHHIIQIIQ16s", b"\xfeSMB", 64, 1, status, command, 1, flags, 0, mid, 0, 1, 0x4242, b""
    )
    return head + body


def compound(*messages: bytes) -> bytes:
    """SMB2 messages chained by NextCommand, each padded to 8 bytes."""
    out = b""
    for i, m in enumerate(messages):
        if i < len(messages) - 1:
            m += b"\x00" * ((-len(m)) % 8)
            m = m[:20] + struct.pack("<I", len(m)) + m[24:]
        out += m
    return out


def nbss(m: bytes) -> bytes:
    """The NetBIOS session header of direct TCP (type 0, 24-bit length)."""
    return struct.pack(">I", len(m)) + m


def create_req(mid: int, name: str) -> bytes:
    raw = name.encode("utf-16-le")
    body = struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x0012019F, 0, 7, 1, 0, 120, len(raw), 0, 0)
    return smb2(SMB2_CREATE, mid, body + raw)


def create_resp(mid: int, fid: bytes) -> bytes:
    body = struct.pack("<HBBI", 89, 0, 0, 1) + b"\x00" * 48 + struct.pack("<II", 0x80, 0) + fid + b"\x00" * 8
    return smb2(SMB2_CREATE, mid, body, response=True)


def write_req(mid: int, fid: bytes, data: bytes, related=False) -> bytes:
    body = struct.pack("<HHIQ16sIIHHI", 49, 112, len(data), 0, fid, 0, 0, 0, 0, 0)
    return smb2(SMB2_WRITE, mid, body + data, related=related)


def write_resp(mid: int, n: int) -> bytes:
    return smb2(SMB2_WRITE, mid, struct.pack("<HHIIHH", 17, 0, n, 0, 0, 0), response=True)


def read_req(mid: int, fid: bytes, length: int) -> bytes:
    body = struct.pack("<HBBIQ16sIIIHH", 49, 0, 0, length, 0, fid, 0, 0, 0, 0, 0) + b"\x00"
    return smb2(SMB2_READ, mid, body)


def read_resp(mid: int, data: bytes, more: bool) -> bytes:
    body = struct.pack("<HBBIII", 17, 80, 0, len(data), 0, 0) + data
    return smb2(SMB2_READ, mid, body, response=True, status=STATUS_BUFFER_OVERFLOW if more else 0)


def ioctl_msg(mid: int, fid: bytes, data: bytes, response=False, more=False) -> bytes:
    if response:
        body = struct.pack("<HHI16sIIIIII", 49, 0, FSCTL_PIPE_TRANSCEIVE, fid, 112, 0, 112, len(data), 0, 0)
        return smb2(SMB2_IOCTL, mid, body + data, True, STATUS_BUFFER_OVERFLOW if more else 0)
    body = struct.pack(
        "<HHI16sIIIIIIII", 57, 0, FSCTL_PIPE_TRANSCEIVE, fid, 120, len(data), 0, 0, 0, 1024, 1, 0
    )
    return smb2(SMB2_IOCTL, mid, body + data)


def close_req(mid: int, fid: bytes) -> bytes:
    return smb2(SMB2_CLOSE, mid, struct.pack("<HHI16s", 24, 0, 0, fid))


def close_resp(mid: int) -> bytes:
    return smb2(SMB2_CLOSE, mid, struct.pack("<HHI", 60, 0, 0) + b"\x00" * 52, response=True)


class SmbConv(TcpConv):
    """A TCP connection to 445; its messages are SMB2 messages in NetBIOS session framing."""

    def frame(self, msg: bytes) -> bytes:
        return nbss(msg)

    def smb(self, from_client: bool, msg: bytes, carried: list[Msg] = ()) -> None:
        """Sends one SMB message; it completes every DCE/RPC message in ``carried``."""
        facts = tuple(f for m in carried for f in m.facts)
        sent = [m.sent for m in carried if m.sent]
        run(self.send_steps(from_client, [Msg(nbss(msg), facts, (lambda ts: [s(ts) for s in sent]))]))


def pdu_bytes(msgs) -> bytes:
    return b"".join(m.data for m in as_list(msgs))


def build_smb_pipe():
    """The endpoint mapper over \\pipe\\epmapper on SMB2: the bind written, its bind_ack read in
    two READs (the first answered STATUS_BUFFER_OVERFLOW: a PDU longer than the read's credit),
    ept_map through FSCTL_PIPE_TRANSCEIVE whose output overflows and is read on; then a compound
    CREATE + WRITE (related: the file id all ones) that binds SAMR on \\pipe\\samr, a call on it;
    then the tape engine on the port the endpoint mapper gave."""
    cap, log = Capture(), DceLog()
    conv = SmbConv(cap, GUI, 49861, ARCSRV, 445, isn_c=0x36000000, isn_s=0xB6000000, app="dcerpc")
    a = Assoc(conv)
    epm_fid, samr_fid = bytes(range(16)), bytes(range(16, 32))
    conv.smb(True, create_req(2, "epmapper"))
    conv.smb(False, create_resp(2, epm_fid))
    conv.ack()
    bind = log.bind(a, 1, [(0, EPM, [NDR])])
    conv.smb(True, write_req(3, epm_fid, bind.data), [bind])
    conv.smb(False, write_resp(3, len(bind.data)))
    ack = log.bind_ack(a, 1, [ACCEPT], "")
    conv.smb(True, read_req(4, epm_fid, 24))
    conv.smb(False, read_resp(4, ack.data[:24], more=True))
    conv.smb(True, read_req(5, epm_fid, 1024))
    conv.smb(False, read_resp(5, ack.data[24:], more=False), [ack])
    request, reply = log.ept_map(a, 2, 0, TAPE_ENGINE, [Endpoint("ncacn_ip_tcp", 6502, ARCSRV)])
    conv.smb(True, ioctl_msg(6, epm_fid, pdu_bytes(request)), as_list(request))
    out = pdu_bytes(reply)
    conv.smb(False, ioctl_msg(6, epm_fid, out[:40], response=True, more=True))
    conv.smb(True, read_req(7, epm_fid, 1024))
    conv.smb(False, read_resp(7, out[40:], more=False), as_list(reply))
    conv.ack()
    for row in log.calls:
        row["pipe"] = "epmapper"
    b = Assoc(conv)
    sbind = log.bind(b, 1, [(0, SAMR, [NDR])])
    conv.smb(
        True, compound(create_req(8, "samr"), write_req(9, RELATED_FID, sbind.data, related=True)), [sbind]
    )
    conv.smb(False, compound(create_resp(8, samr_fid), write_resp(9, len(sbind.data))))
    sack = log.bind_ack(b, 1, [ACCEPT], "")
    conv.smb(True, read_req(10, samr_fid, 1024))
    conv.smb(False, read_resp(10, sack.data, more=False), [sack])
    srequest = log.request(b, 2, 0, 6, noise(32, "samr-connect"))
    sreply = log.response(b, 2, noise(20, "samr-handle"))
    conv.smb(True, ioctl_msg(11, samr_fid, pdu_bytes(srequest)), as_list(srequest))
    conv.smb(False, ioctl_msg(11, samr_fid, pdu_bytes(sreply), response=True), as_list(sreply))
    for row in log.calls:
        row.setdefault("pipe", "samr")
    conv.smb(True, close_req(12, epm_fid))
    conv.smb(False, close_resp(12))
    conv.smb(True, close_req(13, samr_fid))
    conv.smb(False, close_resp(13))
    conv.close()
    use_interface(log, cap, 49862, 0x36100000, TAPE_ENGINE, 6502, 43)
    return cap, log


# --------------------------------------------------------------------------
# DCE/RPC over SMB1 named pipes (MS-CIFS, written with struct)
# --------------------------------------------------------------------------

SMB1_CLOSE, SMB1_READ_ANDX, SMB1_WRITE_ANDX, SMB1_NT_CREATE_ANDX = 0x04, 0x2E, 0x2F, 0xA2
SMB1_TID, SMB1_UID = 0x0801, 0x0064
WRITE_MSG_START, WRITE_RAW_MODE = 0x0008, 0x0004


def smb1(mid: int, blocks, response=False, status=0, pid=0xFEFF) -> bytes:
    """One SMB1 message: the 32-byte header, then the command blocks of an AndX chain. Each block
    is (command, build) where ``build(at)`` gives the words after the AndX prefix (AndX commands)
    or all of them, and the bytes, for a block whose word count is at offset ``at``."""
    flags = 0x98 if response else 0x18  # case-insensitive, canonical paths, (reply)
    head = struct.pack(
        "<4sBIBHH8sHHHHH", b"\xffSMB", blocks[0][0], status, flags, 0xC807, 0, b"", 0, SMB1_TID, pid, SMB1_UID, mid
    )
    out, at = b"", 32
    for i, (command, build) in enumerate(blocks):
        andx = command != SMB1_CLOSE
        words, data = build(at)
        if andx:
            nxt = blocks[i + 1][0] if i + 1 < len(blocks) else 0xFF
            after = at + 1 + 4 + len(words) + 2 + len(data)
            words = struct.pack("<BBH", nxt, 0, after if nxt != 0xFF else 0) + words
        block = bytes([len(words) // 2]) + words + struct.pack("<H", len(data)) + data
        out, at = out + block, at + len(block)
    return head + out


def nt_create_andx_req(name: str):
    raw = name.encode("utf-16-le")

    def build(at):
        words = struct.pack("<BHIIIQIIIIIB", 0, len(raw), 0x16, 0, 0x2019F, 0, 0, 3, 1, 0, 2, 0)
        pad = b"\x00" * ((at + 1 + 48 + 2) % 2)  # Unicode text starts at an even offset
        return words, pad + raw + b"\x00\x00"

    return (SMB1_NT_CREATE_ANDX, build)


def nt_create_andx_resp(fid: int):
    words = struct.pack("<BHI4QIQQHHB", 0, fid, 1, 0, 0, 0, 0, 0x80, 4096, 0, 2, 0x05FF, 0)
    return (SMB1_NT_CREATE_ANDX, lambda at: (words, b""))


def write_andx_req(fid: int, data: bytes, mode=WRITE_MSG_START):
    """Write AndX; in raw mode the message's length goes before it, as a named pipe wants."""
    if mode & WRITE_RAW_MODE:
        data = struct.pack("<H", len(data)) + data

    def build(at):
        offset = at + 1 + 28 + 2 + 1  # after the words, the byte count and one pad byte
        words = struct.pack("<HIIHHHHHI", fid, 0, 0, mode, len(data), 0, len(data), offset, 0)
        return words, b"\x00" + data

    return (SMB1_WRITE_ANDX, build)


def write_andx_resp(n: int):
    return (SMB1_WRITE_ANDX, lambda at: (struct.pack("<HHHH", n, 0xFFFF, 0, 0), b""))


def read_andx_req(fid: int, n: int):
    return (SMB1_READ_ANDX, lambda at: (struct.pack("<HIHHIHI", fid, 0, n, n, 0, n, 0), b""))


def read_andx_resp(data: bytes):
    def build(at):
        offset = at + 1 + 24 + 2 + 1
        return struct.pack("<HHHHHH8s", 0xFFFF, 0, 0, len(data), offset, 0, b""), b"\x00" + data

    return (SMB1_READ_ANDX, build)


def close1_req(fid: int):
    return (SMB1_CLOSE, lambda at: (struct.pack("<HI", fid, 0xFFFFFFFF), b""))


def close1_resp():
    return (SMB1_CLOSE, lambda at: (b"", b""))


def build_smb1_pipe():
    """The endpoint mapper over \\epmapper on SMB1, as Windows XP-era clients and Samba's rpcclient
    under `client ipc max protocol = NT1` speak it: NT Create AndX opens the pipe; the bind is
    written with Write AndX (message start) and its bind_ack read with Read AndX; ept_map is
    written in raw mode (a 2-byte message length before the PDU) by a Write AndX chained to a Read
    AndX, whose response (STATUS_BUFFER_OVERFLOW) holds the answer's first 40 bytes and a second
    Read AndX the rest. Then LSARPC on \\lsarpc, a request in two fragments (two Write AndX), its
    response read whole; both pipes closed; then the tape engine on the port ept_map gave."""
    cap, log = Capture(), DceLog()
    conv = SmbConv(cap, GUI, 49871, ARCSRV, 445, isn_c=0x37000000, isn_s=0xB7000000, app="dcerpc")
    epm_fid, lsa_fid = 0x4000, 0x4001
    a = Assoc(conv)
    conv.smb(True, smb1(10, [nt_create_andx_req("\\epmapper")]))
    conv.smb(False, smb1(10, [nt_create_andx_resp(epm_fid)], response=True))
    conv.ack()
    bind = log.bind(a, 1, [(0, EPM, [NDR])])
    conv.smb(True, smb1(11, [write_andx_req(epm_fid, bind.data)]), [bind])
    conv.smb(False, smb1(11, [write_andx_resp(len(bind.data))], response=True))
    ack = log.bind_ack(a, 1, [ACCEPT], "")
    conv.smb(True, smb1(12, [read_andx_req(epm_fid, 1024)]))
    conv.smb(False, smb1(12, [read_andx_resp(ack.data)], response=True), [ack])
    request, reply = log.ept_map(a, 2, 0, TAPE_ENGINE, [Endpoint("ncacn_ip_tcp", 6502, ARCSRV)])
    req = pdu_bytes(request)
    raw = WRITE_MSG_START | WRITE_RAW_MODE
    conv.smb(True, smb1(13, [write_andx_req(epm_fid, req, raw), read_andx_req(epm_fid, 40)]), as_list(request))
    out = pdu_bytes(reply)
    chained = [write_andx_resp(len(req) + 2), read_andx_resp(out[:40])]
    conv.smb(False, smb1(13, chained, response=True, status=STATUS_BUFFER_OVERFLOW))
    conv.smb(True, smb1(14, [read_andx_req(epm_fid, 1024)]))
    conv.smb(False, smb1(14, [read_andx_resp(out[40:])], response=True), as_list(reply))
    conv.ack()
    for row in log.calls:
        row["pipe"] = "epmapper"
    b = Assoc(conv)
    conv.smb(True, smb1(15, [nt_create_andx_req("\\lsarpc")]))
    conv.smb(False, smb1(15, [nt_create_andx_resp(lsa_fid)], response=True))
    lbind = log.bind(b, 1, [(0, LSARPC, [NDR])])
    conv.smb(True, smb1(16, [write_andx_req(lsa_fid, lbind.data)]), [lbind])
    conv.smb(False, smb1(16, [write_andx_resp(len(lbind.data))], response=True))
    lack = log.bind_ack(b, 1, [ACCEPT], "")
    conv.smb(True, smb1(17, [read_andx_req(lsa_fid, 1024)]))
    conv.smb(False, smb1(17, [read_andx_resp(lack.data)], response=True), [lack])
    first, last = log.request(b, 2, 0, 14, noise(96, "lsa-lookupnames"), frags=2)
    conv.smb(True, smb1(18, [write_andx_req(lsa_fid, first.data)]), [first])
    conv.smb(False, smb1(18, [write_andx_resp(len(first.data))], response=True))
    conv.smb(True, smb1(19, [write_andx_req(lsa_fid, last.data)]), [last])
    conv.smb(False, smb1(19, [write_andx_resp(len(last.data))], response=True))
    lreply = log.response(b, 2, noise(40, "lsa-sids"))
    conv.smb(True, smb1(20, [read_andx_req(lsa_fid, 1024)]))
    conv.smb(False, smb1(20, [read_andx_resp(pdu_bytes(lreply))], response=True), as_list(lreply))
    for row in log.calls:
        row.setdefault("pipe", "lsarpc")
    conv.smb(True, smb1(21, [close1_req(epm_fid)]))
    conv.smb(False, smb1(21, [close1_resp()], response=True))
    conv.smb(True, smb1(22, [close1_req(lsa_fid)]))
    conv.smb(False, smb1(22, [close1_resp()], response=True))
    conv.close()
    use_interface(log, cap, 49872, 0x37100000, TAPE_ENGINE, 6502, 43)
    return cap, log


APP_FIXTURES = [
    ("epm_tape_engine.pcap", build_epm_tape_engine),
    ("epm_dynamic.pcap", build_epm_dynamic),
    ("dcerpc_bigendian.pcap", build_dcerpc_bigendian),
    ("dcerpc_fragmented.pcap", build_dcerpc_fragmented),
    ("epm_udp.pcap", build_epm_udp),
    ("epm_ndr64.pcap", build_epm_ndr64),
    ("tls_mgmt.pcap", build_tls_mgmt),
    ("names.pcap", build_names),
    ("starttls.pcap", build_starttls),
    ("smb_pipe.pcap", build_smb_pipe),
    ("smb1_pipe.pcap", build_smb1_pipe),
]


# --------------------------------------------------------------------------
# Broken fixtures
# --------------------------------------------------------------------------


def build_mini() -> Capture:
    """TCP + UDP only (no ARP/ICMP) so packet counts are unambiguous."""
    cap = Capture()
    A, B = "10.5.0.1", "10.5.0.2"
    t = Tcp(cap, A, 40100, B, 111, isn_c=0x50000000, isn_s=0x51000000)
    run(t.handshake() + t.exchange(40, 28, "mini") + t.close())
    cap.udp(A, 40101, B, 111, blob(56, "mini-call"))
    cap.udp(B, 111, A, 40101, blob(28, "mini-reply"))
    return cap


def build_broken(tcp_basic_bytes: bytes, tcp_basic_frames) -> dict[str, tuple[bytes, dict, dict]]:
    out = {}
    e = "<"

    # truncated_last_record.pcap: cut the last record halfway through its data
    last = tcp_basic_frames[-1]
    cut = len(tcp_basic_bytes) - len(last.data) + len(last.data) // 2
    out["truncated_last_record.pcap"] = (
        tcp_basic_bytes[:cut],
        {
            "packets_decoded": len(tcp_basic_frames) - 1,
            "anomaly_kinds": ["truncated_record"],
        },
        {
            "records": len(tcp_basic_frames),
            "damaged_record_index": len(tcp_basic_frames) - 1,
            "note": "base is tcp_basic.pcap; counts include the ARP and ICMP records",
        },
    )

    # caplen_over_snaplen.pcap: snaplen 128, one 200-byte record with all its data
    cap = Capture()
    A, B = "10.6.0.1", "10.6.0.2"
    t = Tcp(cap, A, 40200, B, 2099, isn_c=0x60000000, isn_s=0x61000000)
    run(t.handshake())
    cap.udp(A, 40201, B, 111, blob(200 - 42, "oversize-call"))
    cap.udp(B, 111, A, 40201, blob(40, "reply"))
    t.send(True, "R")
    big = [i for i, f in enumerate(cap.frames) if len(f.data) > 128]
    assert big == [3] and len(cap.frames[3].data) == 200
    out["caplen_over_snaplen.pcap"] = (
        write_pcap(cap.frames, LINKTYPE_ETHERNET, snaplen=128),
        {
            "packets_decoded": len(cap.frames),
            "anomaly_kinds": ["caplen_exceeds_snaplen"],
        },
        {
            "records": len(cap.frames),
            "damaged_record_index": 3,
            "note": "record 3 has incl_len=orig_len=200 > snaplen 128; its data is present",
        },
    )

    # zero_length_record.pcap: incl_len 0 (and orig_len 0) record in the middle
    mini = build_mini().frames
    recs = [pcap_header(e, False, SNAPLEN, LINKTYPE_ETHERNET)]
    for i, fr in enumerate(mini):
        if i == 4:
            recs.append(pcap_record(e, False, fr.ts_ns - 500_000, b"", 0))
        recs.append(pcap_record(e, False, fr.ts_ns, fr.data, fr.orig_len))
    out["zero_length_record.pcap"] = (
        b"".join(recs),
        {"packets_decoded": len(mini), "anomaly_kinds": ["zero_length_record"]},
        {
            "records": len(mini) + 1,
            "damaged_record_index": 4,
            "note": "the empty record is not counted as a decoded packet; all others are",
        },
    )

    # bad_trailing_length.pcapng: the last EPB's trailing length is wrong
    blocks = [ng_idb(e, LINKTYPE_ETHERNET, "eth0")]
    for fr in mini:
        blocks.append(ng_packet(e, fr, None))
    bad = bytearray(blocks[-1])
    lead = struct.unpack_from(e + "I", bad, 4)[0]
    struct.pack_into(e + "I", bad, len(bad) - 4, lead + 8)
    blocks[-1] = bytes(bad)
    out["bad_trailing_length.pcapng"] = (
        ng_shb(e, -1, SHB_OPTS) + b"".join(blocks),
        # The leading length and the block's own fields agree, so the packet is still decoded.
        {"packets_decoded": len(mini), "anomaly_kinds": ["block_length_mismatch"]},
        {
            "records": len(mini),
            "damaged_record_index": len(mini) - 1,
            "note": "the damaged EPB is the last block; its leading length is right, the "
            "trailing copy is leading+8; the damaged packet is not counted",
        },
    )

    # garbage_after_end.pcapng: valid file + 37 bytes of 0xEE
    out["garbage_after_end.pcapng"] = (
        simple_pcapng(mini) + b"\xee" * 37,
        {"packets_decoded": len(mini), "anomaly_kinds": ["trailing_garbage"]},
        {
            "records": len(mini),
            "damaged_record_index": None,
            "note": "37 bytes 0xEE appended",
        },
    )

    # bad_magic.pcap
    out["bad_magic.pcap"] = (
        b"HELO" + tcp_basic_bytes[4:],
        {"packets_decoded": 0, "anomaly_kinds": ["bad_magic"]},
        {
            "records": len(tcp_basic_frames),
            "damaged_record_index": None,
            "note": "tcp_basic.pcap with the magic replaced by 'HELO'",
        },
    )

    # huge_caplen.pcap: record 3 claims incl_len 0xffffffff; its real data and
    # valid records follow
    recs = [pcap_header(e, False, SNAPLEN, LINKTYPE_ETHERNET)]
    for i, fr in enumerate(mini):
        recs.append(
            pcap_record(
                e,
                False,
                fr.ts_ns,
                fr.data,
                fr.orig_len,
                incl_len=0xFFFFFFFF if i == 3 else None,
            )
        )
    out["huge_caplen.pcap"] = (
        b"".join(recs),
        # The reader resynchronises on the next plausible record header: only the damaged
        # record is lost.
        {"packets_decoded": len(mini) - 1, "anomaly_kinds": ["implausible_record_length"]},
        {
            "records": len(mini),
            "damaged_record_index": 3,
            "records_after_damage": len(mini) - 4,
            "note": "record boundaries after an implausible incl_len cannot be trusted, so only "
            "the 3 records before it count; orig_len of the bad record is the true "
            "data length, so a resynchronising reader could recover the "
            f"{len(mini) - 4} records after it",
        },
    )
    return out


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def dump_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def in_capture_order(rows: list[dict]) -> list[dict]:
    """Rows with a timestamp sorted by it; the sort is stable, so the rows of one reply (the
    entries of a DUMP or ept_lookup) keep their order."""
    if rows and "ts_ns" in rows[0]:
        assert all(r["ts_ns"] is not None for r in rows), "every planted row was sent"
        return sorted(rows, key=lambda r: r["ts_ns"])
    return rows


def summary(frames) -> dict:
    kinds: dict[str, int] = {}
    for f in frames:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    return {
        "packets": len(frames),
        "packets_by_kind": dict(sorted(kinds.items())),
        "first_ts_ns": frames[0].ts_ns,
        "last_ts_ns": frames[-1].ts_ns,
    }


def main() -> None:
    BROKEN.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict] = {}

    def emit(name: str, data: bytes, frames, info: dict, *logs) -> None:
        """Write a capture, its expected flows and the tables of its oracles (``logs``)."""
        (HERE / name).write_bytes(data)
        firsts: list[int] = []
        flows = expected_flows(frames, firsts)
        dump_json(HERE / f"{name}.flows.json", flows)
        manifest[name] = {
            **info,
            **summary(frames),
            "flows": len(flows),
            "expected_flows_file": f"{name}.flows.json",
            "flow_first_ts_ns": firsts,
        }
        tables: dict[str, list[dict]] = {}
        for log in logs:
            for table, rows in log.tables().items():
                tables.setdefault(table, []).extend(rows)
        for table, rows in tables.items():
            dump_json(HERE / f"{name}.{table}.json", in_capture_order(rows))
            manifest[name].update({table: len(rows), f"expected_{table}_file": f"{name}.{table}.json"})

    tb = build_tcp_basic()
    tb_bytes = write_pcap(tb.frames, LINKTYPE_ETHERNET)
    emit(
        "tcp_basic.pcap",
        tb_bytes,
        tb.frames,
        {
            "format": "pcap",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )
    # same packets, sub-microsecond part added to every timestamp (never zero)
    ns_frames = [replace(f, ts_ns=f.ts_ns + 1 + (i * 137) % 999) for i, f in enumerate(tb.frames)]
    emit(
        "tcp_basic_be_ns.pcap",
        write_pcap(ns_frames, LINKTYPE_ETHERNET, endian=">", nano=True),
        ns_frames,
        {
            "format": "pcap",
            "byte_order": "big",
            "ts_resolution": "ns",
            "linktypes": [1],
            "note": "same packets as tcp_basic.pcap; record i has +(1 + (137*i) % 999) ns",
        },
    )

    vq = build_vlan_qinq()
    emit(
        "vlan_qinq.pcap",
        write_pcap(vq.frames, LINKTYPE_ETHERNET),
        vq.frames,
        {
            "format": "pcap",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )

    v6 = build_ipv6_ext()
    v6_bytes = simple_pcapng(v6.frames, tsresol=6)
    emit(
        "ipv6_ext.pcapng",
        v6_bytes,
        v6.frames,
        {
            "format": "pcapng",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )

    f4 = build_ipv4_frag()
    emit(
        "ipv4_frag.pcap",
        write_pcap(f4.frames, LINKTYPE_ETHERNET),
        f4.frames,
        {
            "format": "pcap",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )

    ms_bytes, ms_frames = build_multi_section()
    emit(
        "multi_section_be.pcapng",
        ms_bytes,
        ms_frames,
        {
            "format": "pcapng",
            "byte_order": "little then big",
            "sections": 2,
            "linktypes": [1, 101, 113],
            "note": "section 1: EPB, one SPB (no timestamp; 3rd packet), NRB, custom block "
            "0x00000BAD, ISB; section 2 (big-endian, section length -1): if0 raw IP "
            "with if_tsresol 0x89, if1 Linux SLL, one OPB (type 2) on if0",
        },
    )

    lt_bytes, lt_frames = build_linktypes()
    emit(
        "linktypes.pcapng",
        lt_bytes,
        lt_frames,
        {
            "format": "pcapng",
            "byte_order": "little",
            "linktypes": [lt for lt, _ in LT_IFACES],
            "note": "the linktype-147 packet (if6) is expected to be an anomaly, not a flow",
        },
    )

    tun_bytes, tun_frames = build_tunnels()
    emit(
        "tunnels.pcapng",
        tun_bytes,
        tun_frames,
        {
            "format": "pcapng",
            "byte_order": "little",
            "linktypes": [lt for lt, _ in TUN_IFACES],
            "note": "MPLS, PPPoE, GRE, ERSPAN II/III, Geneve, IP in IP and VXLAN (two tenants) with VLAN "
            "tags outside and inside, and the PPP, 802.11, radiotap and NFLOG link types",
        },
    )

    emit(
        "tcp_basic.pcap.gz",
        gzip.compress(tb_bytes, compresslevel=9, mtime=0),
        tb.frames,
        {
            "format": "pcap+gzip",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )
    emit(
        "ipv6_ext.pcapng.zst",
        zstandard.ZstdCompressor(level=3).compress(v6_bytes),
        v6.frames,
        {
            "format": "pcapng+zstd",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )

    classic = {"format": "pcap", "byte_order": "little", "ts_resolution": "us", "linktypes": [1]}
    sm, *sm_logs = build_sample()
    emit("sample.pcap", write_pcap(sm.frames, LINKTYPE_ETHERNET), sm.frames, classic, *sm_logs)

    for name, build in RPC_FIXTURES + APP_FIXTURES:
        rc, rlog = build()
        emit(name, write_pcap(rc.frames, LINKTYPE_ETHERNET), rc.frames, classic, rlog)

    broken_manifest = {}
    for name, (data, expect, info) in build_broken(tb_bytes, tb.frames).items():
        (BROKEN / name).write_bytes(data)
        dump_json(BROKEN / f"{name}.expect.json", expect)
        broken_manifest[name] = {**expect, **info}

    dump_json(HERE / "manifest.json", {"fixtures": manifest, "broken": broken_manifest})

    for p in sorted(HERE.rglob("*")):
        if p.is_file() and p.suffix not in (".py", ".md"):
            # The manifest grows by a few hundred bytes with each fixture it lists.
            bound = 32 if p.name == "manifest.json" else 20
            assert p.stat().st_size < bound * 1024, f"{p} too large"


if __name__ == "__main__":
    main()
