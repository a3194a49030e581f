"""The Community ID v1 flow hash (https://github.com/corelight/community-id-spec): the same string
for a conversation in portwitness, Zeek, Suricata, Elastic and Security Onion, so a flow found in one
is found in the others.

    "1:" + base64(SHA1(seed, 2 bytes | lower address | higher address | protocol | 0 | their ports))

The endpoints are put in order (the smaller address first, in network byte order; on equal
addresses the smaller port), so both directions of a conversation hash the same.
"""

from __future__ import annotations

import socket
import struct
from base64 import b64encode
from hashlib import sha1

import polars as pl

PROTOCOLS = {"tcp": 6, "udp": 17}
COLUMN = "community_id"
_PORTS = struct.Struct("!HH")


def _packed(cache: dict[str, bytes | None], ip: str) -> bytes | None:
    got = cache.get(ip, b"")
    if got != b"":
        return got
    try:
        got = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except (OSError, TypeError):
        got = None
    cache[ip] = got
    return got


def community_id(
    transport: str | None,
    client_ip: str | None,
    client_port: int | None,
    server_ip: str | None,
    server_port: int | None,
    seed: int = 0,
    _cache: dict[str, bytes | None] | None = None,
) -> str | None:
    """The Community ID of one TCP or UDP conversation; None when the tuple is not one."""
    proto = PROTOCOLS.get(transport or "")
    if proto is None or client_port is None or server_port is None or client_ip is None or server_ip is None:
        return None
    cache = {} if _cache is None else _cache
    a, b = _packed(cache, client_ip), _packed(cache, server_ip)
    if a is None or b is None or len(a) != len(b):
        return None
    pa, pb = client_port, server_port
    if not (a < b or (a == b and pa < pb)):
        a, b, pa, pb = b, a, pb, pa
    digest = sha1(struct.pack("!H", seed) + a + b + bytes((proto, 0)) + _PORTS.pack(pa, pb)).digest()
    return "1:" + b64encode(digest).decode("ascii")


def community_ids(flows: pl.DataFrame, seed: int = 0) -> pl.Series:
    """The Community ID of every row of a flows table (the loop of `community_id`, inlined: a
    function call per flow would double its cost)."""
    cache: dict[str, bytes | None] = {}
    for ip in pl.concat([flows["client_ip"], flows["server_ip"]]).unique().to_list():
        _packed(cache, ip)
    head = struct.pack("!H", seed)
    protocol = {name: bytes((number, 0)) for name, number in PROTOCOLS.items()}
    ports = _PORTS.pack
    out: list[str | None] = []
    append = out.append
    cols = [flows[c].to_list() for c in ("transport", "client_ip", "client_port", "server_ip", "server_port")]
    for transport, ci, cp, si, sp in zip(*cols, strict=True):
        proto = protocol.get(transport)
        a, b = cache.get(ci), cache.get(si)
        if proto is None or a is None or b is None or cp is None or sp is None or len(a) != len(b):
            append(None)
        elif a < b or (a == b and cp < sp):
            append("1:" + b64encode(sha1(head + a + b + proto + ports(cp, sp)).digest()).decode("ascii"))
        else:
            append("1:" + b64encode(sha1(head + b + a + proto + ports(sp, cp)).digest()).decode("ascii"))
    return pl.Series(COLUMN, out, pl.String)


def with_community_id(flows: pl.DataFrame) -> pl.DataFrame:
    """`flows` with its `community_id` column (last), computed when it is not there yet."""
    if COLUMN in flows.columns:
        return flows
    return flows.with_columns(community_ids(flows))
