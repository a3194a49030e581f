#!/usr/bin/env python3
"""Fast generator of realistic synthetic Ethernet captures (pcap / pcapng).

    python benches/generate.py OUT --size 1G [--format pcap|pcapng]
                                   [--flows 50000] [--seed 1]
                                   [--shape sessions|interleaved|syn-flood|dns-mix]

What is in the capture
----------------------
* Ethernet II frames, ~5 % of the flows 802.1Q tagged, IPv4 (~85 % of the
  flows) and IPv6 (~15 %), frames shorter than 60 bytes are padded (so the
  IP total length, not the frame length, is authoritative).
* TCP flows with a three-way handshake (realistic SYN options), data in both
  directions (TLS 1.3 records, HTTP/1.1, TLS-wrapped chatty RPC-ish
  exchanges, uploads), ACK every 1 or 2 segments, PSH on message ends,
  optional TCP timestamp option, and teardown by FIN (either side), RST or
  nothing (long-lived / cut).  Plus refused connections (SYN -> RST/ACK) and
  unanswered SYNs with retransmissions.
* UDP flows: DNS (real messages), NTP, QUIC short-header bursts and RTP-like
  media streams.
* ~1.3 % of the flows go to "special" ports, with real payloads from the
  PAYLOAD_MAKERS registry below: portmapper GETPORT calls and replies on 111
  (TCP with record marking, and UDP); DCE/RPC on TCP 135 (bind to the
  endpoint mapper, bind_ack, ept_map calls for Arcserve's tape, job and
  database engine interfaces answered with an ncacn_ip_tcp tower naming
  6502-6504 or a dynamic port on the server); later flows from the same
  client (sometimes another) to the ports those answers named, binding the
  interface and making calls; the Arcserve management service, TLS on 7099
  (ClientHello with SNI/ALPN/supported_versions, ServerHello for TLS 1.3 or
  1.2, then application data) and plaintext command lines on 2099; and its
  TLS callbacks from the server of a recent 7099/2099 session to the
  client's port 20000-20100.
* Packets of many concurrent flows are interleaved, timestamps are
  monotonically non-decreasing (a discrete-event scheduler over per-flow
  generators; each flow has its own RTT and throughput).
* Size mix: many 60-100 byte ACKs/handshakes, many 1514-byte full segments,
  DNS/NTP/chatty mid sizes; the average frame is ~450 bytes.

Checksums: IPv4 header and TCP checksums are left zero by default (tools do
not validate them by default); UDP over IPv6 always gets a valid checksum
(zero is illegal there).  --checksums computes all of them (slower).

Flow 5-tuples are unique within a file, so the number of flows printed at the
end is the number of bidirectional 5-tuples in the capture.  --flows is a
target, met within ~10 % for sensible ratios (1G / 50000 gives ~46k); fewer
flows come out when --size cannot hold them (a flow averages a few KB at
least).  Flows still running when the size is reached are cut off (no
teardown), as in a real capture.  Everything is
deterministic for a given --seed (and the same arguments).

--shape interleaved keeps --flows flows open at once and picks the flow of
every packet at random (half uniformly, half by a Zipf law), with ~15 % of the
flows on Arcserve's ports (see InterleavedGenerator); classic pcap only.

Speed: header templates are precomputed per flow and direction as
struct.Struct formats whose constant parts are passed as byte strings; per
packet only lengths, IDs, sequence numbers, flags and timestamps are packed.
Records are joined into multi-MB chunks before writing.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import struct
import sys
import time
from bisect import bisect
from collections import deque
from itertools import accumulate
from struct import Struct, pack

M32 = 0xFFFFFFFF
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
PA = PSH | ACK
FA = FIN | ACK
RA = RST | ACK
ZEROS = [bytes(i) for i in range(64)]
TSOPT_HDR = b"\x01\x01\x08\x0a"  # NOP NOP TS(len 10)

FILL_BITS = 22
FILL_MASK = (1 << FILL_BITS) - 1
MAX_SEG = 9000
# wire bytes of a scalable flow ~= SCAL_K * budget + SCAL_C (headers, ACKs, handshakes)
SCAL_K, SCAL_C = 1.1, 4500


# --------------------------------------------------------------------------
# helpers


def parse_size(s: str) -> int:
    """'1G' -> 2**30, '200M', '512k', '1GB' (=1e9), '123456'."""
    s = s.strip()
    units = {
        "": 1,
        "K": 1 << 10,
        "M": 1 << 20,
        "G": 1 << 30,
        "T": 1 << 40,
        "KB": 10**3,
        "MB": 10**6,
        "GB": 10**9,
        "TB": 10**12,
        "KIB": 1 << 10,
        "MIB": 1 << 20,
        "GIB": 1 << 30,
        "TIB": 1 << 40,
    }
    i = len(s)
    while i and not (s[i - 1].isdigit() or s[i - 1] == "."):
        i -= 1
    num, unit = s[:i], s[i:].strip().upper()
    if unit not in units or not num:
        raise argparse.ArgumentTypeError(f"bad size {s!r}")
    return int(float(num) * units[unit])


def csum_mod(data: bytes) -> int:
    """One's complement sum of 16-bit big-endian words, mod 0xFFFF
    (2**16 == 1 mod 0xFFFF, so the big-int value reduces to the word sum)."""
    if len(data) & 1:
        return (int.from_bytes(data, "big") << 8) % 0xFFFF
    return int.from_bytes(data, "big") % 0xFFFF


def csum_finish(s: int) -> int:
    s %= 0xFFFF
    return 0xFFFF - s if s else 0  # s == 0 <=> sum is 0xFFFF (data nonzero)


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


# --------------------------------------------------------------------------
# frame builders (per flow direction)


def eth_header(dst: bytes, src: bytes, vlan: int | None, v6: bool) -> bytes:
    et = b"\x86\xdd" if v6 else b"\x08\x00"
    if vlan is None:
        return dst + src + et
    return dst + src + b"\x81\x00" + pack("!H", vlan) + et


def make_checksum_fixer(l3off: int, v6: bool, proto: int, src: bytes, dst: bytes):
    """Return fix(frame) -> frame with valid IPv4 header and L4 checksums."""
    pseudo = csum_mod(src + dst) + proto
    l4off = l3off + (40 if v6 else 20)
    coff = l4off + (16 if proto == 6 else 6)

    def fix(fr: bytes) -> bytes:
        b = bytearray(fr)
        if v6:
            l4len = (b[l3off + 4] << 8) | b[l3off + 5]
        else:
            l4len = ((b[l3off + 2] << 8) | b[l3off + 3]) - 20
            b[l3off + 10] = b[l3off + 11] = 0
            c = csum_finish(csum_mod(bytes(b[l3off : l3off + 20])))
            b[l3off + 10] = c >> 8
            b[l3off + 11] = c & 0xFF
        b[coff] = b[coff + 1] = 0
        c = csum_finish(pseudo + l4len + csum_mod(bytes(b[l4off : l4off + l4len])))
        if proto == 17 and c == 0:
            c = 0xFFFF
        b[coff] = c >> 8
        b[coff + 1] = c & 0xFF
        return bytes(b)

    return fix


def tcp_fast_builder(
    eth, v6, src, dst, sport, dport, hop, win, ts, tsbase, peer_tsbase, half_rtt, flowlabel, ipid0, fixer
):
    """build(seq, ack, flags, payload, now_us) -> frame bytes."""
    ports = pack("!HH", sport, dport)
    tail = "I4sII" if ts else "I"  # checksum+urgent [, TS option]
    if v6:
        pre = eth + pack("!I", 0x60000000 | flowlabel)
        mid = bytes((6, hop)) + src + dst + ports
        p = Struct(f"!{len(pre)}sH{len(mid)}sIIBBH{tail}").pack
        if ts:

            def build(seq, ack, flags, payload, now):
                return (
                    p(
                        pre,
                        32 + len(payload),
                        mid,
                        seq,
                        ack,
                        0x80,
                        flags,
                        win,
                        0,
                        TSOPT_HDR,
                        (tsbase + now // 1000) & M32,
                        (peer_tsbase + (now - half_rtt) // 1000) & M32,
                    )
                    + payload
                )
        else:

            def build(seq, ack, flags, payload, now):
                return p(pre, 20 + len(payload), mid, seq, ack, 0x50, flags, win, 0) + payload
    else:
        pre = eth + b"\x45\x00"
        mid = pack("!HBBH", 0x4000, hop, 6, 0) + src + dst + ports
        p = Struct(f"!{len(pre)}sHH{len(mid)}sIIBBH{tail}").pack
        ipid = ipid0
        if ts:

            def build(seq, ack, flags, payload, now):
                nonlocal ipid
                ipid = (ipid + 1) & 0xFFFF
                return (
                    p(
                        pre,
                        52 + len(payload),
                        ipid,
                        mid,
                        seq,
                        ack,
                        0x80,
                        flags,
                        win,
                        0,
                        TSOPT_HDR,
                        (tsbase + now // 1000) & M32,
                        (peer_tsbase + (now - half_rtt) // 1000) & M32,
                    )
                    + payload
                )
        else:

            def build(seq, ack, flags, payload, now):
                nonlocal ipid
                ipid = (ipid + 1) & 0xFFFF
                fr = p(pre, 40 + len(payload), ipid, mid, seq, ack, 0x50, flags, win, 0) + payload
                n = len(fr)
                return fr if n >= 60 else fr + ZEROS[60 - n]

    if fixer is None:
        return build

    def build_fixed(seq, ack, flags, payload, now):
        return fixer(build(seq, ack, flags, payload, now))

    return build_fixed


def tcp_slow_frame(
    eth, v6, src, dst, sport, dport, hop, win, seq, ack, flags, opts, payload, flowlabel, ipid, fixer
):
    """Any TCP frame with arbitrary options (SYN, SYN/ACK, RST...)."""
    thl = 20 + len(opts)
    tcp = pack("!HHIIBBHHH", sport, dport, seq & M32, ack & M32, (thl // 4) << 4, flags, win, 0, 0) + opts
    if v6:
        ip = pack("!IHBB", 0x60000000 | flowlabel, thl + len(payload), 6, hop) + src + dst
    else:
        ip = pack("!BBHHHBBH", 0x45, 0, 20 + thl + len(payload), ipid & 0xFFFF, 0x4000, hop, 6, 0) + src + dst
    fr = eth + ip + tcp + payload
    if len(fr) < 60:
        fr += ZEROS[60 - len(fr)]
    return fixer(fr) if fixer else fr


def udp_builder(eth, v6, src, dst, sport, dport, hop, flowlabel, ipid0, fixer):
    """build(payload) -> frame bytes."""
    ports = pack("!HH", sport, dport)
    if v6:
        pre = eth + pack("!I", 0x60000000 | flowlabel)
        mid = bytes((17, hop)) + src + dst + ports
        p = Struct(f"!{len(pre)}sH{len(mid)}sHH").pack
        const = csum_mod(src + dst) + 17 + sport + dport

        def build(payload):
            n = 8 + len(payload)
            c = csum_finish(const + n + n + csum_mod(payload)) or 0xFFFF
            return p(pre, n, mid, n, c) + payload

        return build
    pre = eth + b"\x45\x00"
    mid = pack("!HBBH", 0, hop, 17, 0) + src + dst + ports
    p = Struct(f"!{len(pre)}sHH{len(mid)}sHH").pack
    ipid = ipid0

    def build(payload):
        nonlocal ipid
        ipid = (ipid + 1) & 0xFFFF
        n = 8 + len(payload)
        fr = p(pre, 20 + n, ipid, mid, n, 0) + payload
        k = len(fr)
        return fr if k >= 60 else fr + ZEROS[60 - k]

    if fixer is None:
        return build
    return lambda payload: fixer(build(payload))


# --------------------------------------------------------------------------
# application payload makers
#
# An application model is a generator  model(ctx, budget) -> iterable of
# (direction, data, delay) with direction 0 = client->server, 1 = server->
# client; data is bytes (exact payload) or an int (that many filler bytes,
# for protocols nobody dissects); delay is the gap in microseconds before the
# message or None for "derive from RTT / think time".  The transport layer
# (tcp_conv / udp_conv) segments messages, adds handshakes, ACKs, teardown.


class Ctx:
    """Per-flow context handed to application models and payload makers."""

    __slots__ = ("rng", "fill_buf", "fo", "sni", "v6", "service", "state", "shared")

    def __init__(self, rng, fill_buf, sni, v6, service, shared=None):
        self.rng = rng
        self.fill_buf = fill_buf
        self.fo = rng.getrandbits(FILL_BITS)
        self.sni = sni
        self.v6 = v6
        self.service = service
        self.state = {}
        self.shared = shared  # generator-wide state (learned ports, management sessions)

    def fill(self, n: int) -> bytes:
        """n pseudo-random (incompressible, "encrypted looking") bytes."""
        out = []
        while n > 0:
            k = n if n < 65536 else 65536
            o = self.fo
            out.append(self.fill_buf[o : o + k])
            self.fo = (o + k + 1) & FILL_MASK
            n -= k
        return out[0] if len(out) == 1 else b"".join(out)


# ---- TLS 1.3 -------------------------------------------------------------


def tls_record(ctype: int, body: bytes, ver: int = 0x0303) -> bytes:
    return pack("!BHH", ctype, ver, len(body)) + body


def tls_appdata(ctx: Ctx, n: int) -> bytes:
    """Exactly n bytes (n >= 22) of TLS application-data records."""
    parts = []
    while n > 0:
        body = n - 5
        if body > 16401:
            body = 16401 if n - 16406 >= 22 else n - 5 - 22
        parts.append(pack("!BHH", 23, 0x0303, body))
        parts.append(ctx.fill(body))
        n -= body + 5
    return b"".join(parts)


def _ext(t: int, body: bytes) -> bytes:
    return pack("!HH", t, len(body)) + body


def tls_client_hello(ctx: Ctx) -> bytes:
    r = ctx.rng
    name = ctx.sni.encode()
    suites = _SUITES
    exts = b"".join(
        [
            _ext(0, pack("!HBH", len(name) + 3, 0, len(name)) + name),
            _ext(23, b""),
            _ext(65281, b"\x00"),
            _ext(10, pack("!H", 8) + pack("!4H", 0x001D, 0x0017, 0x0018, 0x0019)),
            _ext(11, b"\x01\x00"),
            _ext(35, b""),
            _ext(16, b"\x00\x0c\x02h2\x08http/1.1"),
            _ext(5, b"\x01\x00\x00\x00\x00"),
            _ext(
                13,
                pack("!H", 16) + pack("!8H", 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601),
            ),
            _ext(51, pack("!HHH", 36, 0x001D, 32) + r.randbytes(32)),
            _ext(45, b"\x01\x01"),
            _ext(43, b"\x04\x03\x04\x03\x03"),
        ]
    )
    pad = 512 - 4 - (2 + 32 + 33 + 2 + 2 * len(suites) + 2 + 2 + len(exts)) - 4
    if pad > 0:
        exts += _ext(21, bytes(pad))
    sid = r.randbytes(32)
    ctx.state["sid"] = sid
    body = (
        b"\x03\x03"
        + r.randbytes(32)
        + b"\x20"
        + sid
        + pack("!H", 2 * len(suites))
        + pack(f"!{len(suites)}H", *suites)
        + b"\x01\x00"
        + pack("!H", len(exts))
        + exts
    )
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return tls_record(22, hs, 0x0301)


def tls_server_flight(ctx: Ctx) -> bytes:
    r = ctx.rng
    exts = _ext(43, b"\x03\x04") + _ext(51, pack("!HH", 0x001D, 32) + r.randbytes(32))
    body = (
        b"\x03\x03"
        + r.randbytes(32)
        + b"\x20"
        + ctx.state.get("sid", bytes(32))
        + b"\x13\x01\x00"
        + pack("!H", len(exts))
        + exts
    )
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return tls_record(22, hs) + tls_record(20, b"\x01") + tls_appdata(ctx, r.randint(2200, 5200))


def tls_client_finish(ctx: Ctx) -> bytes:
    return tls_record(20, b"\x01") + tls_appdata(ctx, 5 + 53)


# ---- plain text / other protocols ------------------------------------------

WORDS = (
    "alpha api assets auth beacon cdn cloud data edge events feed files "
    "gateway img login mail media metrics news pay push search shop "
    "static status storage sync telemetry update upload video web www"
).split()
DOMAINS = (
    "example.com example.net example.org contoso.com fabrikam.net "
    "northwind.io adatum.org tailspin.dev wingtip.co litware.info"
).split()


def random_host(rng) -> str:
    return f"{rng.choice(WORDS)}.{rng.choice(DOMAINS)}"


def http_request(ctx: Ctx, extra: int = 0) -> bytes:
    r = ctx.rng
    path = "/" + "/".join(r.choice(WORDS) for _ in range(r.randint(1, 4)))
    if r.random() < 0.5:
        path += f"?id={r.getrandbits(32)}"
    h = (
        f"GET {path} HTTP/1.1\r\nHost: {ctx.sni}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)"
        " portwitness-bench/1.0\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
        "Connection: keep-alive\r\n"
    )
    if extra > 0:
        h += f"Cookie: sid={r.getrandbits(4 * min(extra, 2000)):x}\r\n"
    return (h + "\r\n").encode()


def http_response_header(body_len: int) -> bytes:
    return (
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {body_len}\r\nCache-Control: max-age=3600\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode()


def dns_query(ctx: Ctx, qname: str, qtype: int, txid: int) -> bytes:
    q = b"".join(bytes((len(lab),)) + lab.encode() for lab in qname.split(".")) + b"\x00"
    edns = ctx.rng.random() < 0.6
    hdr = pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 1 if edns else 0)
    msg = hdr + q + pack("!HH", qtype, 1)
    if edns:
        msg += b"\x00" + pack("!HHIH", 41, 1232, 0, 0)
    return msg


def dns_response(ctx: Ctx, query: bytes, qtype: int) -> bytes:
    r = ctx.rng
    # question section ends after the qname + 4; strip any OPT record
    end = 12
    while query[end]:
        end += query[end] + 1
    end += 5
    n = r.randint(1, 4)
    rdlen = 16 if qtype == 28 else 4
    ans = b"".join(
        pack("!HHHIH", 0xC00C, qtype, 1, r.randint(30, 3600), rdlen) + r.randbytes(rdlen) for _ in range(n)
    )
    return pack("!HHHHHH", query[0] << 8 | query[1], 0x8180, 1, n, 0, 0) + query[12:end] + ans


def ntp_packet(ctx: Ctx, server: bool) -> bytes:
    r = ctx.rng
    if server:
        return (
            pack("!BBbbII", 0x24, 2, 6, -23, r.getrandbits(16), r.getrandbits(16))
            + r.randbytes(4)
            + r.randbytes(32)
        )
    return pack("!BBbbII", 0x23, 0, 6, -23, 0, 0) + bytes(4) + bytes(24) + r.randbytes(8)


def rtp_packet(ctx: Ctx, n: int) -> bytes:
    st = ctx.state
    seq = st["rseq"] = (st.get("rseq", ctx.rng.getrandbits(16)) + 1) & 0xFFFF
    tsr = st["rts"] = (st.get("rts", ctx.rng.getrandbits(32)) + 160) & M32
    ssrc = st.setdefault("ssrc", ctx.rng.getrandbits(32))
    return pack(
        "!BBHII", 0x80, st.setdefault("pt", ctx.rng.choice((0, 8, 96, 111))), seq, tsr, ssrc
    ) + ctx.fill(max(0, n - 12))


def quic_short(ctx: Ctx, n: int) -> bytes:
    dcid = ctx.state.setdefault("dcid", ctx.rng.randbytes(8))
    return bytes((0x40 | ctx.rng.getrandbits(6),)) + dcid + ctx.fill(max(1, n - 9))


# ---- special services: real ONC RPC, DCE/RPC + EPM, TLS and plaintext -----
#
# PAYLOAD_MAKERS[name](ctx, direction, index) -> bytes: payload of the
# index-th message in `direction` (0 = request/call, 1 = reply) of a flow of
# service `name`; EXCHANGES[name] is the (min, max) number of request/reply
# pairs of such a flow.  Services are listed in SPECIAL_SERVICES below.
#
# Everything is built from byte templates made once (at import, or once per
# TLS server name); per message only call ids, ports, addresses, randoms and
# lengths are patched in, so these flows cost no more than the others.
# A maker may leave ctx.state["learned"] = (server ip, port, interface index,
# v6, client ip, client mac) or ctx.state["mgmt"] = (client ip, client mac,
# server ip, v6) after a reply: model_special hands it to the generator, which
# sends a later flow there (a learned-port client, a management callback).


# Programs asked for in generated portmapper traffic (Arcserve's and NFS's).
_RPC_PROGRAMS = (
    (395644, 1, 6),
    (395645, 1, 6),
    (395648, 1, 6),
    (395649, 1, 6),
    (100003, 3, 6),
    (100005, 3, 17),
)


def _getport_maker(record_marking: bool):
    """Portmap v2 GETPORT calls (AUTH_NULL) and their replies: real ONC RPC, as on port 111."""

    def maker(ctx: Ctx, direction: int, index: int) -> bytes:
        xid = ctx.state.setdefault("xid", ctx.rng.getrandbits(32) & 0xFFFF0000) + index
        prog, vers, prot = _RPC_PROGRAMS[(xid + index) % len(_RPC_PROGRAMS)]
        if direction == 0:
            body = struct.pack(">10I", xid, 0, 2, 100000, 2, 3, 0, 0, 0, 0) + struct.pack(
                ">4I", prog, vers, prot, 0
            )
        else:
            port = 1025 + (prog + vers) % 3000
            body = struct.pack(">6I", xid, 1, 0, 0, 0, 0) + struct.pack(">I", port)
            st = ctx.state
            st["rpc_learned"] = (st["sip"], port, prog, vers, prot, ctx.v6, st["cip"], st["cmac"])
        if record_marking:
            body = struct.pack(">I", 0x80000000 | len(body)) + body
        return body

    return maker


# ---- DCE/RPC (connection-oriented, little-endian NDR) and the endpoint mapper


def _uuid_le(s: str) -> bytes:
    """A UUID in NDR little-endian form (Data1/2/3 swapped, Data4 as is)."""
    h = bytes.fromhex(s.replace("-", ""))
    return h[3::-1] + h[5:3:-1] + h[7:5:-1] + h[8:]


NDR_UUID = _uuid_le("8a885d04-1ceb-11c9-9fe8-08002b104860")
NDR_SYNTAX = NDR_UUID + pack("<HH", 2, 0)
EPM_SYNTAX = _uuid_le("e1af8308-5d1f-11c9-91a4-08002b14a0fa") + pack("<HH", 3, 0)
# Arcserve's MSRPC interfaces: (uuid, major, minor, legacy port, opnums called)
ARCSERVE_IFACES = (
    (_uuid_le("62b93df0-8b02-11ce-876c-00805f842837"), 1, 0, 6502, (43, 38)),  # tape engine
    (_uuid_le("dc246bf0-7a7a-11ce-9f88-00805fe43838"), 1, 0, 6503, (43, 47)),  # job engine
    (_uuid_le("506b1890-14c8-11d1-bbc3-00805fa6962e"), 1, 0, 6504, (0x72, 0x342)),  # database engine
)
DCE_DREP = b"\x10\x00\x00\x00"  # little-endian integers, ASCII, IEEE floats
PFC_FIRST_LAST = 0x03
_dce_hdr = Struct("<BBBB4sHHI").pack  # rpc_vers, minor, PTYPE, flags, drep, frag_len, auth_len, call_id
_u32 = Struct("<I")
_be16 = Struct(">H")


def _dce_pdu(ptype: int, body: bytes) -> bytes:
    """A whole unfragmented PDU with call_id 0 (patched per message at offset 12)."""
    return _dce_hdr(5, 0, ptype, PFC_FIRST_LAST, DCE_DREP, 16 + len(body), 0, 0) + body


def dce_bind_template(syntax: bytes, max_frag: int) -> bytes:
    """bind (11): one presentation context (id 0) for `syntax` over NDR v2 (protocols.md §3.2)."""
    return _dce_pdu(11, pack("<HHIB3xHBx", max_frag, max_frag, 0, 1, 0, 1) + syntax + NDR_SYNTAX)


def dce_bind_ack_template(sec_addr: bytes, max_frag: int) -> bytes:
    """bind_ack (12) accepting one NDR context; sec_addr is the server's port string (§3.3)."""
    sa = pack("<H", len(sec_addr) + 1) + sec_addr + b"\x00"
    pad = bytes((-(24 + len(sa))) & 3)  # n_results is 4-byte aligned in the PDU
    return _dce_pdu(12, pack("<HHI", max_frag, max_frag, 0) + sa + pad + pack("<B3xHH", 1, 0, 0) + NDR_SYNTAX)


