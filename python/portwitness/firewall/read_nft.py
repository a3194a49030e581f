"""`nft -j list ruleset` (libnftables JSON, schema 1): tables, base and regular chains, rules and
named sets. Matches on the transport protocol (`meta l4proto`, `ip protocol`, `ip6 nexthdr`), the
address family (`meta nfproto`, an `ip`/`ip6` payload), addresses (values, prefixes, ranges,
anonymous and named sets), ports (likewise), interfaces (`iifname`, `oifname`, `iif`, `oif`) and
conntrack state are evaluated, as are verdict maps keyed on a port, protocol or interface;
`counter`, `log` and comments are kept; every other expression (maps, concatenations, limits,
marks, quotas, `xt` matches of iptables-nft but `comment`, ...) is listed as not evaluated."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from portwitness.firewall.ruleset import (
    ACCEPT,
    DROP,
    GOTO,
    JUMP,
    MAX_NESTING,
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
    json_object_lines,
)

PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
L4 = {"tcp": "tcp", "udp": "udp", 6: "tcp", 17: "udp"}
PASSIVE = ("counter", "log", "comment", "notrack")  # statements that decide nothing
TEXT_MAX = 200


def looks_like(text: str) -> bool:
    return text.lstrip()[:1] == "{" and '"nftables"' in text[:4096]


class _ItemError(Exception):
    """An item of the ruleset that cannot be used; `read_nft` names its line."""

    def __init__(self, item: int, message: str) -> None:
        self.item, self.message = item, message


def read_nft(text: str, file: str) -> Ruleset:
    try:
        return _read(text, file)
    except _ItemError as e:
        lines = json_object_lines(text, 2, e.item + 1)
        line = lines[e.item] if e.item < len(lines) else 1
        raise RulesetError(file, line, f"item {e.item}: {e.message}") from None


def _read(text: str, file: str) -> Ruleset:
    try:
        doc = json.loads(text)
    except RecursionError:
        raise RulesetError(
            file, 1, f"JSON nested deeper than Python can read (limit {MAX_NESTING})"
        ) from None
    except json.JSONDecodeError as e:
        raise RulesetError(file, e.lineno, f"not JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
        raise RulesetError(file, 1, 'not nft -j output: expected {"nftables": [...]}')
    items = doc["nftables"]
    if len(items) > MAX_RULES:
        raise RulesetError(file, 1, f"more than {MAX_RULES} objects")
    rs = Ruleset(source="nftables", file=file)
    sets: dict[tuple[str, str, str], Any] = {}
    rules: list[tuple[int, dict]] = []
    for i, item in enumerate(items):
        where = f"{file}: item {i}"
        if not isinstance(item, dict) or len(item) != 1:
            raise _ItemError(i, "expected an object with one key")
        ((kind, body),) = item.items()
        _depth(body, file, i)
        if not isinstance(body, dict):
            raise _ItemError(i, f"{kind} is not an object")
        if kind == "chain":
            key = (_str(body, "family", file, i), _str(body, "table", file, i), _str(body, "name", file, i))
            hook = body.get("hook")
            prio = body.get("prio", 0)
            if isinstance(prio, str):
                prio = PRIORITIES.get(prio, 0)
            policy = body.get("policy", ACCEPT) if hook else RETURN
            if hook and policy not in (ACCEPT, DROP):
                raise _ItemError(i, f"bad policy {policy!r}")
            ctype = body.get("type", "filter") if hook else "filter"
            rs.chains[key] = Chain(key[2], key[1], key[0], hook, int(prio), policy, ctype, location=where)
            if key[0] not in ("ip", "ip6", "inet") and hook:
                rs.not_evaluated.append(
                    NotEvaluated(where, _chain_text(body), f"family {key[0]} is not evaluated")
                )
            elif hook and ctype != "filter":
                rs.not_evaluated.append(
                    NotEvaluated(where, _chain_text(body), f"{ctype} chains are not evaluated")
                )
        elif kind in ("set", "map"):
            key = (_str(body, "family", file, i), _str(body, "table", file, i), _str(body, "name", file, i))
            sets[key] = (kind, body)
        elif kind == "rule":
            rules.append((i, body))
        elif kind in (
            "metainfo",
            "table",
            "flowtable",
            "counter",
            "quota",
            "ct helper",
            "limit",
            "element",
            "ct timeout",
            "ct expectation",
            "secmark",
            "synproxy",
        ):
            continue
        else:
            raise _ItemError(i, f"unknown object {kind!r}")
    for i, body in rules:
        key = (_str(body, "family", file, i), _str(body, "table", file, i), _str(body, "chain", file, i))
        chain = rs.chains.get(key)
        if chain is None:
            raise _ItemError(i, f"rule of an unknown chain {' '.join(key)}")
        for rule in _rule(body, file, i, sets, key):
            rule.chain = key[2]
            if rule.unknown:
                rs.not_evaluated.append(NotEvaluated(rule.location, rule.text, "; ".join(rule.unknown)))
            chain.rules.append(rule)
    for key, c in rs.chains.items():
        for r in c.rules:
            if r.verdict in (JUMP, GOTO) and (key[0], key[1], r.target) not in rs.chains:
                raise RulesetError(file, 1, f"{r.location}: jump to unknown chain {r.target!r}")
    return rs


def _depth(value: Any, file: str, item: int) -> None:
    """Refuses an object nested deeper than any rule nft writes (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > MAX_NESTING:
            raise _ItemError(item, f"nested deeper than {MAX_NESTING} levels")
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)


