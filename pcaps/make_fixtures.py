#!/usr/bin/env python3
"""Generate the portwitness capture fixtures and their expected results.

Run from anywhere:  python pcaps/make_fixtures.py

Everything is deterministic: fixed addresses, fixed timestamps starting at
2026-03-01T02:00:00Z, fixed sequence numbers / IP ids, a seeded RNG for the
interleaving of ``sample.pcap``, gzip mtime=0.  Re-running rewrites
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
"""

from __future__ import annotations

import gzip
import json
import random
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import zstandard
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

    def udp(self, src, sport, dst, dport, payload: bytes, **kw):
        l3 = self.ip(src, dst, UDP(sport=sport, dport=dport) / Raw(payload))
        meta = Meta("udp", src, sport, dst, dport, "", len(payload))
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
            l3 = (
                IP(src=a, dst=b, id=self.ipid(a), ttl=64)
                / ICMP(type=typ, id=ident, seq=seq)
                / Raw(data)
            )
            self.add_l3(l3, a, b, None, kind="icmp", **kw)

    def ping6(self, src, dst, ident, seq, **kw):
        data = blob(24, "portwitness-ping6")
        l3 = IPv6(src=src, dst=dst, hlim=64) / ICMPv6EchoRequest(
            id=ident, seq=seq, data=data
        )
        self.add_l3(l3, src, dst, None, kind="icmpv6", **kw)
        l3 = IPv6(src=dst, dst=src, hlim=64) / ICMPv6EchoReply(
            id=ident, seq=seq, data=data
        )
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
        ipopts=None,
        **kw,
    ):
        (src, sport), (dst, dport) = (
            (self.c, self.s) if from_client else (self.s, self.c)
        )
        advance = seq is None
        if seq is None:
            seq = self.nxt[from_client]
        ack = self.nxt[not from_client] if "A" in flags else 0
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
            self.nxt[from_client] = (
                seq + len(data) + ("S" in flags) + ("F" in flags)
            ) & 0xFFFFFFFF
        l3 = self.cap.ip(src, dst, seg, ipopts=ipopts, ext6=self.ext6)
        meta = Meta("tcp", src, sport, dst, dport, flags, len(data))
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


def expected_flows(frames: list[Frame], first_ts_out: list | None = None) -> list[dict]:
    groups: dict[tuple, list[tuple[Frame, Meta]]] = {}
    for fr in frames:
        m = fr.meta
        if m is None:
            continue
        key = (m.transport, m.vlan, frozenset([(m.src, m.sport), (m.dst, m.dport)]))
        groups.setdefault(key, []).append((fr, m))

    out = []
    for (transport, vlan, _), pkts in groups.items():
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
                    "outcome": outcome,
                    "orientation": orientation,
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


def pcap_header(
    endian: str, nano: bool, snaplen: int, linktype: int, magic=None
) -> bytes:
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
    body = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, section_len) + ng_options(
        e, list(opts)
    )
    return ng_block(e, 0x0A0D0D0A, body)


def ng_idb(
    e: str, linktype: int, name: str, tsresol: int | None = None, snaplen=SNAPLEN
) -> bytes:
    opts = [(2, name.encode())]
    if tsresol is not None:
        opts.append((9, bytes([tsresol])))
    return ng_block(
        e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + ng_options(e, opts)
    )


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


def ng_isb(
    e: str, ifid: int, ts_us: int, start_us: int, end_us: int, recv: int, drop: int
) -> bytes:
    def split(u):
        return struct.pack(e + "II", u >> 32, u & 0xFFFFFFFF)

    opts = [
        (2, split(start_us)),
        (3, split(end_us)),
        (4, struct.pack(e + "Q", recv)),
        (5, struct.pack(e + "Q", drop)),
    ]
    return ng_block(
        e, 5, struct.pack(e + "I", ifid) + split(ts_us) + ng_options(e, opts)
    )


def ng_custom(e: str, pen: int, data: bytes) -> bytes:
    return ng_block(e, 0x00000BAD, struct.pack(e + "I", pen) + data)


SHB_OPTS = [(4, b"portwitness pcaps/make_fixtures.py")]