def epm_tower(uuid: bytes, major: int, minor: int, port: int, ip4: bytes) -> bytes:
    """ncacn_ip_tcp tower: interface, NDR, RPC CO, TCP port (big-endian), IPv4 (§4.4)."""
    floors = (
        (b"\x0d" + uuid + pack("<H", major), pack("<H", minor)),
        (b"\x0d" + NDR_UUID + pack("<H", 2), pack("<H", 0)),
        (b"\x0b", pack("<H", 0)),
        (b"\x07", pack(">H", port)),
        (b"\x09", ip4),
    )
    return pack("<H", len(floors)) + b"".join(
        pack("<H", len(lhs)) + lhs + pack("<H", len(rhs)) + rhs for lhs, rhs in floors
    )


def epm_map_request_template(uuid: bytes, major: int, minor: int, max_towers: int) -> bytes:
    """ept_map (opnum 3) request asking for `uuid` over ncacn_ip_tcp (template tower: port 135,
    0.0.0.0), laid out as the walk-through in protocols.md §4.5 (156 bytes)."""
    t = epm_tower(uuid, major, minor, 135, bytes(4))
    stub = (
        pack("<I", 1)
        + bytes(16)  # obj: referent 1 -> nil UUID
        + pack("<III", 2, len(t), len(t))
        + t
        + bytes((-len(t)) & 3)  # map_tower: referent 2 -> twr_t
        + bytes(20)  # entry_handle
        + pack("<I", max_towers)
    )
    return _dce_pdu(0, pack("<IHH", len(stub), 0, 3) + stub)


