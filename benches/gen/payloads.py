"""Application payloads of the common protocols (TLS 1.3, HTTP/1.1, DNS, NTP, RTP, QUIC) and
the per-flow context (`Ctx`) the models and payload makers share."""

from __future__ import annotations

from struct import pack

from gen.packets import FILL_BITS, FILL_MASK, M32

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


# The cipher suites a generated ClientHello offers.
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
