"""The interleaved shape (`InterleavedGenerator`): many concurrent flows, consecutive packets
from different flows."""

from __future__ import annotations

import math
import struct
from bisect import bisect
from itertools import accumulate
from struct import Struct, pack

from gen.arcserve import EXCHANGES, PAYLOAD_MAKERS, model_special
from gen.models import SERVICES, SPECIAL_SERVICES
from gen.packets import clamp
from gen.payloads import Ctx
from gen.sessions import Generator

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