def epm_map_response_template(uuid: bytes, major: int, minor: int, max_towers: int):
    """ept_map response with one tower; returns (pdu, port offset, IPv4 offset)."""
    t = epm_tower(uuid, major, minor, 0, bytes(4))
    stub = (
        bytes(20)  # entry_handle: nil, no more entries
        + pack("<I", 1)  # num_towers
        + pack("<III", max_towers, 0, 1)  # ITowers: max_count, offset, actual_count
        + pack("<I", 3)  # referent of tower 1 (pointee deferred)
        + pack("<II", len(t), len(t))
        + t
        + bytes((-len(t)) & 3)
        + pack("<I", 0)  # status: ok
    )
    pdu = _dce_pdu(2, pack("<IHBB", len(stub), 0, 0, 0) + stub)
    tower_at = 24 + 48
    # floor 4 rhs (port) and floor 5 rhs (IPv4) are the last 9 and 4 bytes of the tower
    return pdu, tower_at + len(t) - 11, tower_at + len(t) - 4


MAX_FRAGS = (5840, 4280)
_BIND = {
    (s, m): dce_bind_template(s, m)
    for s in [EPM_SYNTAX] + [i[0] + pack("<HH", i[1], i[2]) for i in ARCSERVE_IFACES]
    for m in MAX_FRAGS
}
_BIND_ACK_135 = {m: dce_bind_ack_template(b"135", m) for m in MAX_FRAGS}
_EPM_MAP_REQ = {
    (k, n): epm_map_request_template(*ARCSERVE_IFACES[k][:3], n)
    for k in range(len(ARCSERVE_IFACES))
    for n in (1, 4)
}
_EPM_MAP_RESP = {
    (k, n): epm_map_response_template(*ARCSERVE_IFACES[k][:3], n)
    for k in range(len(ARCSERVE_IFACES))
    for n in (1, 4)
}


def _with_call_id(tpl: bytes, call_id: int) -> bytearray:
    b = bytearray(tpl)
    _u32.pack_into(b, 12, call_id)
    return b


def _dce_bind_pair(ctx: Ctx, direction: int, syntax: bytes, sec_addr: bytes | None) -> bytes:
    """Message 0 of a DCE/RPC connection: the bind, or its bind_ack."""
    st = ctx.state
    mf = st.setdefault("max_frag", MAX_FRAGS[0] if ctx.rng.random() < 0.7 else MAX_FRAGS[1])
    if direction == 0:
        return bytes(_with_call_id(_BIND[syntax, mf], 1))
    tpl = _BIND_ACK_135[mf] if sec_addr == b"135" else dce_bind_ack_template(sec_addr, mf)
    b = _with_call_id(tpl, 1)
    _u32.pack_into(b, 20, 0x1000 + ctx.rng.getrandbits(16))  # assoc_group_id
    return bytes(b)


def epm_maker(ctx: Ctx, direction: int, index: int) -> bytes:
    """TCP 135: bind to EPM v3 / bind_ack, then ept_map calls for Arcserve interfaces whose
    answers name the server's port for them (legacy 6502-6504 or dynamic, stable per server)."""
    st = ctx.state
    if index == 0:
        return _dce_bind_pair(ctx, direction, EPM_SYNTAX, b"135")
    r = ctx.rng
    if direction == 0:
        st["iface"] = k = r.randrange(len(ARCSERVE_IFACES))
        st["max_towers"] = n = 4 if r.random() < 0.7 else 1
        return bytes(_with_call_id(_EPM_MAP_REQ[k, n], index + 1))
    k, n = st["iface"], st["max_towers"]
    sip = st["sip"]
    ports = ctx.shared["ports"]
    port = ports.get((sip, k))
    if port is None:
        port = ports[sip, k] = ARCSERVE_IFACES[k][3] if r.random() < 0.4 else r.randint(49152, 65535)
    tpl, port_at, ip_at = _EPM_MAP_RESP[k, n]
    b = _with_call_id(tpl, index + 1)
    _be16.pack_into(b, port_at, port)
    if not ctx.v6:  # over IPv6 the IP floor stays 0.0.0.0 (the EPM server's address is meant)
        b[ip_at : ip_at + 4] = sip
    st["learned"] = (sip, port, k, ctx.v6, st["cip"], st["cmac"])
    return bytes(b)


def arcserve_rpc_maker(ctx: Ctx, direction: int, index: int) -> bytes:
    """A connection to an Arcserve MSRPC port (learned from the EPM, or legacy): bind to the
    interface, bind_ack with the port as secondary address, then requests and responses."""
    st = ctx.state
    k = st["iface"]
    uuid, major, minor, _port, opnums = ARCSERVE_IFACES[k]
    if index == 0:
        return _dce_bind_pair(ctx, direction, uuid + pack("<HH", major, minor), b"%d" % st["port"])
    r = ctx.rng
    call_id = index + 1
    if direction == 0:
        stub = ctx.fill(r.randint(10, 100) * 4)
        return (
            _dce_hdr(5, 0, 0, PFC_FIRST_LAST, DCE_DREP, 24 + len(stub), 0, call_id)
            + pack("<IHH", len(stub), 0, opnums[0] if r.random() < 0.7 else opnums[1])
            + stub
        )
    stub = ctx.fill(r.randint(1, 300) * 4) + bytes(4)  # out parameters, status 0
    return (
        _dce_hdr(5, 0, 2, PFC_FIRST_LAST, DCE_DREP, 24 + len(stub), 0, call_id)
        + pack("<IHBB", len(stub), 0, 0, 0)
        + stub
    )


