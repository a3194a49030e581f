"""Payloads of the RPC services: portmapper GETPORT (ONC RPC), DCE/RPC binds and calls, and the
endpoint mapper's ept_map with its towers."""

from __future__ import annotations

import struct
from struct import Struct, pack

from gen.payloads import Ctx

# ---- special services: real ONC RPC, DCE/RPC + EPM, TLS and plaintext -----
#
# PAYLOAD_MAKERS[name](ctx, direction, index) -> bytes: payload of the
# index-th message in `direction` (0 = request/call, 1 = reply) of a flow of
# service `name`; EXCHANGES[name] is the (min, max) number of request/reply
# pairs of such a flow.  Services are listed in SPECIAL_SERVICES below.
#
# Everything is built from byte templates made once (at import, or once per
# TLS server name); per message only call ids, ports, addresses, randoms and
# lengths are patched in, so these flows cost no more than the others.
# A maker may leave ctx.state["learned"] = (server ip, port, interface index,
# v6, client ip, client mac) or ctx.state["mgmt"] = (client ip, client mac,
# server ip, v6) after a reply: model_special hands it to the generator, which
# sends a later flow there (a learned-port client, a management callback).


# Programs asked for in generated portmapper traffic (Arcserve's and NFS's).
_RPC_PROGRAMS = (
    (395644, 1, 6),
    (395645, 1, 6),
    (395648, 1, 6),
    (395649, 1, 6),
    (100003, 3, 6),
    (100005, 3, 17),
)


def _getport_maker(record_marking: bool):
    """Portmap v2 GETPORT calls (AUTH_NULL) and their replies: real ONC RPC, as on port 111."""

    def maker(ctx: Ctx, direction: int, index: int) -> bytes:
        xid = ctx.state.setdefault("xid", ctx.rng.getrandbits(32) & 0xFFFF0000) + index
        prog, vers, prot = _RPC_PROGRAMS[(xid + index) % len(_RPC_PROGRAMS)]
        if direction == 0:
            body = struct.pack(">10I", xid, 0, 2, 100000, 2, 3, 0, 0, 0, 0) + struct.pack(
                ">4I", prog, vers, prot, 0
            )
        else:
            port = 1025 + (prog + vers) % 3000
            body = struct.pack(">6I", xid, 1, 0, 0, 0, 0) + struct.pack(">I", port)
            st = ctx.state
            st["rpc_learned"] = (st["sip"], port, prog, vers, prot, ctx.v6, st["cip"], st["cmac"])
        if record_marking:
            body = struct.pack(">I", 0x80000000 | len(body)) + body
        return body

    return maker


# ---- DCE/RPC (connection-oriented, little-endian NDR) and the endpoint mapper


def _uuid_le(s: str) -> bytes:
    """A UUID in NDR little-endian form (Data1/2/3 swapped, Data4 as is)."""
    h = bytes.fromhex(s.replace("-", ""))
    return h[3::-1] + h[5:3:-1] + h[7:5:-1] + h[8:]


NDR_UUID = _uuid_le("8a885d04-1ceb-11c9-9fe8-08002b104860")
NDR_SYNTAX = NDR_UUID + pack("<HH", 2, 0)
EPM_SYNTAX = _uuid_le("e1af8308-5d1f-11c9-91a4-08002b14a0fa") + pack("<HH", 3, 0)
# Arcserve's MSRPC interfaces: (uuid, major, minor, legacy port, opnums called)
ARCSERVE_IFACES = (
    (_uuid_le("62b93df0-8b02-11ce-876c-00805f842837"), 1, 0, 6502, (43, 38)),  # tape engine
    (_uuid_le("dc246bf0-7a7a-11ce-9f88-00805fe43838"), 1, 0, 6503, (43, 47)),  # job engine
    (_uuid_le("506b1890-14c8-11d1-bbc3-00805fa6962e"), 1, 0, 6504, (0x72, 0x342)),  # database engine
)
DCE_DREP = b"\x10\x00\x00\x00"  # little-endian integers, ASCII, IEEE floats
PFC_FIRST_LAST = 0x03
_dce_hdr = Struct("<BBBB4sHHI").pack  # rpc_vers, minor, PTYPE, flags, drep, frag_len, auth_len, call_id
_u32 = Struct("<I")
_be16 = Struct(">H")