def simple_pcapng(frames, linktype=LINKTYPE_ETHERNET, e="<", tsresol=None) -> bytes:
    body = ng_idb(e, linktype, "eth0", tsresol) + b"".join(
        ng_packet(e, f, tsresol) for f in frames
    )
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
    dgram = (
        IP(src=A, dst=B, id=0x4242, ttl=64) / UDP(sport=2049, dport=2049) / Raw(payload)
    )
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
            blocks.append(
                ng_nrb(
                    e, v4=[(B, "srv-a.example")], v6=[("2001:db8::2", "srv6.example")]
                )
            )
        if i == 3:
            blocks.append(ng_custom(e, 32473, b"portwitness: custom block, skip me"))
    last_us = f1[-1].ts_ns // 1000
    blocks.append(
        ng_isb(e, 0, last_us + 1000, f1[0].ts_ns // 1000, last_us, len(f1), 0)
    )
    rest = b"".join(blocks)
    sec1 = ng_shb(e, len(rest), SHB_OPTS) + rest

    # Section 2 (big-endian): if0 raw IP with 2^-9 s resolution, if1 Linux SLL (1 us)
    RES0 = 0x89
    c2 = Capture(
        quantum_ns={0: 1_000_000_000 // 512, 1: 1000}, capture_host="192.168.2.10"
    )
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
    cap.add_bytes(
        b"USR0" + blob(60, "opaque-user-dlt"), ifid=6, kind="unknown_linktype"
    )
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
    cap.udp(
        "fd00:5::1", 42006, "fd00:5::2", 443, blob(50, "ipv6-q"), link=("raw",), ifid=4
    )
    cap.udp(
        "fd00:5::2", 443, "fd00:5::1", 42006, blob(70, "ipv6-a"), link=("raw",), ifid=4
    )
    # if5 linktype 12 (raw IP, version taken from the first nibble): IPv6 here
    cap.udp(
        "fd00:6::1", 42007, "fd00:6::2", 514, blob(45, "raw12-a"), link=("raw",), ifid=5
    )
    cap.udp(
        "fd00:6::2", 514, "fd00:6::1", 42007, blob(15, "raw12-b"), link=("raw",), ifid=5
    )
    e = "<"
    blocks = [ng_idb(e, lt, name) for lt, name in LT_IFACES]
    blocks += [ng_packet(e, fr, None) for fr in cap.frames]
    return ng_shb(e, -1, SHB_OPTS) + b"".join(blocks), cap.frames


def build_sample() -> Capture:
    rng = random.Random(20260301)
    cap = Capture()
    A, B, C, D = "10.20.0.10", "10.20.0.11", "10.20.0.20", "10.20.0.21"
    convs: list[list] = []

    def tcp(c, cp, s, sp, exchanges, end="fin", isn=0):
        t = Tcp(
            cap,
            c,
            cp,
            s,
            sp,
            isn_c=0x10000000 + isn * 0x01000000,
            isn_s=0x80000000 + isn * 0x01000000,
        )
        acts = t.handshake()
        for i, (q, r) in enumerate(exchanges):
            acts += t.exchange(q, r, f"{sp}-{i}")
        if end == "fin":
            acts += t.close()
        elif end == "rst":
            acts.append(lambda: t.send(True, "R"))
        convs.append(acts)

    def udp(pairs, c, cp, s, sp, q, r):
        acts = []
        for i in range(pairs):
            acts.append(lambda i=i: cap.udp(c, cp, s, sp, blob(q, f"u{sp}-q{i}")))
            acts.append(lambda i=i: cap.udp(s, sp, c, cp, blob(r, f"u{sp}-r{i}")))
        convs.append(acts)

    convs.append([lambda: cap.arp(A, C), lambda: cap.arp(B, D), lambda: cap.arp(D, C)])
    udp(3, A, 51000, C, 111, 56, 28)  # portmapper lookups
    tcp(A, 51001, C, 111, [(40, 28), (44, 120)], isn=1)  # portmapper over TCP
    tcp(B, 51100, C, 135, [(72, 92)], isn=2)  # endpoint mapper
    tcp(B, 51101, C, 20042, [(180, 60), (120, 40), (96, 24), (64, 200)], isn=3)
    tcp(A, 51002, D, 7099, [(30, 90), (30, 90), (30, 90), (30, 110), (24, 16)], isn=4)
    tcp(D, 51200, C, 2099, [(52, 30), (40, 30)], isn=5)
    udp(8, B, 6050, D, 6050, 24, 24)  # same port both sides
    tcp(B, 51102, D, 20000, [(16, 16), (16, 16)], isn=6)
    tcp(B, 51103, D, 20100, [(16, 48)], isn=7)
    tcp(C, 51301, D, 20077, [(24, 8), (24, 8), (24, 8)], isn=10)
    tcp(A, 51006, C, 135, [(72, 92)], isn=11)
    tcp(B, 51104, D, 20031, [(16, 16), (20, 40)], isn=12)
    tcp(D, 51202, C, 111, [(40, 28)], isn=13)
    tcp(A, 51003, C, 20055, [(28, 28)], end="rst", isn=8)
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
    return cap


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


def build_broken(
    tcp_basic_bytes: bytes, tcp_basic_frames
) -> dict[str, tuple[bytes, dict, dict]]:
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

    def emit(name: str, data: bytes, frames, info: dict) -> None:
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
    ns_frames = [
        replace(f, ts_ns=f.ts_ns + 1 + (i * 137) % 999) for i, f in enumerate(tb.frames)
    ]
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

    sm = build_sample()
    emit(
        "sample.pcap",
        write_pcap(sm.frames, LINKTYPE_ETHERNET),
        sm.frames,
        {
            "format": "pcap",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )

    broken_manifest = {}
    for name, (data, expect, info) in build_broken(tb_bytes, tb.frames).items():
        (BROKEN / name).write_bytes(data)
        dump_json(BROKEN / f"{name}.expect.json", expect)
        broken_manifest[name] = {**expect, **info}

    dump_json(HERE / "manifest.json", {"fixtures": manifest, "broken": broken_manifest})

    for p in sorted(HERE.rglob("*")):
        if p.is_file() and p.suffix != ".py":
            assert p.stat().st_size < 20 * 1024, f"{p} too large"


if __name__ == "__main__":
    main()