# ---- TLS on the management port (7099) and its callbacks (20000-20100) ----

_SUITES = (
    0x1301,
    0x1302,
    0x1303,
    0xC02B,
    0xC02F,
    0xC02C,
    0xC030,
    0xCCA9,
    0xCCA8,
    0xC013,
    0xC014,
    0x009C,
    0x009D,
    0x002F,
    0x0035,
)
_CH_TEMPLATES: dict = {}


def _tls_hs_record(hs_type: int, parts: list, record_version: int) -> list:
    """Prefix parts (bytes or ints = patched-field widths) with handshake and record headers."""
    n = sum(p if isinstance(p, int) else len(p) for p in parts)
    return [pack("!BHH", 22, record_version, n + 4) + bytes((hs_type,)) + n.to_bytes(3, "big")] + parts


def _freeze(parts: list) -> tuple:
    """Merge adjacent constant pieces: (const, width, const, width, ..., const)."""
    out, cur = [], b""
    for p in parts:
        if isinstance(p, int):
            out += [cur, p]
            cur = b""
        else:
            cur += p
    return tuple(out + [cur])


def tls_client_hello_template(sni: str, alpn: bytes) -> tuple:
    """ClientHello (record 0x0301, legacy 0x0303, SNI, ALPN, supported_versions 1.3 + 1.2,
    x25519 key share, padded to 512): constant pieces around random(32), session id(32)
    and key share(32)."""
    t = _CH_TEMPLATES.get((sni, alpn))
    if t is not None:
        return t
    name = sni.encode()
    alpn_list = b"".join(bytes((len(a),)) + a for a in alpn.split(b","))
    exts = [
        _ext(0, pack("!HBH", len(name) + 3, 0, len(name)) + name),
        _ext(23, b""),
        _ext(65281, b"\x00"),
        _ext(10, pack("!5H", 8, 0x001D, 0x0017, 0x0018, 0x0019)),
        _ext(11, b"\x01\x00"),
        _ext(35, b""),
        _ext(16, pack("!H", len(alpn_list)) + alpn_list),
        _ext(13, pack("!H8H", 16, 0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)),
        _ext(45, b"\x01\x01"),
        _ext(43, b"\x04\x03\x04\x03\x03"),
        pack("!HHHHH", 51, 38, 36, 0x001D, 32),  # key_share header, then the x25519 key
    ]
    head = pack("!H", 2 * len(_SUITES)) + pack(f"!{len(_SUITES)}H", *_SUITES) + b"\x01\x00"
    ext_len = sum(map(len, exts)) + 32
    pad = 512 - 4 - (2 + 32 + 33 + len(head) + 2 + ext_len) - 4  # handshake of 512 bytes
    tail = _ext(21, bytes(pad)) if pad > 0 else b""
    ext_len += len(tail)
    parts = [b"\x03\x03", 32, b"\x20", 32, head, pack("!H", ext_len), *exts, 32, tail]
    t = _CH_TEMPLATES[sni, alpn] = _freeze(_tls_hs_record(1, parts, 0x0301))
    return t


def _tls_sh_template(cipher: int, exts: list) -> tuple:
    parts = [
        b"\x03\x03",
        32,
        b"\x20",
        32,
        pack("!HB", cipher, 0),
        pack("!H", sum(e if isinstance(e, int) else len(e) for e in exts)),
        *exts,
    ]
    return _freeze(_tls_hs_record(2, parts, 0x0303))


# TLS 1.3 (TLS_AES_128_GCM_SHA256, supported_versions 1.3, x25519 share) and TLS 1.2
# (ECDHE-RSA-AES128-GCM-SHA256, a resumed session: no certificate in clear)
TLS13_SERVER_HELLO = _tls_sh_template(0x1301, [_ext(43, b"\x03\x04"), pack("!HHHH", 51, 36, 0x001D, 32), 32])
TLS12_SERVER_HELLO = _tls_sh_template(
    0xC02F, [_ext(65281, b"\x00"), _ext(11, b"\x01\x00"), _ext(23, b""), _ext(16, b"\x00\x09\x08http/1.1")]
)
TLS_CCS = tls_record(20, b"\x01")


def _fill_template(t: tuple, fields: list) -> bytes:
    out = [t[0]]
    for i, f in enumerate(fields):
        out.append(f)
        out.append(t[2 * i + 2])
    return b"".join(out)


def tls_maker(ctx: Ctx, direction: int, index: int) -> bytes:
    """ClientHello / ServerHello (1.3 with cipher 0x1301, or 1.2 with 0xc02f), the client's
    Finished flight, then application_data records."""
    st = ctx.state
    r = ctx.rng
    if index == 0:
        if direction == 0:
            st["tls12"] = r.random() < 0.25
            rnd = ctx.fill(96)
            st["sid"] = sid = rnd[32:64]
            return _fill_template(tls_client_hello_template(ctx.sni, b"http/1.1"), [rnd[:32], sid, rnd[64:]])
        rnd = ctx.fill(64)
        sid = st.get("sid") or bytes(32)
        if ctx.service != "dyn-20000":  # the server may call this client back
            st["mgmt"] = (st["cip"], st["cmac"], st["sip"], ctx.v6)
        if st.get("tls12"):  # ServerHello, ChangeCipherSpec, encrypted Finished
            return (
                _fill_template(TLS12_SERVER_HELLO, [rnd[:32], sid]) + TLS_CCS + tls_record(22, ctx.fill(40))
            )
        # ServerHello, ChangeCipherSpec (compatibility), encrypted EE/Certificate/CV/Finished
        return (
            _fill_template(TLS13_SERVER_HELLO, [rnd[:32], sid, rnd[32:]])
            + TLS_CCS
            + tls_appdata(ctx, r.randint(1200, 4200))
        )
    if direction == 0:
        data = tls_appdata(ctx, r.randint(60, 400))
        if index == 1:  # the client's ChangeCipherSpec and Finished first
            fin = tls_record(22, ctx.fill(40)) if st.get("tls12") else tls_appdata(ctx, 58)
            data = TLS_CCS + fin + data
        return data
    return tls_appdata(ctx, r.randint(60, 1400))


# ---- plaintext management protocol (2099) ---------------------------------

_MGMT_HELLO = b"HELLO casmgmtsvc/17.5 server=%s user=caroot session=%08x\r\n"
_MGMT_REQ = (
    b"LIST JOBS state=%s\r\n",
    b"STATUS job=%d\r\n",
    b"GET LOG job=%d from=%d lines=50\r\n",
    b"QUERY DEVICE group=PGRP%d\r\n",
    b"PING seq=%d\r\n",
)
_MGMT_STATES = (b"active", b"ready", b"hold", b"done")
_MGMT_ROW = b"JOB %d %s node=%s type=%s media=TAPE%04d bytes=%d\r\n"
_MGMT_TYPES = (b"backup", b"restore", b"merge", b"scan")


def plaintext_maker(ctx: Ctx, direction: int, index: int) -> bytes:
    """ASCII command lines and replies (never starting with a TLS record header)."""
    r = ctx.rng
    if direction == 0:
        if index == 0:
            return _MGMT_HELLO % (ctx.sni.encode(), r.getrandbits(32))
        k = r.randrange(len(_MGMT_REQ))
        q = _MGMT_REQ[k]
        if k == 0:
            return q % r.choice(_MGMT_STATES)
        if k == 2:
            return q % (r.randint(1, 9999), r.randint(0, 5000))
        return q % r.randint(1, 9999)
    if index == 0:
        st = ctx.state
        st["mgmt"] = (st["cip"], st["cmac"], st["sip"], ctx.v6)
        return b"+OK casmgmtsvc ready proto=2 ssl=no\r\n"
    host = ctx.sni.encode()
    rows = [
        _MGMT_ROW
        % (
            r.randint(1, 9999),
            r.choice(_MGMT_STATES),
            host,
            r.choice(_MGMT_TYPES),
            r.randint(1, 9999),
            r.getrandbits(34),
        )
        for _ in range(r.randint(0, 12))
    ]
    return b"+OK %d\r\n" % len(rows) + b"".join(rows) + b".\r\n"


PAYLOAD_MAKERS = {
    "rpcbind-tcp": _getport_maker(True),  # ONC RPC portmapper: GETPORT over TCP with record marking
    "rpcbind-udp": _getport_maker(False),
    "msrpc-epmap": epm_maker,  # DCE/RPC bind + ept_map to the endpoint mapper on 135
    "msrpc-arcserve": arcserve_rpc_maker,  # calls on the ports the EPM handed out
    "svc-7099": tls_maker,  # management service over TLS
    "svc-2099": plaintext_maker,  # the same service without TLS
    "dyn-20000": tls_maker,  # its callbacks (server -> client), TLS too
}
# (min, max) request/reply pairs per flow; message 0 is the bind / hello
EXCHANGES = {"msrpc-epmap": (2, 4), "msrpc-arcserve": (2, 6), "svc-7099": (2, 5), "dyn-20000": (2, 5)}


def model_special(ctx: Ctx, budget: int):
    r = ctx.rng
    make = PAYLOAD_MAKERS[ctx.service]
    lo, hi = EXCHANGES.get(ctx.service, (1, 5))
    st = ctx.state
    for i in range(r.randint(lo, hi)):
        yield 0, make(ctx, 0, i), None if i == 0 else r.randint(200, 20000)
        yield 1, make(ctx, 1, i), None
        # resumed once the reply is on the wire: later flows may use what it said
        for key in ("learned", "mgmt", "rpc_learned"):
            v = st.pop(key, None)
            if v is not None:
                ctx.shared[key].append(v)


# ---- common models -----------------------------------------------------------


def split_budget(rng, budget: int, n: int):
    w = [rng.expovariate(1.0) for _ in range(n)]
    s = sum(w)
    return [max(1, int(budget * x / s)) for x in w]


def big_message(direction: int, total: int, maker, chunk: int = 1 << 20):
    """Split a large message into <= chunk pieces sent back-to-back."""
    while total > 0:
        k = total if total < chunk + 4096 else chunk
        yield direction, maker(k), None
        total -= k


def model_web_tls(ctx: Ctx, budget: int):
    r = ctx.rng
    yield 0, tls_client_hello(ctx), None
    yield 1, tls_server_flight(ctx), None
    yield 0, tls_client_finish(ctx), None
    ntx = 1 + min(40, int(r.expovariate(0.4)))
    mk = lambda k: tls_appdata(ctx, max(22, k))  # noqa: E731
    for i, resp in enumerate(split_budget(r, budget, ntx)):
        yield 0, tls_appdata(ctx, r.randint(90, 900)), None if i == 0 else r.randint(50, 200000)
        yield from big_message(1, max(60, resp), mk)