def _dce_pdu(ptype: int, body: bytes) -> bytes:
    """A whole unfragmented PDU with call_id 0 (patched per message at offset 12)."""
    return _dce_hdr(5, 0, ptype, PFC_FIRST_LAST, DCE_DREP, 16 + len(body), 0, 0) + body


def dce_bind_template(syntax: bytes, max_frag: int) -> bytes:
    """bind (11): one presentation context (id 0) for `syntax` over NDR v2 (protocols.md §3.2)."""
    return _dce_pdu(11, pack("<HHIB3xHBx", max_frag, max_frag, 0, 1, 0, 1) + syntax + NDR_SYNTAX)


def dce_bind_ack_template(sec_addr: bytes, max_frag: int) -> bytes:
    """bind_ack (12) accepting one NDR context; sec_addr is the server's port string (§3.3)."""
    sa = pack("<H", len(sec_addr) + 1) + sec_addr + b"\x00"
    pad = bytes((-(24 + len(sa))) & 3)  # n_results is 4-byte aligned in the PDU
    return _dce_pdu(12, pack("<HHI", max_frag, max_frag, 0) + sa + pad + pack("<B3xHH", 1, 0, 0) + NDR_SYNTAX)


def epm_tower(uuid: bytes, major: int, minor: int, port: int, ip4: bytes) -> bytes:
    """ncacn_ip_tcp tower: interface, NDR, RPC CO, TCP port (big-endian), IPv4 (§4.4)."""
    floors = (
        (b"\x0d" + uuid + pack("<H", major), pack("<H", minor)),
        (b"\x0d" + NDR_UUID + pack("<H", 2), pack("<H", 0)),
        (b"\x0b", pack("<H", 0)),
        (b"\x07", pack(">H", port)),
        (b"\x09", ip4),
    )
    return pack("<H", len(floors)) + b"".join(
        pack("<H", len(lhs)) + lhs + pack("<H", len(rhs)) + rhs for lhs, rhs in floors
    )


def epm_map_request_template(uuid: bytes, major: int, minor: int, max_towers: int) -> bytes:
    """ept_map (opnum 3) request asking for `uuid` over ncacn_ip_tcp (template tower: port 135,
    0.0.0.0), laid out as the walk-through in protocols.md §4.5 (156 bytes)."""
    t = epm_tower(uuid, major, minor, 135, bytes(4))
    stub = (
        pack("<I", 1)
        + bytes(16)  # obj: referent 1 -> nil UUID
        + pack("<III", 2, len(t), len(t))
        + t
        + bytes((-len(t)) & 3)  # map_tower: referent 2 -> twr_t
        + bytes(20)  # entry_handle
        + pack("<I", max_towers)
    )
    return _dce_pdu(0, pack("<IHH", len(stub), 0, 3) + stub)


def epm_map_response_template(uuid: bytes, major: int, minor: int, max_towers: int):
    """ept_map response with one tower; returns (pdu, port offset, IPv4 offset)."""
    t = epm_tower(uuid, major, minor, 0, bytes(4))
    stub = (
        bytes(20)  # entry_handle: nil, no more entries
        + pack("<I", 1)  # num_towers
        + pack("<III", max_towers, 0, 1)  # ITowers: max_count, offset, actual_count
        + pack("<I", 3)  # referent of tower 1 (pointee deferred)
        + pack("<II", len(t), len(t))
        + t
        + bytes((-len(t)) & 3)
        + pack("<I", 0)  # status: ok
    )
    pdu = _dce_pdu(2, pack("<IHBB", len(stub), 0, 0, 0) + stub)
    tower_at = 24 + 48
    # floor 4 rhs (port) and floor 5 rhs (IPv4) are the last 9 and 4 bytes of the tower
    return pdu, tower_at + len(t) - 11, tower_at + len(t) - 4


