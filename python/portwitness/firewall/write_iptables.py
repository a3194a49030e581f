"""iptables-restore input (and ip6tables-restore with `version=6`): the filter table with INPUT
dropping by default, accepting replies, loopback, ICMP and each allow rule, one rule per address
pair and port range, the justification as a `#` line above it and its name as a comment match."""

from __future__ import annotations

from portwitness.firewall.escape import hash_comment, iptables_string
from portwitness.firewall.plan import AllowList
from portwitness.firewall.write_common import families, header, rule_name


def iptables(al: AllowList, version: int = 4) -> str:
    tool = "ip6tables-restore" if version == 6 else "iptables-restore"
    icmp = "ipv6-icmp" if version == 6 else "icmp"
    out = [f"# {hash_comment(h)}" for h in header(al, tool)]
    out += [
        f"# Load with: {tool} < FILE (replaces the filter table)",
        f"# IPv{'4' if version == 6 else '6'}: --format {'iptables' if version == 6 else 'ip6tables'} writes the rules of the other family",
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "replies" -j ACCEPT',
        "-A INPUT -m conntrack --ctstate INVALID -j DROP",
        '-A INPUT -i lo -m comment --comment "loopback" -j ACCEPT',
        f'-A INPUT -p {icmp} -m comment --comment "ICMP" -j ACCEPT',
    ]
    for a in al.allows:
        lead = "" if a.active else "# "
        written = [f for f in families(a) if f[0] in (None, version)]
        if not written:
            continue
        out.append(f"# {hash_comment(rule_name(a) + ': ' + a.justification)}")
        if not a.active:
            out.append(
                f"# bound to host {hash_comment(a.host)} by name: generate with --target {hash_comment(a.host)} to use it"
            )
        for _, dsts, peers in written:
            # None: no address given, so any peer (any destination).
            srcs: list[str | None] = [*peers] if peers else [None]
            dsts_or_any: list[str | None] = [*dsts] if dsts else [None]
            for src in srcs:
                for dst in dsts_or_any:
                    for r in a.ports:
                        words = ["-A INPUT"]
                        if src:
                            words.append(f"-s {src}")
                        if dst:
                            words.append(f"-d {dst}")
                        words.append(
                            f"-p {a.transport} -m {a.transport} --dport {r.lo if r.lo == r.hi else f'{r.lo}:{r.hi}'}"
                        )
                        words.append(f"-m comment --comment {iptables_string(rule_name(a))} -j ACCEPT")
                        out.append(lead + " ".join(words))
    out += ["COMMIT", ""]
    return "\n".join(out)