def model_web_http(ctx: Ctx, budget: int):
    r = ctx.rng
    ntx = 1 + min(30, int(r.expovariate(0.5)))
    for i, resp in enumerate(split_budget(r, budget, ntx)):
        yield 0, http_request(ctx, r.randint(0, 300)), None if i == 0 else r.randint(50, 200000)
        resp = max(resp, 20)
        hdr = http_response_header(resp)
        first = True
        for d, m, dl in big_message(1, resp, ctx.fill):
            yield d, (hdr + m) if first else m, dl
            first = False


def model_tls_short(ctx: Ctx, budget: int):
    r = ctx.rng
    yield 0, tls_client_hello(ctx), None
    yield 1, tls_server_flight(ctx), None
    yield 0, tls_client_finish(ctx), None
    for _i in range(r.randint(1, 3)):
        yield 0, tls_appdata(ctx, r.randint(60, 700)), None
        yield 1, tls_appdata(ctx, int(clamp(r.lognormvariate(6.5, 1.0), 30, 20000))), None


def model_chatty(ctx: Ctx, budget: int):
    """TLS-wrapped request/response RPC-style traffic with small messages."""
    r = ctx.rng
    yield 0, tls_client_hello(ctx), None
    yield 1, tls_server_flight(ctx), None
    yield 0, tls_client_finish(ctx), None
    left = budget
    for _ in range(20000):
        q = int(clamp(r.lognormvariate(5.0, 0.8), 30, 3000))
        a = int(clamp(r.lognormvariate(5.8, 1.1), 30, 12000))
        yield 0, tls_appdata(ctx, q), r.randint(20, 3000)
        yield 1, tls_appdata(ctx, a), None
        left -= q + a
        if left <= 0:
            break


def model_bulk_up(ctx: Ctx, budget: int):
    r = ctx.rng
    yield 0, tls_client_hello(ctx), None
    yield 1, tls_server_flight(ctx), None
    yield 0, tls_client_finish(ctx), None
    yield from big_message(0, max(budget, 100), lambda k: tls_appdata(ctx, max(22, k)))
    yield 1, tls_appdata(ctx, r.randint(40, 400)), None


def model_dns(ctx: Ctx, budget: int):
    r = ctx.rng
    name = random_host(r)
    for i in range(1 if r.random() < 0.7 else 2):
        qtype = 28 if (i == 1 or (ctx.v6 and r.random() < 0.5)) else 1
        q = dns_query(ctx, name, qtype, r.getrandbits(16))
        yield 0, q, None if i == 0 else r.randint(10, 500)
        yield 1, dns_response(ctx, q, qtype), None


def model_ntp(ctx: Ctx, budget: int):
    yield 0, ntp_packet(ctx, False), None
    yield 1, ntp_packet(ctx, True), None


def model_quic(ctx: Ctx, budget: int):
    r = ctx.rng
    left = budget
    yield 0, quic_short(ctx, r.randint(1200, 1252)), None
    while left > 0:
        yield 0, quic_short(ctx, r.randint(40, 400)), r.randint(100, 100000)
        burst = r.randint(2, 40)
        for k in range(burst):
            n = r.randint(1200, 1350) if r.random() < 0.85 else r.randint(30, 1200)
            yield 1, quic_short(ctx, n), None
            left -= n
            if k % 4 == 3:
                yield 0, quic_short(ctx, r.randint(35, 60)), None
            if left <= 0:
                break


