"""Transports: a flow's messages turned into TCP or UDP packets (handshakes, segments, ACKs,
teardown)."""

from __future__ import annotations

from gen.packets import ACK, FA, M32, PA, RA, SYN

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