MAX_FRAGS = (5840, 4280)
_BIND = {
    (s, m): dce_bind_template(s, m)
    for s in [EPM_SYNTAX] + [i[0] + pack("<HH", i[1], i[2]) for i in ARCSERVE_IFACES]
    for m in MAX_FRAGS
}
_BIND_ACK_135 = {m: dce_bind_ack_template(b"135", m) for m in MAX_FRAGS}
_EPM_MAP_REQ = {
    (k, n): epm_map_request_template(*ARCSERVE_IFACES[k][:3], n)
    for k in range(len(ARCSERVE_IFACES))
    for n in (1, 4)
}
_EPM_MAP_RESP = {
    (k, n): epm_map_response_template(*ARCSERVE_IFACES[k][:3], n)
    for k in range(len(ARCSERVE_IFACES))
    for n in (1, 4)
}


def _with_call_id(tpl: bytes, call_id: int) -> bytearray:
    b = bytearray(tpl)
    _u32.pack_into(b, 12, call_id)
    return b


def _dce_bind_pair(ctx: Ctx, direction: int, syntax: bytes, sec_addr: bytes | None) -> bytes:
    """Message 0 of a DCE/RPC connection: the bind, or its bind_ack."""
    st = ctx.state
    mf = st.setdefault("max_frag", MAX_FRAGS[0] if ctx.rng.random() < 0.7 else MAX_FRAGS[1])
    if direction == 0:
        return bytes(_with_call_id(_BIND[syntax, mf], 1))
    tpl = _BIND_ACK_135[mf] if sec_addr == b"135" else dce_bind_ack_template(sec_addr, mf)
    b = _with_call_id(tpl, 1)
    _u32.pack_into(b, 20, 0x1000 + ctx.rng.getrandbits(16))  # assoc_group_id
    return bytes(b)


def epm_maker(ctx: Ctx, direction: int, index: int) -> bytes:
    """TCP 135: bind to EPM v3 / bind_ack, then ept_map calls for Arcserve interfaces whose
    answers name the server's port for them (legacy 6502-6504 or dynamic, stable per server)."""
    st = ctx.state
    if index == 0:
        return _dce_bind_pair(ctx, direction, EPM_SYNTAX, b"135")
    r = ctx.rng
    if direction == 0:
        st["iface"] = k = r.randrange(len(ARCSERVE_IFACES))
        st["max_towers"] = n = 4 if r.random() < 0.7 else 1
        return bytes(_with_call_id(_EPM_MAP_REQ[k, n], index + 1))
    k, n = st["iface"], st["max_towers"]
    sip = st["sip"]
    ports = ctx.shared["ports"]
    port = ports.get((sip, k))
    if port is None:
        port = ports[sip, k] = ARCSERVE_IFACES[k][3] if r.random() < 0.4 else r.randint(49152, 65535)
    tpl, port_at, ip_at = _EPM_MAP_RESP[k, n]
    b = _with_call_id(tpl, index + 1)
    _be16.pack_into(b, port_at, port)
    if not ctx.v6:  # over IPv6 the IP floor stays 0.0.0.0 (the EPM server's address is meant)
        b[ip_at : ip_at + 4] = sip
    st["learned"] = (sip, port, k, ctx.v6, st["cip"], st["cmac"])
    return bytes(b)


def arcserve_rpc_maker(ctx: Ctx, direction: int, index: int) -> bytes:
    """A connection to an Arcserve MSRPC port (learned from the EPM, or legacy): bind to the
    interface, bind_ack with the port as secondary address, then requests and responses."""
    st = ctx.state
    k = st["iface"]
    uuid, major, minor, _port, opnums = ARCSERVE_IFACES[k]
    if index == 0:
        return _dce_bind_pair(ctx, direction, uuid + pack("<HH", major, minor), b"%d" % st["port"])
    r = ctx.rng
    call_id = index + 1
    if direction == 0:
        stub = ctx.fill(r.randint(10, 100) * 4)
        return (
            _dce_hdr(5, 0, 0, PFC_FIRST_LAST, DCE_DREP, 24 + len(stub), 0, call_id)
            + pack("<IHH", len(stub), 0, opnums[0] if r.random() < 0.7 else opnums[1])
            + stub
        )
    stub = ctx.fill(r.randint(1, 300) * 4) + bytes(4)  # out parameters, status 0
    return (
        _dce_hdr(5, 0, 2, PFC_FIRST_LAST, DCE_DREP, 24 + len(stub), 0, call_id)
        + pack("<IHBB", len(stub), 0, 0, 0)
        + stub
    )
