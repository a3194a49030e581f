"""The Community ID v1 flow hash (https://github.com/corelight/community-id-spec) of a conversation
given by hand: the string Zeek, Suricata, Elastic and Security Onion give it, to find in
portwitness's flows a flow another tool names, or the other way round.

Every flows table already has its `community_id` column, computed by the core as the table is
built (src/community_id.rs); these functions call the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portwitness import _core

if TYPE_CHECKING:
    import polars as pl

COLUMN = "community_id"


def community_id(
    transport: str | None,
    client_ip: str | None,
    client_port: int | None,
    server_ip: str | None,
    server_port: int | None,
    seed: int = 0,
) -> str | None:
    """The Community ID of one TCP or UDP conversation (either direction gives the same); None
    when the tuple is not one (another transport, an address that does not parse, addresses of
    two families)."""
    return _core.community_id(transport, client_ip, client_port, server_ip, server_port, seed)


def community_ids(flows: pl.DataFrame, seed: int = 0) -> pl.Series:
    """The Community ID of every row of a frame with the flows table's `transport`, `client_ip`,
    `client_port`, `server_ip` and `server_port`."""
    import polars as pl

    cols = [flows[c].to_list() for c in ("transport", "client_ip", "client_port", "server_ip", "server_port")]
    out = [_core.community_id(t, c, cp, s, sp, seed) for t, c, cp, s, sp in zip(*cols, strict=True)]
    return pl.Series(COLUMN, out, pl.String)
