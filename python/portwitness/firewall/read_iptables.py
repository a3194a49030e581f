"""`iptables-save` / `ip6tables-save` output (both may follow each other in one file): the filter
table's chains and rules. Matches on protocol, addresses, ports (`tcp`, `udp`, `multiport`),
interfaces, conntrack state (`conntrack`, `state`), `iprange` and the TCP SYN flag are evaluated;
`comment` is kept; any other match or target is listed as not evaluated. Other tables are listed
as not evaluated when they hold rules."""

from __future__ import annotations

import functools
import ipaddress
import re

from portwitness.firewall.ruleset import (
    ACCEPT,
    DROP,
    GOTO,
    JUMP,
    MAX_RULES,
    REJECT,
    RETURN,
    Addr,
    Chain,
    Family,
    Iface,
    NotEvaluated,
    Port,
    Proto,
    Rule,
    Ruleset,
    RulesetError,
    State,
    Unknown,
)

BUILTIN = ("INPUT", "OUTPUT", "FORWARD")
HOOKS = {"INPUT": "input", "OUTPUT": "output", "FORWARD": "forward"}
PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "all": "*", "0": "*"}
TARGETS = {"ACCEPT": ACCEPT, "DROP": DROP, "REJECT": REJECT, "RETURN": RETURN}
# Targets that neither decide nor change the packet: evaluation goes on past them.
PASSIVE_TARGETS = ("LOG", "NFLOG", "ULOG", "TRACE")
TEXT_MAX = 200


def looks_like(text: str) -> bool:
    head = [ln for ln in text[:4096].splitlines() if ln.strip() and not ln.startswith("#")]
    return bool(head) and head[0].startswith("*")


def read_iptables(text: str, file: str) -> Ruleset:
    rs = Ruleset(source="iptables", file=file, families=set())
    table: str | None = None
    family = 4
    generated_by_v6 = False
    count = 0
    pending_v6: list[Rule] = []  # rules whose addresses say IPv6 before any header did
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if "ip6tables-save" in line or "ip6tables-legacy-save" in line or "ip6tables-nft-save" in line:
                generated_by_v6 = True
            elif "iptables-save" in line:
                generated_by_v6 = False
            continue
        if line.startswith("*"):
            if table is not None:
                raise RulesetError(file, n, f"table {line[1:]!r} starts before COMMIT ended table {table!r}")
            table = line[1:]
            family = 6 if generated_by_v6 else 4
            continue
        if table is None:
            raise RulesetError(file, n, f"expected a table (*filter) before {_short(line)!r}")
        if line == "COMMIT":
            if table == "filter":
                rs.families.add(family)
            table = None
            continue
        fam = "ip6" if family == 6 else "ip"
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                raise RulesetError(file, n, f"bad chain line {_short(line)!r}")
            name, policy = parts[0], parts[1]
            if table != "filter":
                continue
            if name in BUILTIN:
                if policy not in ("ACCEPT", "DROP"):
                    raise RulesetError(file, n, f"bad policy {policy!r} for chain {name}")
                pol = TARGETS[policy]
            elif policy != "-":
                raise RulesetError(file, n, f"a user chain's policy must be '-', not {policy!r}")
            else:
                pol = RETURN
            rs.chains[(fam, table, name)] = Chain(
                name, table, fam, HOOKS.get(name), 0, pol, location=f"{file}:{n}"
            )
            continue
        if line.startswith("[") and "]" in line:
            line = line.split("]", 1)[1].strip()  # `iptables-save -c` puts each rule's counters first
        if not line.startswith(("-A ", "-A\t")):
            raise RulesetError(file, n, f"expected -A, a chain line, COMMIT or a table, not {_short(line)!r}")
        count += 1
        if count > MAX_RULES:
            raise RulesetError(file, n, f"more than {MAX_RULES} rules")
        try:
            words = _split(line)
        except ValueError as e:
            raise RulesetError(file, n, f"cannot split the rule: {e}") from None
        if len(words) < 2:
            raise RulesetError(file, n, "-A without a chain")
        chain = words[1]
        if table != "filter":
            rs.not_evaluated.append(
                NotEvaluated(f"{file}:{n}", _short(line), f"table {table} is not evaluated (only filter)")
            )
            continue
        c = rs.chains.get((fam, table, chain))
        if c is None:
            raise RulesetError(file, n, f"chain {chain!r} was not declared (:{chain} ...)")
        rule = _rule(words[2:], file, n, line)
        rule.chain = chain
        if rule.unknown:
            rs.not_evaluated.append(NotEvaluated(rule.location, rule.text, "; ".join(rule.unknown)))
        if family == 4 and not generated_by_v6 and _says_v6(rule):
            pending_v6.append(rule)
        c.rules.append(rule)
    if table is not None:
        raise RulesetError(file, 0, f"table {table!r} has no COMMIT")
    for r in pending_v6:
        r.conds.insert(0, Family(6))
    _check_targets(rs)
    return rs