def _str(body: dict, key: str, file: str, i: int) -> str:
    v = body.get(key)
    if not isinstance(v, str):
        raise _ItemError(i, f"{key} missing or not a string")
    return v


def _chain_text(body: dict) -> str:
    return _short(
        f"chain {body.get('family')} {body.get('table')} {body.get('name')} hook {body.get('hook')} type {body.get('type')}"
    )


def _short(text: str) -> str:
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 3] + "..."


def _rule(body: dict, file: str, i: int, sets: dict, key: tuple[str, str, str]) -> list[Rule]:
    handle = body.get("handle")
    exprs = body.get("expr", [])
    if not isinstance(exprs, list):
        raise _ItemError(i, "expr is not a list")
    rule = Rule(
        location=f"{file}: {key[0]} {key[1]} {key[2]} handle {handle}",
        text=_short(_describe(exprs)),
        comment=str(body.get("comment", "")),
    )
    for e in exprs:
        if not isinstance(e, dict) or len(e) != 1:
            raise _ItemError(i, "an expression must be an object with one key")
        ((name, arg),) = e.items()
        if name == "match":
            rule.conds.extend(_match(arg, sets, key))
        elif name in (ACCEPT, DROP, "reject", RETURN):
            rule.verdict = REJECT if name == "reject" else name
        elif name in ("jump", "goto"):
            target = arg.get("target") if isinstance(arg, dict) else None
            if not isinstance(target, str):
                raise _ItemError(i, f"{name} without a target")
            rule.verdict, rule.target = (JUMP if name == "jump" else GOTO), target
        elif name == "continue":
            continue
        elif name in PASSIVE:
            continue
        elif name == "xt" and isinstance(arg, dict) and arg.get("name") == "comment":
            continue  # iptables-nft's comment match: it matches every packet
        elif name == "vmap":
            expanded = _vmap_rules(rule, arg, sets, key)
            if expanded is None:
                rule.conds.append(Unknown("verdict map"))
            else:
                return expanded  # nothing after a verdict map is reached
        else:
            rule.conds.append(Unknown(f"{name} statement"))
    rule.unknown = [c.reason for c in rule.conds if isinstance(c, Unknown)]
    return [rule]


def _describe(exprs: list) -> str:
    """A short reading of the rule, close to `nft list ruleset`."""
    parts = []
    for e in exprs:
        if not isinstance(e, dict) or len(e) != 1:
            continue
        ((name, arg),) = e.items()
        if name == "match" and isinstance(arg, dict):
            op = arg.get("op", "==")
            parts.append(
                f"{_operand(arg.get('left'))} {'' if op in ('==', 'in') else op + ' '}{_operand(arg.get('right'))}"
            )
        elif name in ("jump", "goto") and isinstance(arg, dict):
            parts.append(f"{name} {arg.get('target')}")
        elif name in (ACCEPT, DROP, "reject", RETURN, "continue", "counter", "log"):
            parts.append(name)
        else:
            parts.append(name)
    return " ".join(parts)


