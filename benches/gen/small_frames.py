"""The 64-byte frame shapes: a SYN flood (`SynFlood`) and a DNS mix (`DnsMix`)."""

from __future__ import annotations

import random
from itertools import accumulate
from struct import Struct, pack

from gen.packets import ACK, RA, SYN, ZEROS, csum_finish, csum_mod

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