def _says_v6(rule: Rule) -> bool:
    return any(isinstance(c, Addr) and any(_version(n) == 6 for n in c.nets) for c in rule.conds)


def _version(n) -> int:
    return n[0].version if isinstance(n, tuple) else n.version


def _check_targets(rs: Ruleset) -> None:
    """Every jump goes to a declared chain, and no chain reaches itself (the kernel refuses both)."""
    graph: dict[tuple[str, str, str], list[tuple[Rule, tuple[str, str, str]]]] = {}
    for key, c in rs.chains.items():
        for r in c.rules:
            if r.verdict in (JUMP, GOTO):
                to = (key[0], key[1], r.target or "")
                if to not in rs.chains:
                    raise RulesetError(rs.file, _line(r), f"jump to undeclared chain {r.target!r}")
                graph.setdefault(key, []).append((r, to))
    _refuse_loops(rs, graph)


def _refuse_loops(rs: Ruleset, graph) -> None:
    """An iterative depth-first search (a deep chain of jumps must not exhaust Python's stack)."""
    state: dict = {}
    for start in graph:
        if start in state:
            continue
        stack = [(start, iter(graph.get(start, ())))]
        state[start] = 1
        while stack:
            node, edges = stack[-1]
            step = next(edges, None)
            if step is None:
                state[node] = 2
                stack.pop()
                continue
            rule, to = step
            if state.get(to) == 1:
                raise RulesetError(rs.file, _line(rule), f"jump to {to[2]!r} makes a loop")
            if to not in state:
                state[to] = 1
                stack.append((to, iter(graph.get(to, ()))))


def _line(rule: Rule) -> int:
    tail = rule.location.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# A word as iptables-save writes it: bare characters, backslash escapes and double-quoted strings
# (in which a backslash escapes the next character), run together.
_WORD = re.compile(r'(?:[^\s"\\]|\\.|"(?:[^"\\]|\\.)*")+')
_UNQUOTE = re.compile(r'\\(.)|"')


def _split(line: str) -> list[str]:
    """The words of a rule line as iptables-restore reads them (shlex is ten times slower)."""
    if '"' not in line and "\\" not in line:
        return line.split()
    words = _WORD.findall(line)
    if _WORD.sub("", line).strip():
        raise ValueError("a quote is not closed")
    return [_UNQUOTE.sub(_unquoted, w) if '"' in w or "\\" in w else w for w in words]


def _unquoted(m: re.Match) -> str:
    return m.group(1) or ""


def _short(text: str) -> str:
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 3] + "..."