def _operand(v: Any) -> str:
    if isinstance(v, dict) and len(v) == 1:
        ((k, a),) = v.items()
        if k == "payload" and isinstance(a, dict):
            return f"{a.get('protocol')} {a.get('field')}"
        if k in ("meta", "ct") and isinstance(a, dict):
            return f"{k} {a.get('key')}"
        if k == "set" and isinstance(a, list):
            return "{ " + ", ".join(_operand(x) for x in a) + " }"
        if k == "range" and isinstance(a, list) and len(a) == 2:
            return f"{_operand(a[0])}-{_operand(a[1])}"
        if k == "prefix" and isinstance(a, dict):
            return f"{a.get('addr')}/{a.get('len')}"
        return k
    if isinstance(v, list):
        return "{ " + ", ".join(_operand(x) for x in v) + " }"
    return str(v)


def _match(arg: Any, sets: dict, key: tuple[str, str, str]) -> list:
    if not isinstance(arg, dict):
        return [Unknown("malformed match")]
    op = arg.get("op", "==")
    left, right = arg.get("left"), arg.get("right")
    if op not in ("==", "!=", "in"):
        return [Unknown(f"match with {op}")]
    negate = op == "!="
    if not isinstance(left, dict) or len(left) != 1:
        return [Unknown("match on an expression")]
    ((kind, sel),) = left.items()
    if not isinstance(sel, dict):
        return [Unknown(f"match on {kind}")]
    values = _values(right, sets, key)
    if values is None:
        return [Unknown(f"match of {_operand(left)} against {_operand(right)}")]
    if kind == "payload":
        proto, fieldname = sel.get("protocol"), sel.get("field")
        if proto in ("ip", "ip6") and fieldname in ("saddr", "daddr"):
            nets = _addrs(values)
            if nets is None:
                return [Unknown(f"{proto} {fieldname} against {_operand(right)}")]
            return [
                Family(4 if proto == "ip" else 6),
                Addr("src" if fieldname == "saddr" else "dst", nets, negate),
            ]
        if proto in ("ip", "ip6") and fieldname in ("protocol", "nexthdr"):
            return [Family(4 if proto == "ip" else 6), _proto(values, negate)]
        if proto in ("tcp", "udp", "th") and fieldname in ("sport", "dport"):
            ports = _ports(values)
            if ports is None:
                return [Unknown(f"{proto} {fieldname} against {_operand(right)}")]
            cond = Port(fieldname, ports, None if proto == "th" else proto, negate)
            # `th dport` needs a transport header: ours are all TCP or UDP, so it holds for each.
            return [Proto(frozenset({proto}))] + [cond] if proto != "th" else [cond]
        return [Unknown(f"match on {proto} {fieldname}")]
    if kind == "meta":
        mkey = sel.get("key")
        if mkey == "l4proto":
            return [_proto(values, negate)]
        if mkey == "protocol" and all(v in ("ip", "ip6") for v in values) and len(values) == 1:
            fam = 4 if values[0] == "ip" else 6
            return [Family(10 - fam if negate else fam)]
        if mkey == "nfproto":
            fams = {4 if v == "ipv4" else 6 if v == "ipv6" else 0 for v in values}
            if 0 in fams or len(fams) != 1:
                return [Unknown(f"meta nfproto {_operand(right)}")]
            (fam,) = fams
            return [Family(fam)] if not negate else [Family(10 - fam)]
        if mkey in ("iifname", "oifname", "iif", "oif"):
            names = tuple(str(v) for v in values)
            return [Iface("iif" if mkey.startswith("i") else "oif", names, negate)]
        return [Unknown(f"meta {mkey}")]
    if kind == "ct" and sel.get("key") == "state":
        return [State(frozenset(str(v) for v in values), negate)]
    return [Unknown(f"match on {_operand(left)}")]


