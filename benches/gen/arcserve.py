"""Payloads of Arcserve's management service (TLS on 7099 and its callbacks, plaintext on 2099),
the PAYLOAD_MAKERS registry and the model of the special services' flows."""

from __future__ import annotations

from struct import pack

from gen.payloads import _SUITES, Ctx, _ext, tls_appdata, tls_record
from gen.rpc import _getport_maker, arcserve_rpc_maker, epm_maker

# ---- TLS on the management port (7099) and its callbacks (20000-20100) ----

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
