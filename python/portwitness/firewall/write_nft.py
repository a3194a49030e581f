"""nftables: one table `inet portwitness` with an input chain (policy drop) that accepts replies,
loopback, ICMP and each allow rule, every rule with its justification as a `#` line above it and
a shortened one as its comment. Loading the file replaces that table only (`nft -f FILE`)."""

from __future__ import annotations

from portwitness.firewall.escape import hash_comment, nft_string
from portwitness.firewall.plan import AllowList
from portwitness.firewall.write_common import families, header, rule_name

TABLE = "portwitness"


def nftables(al: AllowList) -> str:
    out = ["#!/usr/sbin/nft -f"]
    out += [f"# {hash_comment(h)}" for h in header(al, "nftables")]
    out += [
        "# Load with: nft -f FILE (replaces the table inet portwitness, nothing else)",
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy drop;",
        '\t\tct state established,related accept comment "replies to accepted or opened connections"',
        "\t\tct state invalid drop",
        '\t\tiifname "lo" accept comment "loopback"',
        '\t\tmeta l4proto { icmp, ipv6-icmp } accept comment "ICMP (path MTU, neighbour discovery)"',
    ]
    for a in al.allows:
        lead = "\t\t" if a.active else "\t\t# "
        out.append(f"\t\t# {hash_comment(rule_name(a) + ': ' + a.justification)}")
        if not a.active:
            out.append(
                f"\t\t# bound to host {hash_comment(a.host)} by name: generate with --target {hash_comment(a.host)} to use it"
            )
        for version, dsts, peers in families(a):
            parts = []
            ip = "ip6" if version == 6 else "ip"
            if peers:
                parts.append(f"{ip} saddr {_set(peers)}")
            if dsts:
                parts.append(f"{ip} daddr {_set(dsts)}")
            parts.append(f"{a.transport} dport {_set([str(r) for r in a.ports])}")
            parts.append(f"accept comment {nft_string(rule_name(a))}")
            out.append(lead + " ".join(parts))
    out += ["\t}", "}", ""]
    return "\n".join(out)


def _set(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"