def model_stream(ctx: Ctx, budget: int):
    r = ctx.rng
    video = r.random() < 0.3
    both = r.random() < 0.6
    interval = ctx.state.get("interval", 20000)
    left = budget
    while left > 0:
        n = r.randint(300, 1200) if video else 172
        yield 0, rtp_packet(ctx, n), interval
        left -= n
        if both:
            yield 1, rtp_packet(ctx, 172), r.randint(100, interval // 2)
            left -= 172


def model_none(ctx: Ctx, budget: int):
    return iter(())


# --------------------------------------------------------------------------
# services: (name, transport, weight %, scalable, est. wire bytes, ports, model)
# `ports` is a callable rng -> server port.  Weights are shares of flows.


def _pick(*choices):
    ports = [c[0] for c in choices]
    cum = list(accumulate(c[1] for c in choices))
    return lambda r: ports[bisect(cum, r.random() * cum[-1])]


SCAN_PORTS = _pick(
    (22, 10),
    (23, 5),
    (25, 3),
    (80, 8),
    (139, 3),
    (443, 8),
    (445, 6),
    (3389, 6),
    (8080, 4),
    (5900, 2),
    (1433, 2),
    (3306, 2),
    (8443, 2),
    (6379, 1),
)

SERVICES = [
    ("web-tls", "tcp", 27.0, True, 0, _pick((443, 93), (8443, 7)), model_web_tls),
    ("web-http", "tcp", 6.0, True, 0, _pick((80, 90), (8080, 10)), model_web_http),
    ("tls-short", "tcp", 14.0, False, 9000, _pick((443, 85), (993, 5), (5223, 5), (853, 5)), model_tls_short),
    ("chatty", "tcp", 15.0, True, 0, _pick((443, 60), (8443, 20), (993, 10), (5671, 10)), model_chatty),
    ("bulk-up", "tcp", 2.0, True, 0, _pick((443, 100)), model_bulk_up),
    ("quic", "udp", 5.0, True, 0, _pick((443, 100)), model_quic),
    ("dns", "udp", 18.5, False, 330, _pick((53, 100)), model_dns),
    ("ntp", "udp", 2.0, False, 200, _pick((123, 100)), model_ntp),
    ("stream", "udp", 1.5, True, 0, lambda r: r.randint(21000, 32767) & ~1, model_stream),
    ("refused", "tcp", 3.0, False, 140, SCAN_PORTS, model_none),
    ("unanswered", "tcp", 3.0, False, 220, SCAN_PORTS, model_none),
]

SPECIAL_SHARE = 1.3  # % of flows
SPECIAL_SERVICES = [
    # (name == PAYLOAD_MAKERS key, transport, relative weight, port chooser)
    ("rpcbind-tcp", "tcp", 2, lambda r: 111),
    ("rpcbind-udp", "udp", 2, lambda r: 111),
    ("msrpc-epmap", "tcp", 2, lambda r: 135),
    # to a port an earlier ept_map answer named (Generator.new_flow), else 6502-6504
    ("msrpc-arcserve", "tcp", 3, _pick((6502, 1), (6503, 1), (6504, 1))),
    ("svc-7099", "tcp", 1, lambda r: 7099),
    ("svc-2099", "tcp", 1, lambda r: 2099),
    # callbacks: the server of an earlier 7099/2099 flow connects back to its client
    ("dyn-20000", "tcp", 2, lambda r: r.randint(20000, 20100)),
]


def all_services():
    out = list(SERVICES)
    tot = sum(s[2] for s in SPECIAL_SERVICES)
    for name, tr, w, ports in SPECIAL_SERVICES:
        out.append((name, tr, SPECIAL_SHARE * w / tot, False, 2500, ports, model_special))
    return out


# --------------------------------------------------------------------------
# transports


class Flow:
    __slots__ = (
        "rng",
        "ctx",
        "t0",
        "rtt",
        "rate",
        "hd",
        "ack_every",
        "mss",
        "tcp",
        "udp",
        "slow",
        "isn",
        "syn_opts",
        "ending",
        "mode",
        "gmax",
    )


def tcp_conv(fl: Flow, msgs):
    """Yield (gap_us, frame) for a TCP connection carrying msgs."""
    rnd = fl.rng.random
    rtt, rate, hd = fl.rtt, fl.rate, fl.hd
    slow = fl.slow
    now = fl.t0
    ic, is_ = fl.isn
    yield 0, slow(0, ic, 0, SYN, fl.syn_opts[0], now)
    if fl.mode == "unanswered":
        for k in range(fl.rng.randint(1, 3)):
            gap = 1000000 << k
            now += gap
            yield gap, slow(0, ic, 0, SYN, fl.syn_opts[0], now)
        return
    now += rtt
    if fl.mode == "refused":
        yield rtt, slow(1, 0, ic + 1, RA, b"", now)
        return
    yield rtt, slow(1, is_, ic + 1, SYN | ACK, fl.syn_opts[1], now)
    gap = 1 + int(rnd() * hd)
    now += gap
    bld = fl.tcp
    sq = [(ic + 1) & M32, (is_ + 1) & M32]
    yield gap, bld[0](sq[0], sq[1], ACK, b"", now)

    mss = fl.mss
    ack_every = fl.ack_every
    ctx = fl.ctx
    gmax = fl.gmax
    prevd = 0
    unacked = 0
    for d, data, delay in msgs:
        o = 1 - d
        if isinstance(data, int):
            n = data
            data = None
        else:
            n = len(data)
        if delay is None:
            if d != prevd:
                delay = rtt if d == 1 else 1 + int(rnd() * hd)
            else:
                delay = 1 + int(rnd() * hd)
        elif delay > gmax:
            delay = gmax
        if d != prevd:
            unacked = 0
        b = bld[d]
        m = mss[d]
        off = 0
        gap = delay
        while off < n:
            seg = n - off
            if seg > m:
                seg = m
            payload = data[off : off + seg] if data is not None else ctx.fill(seg)
            off += seg
            now += gap
            yield gap, b(sq[d], sq[o], PA if off >= n else ACK, payload, now)
            sq[d] = (sq[d] + seg) & M32
            unacked += 1
            if unacked >= ack_every:
                unacked = 0
                gap = 1 + int(rnd() * hd)
                now += gap
                yield gap, bld[o](sq[o], sq[d], ACK, b"", now)
            gap = 1 + int(seg * (0.5 + rnd()) / rate)
        if unacked and rnd() < 0.5:
            unacked = 0
            gap = 1 + int(rnd() * hd) + (rtt if d == 0 else 0)
            now += gap
            yield gap, bld[o](sq[o], sq[d], ACK, b"", now)
        prevd = d

    end = fl.ending
    if end == "none":
        return
    if end == "rst":
        d = 0 if rnd() < 0.6 else 1
        gap = 1 + int(rnd() * hd * 4)
        now += gap
        yield gap, bld[d](sq[d], sq[1 - d], RA, b"", now)
        return
    d = 0 if end == "fin_c" else 1
    o = 1 - d
    gap = 1 + int(rnd() * (hd * 8 + rtt))
    now += gap
    yield gap, bld[d](sq[d], sq[o], FA, b"", now)
    sq[d] = (sq[d] + 1) & M32
    gap = rtt if d == 0 else 1 + int(rnd() * hd)
    now += gap
    yield gap, bld[o](sq[o], sq[d], FA, b"", now)
    sq[o] = (sq[o] + 1) & M32
    gap = 1 + int(rnd() * hd) if d == 0 else rtt
    now += gap
    yield gap, bld[d](sq[d], sq[o], ACK, b"", now)


def udp_conv(fl: Flow, msgs):
    rnd = fl.rng.random
    rtt, hd, gmax = fl.rtt, fl.hd, fl.gmax
    bld = fl.udp
    ctx = fl.ctx
    prevd = 0
    first = True
    for d, data, delay in msgs:
        if isinstance(data, int):
            data = ctx.fill(data)
        if len(data) > 1400:
            data = data[:1400]
        if first:
            delay = 0
            first = False
        elif delay is None:
            delay = rtt if (d == 1 and prevd == 0) else 1 + int(rnd() * hd)
        elif delay > gmax:
            delay = gmax
        prevd = d
        yield delay, bld[d](data)


# --------------------------------------------------------------------------
# hosts and flows

OUIS = [
    bytes.fromhex(x)
    for x in (
        "001b21",
        "3c22fb",
        "f48e38",
        "a4bb6d",
        "00155d",
        "525400",
        "d89ef3",
        "f0def1",
        "b827eb",
        "8c8590",
        "005056",
        "e4b97a",
        "40a6b7",
        "00e04c",
    )
]
GATEWAY_MACS = [bytes.fromhex(x) for x in ("00000c9ff001", "001c73a0b1c2", "f4cfe2112233", "0026cb445566")]
SERVER_V4_NETS = (
    13,
    20,
    23,
    31,
    34,
    35,
    45,
    52,
    54,
    64,
    66,
    69,
    72,
    74,
    91,
    93,
    104,
    128,
    140,
    142,
    146,
    151,
    157,
    162,
    172,
    173,
    176,
    185,
    192,
    198,
    199,
    203,
    204,
    208,
    209,
    216,
)
SERVER_V6_PREFIXES = [
    bytes.fromhex(x)
    for x in (
        "2a00145040",
        "2606470000",
        "2a03288020",
        "2620011c00",
        "2001486000",
        "2a0498c000",
        "2600190000",
        "2a02268000",
    )
]
VLANS = (10, 20, 30, 100, 200, 310)


class Generator:
    """Sessions: flows arrive and run their course (the realistic mix described above)."""

    def __init__(self, target: int, nflows: int, seed: int, checksums: bool, link_mbps: float):
        self.target = target
        self.nflows = max(1, nflows)
        self.rng = r = random.Random(seed)
        self.checksums = checksums
        self.fill_buf = r.randbytes(FILL_MASK + 1 + 65536)
        svcs = all_services()
        self.services = svcs
        self.cum = list(accumulate(s[2] for s in svcs))
        wsum = self.cum[-1]
        self.scal_share = sum(s[2] for s in svcs if s[3]) / wsum
        self.fixed_est = sum(s[2] * s[4] for s in svcs if not s[3]) / wsum  # per flow
        # nominal capture duration: bytes*8/(Mbit/s) = us; at least 0.25 s and
        # 100 us per (feasible, >= 3 KB) flow so small captures hold whole flows
        self.duration_us = max(target * 8 / link_mbps, 250000.0, 100.0 * min(self.nflows, target / 3000))
        self.interarrival = self.duration_us / self.nflows
        self.dur_cap = self.duration_us / 8
        self.committed = 0.0
        self.created = 0
        self.scal_created = 0
        self.seen = set()
        nc = max(256, min(20000, self.nflows // 8))
        ns = max(64, min(5000, self.nflows // 30))
        self.clients4 = [
            (
                bytes((10, r.randrange(256), r.randrange(256), r.randrange(1, 255))),
                r.choice(OUIS) + r.randbytes(3),
            )
            for _ in range(nc)
        ]
        self.clients6 = [
            (
                bytes.fromhex("fd00000000000" + f"{r.randrange(4096):03x}") + r.randbytes(8),
                r.choice(OUIS) + r.randbytes(3),
            )
            for _ in range(max(64, nc // 5))
        ]
        self.servers4 = [
            bytes((r.choice(SERVER_V4_NETS), r.randrange(256), r.randrange(256), r.randrange(1, 255)))
            for _ in range(ns)
        ]
        self.servers6 = [r.choice(SERVER_V6_PREFIXES) + r.randbytes(11) for _ in range(max(32, ns // 4))]
        self.snis = {}
        self.peak_active = 0
        # shared with the payload makers: EPM answers not yet used by a client, the port of each
        # (server, Arcserve interface), recent management sessions (for callbacks)
        self.shared = {
            "learned": deque(maxlen=1024),
            "ports": {},
            "mgmt": deque(maxlen=64),
            "rpc_learned": deque(maxlen=1024),  # GETPORT answers (only the interleaved shape calls them)
        }

    # -- budgets -------------------------------------------------------------
    def budget(self, scalable: bool) -> int:
        if not scalable:
            return 0
        r = self.rng
        remaining_scal = max(1.0, (self.nflows - self.created) * self.scal_share)
        fixed_rest = max(0.0, (self.nflows - self.created) * self.fixed_est)
        mean_wire = (self.target - self.committed - fixed_rest) / remaining_scal
        mean = max(1500.0, (mean_wire - SCAL_C) / SCAL_K)
        sigma = 1.6
        b = r.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)
        return int(clamp(b, 100, self.target / 40))

    # -- flow creation ---------------------------------------------------------
    def new_flow(self, t0: int):
        r = self.rng
        i = bisect(self.cum, r.random() * self.cum[-1])
        name, transport, _w, scalable, est, portf, model = self.services[i]
        v6 = r.random() < 0.15
        vlan = r.choice(VLANS) if r.random() < 0.05 else None
        shared = self.shared
        state = {}
        peer = None  # (client ip, client mac, server ip) fixed by an earlier flow
        fixed_port = None
        reverse = False  # the server side opens the connection (callbacks)
        if name == "msrpc-arcserve":
            if shared["learned"]:
                sip, fixed_port, k, v6, cip, cmac = shared["learned"].popleft()
                if r.random() < 0.2:  # another client uses the same service
                    cip, cmac = r.choice(self.clients6 if v6 else self.clients4)
                peer = (cip, cmac, sip)
            else:
                k = r.randrange(len(ARCSERVE_IFACES))
                fixed_port = ARCSERVE_IFACES[k][3]
            state["iface"], state["port"] = k, fixed_port
        elif name == "oncrpc-call":
            if shared["rpc_learned"]:
                sip, fixed_port, prog, vers, prot, v6, cip, cmac = shared["rpc_learned"].popleft()
                peer = (cip, cmac, sip)
            else:
                prog, vers, prot = r.choice(_RPC_PROGRAMS)
                fixed_port = 1025 + (prog + vers) % 3000
            transport = "tcp" if prot == 6 else "udp"
            state["rpc"] = (prog, vers, transport == "tcp")
        elif name == "dyn-20000" and shared["mgmt"]:
            *peer, v6 = r.choice(shared["mgmt"])
            reverse = True
        elif name == "dyn-20000":
            reverse = True
        for _ in range(100):
            if peer is not None:
                cip, cmac, sip = peer
            elif v6:
                cip, cmac = r.choice(self.clients6)
                sip = r.choice(self.servers6)
            else:
                cip, cmac = r.choice(self.clients4)
                sip = r.choice(self.servers4)
            sport = fixed_port or portf(r)
            if name == "ntp" and r.random() < 0.3:
                cport = 123
            elif name == "stream":
                cport = r.randint(21000, 32767) & ~1
            elif r.random() < 0.7:
                cport = r.randint(32768, 60999)
            else:
                cport = r.randint(49152, 65535)
            key = (cip, cport, sip, sport, transport)
            if key not in self.seen:
                break
        self.seen.add(key)
        state["cip"], state["cmac"], state["sip"] = cip, cmac, sip
        gw = GATEWAY_MACS[(vlan or 0) % len(GATEWAY_MACS)]
        eth_c = eth_header(gw, cmac, vlan, v6)
        eth_s = eth_header(cmac, gw, vlan, v6)
        if reverse:  # the connection comes from outside, to the local host's port
            cip, sip = sip, cip
            eth_c, eth_s = eth_s, eth_c
        l3off = len(eth_c)
        budget = self.budget(scalable)

        fl = Flow()
        fl.rng = r
        fl.t0 = t0
        if name in ("chatty",) and r.random() < 0.5:
            rtt = r.lognormvariate(math.log(600), 0.6)
        else:
            rtt = r.lognormvariate(math.log(18000), 0.9)
        # big flows must not outlive the capture: bound the per-flow rate from
        # below and RTT / think times from above (~1 round trip per KB)
        gmax = int(max(200.0, self.dur_cap / (1 + budget / 1000))) if budget else 1 << 40
        fl.gmax = gmax
        fl.rtt = int(clamp(rtt, 150, min(400000, gmax)))
        rate = clamp(r.lognormvariate(math.log(3.0), 1.0), 0.05, 120.0)  # bytes/us
        if budget:
            rate = max(rate, budget / self.dur_cap)
        fl.rate = rate
        fl.hd = r.randint(20, 400)
        fl.ack_every = 1 if r.random() < 0.6 else 2
        host = self.snis.get(sip)
        if host is None:
            host = self.snis[sip] = random_host(r)
        fl.ctx = ctx = Ctx(r, self.fill_buf, host, v6, name, shared)
        ctx.state = state
        if name == "stream":
            npk = max(1, budget // 400)
            ctx.state["interval"] = int(clamp(self.dur_cap / npk, 1000, 20000))
        hop_c = r.choice((64, 128, 255)) - r.randint(0, 2)
        hop_s = r.choice((64, 128, 255)) - r.randint(5, 25)
        if reverse:
            hop_c, hop_s = hop_s, hop_c
        flowlabel = r.getrandbits(20) if v6 else 0
        fix_c = fix_s = None
        if transport == "tcp":
            if self.checksums:
                fix_c = make_checksum_fixer(l3off, v6, 6, cip, sip)
                fix_s = make_checksum_fixer(l3off, v6, 6, sip, cip)
            ts = r.random() < 0.6
            wsc, wss = r.choice((7, 8, 9)), r.choice((7, 9, 10))
            win_c, win_s = r.choice((502, 501, 1024, 2053, 64240)), r.choice((235, 509, 1026, 8192, 65535))
            isn = (r.getrandbits(32), r.getrandbits(32))
            fl.isn = isn
            tsb = (r.getrandbits(32), r.getrandbits(32))
            half = fl.rtt // 2
            ipid_c, ipid_s = r.getrandbits(16), r.getrandbits(16)
            fl.tcp = (
                tcp_fast_builder(
                    eth_c,
                    v6,
                    cip,
                    sip,
                    cport,
                    sport,
                    hop_c,
                    win_c,
                    ts,
                    tsb[0],
                    tsb[1],
                    half,
                    flowlabel,
                    ipid_c,
                    fix_c,
                ),
                tcp_fast_builder(
                    eth_s,
                    v6,
                    sip,
                    cip,
                    sport,
                    cport,
                    hop_s,
                    win_s,
                    ts,
                    tsb[1],
                    tsb[0],
                    half,
                    flowlabel,
                    ipid_s,
                    fix_s,
                ),
            )
            base_mss = 1440 if v6 else 1460
            mss_s = base_mss if r.random() < 0.9 else base_mss - r.choice((8, 40, 100))
            fl.mss = (base_mss - (12 if ts else 0), mss_s - (12 if ts else 0))
            if ts:

                def syn_opts(mss, wscale, tsv):
                    return (
                        pack("!BBH", 2, 4, mss)
                        + b"\x04\x02\x08\x0a"
                        + pack("!II", tsv, 0)
                        + b"\x01\x03\x03"
                        + bytes((wscale,))
                    )
            else:

                def syn_opts(mss, wscale, tsv):
                    return pack("!BBH", 2, 4, mss) + b"\x01\x03\x03" + bytes((wscale,)) + b"\x01\x01\x04\x02"

            fl.syn_opts = (syn_opts(base_mss, wsc, tsb[0]), syn_opts(mss_s, wss, tsb[1]))
            eths = (eth_c, eth_s)
            addrs = (
                (cip, sip, cport, sport, hop_c, ipid_c, fix_c),
                (sip, cip, sport, cport, hop_s, ipid_s, fix_s),
            )

            def slow(d, seq, ack, flags, opts, now):
                a = addrs[d]
                return tcp_slow_frame(
                    eths[d],
                    v6,
                    a[0],
                    a[1],
                    a[2],
                    a[3],
                    a[4],
                    64240 if d == 0 else 65160,
                    seq,
                    ack,
                    flags,
                    opts,
                    b"",
                    flowlabel,
                    a[5],
                    a[6],
                )

            fl.slow = slow
            if name == "refused":
                fl.mode = "refused"
            elif name == "unanswered":
                fl.mode = "unanswered"
            else:
                fl.mode = "ok"
            x = r.random()
            fl.ending = "fin_c" if x < 0.60 else "fin_s" if x < 0.85 else "rst" if x < 0.95 else "none"
            gen = tcp_conv(fl, model(ctx, budget))
        else:
            if self.checksums:
                fix_c = make_checksum_fixer(l3off, v6, 17, cip, sip)
                fix_s = make_checksum_fixer(l3off, v6, 17, sip, cip)
            fl.udp = (
                udp_builder(eth_c, v6, cip, sip, cport, sport, hop_c, flowlabel, r.getrandbits(16), fix_c),
                udp_builder(eth_s, v6, sip, cip, sport, cport, hop_s, flowlabel, r.getrandbits(16), fix_s),
            )
            gen = udp_conv(fl, model(ctx, budget))
        self.created += 1
        self.committed += (budget * SCAL_K + SCAL_C) if scalable else est
        return gen

    # -- main loop -----------------------------------------------------------
    def run(self, out, fmt: str, start_us: int) -> tuple[int, int, int]:
        r = self.rng
        target = self.target
        heap = []
        heappush, heapreplace, heappop = heapq.heappush, heapq.heapreplace, heapq.heappop
        parts = []
        ap = parts.append
        written = 0
        npkts = 0
        nflows = 0
        fid = 0
        ia = self.interarrival
        next_arr = 0
        if fmt == "pcap":
            out.write(pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
            written += 24
            rec = Struct("<IIII").pack
        else:
            app = b"portwitness benches/generate.py"
            shb_opts = pack("<HH", 4, len(app)) + app + ZEROS[(-len(app)) & 3] + pack("<HH", 0, 0)
            shb_len = 28 + len(shb_opts)
            shb = pack("<IIIHHq", 0x0A0D0D0A, shb_len, 0x1A2B3C4D, 1, 0, -1) + shb_opts + pack("<I", shb_len)
            idb_opts = pack("<HH", 2, 4) + b"eth0" + pack("<HHB3x", 9, 1, 6) + pack("<HH", 0, 0)
            idb_len = 20 + len(idb_opts)
            idb = pack("<IIHHI", 1, idb_len, 1, 0, 262144) + idb_opts + pack("<I", idb_len)
            out.write(shb + idb)
            written += len(shb) + len(idb)
            epb = Struct("<IIIIIII").pack
            # trailer per captured length: padding + trailing block length
            trail = [ZEROS[(-n) & 3] + pack("<I", 32 + n + ((-n) & 3)) for n in range(MAX_SEG + 64)]

        pcap = fmt == "pcap"
        flush_every = 4096

        def emit_first(t):
            nonlocal fid
            gen = self.new_flow(t)
            gap, frame = next(gen)
            fid += 1
            return gen, frame

        while written < target:
            if not heap or next_arr <= heap[0][0]:
                t = next_arr
                gen, frame = emit_first(t)
                nflows += 1
                next_arr = t + 1 + int(r.expovariate(1.0) * ia)
                nxt = next(gen, None)
                if nxt is not None:
                    heappush(heap, (t + nxt[0], fid, nxt[1], gen))
                    if len(heap) > self.peak_active:
                        self.peak_active = len(heap)
            else:
                t, f, frame, gen = heap[0]
                nxt = next(gen, None)
                if nxt is None:
                    heappop(heap)
                else:
                    heapreplace(heap, (t + nxt[0], f, nxt[1], gen))
            n = len(frame)
            ts = start_us + t
            if pcap:
                ap(rec(ts // 1000000, ts % 1000000, n, n))
                ap(frame)
                written += n + 16
            else:
                ap(epb(6, 32 + n + ((-n) & 3), 0, ts >> 32, ts & M32, n, n))
                ap(frame)
                ap(trail[n])
                written += 32 + n + ((-n) & 3)
            npkts += 1
            if npkts % flush_every == 0:
                out.write(b"".join(parts))
                parts.clear()
        out.write(b"".join(parts))
        return npkts, nflows, written


# --------------------------------------------------------------------------
# the interleaved shape: many concurrent flows, consecutive packets from different flows
#
# On a busy link with tens of thousands of conversations open at once, the next packet rarely
# belongs to the flow of the previous one. Here a fixed number of flow slots stay open; each
# packet comes from one slot, chosen uniformly over all slots half of the time and by a Zipf law
# over a random ranking of the slots the other half (a few heavy flows, a long tail). A finished
# flow is replaced by a new one in its slot, so the concurrency holds for the whole file.
# About 15 % of the flows are Arcserve's: portmapper GETPORT and the calls to the ports it
# answered, DCE/RPC endpoint-mapper lookups and the binds and calls to the ports they named,
# the management service and its callbacks.

INTERLEAVED_SPECIAL_SHARE = 15.0  # % of flows
INTERLEAVED_ZIPF_S = 1.1
INTERLEAVED_SPECIAL = SPECIAL_SERVICES + [
    # ONC RPC to a port an earlier GETPORT reply named (Generator.new_flow), else the fallback
    ("oncrpc-call", "tcp", 3, lambda r: 0),
]
EXCHANGES["oncrpc-call"] = (2, 6)


def oncrpc_call_maker(ctx: Ctx, direction: int, index: int) -> bytes:
    """ONC RPC v2 calls (AUTH_NULL) to the program a GETPORT asked for, and accepted replies;
    record marking over TCP."""
    prog, vers, tcp = ctx.state["rpc"]
    r = ctx.rng
    xid = ctx.state.setdefault("xid", r.getrandbits(32) & 0xFFFF0000) + index
    if direction == 0:
        args = ctx.fill(r.randint(1, 60) * 4)
        body = struct.pack(">10I", xid, 0, 2, prog, vers, 1 + index % 7, 0, 0, 0, 0) + args
    else:
        body = struct.pack(">6I", xid, 1, 0, 0, 0, 0) + ctx.fill(r.randint(1, 200) * 4)
    if tcp:
        body = struct.pack(">I", 0x80000000 | len(body)) + body
    return body


PAYLOAD_MAKERS["oncrpc-call"] = oncrpc_call_maker


class InterleavedGenerator(Generator):
    """`nflows` slots open at once; packets chosen per packet (half uniform, half Zipf)."""

    def __init__(self, target: int, nflows: int, seed: int, checksums: bool, link_mbps: float):
        super().__init__(target, nflows, seed, checksums, link_mbps)
        out = list(SERVICES)
        tot = sum(s[2] for s in INTERLEAVED_SPECIAL)
        share = INTERLEAVED_SPECIAL_SHARE * sum(s[2] for s in SERVICES) / (100 - INTERLEAVED_SPECIAL_SHARE)
        for name, tr, w, ports in INTERLEAVED_SPECIAL:
            out.append((name, tr, share * w / tot, False, 2500, ports, model_special))
        self.services = out
        self.cum = list(accumulate(s[2] for s in out))
        # the slots' whole life is the file: a flow averages a few slot-lifetimes' worth of bytes
        self.mean_budget = max(1500.0, target / self.nflows / 3)

    def budget(self, scalable: bool) -> int:
        if not scalable:
            return 0
        sigma = 1.6
        b = self.rng.lognormvariate(math.log(self.mean_budget) - sigma * sigma / 2, sigma)
        return int(clamp(b, 100, self.target / 200))

    def run(self, out, fmt: str, start_us: int) -> tuple[int, int, int]:
        if fmt != "pcap":
            raise SystemExit("generate.py: the interleaved shape writes classic pcap only")
        r = self.rng
        n = self.nflows
        rank_cum = list(accumulate(1.0 / (k**INTERLEAVED_ZIPF_S) for k in range(1, n + 1)))
        rank_tot = rank_cum[-1]
        by_rank = list(range(n))
        r.shuffle(by_rank)
        slots: list = [None] * n
        live = 0
        # packets arrive at the link's rate (a record averages ~466 bytes)
        gap_us = self.duration_us * 466 / self.target
        out.write(pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        written = 24
        rec = Struct("<IIII").pack
        parts = []
        ap = parts.append
        npkts = nflows = 0
        t = 0.0
        rnd = r.random
        while written < self.target:
            if rnd() < 0.5:
                i = int(rnd() * n)
            else:
                i = by_rank[bisect(rank_cum, rnd() * rank_tot)]
            gen = slots[i]
            frame = None
            if gen is not None:
                nxt = next(gen, None)
                if nxt is not None:
                    frame = nxt[1]
            if frame is None:
                if gen is None:
                    live += 1
                    self.peak_active = max(self.peak_active, live)
                gen = slots[i] = self.new_flow(int(t))
                frame = next(gen)[1]
                nflows += 1
            t += gap_us * 2 * rnd()
            ts = start_us + int(t)
            k = len(frame)
            ap(rec(ts // 1000000, ts % 1000000, k, k))
            ap(frame)
            written += k + 16
            npkts += 1
            if npkts % 4096 == 0:
                out.write(b"".join(parts))
                parts.clear()
        out.write(b"".join(parts))
        return npkts, nflows, written


# 64-byte frames: the per-packet cost, with hardly any bytes per packet. Each shape is a class
# like Generator: built from (size, flows, seed, checksums, link_mbps), run(out, fmt, start_us)
# returns (packets, flows, bytes), peak_active is the flows open at once.

SMALL_FRAME = 64  # captured bytes per frame: a SYN is padded to it, a short DNS message fills it


def _small_frames_writer(out, fmt, size, frames, rng, weights, start_us, gap_us):
    """Writes records of the prebuilt `SMALL_FRAME`-byte `frames`, drawn at random (by `weights` if given),
    until `size` bytes; timestamps advance by `gap_us` on average. Frames come in pairs, one per
    direction of a 5-tuple. Returns (packets, 5-tuples seen, bytes)."""
    gaps = [gap_us * k // 8 for k in range(4, 13)]
    cum = list(accumulate(weights)) if weights else None
    idx = range(len(frames))
    seen = bytearray(len(frames) // 2 + 1)
    if fmt == "pcap":
        head = pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
        per = 16 + SMALL_FRAME
        rec = Struct("<IIII").pack
    else:
        app = b"portwitness benches/generate.py"
        shb_opts = pack("<HH", 4, len(app)) + app + ZEROS[(-len(app)) & 3] + pack("<HH", 0, 0)
        shb_len = 28 + len(shb_opts)
        head = pack("<IIIHHq", 0x0A0D0D0A, shb_len, 0x1A2B3C4D, 1, 0, -1) + shb_opts + pack("<I", shb_len)
        idb_opts = pack("<HH", 2, 4) + b"eth0" + pack("<HHB3x", 9, 1, 6) + pack("<HH", 0, 0)
        idb_len = 20 + len(idb_opts)
        head += pack("<IIHHI", 1, idb_len, 1, 0, 262144) + idb_opts + pack("<I", idb_len)
        per = 32 + SMALL_FRAME
        epb = Struct("<IIIIIII").pack
        tail = pack("<I", per)
    out.write(head)
    total = max(0, (size - len(head)) // per)
    ts = start_us
    done = 0
    batch = 1 << 16
    while done < total:
        n = min(batch, total - done)
        parts = []
        ap = parts.append
        for i, g in zip(rng.choices(idx, cum_weights=cum, k=n), rng.choices(gaps, k=n), strict=True):
            ts += g
            seen[i >> 1] = 1
            if fmt == "pcap":
                ap(rec(ts // 1000000, ts % 1000000, SMALL_FRAME, SMALL_FRAME))
                ap(frames[i])
            else:
                ap(epb(6, per, 0, ts >> 32, ts & 0xFFFFFFFF, SMALL_FRAME, SMALL_FRAME))
                ap(frames[i])
                ap(tail)
        out.write(b"".join(parts))
        done += n
    return total, sum(seen), len(head) + total * per


def _ipv4(src: bytes, dst: bytes, proto: int, payload_len: int, ipid: int) -> bytes:
    hdr = pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ipid, 0x4000, 64, proto, 0, src, dst)
    return hdr[:10] + pack("!H", csum_finish(csum_mod(hdr))) + hdr[12:]


class SmallFrames:
    """Base of the 64-byte shapes: `frames()` builds a pair of frames per 5-tuple (one per
    direction) and their weights, the writer draws from them."""

    gap_us = 2

    def __init__(self, target: int, nflows: int, seed: int, checksums: bool = False, link_mbps: float = 0.0):
        self.target, self.nflows, self.rng = target, max(1, nflows), random.Random(seed)
        self.peak_active = 0

    def run(self, out, fmt: str, start_us: int) -> tuple[int, int, int]:
        frames, weights = self.frames()
        npk, nfl, nbytes = _small_frames_writer(
            out, fmt, self.target, frames, self.rng, weights, start_us, self.gap_us
        )
        self.peak_active = nfl
        return npk, nfl, nbytes


class SynFlood(SmallFrames):
    """64-byte frames: spoofed SYNs to one web server, its SYN/ACKs and RSTs.

    A SYN flood from --flows spoofed (address, port) pairs, each retried at random: 80 % SYNs with
    an MSS option, 20 % the server's SYN/ACK or RST/ACK."""

    def frames(self):
        rng = self.rng
        eth_in = bytes.fromhex("0050568a0001") + bytes.fromhex("00000c9ff001") + b"\x08\x00"
        eth_out = eth_in[6:12] + eth_in[:6] + b"\x08\x00"
        server = bytes((192, 0, 2, 80))
        frames = []
        for k in range(self.nflows):
            src = bytes(
                (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
            )
            sport = rng.randrange(1024, 65536)
            dport = (80, 443)[k & 1]
            seq = rng.getrandbits(32)
            syn = pack("!HHIIBBHHH", sport, dport, seq, 0, 6 << 4, SYN, 64240, 0, 0) + b"\x02\x04\x05\xb4"
            f = eth_in + _ipv4(src, server, 6, len(syn), rng.getrandbits(16)) + syn
            frames.append(f.ljust(SMALL_FRAME, b"\0"))
            flags = SYN | ACK if k % 3 else RA
            reply = pack("!HHIIBBHHH", dport, sport, rng.getrandbits(32), seq + 1, 5 << 4, flags, 0, 0, 0)
            f = eth_out + _ipv4(server, src, 6, len(reply), 0) + reply
            frames.append(f.ljust(SMALL_FRAME, b"\0"))
        return frames, [8, 2] * self.nflows


class DnsMix(SmallFrames):
    """64-byte frames: DNS-like UDP queries and NXDOMAIN answers, many clients, few resolvers.

    --flows client (address, port) pairs ask four resolvers short names; the answers are NXDOMAIN
    (no records), so queries and answers are both 64-byte frames (a 22-byte DNS message: header,
    a 6-byte name, type A, class IN)."""

    gap_us = 3

    def frames(self):
        rng = self.rng
        mac_c, mac_r = bytes.fromhex("3c52823a0b11"), bytes.fromhex("001c73a0b1c2")
        resolvers = [bytes((10, 53, 0, i)) for i in (1, 2, 3, 4)]
        frames = []
        for k in range(self.nflows):
            client = bytes((10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)))
            sport = rng.randrange(1024, 65536)
            res = resolvers[k & 3]
            txid = rng.getrandbits(16)
            qname = b"\x01" + bytes((rng.choice(b"abcdefghijklmnopqrstuvwxyz"),)) + b"\x02pw\x00"
            question = qname + pack("!HH", 1, 1)
            for src, dst, sp, dp, flags, macs in (
                (client, res, sport, 53, 0x0100, mac_r + mac_c),
                (res, client, 53, sport, 0x8183, mac_c + mac_r),
            ):
                msg = pack("!HHHHHH", txid, flags, 1, 0, 0, 0) + question
                udp = pack("!HHHH", sp, dp, 8 + len(msg), 0) + msg
                f = macs + b"\x08\x00" + _ipv4(src, dst, 17, len(udp), rng.getrandbits(16)) + udp
                frames.append(f.ljust(SMALL_FRAME, b"\0"))
        return frames, None


# What a capture holds (--shape): the harness (benches/run.py --all-shapes) and the guard
# (benches/guard.py) measure every entry; the first line of a class's docstring describes it.
SHAPES = {
    "sessions": Generator,
    "interleaved": InterleavedGenerator,
    "syn-flood": SynFlood,
    "dns-mix": DnsMix,
}


def about(shape: str) -> str:
    """The first line of the shape's docstring."""
    return (SHAPES[shape].__doc__ or shape).strip().splitlines()[0].rstrip(".")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", help="output file ('-' for stdout)")
    ap.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("100M"),
        help="target file size: 1G (=2^30), 200M, 500K, 1GB (=10^9), bytes",
    )
    ap.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    ap.add_argument(
        "--shape",
        choices=list(SHAPES),
        default="sessions",
        help="sessions: flows arrive and run their course (default); "
        + "; ".join(f"{k}: {about(k)}" for k in SHAPES if k != "sessions"),
    )
    ap.add_argument(
        "--flows", type=int, default=50000, help="approximate number of flows (bidirectional 5-tuples)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--checksums", action="store_true", help="compute valid IPv4/TCP/UDP checksums (slower)")
    ap.add_argument(
        "--link-mbps",
        type=float,
        default=400.0,
        help="average link throughput, sets the capture duration (default 400)",
    )
    ap.add_argument("--start", type=float, default=1700000000.0, help="capture start time, Unix seconds")
    ap.add_argument("--stats-json", help="also write {packets, flows, bytes, ...} here")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    g = SHAPES[a.shape](a.size, a.flows, a.seed, a.checksums, a.link_mbps)
    if a.out == "-":
        f = sys.stdout.buffer
    else:
        d = os.path.dirname(os.path.abspath(a.out))
        os.makedirs(d, exist_ok=True)
        f = open(a.out + ".tmp", "wb")
    try:
        npk, nfl, nbytes = g.run(f, a.format, int(a.start * 1e6))
    finally:
        if f is not sys.stdout.buffer:
            f.close()
    if a.out != "-":
        os.replace(a.out + ".tmp", a.out)
    dt = time.perf_counter() - t0
    stats = {
        "file": a.out,
        "format": a.format,
        "bytes": nbytes,
        "packets": npk,
        "flows": nfl,
        "shape": a.shape,
        "peak_concurrent_flows": g.peak_active,
        "seed": a.seed,
        "target_size": a.size,
        "target_flows": a.flows,
        "seconds": round(dt, 3),
        "avg_frame": round((nbytes - 24) / max(1, npk) - 16, 1) if a.format == "pcap" else None,
    }
    print(
        f"wrote {a.out}: {npk} packets, {nfl} flows, {nbytes} bytes ({nbytes / 2**20:.1f} MiB)"
        f" in {dt:.2f} s ({nbytes / dt / 1e6:.1f} MB/s), peak {g.peak_active} concurrent flows",
        file=sys.stderr if a.out == "-" else sys.stdout,
    )
    if a.stats_json:
        with open(a.stats_json, "w") as fh:
            json.dump(stats, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
