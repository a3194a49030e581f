"""Application models (what a flow says, message by message) and the services that pick them."""

from __future__ import annotations

from bisect import bisect
from itertools import accumulate

from gen.arcserve import model_special
from gen.packets import clamp
from gen.payloads import (
    Ctx,
    dns_query,
    dns_response,
    http_request,
    http_response_header,
    ntp_packet,
    quic_short,
    random_host,
    rtp_packet,
    tls_appdata,
    tls_client_finish,
    tls_client_hello,
    tls_server_flight,
)

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
