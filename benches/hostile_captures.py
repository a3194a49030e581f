"""The hostile captures of hostile.py, written with ``struct`` from precomputed templates
(big-endian pcap, microsecond timestamps from 2026-03-01T02:00:00Z, IP and TCP checksums left 0),
deterministic: the packet builders, one writer per capture, and `CAPTURES` naming them."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

T0 = 1772330400  # 2026-03-01T02:00:00Z
SNAPLEN = 262144

MAC_C = bytes.fromhex("020000000001")
MAC_S = bytes.fromhex("020000000002")
ETH_C2S = MAC_S + MAC_C + b"\x08\x00"
ETH_S2C = MAC_C + MAC_S + b"\x08\x00"

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def pcap_header() -> bytes:
    return struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1)


class PcapOut:
    """A big-endian microsecond pcap written in multi-MB chunks."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "wb")
        self.f.write(pcap_header())
        self.buf = bytearray()
        self.packets = 0

    def add(self, ts_us: int, frame: bytes) -> None:
        if len(frame) < 60:
            frame += bytes(60 - len(frame))
        sec, usec = divmod(ts_us, 1_000_000)
        self.buf += struct.pack(">IIII", T0 + sec, usec, len(frame), len(frame))
        self.buf += frame
        self.packets += 1
        if len(self.buf) >= 8 << 20:
            self.flush()

    def write_raw(self, data: bytes | bytearray, packets: int) -> None:
        self.flush()
        self.f.write(data)
        self.packets += packets

    def flush(self) -> None:
        self.f.write(self.buf)
        self.buf = bytearray()

    def close(self) -> int:
        self.flush()
        self.f.close()
        return self.packets


def ipv4_header(
    src: bytes, dst: bytes, proto: int, payload_len: int, ident: int = 0, frag: int = 0x4000
) -> bytes:
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, frag, 64, proto, 0, src, dst)


