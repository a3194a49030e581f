"""The sessions shape (`Generator`): hosts and addresses, flows arriving and running their
course, scheduled by time and written as pcap or pcapng."""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect
from collections import deque
from itertools import accumulate
from struct import Struct, pack

from gen.flows import Flow, tcp_conv, udp_conv
from gen.models import all_services
from gen.packets import (
    FILL_MASK,
    M32,
    MAX_SEG,
    SCAL_C,
    SCAL_K,
    ZEROS,
    clamp,
    eth_header,
    make_checksum_fixer,
    tcp_fast_builder,
    tcp_slow_frame,
    udp_builder,
)
from gen.payloads import Ctx, random_host
from gen.rpc import _RPC_PROGRAMS, ARCSERVE_IFACES

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
