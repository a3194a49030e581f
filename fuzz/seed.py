#!/usr/bin/env python3
"""Fill fuzz/corpus/<target>/ with seeds from the repository's captures.

    python3 fuzz/seed.py [--out fuzz/corpus] [--clean]

* pcap, pcapng, source, pipeline, chunks: whole files from pcaps/*.pcap*, pcaps/broken/* and the demo
  capture (pcap: classic pcap files; pcapng: pcapng files; chunks: both; source and pipeline: all, including the
  gzip and zstd ones).
* ip: the IP packets of each capture (and their link-layer frames), framed.
* tcp_stream: each TCP flow as a segment sequence.
* oncrpc, portmap: ONC RPC messages on port 111 (and any flow that carries RPC, e.g. NFS).
* dcerpc, epm: DCE/RPC PDUs on ports 135, 6502-6504 and 49152+, and the endpoint mapper's stubs.
* tls: TLS records on ports 443 and 7099.
* dns: DNS and mDNS datagrams (ports 53 and 5353) and DNS-over-TCP streams; nbns: UDP 137 datagrams.
* starttls: each TCP flow's payload segments, framed with their direction (the target writes the
  connection around them).
* smb: each TCP flow on 139 or 445 (pcaps/smb_pipe.pcap on SMB2, pcaps/smb1_pipe.pcap on SMB1:
  Write AndX, Read AndX, AndX chains, raw-mode pipe writes) as its segments.
* mpls, ppp, radiotap, ieee80211, gre, erspan, vxlan, geneve, nflog, teredo: every frame of
  pcaps/tunnels.pcapng (which holds each of these headers), from each even offset in its first 64
  bytes.

The protocol targets read framed inputs (see fuzz/fuzz_targets/common.rs): a sequence of
`flags: u8, len: u16 BE, bytes`. Seeds are named by their SHA-1, so running again adds nothing new.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import struct
from collections import defaultdict
from pathlib import Path

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.utils import rdpcap  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ["pcap", "pcapng", "source", "pipeline", "chunks"]
PROTOCOLS = ["ip", "tcp_stream", "oncrpc", "portmap", "dcerpc", "epm", "tls", "dns", "nbns", "starttls"]
# The link and tunnel parsers: every frame of pcaps/tunnels.pcapng, from each even offset up to 64
# bytes in, so that some seeds start at each header (the parsers take any bytes).
ENCAPS = ["mpls", "ppp", "radiotap", "ieee80211", "gre", "erspan", "vxlan", "geneve", "nflog", "teredo"]
TARGETS = CAPTURES + PROTOCOLS + ENCAPS + ["smb"]
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
# Link types as the ip target numbers them (its LINKS table), by scapy's first layer.
LINK_INDEX = {
    "Loopback": 0,
    "Ether": 1,
    "IP": 4,
    "IPv6": 4,
    "LoopbackOpenBSD": 5,
    "CookedLinux": 6,
    "CookedLinuxV2": 9,
}
# The tcp_stream target's server ports (its PORTS table).
STREAM_PORTS = [111, 135, 443, 2049, 49664, 6502, 7099, 0]
MAX_SEED = 64 << 10


def frame(flags: int, data: bytes) -> bytes:
    data = data[:0xFFFF]
    return struct.pack(">BH", flags, len(data)) + data


class Seeds:
    def __init__(self, out: Path):
        self.out = out
        self.added: dict[str, int] = defaultdict(int)

    def add(self, target: str, data: bytes) -> None:
        if not data or len(data) > max(MAX_SEED, 1 << 20 if target in CAPTURES else 0):
            return
        d = self.out / target
        d.mkdir(parents=True, exist_ok=True)
        p = d / hashlib.sha1(data).hexdigest()
        if not p.exists():
            p.write_bytes(data)
            self.added[target] += 1


def capture_files() -> list[Path]:
    files = sorted(
        p for p in (ROOT / "pcaps").glob("*.pcap*") if p.is_file() and not p.name.endswith(".json")
    )
    broken = ROOT / "pcaps" / "broken"
    files += sorted(p for p in broken.iterdir() if p.is_file() and not p.name.endswith(".json"))
    demo = ROOT / "python" / "portwitness" / "demo" / "demo.pcap"
    if demo.exists():
        files.append(demo)
    return files


def whole_files(seeds: Seeds, files: list[Path]) -> None:
    for p in files:
        b = p.read_bytes()
        seeds.add("source", b)
        seeds.add("pipeline", b)
        if b[:4] in PCAP_MAGICS:
            seeds.add("pcap", b)
            seeds.add("chunks", b)
        if b[:4] == PCAPNG_MAGIC:
            seeds.add("pcapng", b)
            seeds.add("chunks", b)


# --------------------------------------------------------------------------------------------
# Flows


class Flow:
    def __init__(self, proto: str, client: tuple, server: tuple):
        self.proto = proto
        self.client = client
        self.server = server
        # (direction 0 c2s / 1 s2c, tcp seq, tcp flags, payload)
        self.pkts: list[tuple[int, int, int, bytes]] = []

    @property
    def port(self) -> int:
        return self.server[1]

    def ports(self) -> set[int]:
        return {self.client[1], self.server[1]}


def flows_of(packets) -> list[Flow]:
    flows: dict[tuple, Flow] = {}
    for p in packets:
        ip = p.getlayer(IP) or p.getlayer(IPv6)
        l4 = p.getlayer(TCP) or p.getlayer(UDP)
        if ip is None or l4 is None:
            continue
        proto = "tcp" if isinstance(l4, TCP) else "udp"
        a, b = (ip.src, l4.sport), (ip.dst, l4.dport)
        key = (proto, *sorted([a, b]))
        f = flows.get(key)
        if f is None:
            # The client: a TCP SYN's sender, else the side with the higher port.
            syn = proto == "tcp" and (int(l4.flags) & 0x12) == 0x02
            client, server = (a, b) if syn or l4.sport > l4.dport else (b, a)
            f = flows[key] = Flow(proto, client, server)
        d = 0 if a == f.client else 1
        seq = int(l4.seq) if proto == "tcp" else 0
        flags = int(l4.flags) if proto == "tcp" else 0
        f.pkts.append((d, seq, flags, bytes(l4.payload)))
    return list(flows.values())


def looks_rpc(b: bytes) -> bool:
    """A UDP payload or a TCP record (mark stripped) that opens like an ONC RPC message."""
    if len(b) < 24:
        return False
    mtype, rpcvers = struct.unpack(">II", b[4:12])
    return mtype == 1 or (mtype == 0 and rpcvers == 2)


def is_dce_port(p: int) -> bool:
    return p == 135 or 6502 <= p <= 6504 or p >= 49152


def kind_of(f: Flow) -> str | None:
    if 111 in f.ports() or 2049 in f.ports():
        return "oncrpc"
    if is_dce_port(f.port):
        return "dcerpc"
    if f.port in (443, 7099):
        return "tls"
    first = next((pl for _, _, _, pl in f.pkts if pl), b"")
    if f.proto == "udp" and looks_rpc(first) or f.proto == "tcp" and looks_rpc(first[4:]):
        return "oncrpc"
    if first[:1] == b"\x05" and len(first) >= 16:
        return "dcerpc"
    if first[:1] == b"\x16":
        return "tls"
    return None


def stream_bytes(f: Flow, d: int) -> bytes:
    """One direction of a TCP flow, in sequence order, retransmissions dropped."""
    segs = {}
    for dd, seq, _, pl in f.pkts:
        if dd == d and pl:
            segs.setdefault(seq, pl)
    out = b""
    nxt = None
    for seq in sorted(segs):
        pl = segs[seq]
        if nxt is not None and seq < nxt:
            pl = pl[nxt - seq :]
        out += pl
        nxt = seq + len(segs[seq]) if nxt is None else max(nxt, seq + len(segs[seq]))
    return out


def rpc_records(stream: bytes) -> list[bytes]:
    out, i, rec = [], 0, b""
    while i + 4 <= len(stream):
        (mark,) = struct.unpack(">I", stream[i : i + 4])
        n = mark & 0x7FFFFFFF
        rec += stream[i + 4 : i + 4 + n]
        i += 4 + n
        if mark & 0x80000000:
            out.append(rec)
            rec = b""
    return out


def dce_pdus(stream: bytes) -> list[bytes]:
    out, i = [], 0
    while i + 16 <= len(stream) and stream[i] == 5:
        le = stream[i + 4] & 0x10
        (n,) = struct.unpack("<H" if le else ">H", stream[i + 8 : i + 10])
        if n < 16:
            break
        out.append(stream[i : i + n])
        i += n
    return out


def messages(f: Flow) -> list[tuple[int, bytes]]:
    """(direction, message) in capture order: UDP payloads, or TCP records / PDUs."""
    if f.proto == "udp":
        return [(d, pl) for d, _, _, pl in f.pkts if pl]
    split = rpc_records if kind_of(f) == "oncrpc" else dce_pdus
    return [(d, m) for d in (0, 1) for m in split(stream_bytes(f, d))]


# --------------------------------------------------------------------------------------------
# Per-target carving


def seed_ip(seeds: Seeds, packets) -> None:
    ips, links = [], []
    for p in packets:
        ip = p.getlayer(IP) or p.getlayer(IPv6)
        if ip is not None:
            ips.append(frame(1, bytes(ip)))
            seeds.add("ip", frame(0, bytes(ip)))
        li = LINK_INDEX.get(type(p).__name__)
        if li is not None:
            links.append(frame(1 << 5 | 1, bytes([li]) + bytes(p)))
    for seq in (ips, links):
        blob = b""
        for fr in seq:
            if len(blob) + len(fr) > MAX_SEED:
                seeds.add("ip", blob)
                blob = b""
            blob += fr
        seeds.add("ip", blob)


def seed_tcp_stream(seeds: Seeds, f: Flow) -> None:
    kind = {"oncrpc": 0, "dcerpc": 1, "tls": 2}.get(kind_of(f) or "", 3)
    port = STREAM_PORTS.index(f.port) if f.port in STREAM_PORTS else 7
    if f.port >= 49152:
        port = 4
    isn = [0, 0]
    for d, seq, _, _ in reversed(f.pkts):
        isn[d] = seq
    out = bytes([kind | port << 3]) + struct.pack(">II", *isn)
    for d, seq, flags, pl in f.pkts:
        syn = 1 if flags & 0x02 else 0
        chunks = [pl[i : i + 255] for i in range(0, len(pl), 255)] or [b""]
        for i, c in enumerate(chunks):
            # The first piece carries the SYN (its data starts at seq + 1); the rest follow it.
            s = seq if i == 0 else (seq + syn + 255 * i) & 0xFFFFFFFF
            out += bytes([(syn if i == 0 else 0) | d << 1 | 4 | 1 << 5]) + struct.pack(">I", s)
            out += bytes([len(c)]) + c
    if len(out) <= MAX_SEED:
        seeds.add("tcp_stream", out)


def seed_starttls(seeds: Seeds, f: Flow) -> None:
    out = b"".join(frame(d, pl) for d, _, _, pl in f.pkts if pl)
    if out:
        seeds.add("starttls", out[:MAX_SEED])


def seed_oncrpc(seeds: Seeds, f: Flow) -> None:
    tcp = 2 if f.proto == "tcp" else 0
    seq = b"".join(frame(d | tcp | 1 << 3, pl) for d, _, _, pl in f.pkts if pl)
    seeds.add("oncrpc", seq[:MAX_SEED])
    for _, m in messages(f):
        seeds.add("oncrpc", frame(0, m))
    seed_portmap(seeds, f)


def xdr_opaque_end(b: bytes, i: int) -> int:
    (n,) = struct.unpack(">I", b[i : i + 4])
    return i + 4 + (n + 3) // 4 * 4


def seed_portmap(seeds: Seeds, f: Flow) -> None:
    calls = {}
    for _, m in messages(f):
        if len(m) < 24 or not looks_rpc(m):
            continue
        xid, mtype = struct.unpack(">II", m[:8])
        try:
            if mtype == 0:
                prog, vers, proc = struct.unpack(">III", m[12:24])
                i = xdr_opaque_end(m, 28)  # credentials
                i = xdr_opaque_end(m, i + 4)  # verifier
                if prog == 100000:
                    calls[xid] = (vers, proc, m[i:])
            elif xid in calls:
                (stat,) = struct.unpack(">I", m[8:12])
                if stat != 0:
                    continue
                i = xdr_opaque_end(m, 16) + 4  # verifier, accept_stat
                vers, proc, args = calls.pop(xid)
                udp = 0x8000 if f.proto == "udp" else 0
                head = struct.pack(">BBH", vers & 0xFF, proc & 0xFF, len(args) & 0x7FFF | udp)
                seeds.add("portmap", head + args + m[i:])
        except struct.error:
            continue


def seed_dcerpc(seeds: Seeds, f: Flow) -> None:
    tcp = 2 if f.proto == "tcp" else 0
    epm = 8 if 135 in f.ports() else 0
    seq = b"".join(frame(d | tcp | epm | 1 << 4, pl) for d, _, _, pl in f.pkts if pl)
    seeds.add("dcerpc", seq[:MAX_SEED])
    for _, m in messages(f):
        seeds.add("dcerpc", frame(tcp | epm, m))
        if epm:
            seed_epm(seeds, m, f.proto)


def seed_epm(seeds: Seeds, pdu: bytes, proto: str) -> None:
    """The NDR stub of a request or response PDU (connection-oriented or connectionless)."""
    if proto == "udp":
        if len(pdu) < 80:
            return
        le = pdu[4] & 0x10
        seeds.add("epm", bytes([1 if le else 0]) + pdu[80:])
        return
    if len(pdu) < 24 or pdu[2] not in (0, 2):
        return
    le = pdu[4] & 0x10
    (auth_len,) = struct.unpack("<H" if le else ">H", pdu[10:12])
    start = 24 + (16 if pdu[2] == 0 and pdu[3] & 0x80 else 0)
    end = len(pdu) - (auth_len + 8 if auth_len else 0)
    # The stub's syntax is the one its context negotiated, which the PDU does not say: seed both
    # (mode bit 1: NDR64).
    for ndr64 in (0, 2):
        seeds.add("epm", bytes([(1 if le else 0) | ndr64]) + pdu[start:end])


def seed_tls(seeds: Seeds, f: Flow) -> None:
    if f.proto != "tcp":
        return
    seq = b"".join(frame(d | 1 << 2, pl) for d, _, _, pl in f.pkts if pl)
    seeds.add("tls", seq[:MAX_SEED])
    for d in (0, 1):
        s = stream_bytes(f, d)
        i = 0
        while i + 5 <= len(s) and 20 <= s[i] <= 24:
            (n,) = struct.unpack(">H", s[i + 3 : i + 5])
            seeds.add("tls", frame(d, s[i : i + 5 + n]))
            i += 5 + n


def seed_names(seeds: Seeds, f: Flow) -> None:
    """DNS and mDNS datagrams and DNS-over-TCP streams (the dns target's flags: bit 0 server,
    bit 1 TCP, bit 3 mDNS), and NetBIOS name service datagrams."""
    ports = f.ports()
    if f.proto == "udp" and 137 in ports:
        seq = b"".join(frame(d | 1 << 1, pl) for d, _, _, pl in f.pkts if pl)
        seeds.add("nbns", seq[:MAX_SEED])
        return
    if 53 not in ports and 5353 not in ports:
        return
    if f.proto == "udp":
        mdns = 8 if 5353 in ports else 0
        for d, _, _, pl in f.pkts:
            if pl:
                seeds.add("dns", frame(d | mdns, pl))
        seq = b"".join(frame(d | mdns | 1 << 4, pl) for d, _, _, pl in f.pkts if pl)
    else:
        seq = b"".join(frame(d | 2 | 1 << 4, pl) for d, _, _, pl in f.pkts if pl)
    seeds.add("dns", seq[:MAX_SEED])


def seed_smb(seeds: Seeds, f: Flow) -> None:
    """The SMB target: the flow's segments as raw stream chunks (flag bit 0: from the server)."""
    out = b"".join(frame(direction, payload) for direction, _, _, payload in f.pkts if payload)
    seeds.add("smb", out)