def _values(right: Any, sets: dict, key: tuple[str, str, str]) -> list | None:
    """The values a match compares with: a value, a prefix, a range, an anonymous set, or a named
    set (`@name`) of the same table. None: something evaluation does not model."""
    if isinstance(right, str) and right.startswith("@"):
        found = sets.get((key[0], key[1], right[1:]))
        if found is None or found[0] != "set":
            return None
        elems = found[1].get("elem", [])
        right = {"set": elems if isinstance(elems, list) else [elems]}
    if isinstance(right, dict) and "set" in right and len(right) == 1:
        items = right["set"]
        items = items if isinstance(items, list) else [items]
        out = []
        for x in items:
            if isinstance(x, dict) and "elem" in x:
                x = x["elem"].get("val") if isinstance(x["elem"], dict) else None
            if x is None or isinstance(x, list):
                return None
            out.append(x)
        return out
    if isinstance(right, list):
        return right
    return [right]


def _proto(values: list, negate: bool) -> Proto | Unknown:
    protos = set()
    for v in values:
        p = L4.get(v)
        if p is None:
            # Another protocol (icmp, sctp...): no TCP or UDP attempt matches it.
            if isinstance(v, (str, int)):
                continue
            return Unknown(f"protocol {v}")
        protos.add(p)
    return Proto(frozenset(protos), negate)


def _ports(values: list) -> tuple[tuple[int, int], ...] | None:
    out = []
    for v in values:
        if isinstance(v, int) and 0 <= v <= 65535:
            out.append((v, v))
        elif isinstance(v, dict) and isinstance(v.get("range"), list) and len(v["range"]) == 2:
            lo, hi = v["range"]
            if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi <= 65535):
                return None
            out.append((lo, hi))
        else:
            return None  # a service name (nft -S) or another expression
    return tuple(out)


def _addrs(values: list) -> tuple | None:
    out: list = []
    try:
        for v in values:
            if isinstance(v, str):
                out.append(ipaddress.ip_network(v, strict=False))
            elif isinstance(v, dict) and isinstance(v.get("prefix"), dict):
                p = v["prefix"]
                out.append(ipaddress.ip_network(f"{p.get('addr')}/{p.get('len')}", strict=False))
            elif isinstance(v, dict) and isinstance(v.get("range"), list) and len(v["range"]) == 2:
                lo, hi = (ipaddress.ip_address(x) for x in v["range"])
                out.append((lo, hi))
            else:
                return None
    except (ValueError, TypeError):
        return None
    return tuple(out)


def _vmap_rules(rule: Rule, arg: Any, sets: dict, key: tuple[str, str, str]) -> list[Rule] | None:
    """A verdict map keyed on a port, the protocol or an interface, as the rules it stands for: one
    per element, each the rule's conditions so far, the element's key and its verdict (the keys
    are distinct, so their order does not matter). None: a map evaluation does not model."""
    if not isinstance(arg, dict):
        return None
    data = arg.get("data")
    if isinstance(data, str) and data.startswith("@"):
        found = sets.get((key[0], key[1], data[1:]))
        if found is None or found[0] != "map":
            return None
        data = {"set": found[1].get("elem", [])}
    if not (isinstance(data, dict) and isinstance(data.get("set"), list)):
        return None
    out = []
    for pair in data["set"]:
        if not (
            isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], dict) and len(pair[1]) == 1
        ):
            return None
        ((verdict, vtarget),) = pair[1].items()
        conds = _match({"op": "==", "left": arg.get("key"), "right": pair[0]}, sets, key)
        if any(isinstance(c, Unknown) for c in conds):
            return None
        r = Rule(rule.location, rule.text, [*rule.conds, *conds], comment=rule.comment)
        if verdict in (ACCEPT, DROP, RETURN):
            r.verdict = verdict
        elif (
            verdict in ("jump", "goto")
            and isinstance(vtarget, dict)
            and isinstance(vtarget.get("target"), str)
        ):
            r.verdict, r.target = (JUMP if verdict == "jump" else GOTO), vtarget["target"]
        else:
            return None
        out.append(r)
    return out
