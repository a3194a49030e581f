"""Frame builders: protocol constants, checksums, and per-direction Ethernet/IP/TCP/UDP
header templates packed per packet."""

from __future__ import annotations

import argparse
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
