"""Host names the wire taught, bound to addresses: what lets a configuration line that names a host
be matched to the addresses its traffic uses.

Four kinds of evidence, each a column value of `source`:

- `dns`, `mdns`, `nbns`: the core's `names` table (a DNS or mDNS response's A/AAAA records, every
  alias of a CNAME chain included; a NetBIOS name service answer or registration of a host's
  workstation or server name);
- `auth_unix`: the machine name an ONC RPC call's AUTH_UNIX credential carries, bound to the
  address that sent the call;
- `sni`: the server name a TLS ClientHello asked for, bound to the address it was sent to (an
  address serving many names has each; an SNI that is an IP literal names nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

    from portwitness.capture import Capture

# Any names: polars types a schema's names as str for a new frame and as str or selector for a cast.
SCHEMA: dict[Any, PolarsDataType] = {
    "name": pl.String,
    "ip": pl.String,
    "source": pl.String,
    "first_seen": pl.Datetime("ns", "UTC"),
    "flow_id": pl.UInt64,
}


def _ip_literal(name: pl.Expr) -> pl.Expr:
    """An IPv4 dotted quad, or anything with a colon (an IPv6 address; no host name has one)."""
    return name.str.contains(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$") | name.str.contains(":", literal=True)


def _normalised(name: pl.Expr) -> pl.Expr:
    """Names as the `names` table writes them: lower case, without a trailing dot."""
    return name.str.to_lowercase().str.strip_chars_end(".")


def names_seen(cap: Capture) -> pl.DataFrame:
    """One row per (name, ip, source): the earliest time that evidence bound the name to the
    address (`first_seen`) and the flow that carried it; sorted by name, ip, first_seen, source.
    Reads the capture's `names`, `rpc_calls` and `tls` tables."""
    wire = cap.names.select("name", "ip", "source", first_seen=pl.col("ts"), flow_id=pl.col("flow_id"))
    machines = cap.rpc_calls.filter(pl.col("auth_machine").is_not_null()).select(
        name=_normalised(pl.col("auth_machine")),
        ip=pl.col("client_ip"),
        source=pl.lit("auth_unix"),
        first_seen=pl.col("call_ts"),
        flow_id=pl.col("flow_id"),
    )
    sni = cap.tls.filter(pl.col("sni").is_not_null()).select(
        name=_normalised(pl.col("sni")),
        ip=pl.col("server_ip"),
        source=pl.lit("sni"),
        first_seen=pl.col("ts"),
        flow_id=pl.col("flow_id"),
    )
    sni = sni.filter(~_ip_literal(pl.col("name")))
    every = pl.concat(
        [f.cast(SCHEMA) for f in (wire, machines, sni)],
        how="vertical",
    ).filter(pl.col("name") != "")
    return (
        every.sort("first_seen", "flow_id", nulls_last=True, maintain_order=True)
        .unique(["name", "ip", "source"], keep="first", maintain_order=True)
        .sort("name", "ip", "first_seen", "source", nulls_last=True)
    )