def _rule(words: list[str], file: str, n: int, line: str) -> Rule:
    rule = Rule(location=f"{file}:{n}", text=_short(line[3:]))
    proto: str | None = None
    i = 0
    negate = False
    module = ""
    while i < len(words):
        w = words[i]
        if w == "!":
            negate = True
            i += 1
            continue
        arg = words[i + 1] if i + 1 < len(words) else None
        used = 2
        if w in ("-p", "--protocol"):
            p = PROTOCOLS.get((arg or "").lower())
            if p is None:
                # Another protocol (icmp, ipv6-icmp, sctp, 47...): never a TCP or UDP attempt.
                rule.conds.append(Proto(frozenset(), negate))
            else:
                rule.conds.append(Proto(frozenset({p}), negate))
                proto = None if p == "*" else p
        elif w in ("-s", "--source", "-d", "--destination"):
            nets = _nets(arg, file, n)
            rule.conds.append(Addr("src" if w in ("-s", "--source") else "dst", nets, negate))
        elif w in ("-i", "--in-interface", "-o", "--out-interface"):
            rule.conds.append(Iface("iif" if w in ("-i", "--in-interface") else "oif", (arg or "",), negate))
        elif w in ("-m", "--match"):
            module = arg or ""
            if module not in ("tcp", "udp", "multiport", "conntrack", "state", "comment", "iprange"):
                rule.conds.append(Unknown(f"match {module}"))
                i = _skip_options(words, i + 2)
                negate = False
                continue
        elif w in ("--dport", "--destination-port", "--sport", "--source-port") and module in (
            "tcp",
            "udp",
            "",
        ):
            f = "dport" if w in ("--dport", "--destination-port") else "sport"
            rule.conds.append(Port(f, (_range(arg, file, n),), proto, negate))
        elif w in ("--dports", "--destination-ports", "--sports", "--source-ports", "--ports"):
            ranges = tuple(_range(x, file, n) for x in (arg or "").split(","))
            f = "either" if w == "--ports" else "dport" if w.startswith("--d") else "sport"
            rule.conds.append(Port(f, ranges, proto, negate))
        elif w in ("--ctstate", "--state"):
            states = frozenset(s.lower() for s in (arg or "").split(","))
            rule.conds.append(State(states, negate))
        elif w == "--syn":
            # The first packet of a TCP attempt is a SYN: `--syn` holds for it, `! --syn` does not.
            rule.conds.append(Proto(frozenset({"tcp"}), negate))
            used = 1
        elif w == "--tcp-flags":
            # A first packet carries SYN alone: it matches when SYN masked equals the flags asked.
            if i + 2 >= len(words):
                raise RulesetError(file, n, "--tcp-flags needs a mask and the flags")
            mask = set(words[i + 1].upper().split(","))
            comp = set(words[i + 2].upper().split(","))
            mask = {"SYN", "ACK", "FIN", "RST", "URG", "PSH", "ECE", "CWR"} if "ALL" in mask else mask
            comp = set() if "NONE" in comp else mask if "ALL" in comp else comp
            holds = ({"SYN"} & mask) == comp
            rule.conds.append(Proto(frozenset({"tcp"} if holds else ()), negate))
            used = 3
        elif w == "--comment":
            rule.comment = arg or ""
        elif w in ("--src-range", "--dst-range"):
            lo, _, hi = (arg or "").partition("-")
            try:
                pair = (ipaddress.ip_address(lo), ipaddress.ip_address(hi or lo))
            except ValueError:
                raise RulesetError(file, n, f"bad address range {arg!r}") from None
            rule.conds.append(Addr("src" if w == "--src-range" else "dst", (pair,), negate))
        elif w in ("-j", "--jump", "-g", "--goto"):
            target = arg or ""
            if target in TARGETS:
                rule.verdict = TARGETS[target]
            elif target in PASSIVE_TARGETS:
                rule.verdict = None
            elif target and (target[0].islower() or target not in _KNOWN_EXTENSION_TARGETS):
                rule.verdict = GOTO if w in ("-g", "--goto") else JUMP
                rule.target = target
            else:
                rule.conds.append(Unknown(f"target {target}"))
            i = _skip_options(words, i + 2) if target not in TARGETS or target == "REJECT" else i + 2
            negate = False
            continue
        elif w.startswith("--") and module:
            # Another option of a modelled match (--tcp-option, --ctproto, --ctexpire, ...): it
            # may change who matches, so the rule is not evaluated rather than guessed.
            rule.conds.append(Unknown(f"{module} {w}"))
            i += 1
            while i < len(words) and not words[i].startswith("-") and words[i] != "!":
                i += 1  # its values
            negate = False
            continue
        elif w in ("-f", "--fragment"):
            rule.conds.append(Unknown("fragments") if not negate else Proto(frozenset({"*"})))
            used = 1
        elif w in ("-c", "--set-counters"):
            used = 3
        else:
            raise RulesetError(file, n, f"unknown option {w!r}")
        if arg is None and used == 2:
            raise RulesetError(file, n, f"option {w} needs a value")
        negate = False
        i += used
    rule.unknown = [c.reason for c in rule.conds if isinstance(c, Unknown)]
    return rule


# Targets of iptables extensions (upper case); a user chain named in upper case but not listed here
# is still a jump (iptables-restore checks it was declared, as we do).
_KNOWN_EXTENSION_TARGETS = frozenset(
    "MARK CONNMARK CT DSCP TOS TCPMSS NOTRACK SET CLASSIFY CHECKSUM NFQUEUE QUEUE AUDIT TEE SECMARK "
    "CONNSECMARK HMARK IDLETIMER LED RATEEST SYNPROXY TPROXY MASQUERADE SNAT DNAT REDIRECT NETMAP".split()
)


def _skip_options(words: list[str], i: int) -> int:
    """Past the options of a match or target not modelled (up to the next -m, -j or short option)."""
    while i < len(words) and not (
        words[i] in ("-m", "-j", "-g", "!") or (words[i].startswith("-") and not words[i].startswith("--"))
    ):
        i += 1
    return i


def _range(text: str | None, file: str, n: int) -> tuple[int, int]:
    lo, sep, hi = (text or "").partition(":")
    try:
        a = int(lo) if lo else 0
        b = (int(hi) if hi else 65535) if sep else a
    except ValueError:
        raise RulesetError(file, n, f"bad port {text!r} (a number, or lo:hi)") from None
    if not (0 <= a <= b <= 65535):
        raise RulesetError(file, n, f"bad port range {text!r}")
    return a, b


def _nets(text: str | None, file: str, n: int) -> tuple:
    out = []
    for item in (text or "").split(","):
        net = _net(item)
        if net is None:
            raise RulesetError(file, n, f"bad address {item!r}")
        out.append(net)
    return tuple(out)


@functools.lru_cache(maxsize=65536)
def _net(item: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(item, strict=False)
    except ValueError:
        return None