class Tcp:
    """One TCP connection; frames for either side with sequence numbers kept."""

    def __init__(self, out: PcapOut, c: str, cport: int, s: str, sport: int, isn_c: int, isn_s: int):
        self.out = out
        self.c, self.s = ip4(c), ip4(s)
        self.cport, self.sport = cport, sport
        self.nxt = {True: isn_c, False: isn_s}
        self.ident = {True: 0x1000, False: 0x2000}

    def frame(self, from_client: bool, flags: int, data: bytes = b"", seq: int | None = None) -> bytes:
        src, dst = (self.c, self.s) if from_client else (self.s, self.c)
        sp, dp = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        if seq is None:
            seq = self.nxt[from_client]
            self.nxt[from_client] = (seq + len(data) + bool(flags & (SYN | FIN))) & 0xFFFFFFFF
        ack = self.nxt[not from_client] if flags & ACK else 0
        self.ident[from_client] = (self.ident[from_client] + 1) & 0xFFFF
        tcp = struct.pack(">HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 64240, 0, 0)
        ip = ipv4_header(src, dst, 6, 20 + len(data), self.ident[from_client])
        return (ETH_C2S if from_client else ETH_S2C) + ip + tcp + data

    def send(self, ts_us: int, from_client: bool, flags: int, data: bytes = b"") -> None:
        self.out.add(ts_us, self.frame(from_client, flags, data))

    def stream(self, ts_us: int, step_us: int, from_client: bool, data: bytes, mss: int = 1460) -> int:
        """Sends ``data`` in order in full segments; returns the time after the last one."""
        for i in range(0, len(data), mss):
            self.send(ts_us, from_client, PSH | ACK, data[i : i + mss])
            ts_us += step_us
        return ts_us

    def handshake(self, ts_us: int) -> int:
        self.send(ts_us, True, SYN)
        self.send(ts_us + 100, False, SYN | ACK)
        self.send(ts_us + 200, True, ACK)
        return ts_us + 300

    def close(self, ts_us: int) -> int:
        self.send(ts_us, True, FIN | ACK)
        self.send(ts_us + 100, False, FIN | ACK)
        self.send(ts_us + 200, True, ACK)
        return ts_us + 300


# --------------------------------------------------------------------------
# (a) SYN flood
# --------------------------------------------------------------------------


def write_synflood(path: Path, n: int = 10_000_000, dport: int = 135) -> dict:
    """``n`` SYNs from 10.(64+i/60000) sources, ports 1024..61023, to 10.255.0.1:``dport``."""
    rec = struct.Struct(">IIII14s12sI4sHHI18s")
    size = rec.size
    assert size == 16 + 60
    ip_head = struct.pack(">BBHHHBBH", 0x45, 0, 40, 0, 0x4000, 64, 6, 0)
    tail = struct.pack(">IBBHHH", 0, 5 << 4, SYN, 64240, 0, 0) + bytes(6)
    dst = ip4("10.255.0.1")
    src0 = int.from_bytes(ip4("10.64.0.0"), "big")
    chunk = 200_000
    pack = rec.pack_into
    with open(path, "wb") as f:
        f.write(pcap_header())
        for base in range(0, n, chunk):
            m = min(chunk, n - base)
            buf = bytearray(size * m)
            off = 0
            for i in range(base, base + m):
                q, r = divmod(i, 60000)
                pack(
                    buf,
                    off,
                    T0 + i // 1_000_000,
                    i % 1_000_000,
                    60,
                    60,
                    ETH_C2S,
                    ip_head,
                    src0 + q,
                    dst,
                    1024 + r,
                    dport,
                    (i * 2654435761) & 0xFFFFFFFF,
                    tail,
                )
                off += size
            f.write(buf)
    return {"packets": n, "flows": n}


# --------------------------------------------------------------------------
# (b) fragments that never complete
# --------------------------------------------------------------------------


def write_fragments(path: Path, n: int = 1_000_000, step_us: int = 10) -> dict:
    """``n`` IPv4 fragments of 256 bytes, each of its own datagram (source 10.128+i/65536, ID
    i%65536): even i a first fragment (UDP header, offset 0, MF), odd i a middle one (offset 64000,
    MF). None completes."""
    frag_len = 256
    rec = struct.Struct(f">IIII14s4sHH4sI4s{frag_len}s")
    size = rec.size
    head = struct.pack(">BBH", 0x45, 0, 20 + frag_len)
    ttl_proto = struct.pack(">BBH", 64, 17, 0)
    first = struct.pack(">HHHH", 40000, 9999, 8 + 64248, 0) + bytes(frag_len - 8)
    middle = bytes(range(256)) * (frag_len // 256)
    dst = ip4("10.255.0.2")
    src0 = int.from_bytes(ip4("10.128.0.0"), "big")
    chunk = 100_000
    pack = rec.pack_into
    with open(path, "wb") as f:
        f.write(pcap_header())
        for base in range(0, n, chunk):
            m = min(chunk, n - base)
            buf = bytearray(size * m)
            off = 0
            for i in range(base, base + m):
                t = i * step_us
                odd = i & 1
                pack(
                    buf,
                    off,
                    T0 + t // 1_000_000,
                    t % 1_000_000,
                    34 + frag_len,
                    34 + frag_len,
                    ETH_C2S,
                    head,
                    i & 0xFFFF,
                    0x2000 | (8000 if odd else 0),
                    ttl_proto,
                    src0 + (i >> 16),
                    dst,
                    middle if odd else first,
                )
                off += size
            f.write(buf)
    return {"packets": n, "flows": 0, "fragments": n}


# --------------------------------------------------------------------------
# (c) 1 GiB out of order on port 111
# --------------------------------------------------------------------------

MSS = 1460
RPC_RECORD_SEGMENTS = 20  # one record-marked call per 20 segments: 29200 bytes


def rpc_call(xid: int, prog: int, vers: int, proc: int, args: bytes = b"") -> bytes:
    return struct.pack(">IIIIIIIIII", xid, 0, 2, prog, vers, proc, 0, 0, 0, 0) + args


def record_mark(msg: bytes, last: bool = True) -> bytes:
    return struct.pack(">I", (0x80000000 if last else 0) | len(msg)) + msg


def write_ooo_stream(path: Path, total: int = 1 << 30, window: int = 16, dport: int = 111) -> dict:
    """One connection, client to server, ``total`` bytes (rounded up to whole windows) of NFS
    WRITE-like calls to ``dport``; segment 0 is never sent, every window of ``window`` segments
    is sent last to first."""
    nseg = -(-total // MSS)
    nseg = -(-nseg // window) * window
    rec_len = RPC_RECORD_SEGMENTS * MSS
    template = bytearray(record_mark(rpc_call(0, 100003, 3, 7, bytes(rec_len - 44))))
    assert len(template) == rec_len
    for i in range(44, rec_len, 4):  # filler: the offset in the record, so the bytes are not all 0
        struct.pack_into(">I", template, i, i)
    pieces = [bytes(template[k * MSS : (k + 1) * MSS]) for k in range(RPC_RECORD_SEGMENTS)]
    out = PcapOut(path)
    c, s = ip4("10.111.0.1"), ip4("10.111.0.2")
    isn = 0x10000000
    t = Tcp(out, "10.111.0.1", 40111, "10.111.0.2", dport, isn, 0x20000000)
    ts = t.handshake(0)
    out.flush()
    hdr = struct.Struct(">IIII14sBBHHHBBH4s4sHHIIBBHHH")
    size = hdr.size + MSS
    frame_len = 54 + MSS
    base_seq = isn + 1
    step = 10_000_000 // nseg or 1  # the transfer takes about 10 s of capture time
    batch = 4096
    order = [w + k for w in range(0, nseg, window) for k in reversed(range(window))]
    order.remove(0)  # the hole at the start
    sent = 0
    for b0 in range(0, len(order), batch):
        part = order[b0 : b0 + batch]
        buf = bytearray(size * len(part))
        off = 0
        for k in part:
            tus = ts + sent * step
            sent += 1
            hdr.pack_into(
                buf,
                off,
                T0 + tus // 1_000_000,
                tus % 1_000_000,
                frame_len,
                frame_len,
                ETH_C2S,
                0x45,
                0,
                40 + MSS,
                sent & 0xFFFF,
                0x4000,
                64,
                6,
                0,
                c,
                s,
                40111,
                dport,
                (base_seq + k * MSS) & 0xFFFFFFFF,
                0x20000001,
                5 << 4,
                ACK,
                64240,
                0,
                0,
            )
            p = off + hdr.size
            r = k % RPC_RECORD_SEGMENTS
            buf[p : p + MSS] = pieces[r]
            if r == 0:
                struct.pack_into(">I", buf, p + 4, k // RPC_RECORD_SEGMENTS)  # the xid
            off += size
        out.write_raw(buf, len(part))
    t.nxt[True] = (base_seq + nseg * MSS) & 0xFFFFFFFF
    t.close(ts + sent * step)
    packets = out.close()
    return {"packets": packets, "flows": 1, "payload": (nseg - 1) * MSS, "segments": nseg - 1}


# --------------------------------------------------------------------------
# (d) a 2 GiB record mark
# --------------------------------------------------------------------------

GETPORT_XIDS = (0x2B2B2B2B, 0x2C2C2C2C)


def getport_exchange(t: Tcp, ts: int, xid: int) -> int:
    """A portmapper GETPORT call (NFS v3 over TCP) and its reply (2049), each in one segment."""
    call = record_mark(rpc_call(xid, 100000, 2, 3, struct.pack(">IIII", 100003, 3, 6, 0)))
    ts = t.stream(ts, 5, True, call)
    reply = record_mark(struct.pack(">IIIIIII", xid, 1, 0, 0, 0, 0, 2049))
    return t.stream(ts + 500, 5, False, reply) + 500


def write_rpc_2gb_mark(path: Path, filler: int = 16 << 20) -> dict:
    """On one connection to 111: a GETPORT exchange, then a record mark 0xffffffff (last
    fragment, 2^31-1 bytes) and ``filler`` bytes of fake marks (0x80000028 then 'JUNK': a 40-byte
    last fragment whose message type is no call or reply), then a second GETPORT exchange."""
    out = PcapOut(path)
    t = Tcp(out, "10.112.0.1", 40112, "10.112.0.2", 111, 0x30000000, 0x40000000)
    ts = t.handshake(0)
    ts = getport_exchange(t, ts, GETPORT_XIDS[0])
    junk = (struct.pack(">I", 0x80000028) + b"JUNK") * (filler // 8)
    ts = t.stream(ts, 5, True, struct.pack(">I", 0xFFFFFFFF) + junk)
    ts = getport_exchange(t, ts + 1000, GETPORT_XIDS[1])
    t.close(ts + 1000)
    return {"packets": out.close(), "flows": 1, "getport_xids": list(GETPORT_XIDS)}


# --------------------------------------------------------------------------
# (e) an endpoint-mapper answer with 65535 towers
# --------------------------------------------------------------------------

EPM_IF = ("e1af8308-5d1f-11c9-91a4-08002b14a0fa", 3, 0)
NDR = ("8a885d04-1ceb-11c9-9fe8-08002b104860", 2, 0)
TAPE_ENGINE = ("62b93df0-8b02-11ce-876c-00805f842837", 1, 0)
MAX_FRAG = 5840


def uuid_le(s: str) -> bytes:
    u = bytes.fromhex(s.replace("-", ""))
    return u[3::-1] + u[5:3:-1] + u[7:5:-1] + u[8:]


def syntax(s: tuple[str, int, int]) -> bytes:
    return uuid_le(s[0]) + struct.pack("<HH", s[1], s[2])


def co_pdu(ptype: int, flags: int, call_id: int, body: bytes) -> bytes:
    """A connection-oriented PDU, little-endian NDR: version 5.0, type, flags, frag_length."""
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, b"\x10\0\0\0", 16 + len(body), 0, call_id) + body


def tower(iface: tuple[str, int, int], port: int, ip: bytes) -> bytes:
    """ncacn_ip_tcp tower (C706 appendix L): interface, NDR, 0x0b, TCP port, IPv4 host."""
    t = struct.pack("<H", 5)
    for s in (iface, NDR):
        t += struct.pack("<HB", 19, 0x0D) + uuid_le(s[0]) + struct.pack("<HHH", s[1], 2, s[2])
    for lhs, rhs in ((0x0B, b"\0\0"), (0x07, struct.pack(">H", port)), (0x09, ip)):
        t += struct.pack("<HBH", 1, lhs, len(rhs)) + rhs
    return t


def twr(t: bytes) -> bytes:
    b = struct.pack("<II", len(t), len(t)) + t
    return b + bytes(-len(b) % 4)


def ept_map_request(iface) -> bytes:
    return (
        struct.pack("<I", 1)
        + bytes(16)
        + struct.pack("<I", 2)
        + twr(tower(iface, 135, bytes(4)))
        + bytes(20)
        + struct.pack("<I", 65535)
    )


def ept_map_response(iface, ports: range, ip: bytes) -> bytes:
    n = len(ports)
    parts = [bytes(20), struct.pack("<IIII", n, n, 0, n)]
    parts += [struct.pack("<I", 3 + i) for i in range(n)]
    one = twr(tower(iface, 0, ip))
    at = one.index(b"\x01\x00\x07\x02\x00") + 5  # the port (big-endian) inside the tower
    for p in ports:
        parts.append(one[:at] + struct.pack(">H", p) + one[at + 2 :])
    parts.append(struct.pack("<I", 0))
    return b"".join(parts)


def write_epm_towers(path: Path, towers: int = 65535) -> dict:
    out = PcapOut(path)
    t = Tcp(out, "10.135.0.1", 40135, "10.135.0.2", 135, 0x50000000, 0x60000000)
    ts = t.handshake(0)
    bind = struct.pack("<HHIB3x", MAX_FRAG, MAX_FRAG, 0, 1) + struct.pack("<HBx", 0, 1) + syntax(EPM_IF)
    bind += syntax(NDR)
    ts = t.stream(ts, 50, True, co_pdu(11, 3, 1, bind))
    sec = b"135\0"
    ack = struct.pack("<HHIH", MAX_FRAG, MAX_FRAG, 0x12345, len(sec)) + sec
    ack += bytes(-(16 + len(ack)) % 4) + struct.pack("<B3xHH", 1, 0, 0) + syntax(NDR)
    ts = t.stream(ts, 50, False, co_pdu(12, 3, 1, ack))
    req = ept_map_request(TAPE_ENGINE)
    ts = t.stream(ts, 50, True, co_pdu(0, 3, 2, struct.pack("<IHH", len(req), 0, 3) + req))
    stub = ept_map_response(TAPE_ENGINE, range(1, towers + 1), ip4("10.135.0.2"))
    room = MAX_FRAG - 24
    pdus = []
    for i in range(0, len(stub), room):
        flags = (1 if i == 0 else 0) | (2 if i + room >= len(stub) else 0)
        body = struct.pack("<IHBx", len(stub) - i, 0, 0) + stub[i : i + room]
        pdus.append(co_pdu(2, flags, 2, body))
    ts = t.stream(ts, 5, False, b"".join(pdus))
    t.close(ts + 1000)
    return {"packets": out.close(), "flows": 1, "towers": towers, "stub_bytes": len(stub), "pdus": len(pdus)}


# --------------------------------------------------------------------------
# (f) a flood of malformed frames
# --------------------------------------------------------------------------


def write_anomaly_flood(path: Path, n: int = 1_000_000) -> dict:
    """``n`` frames with 9 stacked 802.1Q tags (one more than the decoder follows) before an IPv4
    header: every frame is an anomaly, so the anomaly rows reach their bound."""
    frame = ETH_C2S[:12] + struct.pack(">HH", 0x8100, 7) * 9 + b"\x08\x00"
    frame += ipv4_header(ip4("10.113.0.1"), ip4("10.113.0.2"), 17, 8) + struct.pack(">HHHH", 5000, 5001, 8, 0)
    rec = struct.Struct(f">IIII{len(frame)}s")
    chunk = 200_000
    with open(path, "wb") as f:
        f.write(pcap_header())
        for base in range(0, n, chunk):
            f.write(
                b"".join(
                    rec.pack(T0 + i // 1_000_000, i % 1_000_000, len(frame), len(frame), frame)
                    for i in range(base, min(n, base + chunk))
                )
            )
    return {"packets": n, "flows": 0, "anomalies": n}


CAPTURES: dict[str, tuple[str, Callable[[Path], dict]]] = {
    "synflood": ("synflood.pcap", write_synflood),
    "fragments": ("fragments.pcap", write_fragments),
    "ooo_stream": ("ooo_stream.pcap", write_ooo_stream),
    "rpc_2gb_mark": ("rpc_2gb_mark.pcap", write_rpc_2gb_mark),
    "epm_65535_towers": ("epm_65535_towers.pcap", write_epm_towers),
    "anomaly_flood": ("anomaly_flood.pcap", write_anomaly_flood),
}
