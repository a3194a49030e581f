"""The one model every ruleset reader produces: chains of rules whose matches are conditions on the
first packet of a connection attempt, and a verdict. A condition a reader cannot evaluate is kept as
`Unknown` with its reason, so that evaluation can say "not evaluated" instead of guessing."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from portwitness.errors import UsageError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Verdicts a rule may end with; None: the rule only counts or logs, evaluation goes on.
ACCEPT, DROP, REJECT, JUMP, GOTO, RETURN = "accept", "drop", "reject", "jump", "goto", "return"
TERMINAL = (ACCEPT, DROP, REJECT)

# Bounds on what a ruleset may hold: beyond them the file is refused (exit 2), never half read.
MAX_RULESET_BYTES = 512 << 20
MAX_RULES = 2_000_000
MAX_NESTING = 64  # JSON nesting, and chains jumping into chains


class RulesetError(UsageError):
    """A ruleset that cannot be read: names the file and line (exit 2)."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection attempt, as the host's firewall sees it."""

    transport: str  # tcp | udp
    src: Address
    sport: int
    dst: Address
    dport: int
    iif: str | None = None  # input interface, when known
    oif: str | None = None
    state: str = "new"  # conntrack state of a first packet

    @property
    def family(self) -> int:
        return self.src.version

    @property
    def loopback(self) -> bool:
        return self.src.is_loopback or self.dst.is_loopback


# A condition answers True, False, or None (cannot be told from a capture).
@dataclass(frozen=True)
class Proto:
    protos: frozenset[str]  # "tcp", "udp", or "*" for any
    negate: bool = False

    def test(self, p: Packet) -> bool | None:
        hit = "*" in self.protos or p.transport in self.protos
        return hit != self.negate


@dataclass(frozen=True)
class Family:
    family: int

    def test(self, p: Packet) -> bool | None:
        return p.family == self.family


@dataclass(frozen=True)
class Addr:
    field: str  # "src" | "dst"
    nets: tuple[Network | tuple[Address, Address], ...]
    negate: bool = False

    def test(self, p: Packet) -> bool | None:
        a = p.src if self.field == "src" else p.dst
        hit = False
        for n in self.nets:
            if isinstance(n, tuple):
                lo, hi = n
                # Addresses of two families do not compare: the version test comes first.
                hit = lo.version == a.version and lo <= a <= hi  # type: ignore[operator]
            else:
                hit = n.version == a.version and a in n
            if hit:
                break
        return hit != self.negate


@dataclass(frozen=True)
class Port:
    field: str  # "sport" | "dport" | "either" (multiport --ports)
    ranges: tuple[tuple[int, int], ...]
    proto: str | None = None  # tcp/udp when the match names its protocol (`tcp dport`), else any
    negate: bool = False

    def test(self, p: Packet) -> bool | None:
        if self.proto is not None and p.transport != self.proto:
            return False  # a protocol's port match never matches another protocol's packet
        values = (
            (p.sport, p.dport) if self.field == "either" else (p.sport if self.field == "sport" else p.dport,)
        )
        hit = any(lo <= v <= hi for v in values for lo, hi in self.ranges)
        return hit != self.negate


@dataclass(frozen=True)
class Iface:
    field: str  # "iif" | "oif"
    names: tuple[str, ...]  # a trailing "+" or "*" is a prefix match
    negate: bool = False

    def test(self, p: Packet) -> bool | None:
        name = p.iif if self.field == "iif" else p.oif
        if name is None:
            # The loopback interface is the one a capture's addresses do tell.
            if all(n == "lo" for n in self.names):
                name = "lo" if p.loopback else ""
            else:
                return None
        hit = any(name.startswith(n[:-1]) if n.endswith(("+", "*")) else name == n for n in self.names)
        return hit != self.negate


@dataclass(frozen=True)
class State:
    states: frozenset[str]  # new, established, related, invalid, untracked
    negate: bool = False

    def test(self, p: Packet) -> bool | None:
        return (p.state in self.states) != self.negate


@dataclass(frozen=True)
class Unknown:
    reason: str

    def test(self, p: Packet) -> bool | None:
        return None


