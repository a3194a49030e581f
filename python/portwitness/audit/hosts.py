"""Hosts: the names the wire taught for addresses, host-specific configuration lines matched to the
addresses they govern, and the `--host` filter's values.

A PortsConfig.cfg line `caservd 6000 ARCMEMBER` names a host, not an address. The wire teaches which
address carries which name: DNS, mDNS and NetBIOS answers (the core's `names` table, where decoded),
the machine name an ONC RPC client puts in its AUTH_UNIX credentials (the client's address), and the
server name a TLS client asks for (SNI: the server's address). A name matches when it is the same
ignoring case, or when one is the first label of the other (`arcmember` and
`arcmember.corp.example`). The report says which evidence matched each name to each address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import polars as pl

from portwitness.capture import Capture
from portwitness.config.model import Rule
from portwitness.errors import UsageError

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

MATCH_SCHEMA: dict[str, PolarsDataType] = {
    "host": pl.String,
    "ip": pl.String,
    "evidence": pl.String,
    "name_seen": pl.String,
    "first_seen": pl.Datetime("ns", "UTC"),
    "flow_id": pl.UInt64,
    "origin": pl.String,
}


def names_seen(cap: Capture) -> pl.DataFrame:
    """Every (name, address) the captures taught, with its source and the first time and flow
    (`portwitness.hostnames.names_seen`)."""
    from portwitness.hostnames import names_seen as seen

    return seen(cap)


def _same_name(written: str, seen: str) -> bool:
    a, b = written.casefold().rstrip("."), seen.casefold().rstrip(".")
    return a == b or a == b.split(".", 1)[0] or b == a.split(".", 1)[0]


def addresses_of(name: str, names: pl.DataFrame) -> pl.DataFrame:
    """The rows of `names` that match `name` (one per address and source, earliest first)."""
    if names.is_empty():
        return names
    short = name.casefold().rstrip(".").split(".", 1)[0]
    # Candidates by the first label, then the exact test: the frame may be large, the names few.
    cand = names.filter(pl.col("name").str.split(".").list.first() == short)
    keep = [_same_name(name, n) for n in cand["name"].to_list()]
    return cand.filter(pl.Series(keep, dtype=pl.Boolean)) if keep else cand


def match_hosts(rules: Sequence[Rule], names: pl.DataFrame) -> tuple[list[Rule], pl.DataFrame, list[Rule]]:
    """The rules with every host-specific line bound to the addresses it governs, generic lines
    told which addresses they no longer govern; how each name was matched; and the host-specific
    lines whose host the captures never named (they govern nothing the audit can see)."""
    bound: list[Rule] = []
    matches: list[dict[str, Any]] = []
    unmatched: list[Rule] = []
    # The names indexed by first label once (in the frame's order): thousands of host lines would
    # each filter the whole frame otherwise. The same rows addresses_of() gives.
    by_label: dict[str, list[dict[str, Any]]] = {}
    if any(r.ip is None and r.host is not None for r in rules) and not names.is_empty():
        for row in names.iter_rows(named=True):
            if row["name"] is not None:
                by_label.setdefault(row["name"].split(".", 1)[0], []).append(row)
    for r in rules:
        if r.ip is not None or r.host is None:
            bound.append(r)
            continue
        short = r.host.casefold().rstrip(".").split(".", 1)[0]
        found = [row for row in by_label.get(short, []) if _same_name(r.host, row["name"])]
        if not found:
            unmatched.append(r)
            continue
        for ip in sorted({row["ip"] for row in found}):
            bound.append(replace(r, ip=ip))
        for row in found:
            matches.append(
                {
                    "host": r.host,
                    "ip": row["ip"],
                    "evidence": row["source"],
                    "name_seen": row["name"],
                    "first_seen": row["first_seen"],
                    "flow_id": row["flow_id"],
                    "origin": str(r.origin),
                }
            )
    # A host with its own line for a service is governed by that line alone.
    own: dict[tuple[str, str], set[str]] = {}
    for r in bound:
        if r.ip is not None:
            own.setdefault((r.service, r.kind), set()).add(r.ip)
    out = []
    for r in bound:
        if r.ip is None and r.host is None and (r.service, r.kind) in own:
            r = replace(r, exclude_ips=tuple(sorted(own[(r.service, r.kind)])))
        out.append(r)
    m = pl.DataFrame(matches, schema=MATCH_SCHEMA) if matches else pl.DataFrame(schema=MATCH_SCHEMA)
    return out, m.unique(maintain_order=True), unmatched


def on_host(r: Rule, column: str = "server_ip") -> pl.Expr:
    """Whether the address in `column` is one the rule governs."""
    c = pl.col(column)
    if r.ip is not None:
        return c == r.ip
    if r.exclude_ips:
        return ~c.is_in(list(r.exclude_ips))
    return pl.lit(True)


class ByHost:
    """A frame split once by address, so that each of thousands of rules bound to one address
    filters only that address's rows instead of the whole frame (`of(rule)` is `filter(on_host(rule))`)."""

    def __init__(self, df: pl.DataFrame, column: str = "server_ip") -> None:
        self.df, self.column = df, column
        self._parts: dict[object, pl.DataFrame] | None = None

    def of(self, r: Rule) -> pl.DataFrame:
        if r.ip is None:
            return self.df.filter(on_host(r, self.column))
        if self._parts is None:
            self._parts = {k[0]: v for k, v in self.df.partition_by(self.column, as_dict=True).items()}
        return self._parts.get(r.ip, self.df.clear())


def by_key(df: pl.DataFrame, column: str, column_on_host: str = "server_ip") -> dict[object, ByHost]:
    """`df` split by `column` (a service name, say), each part split by address on demand."""
    if df.is_empty():
        return {}
    return {k[0]: ByHost(v, column_on_host) for k, v in df.partition_by(column, as_dict=True).items()}


class HostFilterError(UsageError):
    """A --host value that is no address, no network and no name the captures taught (exit 2)."""


def host_filter(values: Iterable[str], addresses: Sequence[str], names: pl.DataFrame) -> list[str]:
    """The addresses (among `addresses`, those the flows hold) the --host values select: an IPv4 or
    IPv6 address, a network in CIDR form, or a host name the captures taught."""
    selected: set[str] = set()
    parsed = []
    for addr in addresses:
        try:
            parsed.append((addr, ipaddress.ip_address(addr)))
        except ValueError:
            continue
    for v in values:
        text = v.strip()
        try:
            one = ipaddress.ip_address(text)
            selected.update(a for a, ip in parsed if ip == one)
            continue
        except ValueError:
            pass
        if "/" in text:
            try:
                net = ipaddress.ip_network(text, strict=False)
            except ValueError as e:
                raise HostFilterError(f"--host {v!r}: not a network in CIDR form ({e})") from None
            selected.update(a for a, ip in parsed if ip.version == net.version and ip in net)
            continue
        if not text or not all(c.isalnum() or c in ".-_" for c in text):
            raise HostFilterError(f"--host {v!r}: not an IP address, a network (CIDR) or a host name")
        found = addresses_of(text, names)
        if found.is_empty():
            raise HostFilterError(
                f"--host {v!r}: not an IP address or network, and no DNS, NetBIOS, AUTH_UNIX or TLS "
                "name in the captures matches it"
            )
        selected.update(found["ip"].to_list())
    return sorted(selected)
