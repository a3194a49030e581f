"""What every writer shares: the header lines, the rule names and the split of a rule's addresses
by family."""

from __future__ import annotations

import ipaddress

from portwitness.firewall.plan import Allow, AllowList


def header(al: AllowList, syntax: str) -> list[str]:
    """Comment lines (without the comment marker) opening every generated file."""
    lines = [
        f"portwitness firewall rules ({syntax}): the inbound allow-list of {', '.join(al.sources) or 'the catalog'}",
        "Each rule names the configuration line or the flow that asks for it.",
    ]
    lines += [f"not opened: {u}" for u in al.unopened]
    lines += [f"left out: {u}" for u in al.left_out]
    return lines


def rule_name(a: Allow) -> str:
    where = "" if a.host == "*" else f" on {a.host}"
    return f"portwitness {a.service} {a.transport.upper()} {a.ports_text}{where}"


def by_family(addrs: tuple[str, ...]) -> dict[int, list[str]]:
    """Addresses (or networks) grouped by IP version; an empty tuple is every address of both."""
    out: dict[int, list[str]] = {}
    for a in addrs:
        out.setdefault(ipaddress.ip_network(a, strict=False).version, []).append(a)
    return out


def families(a: Allow) -> list[tuple[int | None, list[str], list[str]]]:
    """(version or None for both, destination addresses, peer addresses) for each family the rule
    needs: a rule with addresses of one family only is written for that family."""
    dsts, peers = by_family(a.dsts), by_family(a.peers)
    if not dsts and not peers:
        return [(None, [], [])]
    out: list[tuple[int | None, list[str], list[str]]] = []
    for v in (4, 6):
        if (a.dsts and v not in dsts) or (a.peers and v not in peers):
            continue
        out.append((v, dsts.get(v, []), peers.get(v, [])))
    return out