Cond = Proto | Family | Addr | Port | Iface | State | Unknown


@dataclass
class Rule:
    location: str  # "file:line" or the nftables handle, as the report shows it
    text: str  # the rule as written (shortened), for the report
    conds: list[Cond] = field(default_factory=list)
    verdict: str | None = None
    target: str | None = None  # the chain of a jump or goto
    comment: str = ""
    chain: str = ""
    # Where evaluation of this rule cannot be decided from a capture, and why.
    unknown: list[str] = field(default_factory=list)

    def matches(self, p: Packet) -> bool | None:
        """True, False, or None when a condition that cannot be evaluated is all that is left:
        a condition the packet fails settles the rule whatever the unknown ones say."""
        undecided = False
        for c in self.conds:
            r = c.test(p)
            if r is False:
                return False
            if r is None:
                undecided = True
        return None if undecided else True

    def later_packets_only(self) -> bool:
        """Whether only packets after a connection's first can match (`ct state established`):
        evaluating attempts cannot tell whether such a rule is used."""
        return any(isinstance(c, State) and ("new" in c.states) == c.negate for c in self.conds)

    def ports(self) -> Iterable[int]:
        """The port numbers where this rule's port matches change: the edges of its ranges."""
        for c in self.conds:
            if isinstance(c, Port) and c.field in ("dport", "either"):
                for lo, hi in c.ranges:
                    yield lo
                    if hi < 65535:
                        yield hi + 1


@dataclass
class Chain:
    name: str
    table: str = "filter"
    family: str = "ip"  # nftables family: ip, ip6, inet (iptables: ip or ip6)
    hook: str | None = None  # input | output | forward | None (a regular chain)
    priority: int = 0
    policy: str = ACCEPT
    kind: str = "filter"
    rules: list[Rule] = field(default_factory=list)
    location: str = ""

    def applies_to(self, family: int) -> bool:
        return self.family == "inet" or (self.family == "ip") == (family == 4)


@dataclass
class NotEvaluated:
    """A construct evaluation does not model: where it is and why."""

    location: str
    text: str
    reason: str


@dataclass
class Ruleset:
    """Netfilter (nftables or iptables) chains, or Windows Defender Firewall rules (`windows`)."""

    source: str  # nftables | iptables | windows-json | windows-netsh
    file: str
    chains: dict[tuple[str, str, str], Chain] = field(default_factory=dict)  # (family, table, name)
    windows: list = field(default_factory=list)  # WinRule, for the Windows readers
    not_evaluated: list[NotEvaluated] = field(default_factory=list)
    families: set[int] = field(default_factory=lambda: {4, 6})  # address families the file covers
    # Windows: the active profile (None: not known) and the profile's default actions.
    profile: str | None = None
    default_inbound: str = "block"
    default_outbound: str = "allow"

    def base_chains(self, hook: str, family: int) -> list[Chain]:
        chains = [
            c for c in self.chains.values() if c.hook == hook and c.kind == "filter" and c.applies_to(family)
        ]
        return sorted(chains, key=lambda c: c.priority)  # stable: file order among equals

    def all_rules(self) -> list[Rule]:
        if self.windows:
            return list(self.windows)
        return [r for c in self.chains.values() for r in c.rules]


# JSON strings (skipped whole: brackets inside them do not count), brackets and line ends.
_JSON_TOKENS = re.compile(r'"(?:[^"\\\n]|\\.)*"|[\[\]{}\n]')


def json_object_lines(text: str, depth: int, count: int) -> list[int]:
    """The line on which each of the first `count` objects opening at bracket depth `depth`
    starts: the items of an array, to name them by line in errors and reports."""
    out: list[int] = []
    level, line = 0, 1
    for m in _JSON_TOKENS.finditer(text):
        t = m.group()
        if t == "\n":
            line += 1
        elif t[0] == '"':
            continue
        elif t in "[{":
            if t == "{" and level == depth:
                out.append(line)
                if len(out) >= count:
                    break
            level += 1
        else:
            level -= 1
    return out