def seed_encaps(seeds: Seeds, packets) -> None:
    for pkt in packets:
        raw = bytes(pkt)
        for off in range(0, min(len(raw), 64), 2):
            for t in ENCAPS:
                seeds.add(t, raw[off:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "corpus")
    ap.add_argument("--clean", action="store_true", help="empty the corpus directories first")
    args = ap.parse_args()
    if args.clean:
        for t in TARGETS:
            shutil.rmtree(args.out / t, ignore_errors=True)
    seeds = Seeds(args.out)
    files = capture_files()
    whole_files(seeds, files)
    for p in files:
        if p.suffix in (".gz", ".zst") or p.parent.name == "broken":
            continue  # the same packets as an uncompressed fixture; scapy refuses the broken ones
        try:
            packets = rdpcap(str(p))
        except Exception as e:  # noqa: BLE001 - a capture scapy cannot read seeds nothing
            print(f"seed: skipping {p.relative_to(ROOT)}: {e}")
            continue
        seed_ip(seeds, packets)
        if p.name == "tunnels.pcapng":
            seed_encaps(seeds, packets)
        for f in flows_of(packets):
            kind = kind_of(f)
            if f.proto == "tcp":
                seed_tcp_stream(seeds, f)
                seed_starttls(seeds, f)

            if f.proto == "tcp" and f.ports() & {139, 445}:
                seed_smb(seeds, f)
            if kind == "oncrpc":
                seed_oncrpc(seeds, f)
            elif kind == "dcerpc":
                seed_dcerpc(seeds, f)
            elif kind == "tls":
                seed_tls(seeds, f)
            seed_names(seeds, f)
    for t in TARGETS:
        n = len(list((args.out / t).glob("*"))) if (args.out / t).exists() else 0
        print(f"{t:12} {n:5} seeds ({seeds.added[t]} new)")
        if n == 0:
            print(f"seed: no seeds for {t}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
