"""Windows Defender Firewall rules, read from `Get-NetFirewallRule` objects converted to JSON or
from `netsh advfirewall firewall show rule name=all verbose`, and their semantics.

Windows evaluates rules as a set, not in order: an enabled Block rule that matches wins over
every Allow rule, an enabled Allow rule that matches allows, and when none matches the profile's
default action applies (inbound: block, outbound: allow, unless told otherwise). Matching is on
direction, protocol, local and remote ports and addresses. Conditions a capture cannot tell —
the program or service that owns the socket, interface types, a profile when the active one is
not given, the RPC and edge keywords — make a rule "not evaluated" when the rest of it matches."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from portwitness.firewall.decision import ALLOWED, DROPPED, UNDECIDED, Decision
from portwitness.firewall.ruleset import (
    MAX_NESTING,
    MAX_RULES,
    NotEvaluated,
    Packet,
    Ruleset,
    RulesetError,
    json_object_lines,
)

PROFILES = ("domain", "private", "public")
# MSFT_NetFirewallRule enumerations, as ConvertTo-Json writes them without -EnumsAsStrings
# (Microsoft Learn, "MSFT_NetFirewallRule class"): Direction 1 Inbound, 2 Outbound; Action
# 0 NotConfigured, 2 Allow, 4 Block; Enabled (GpoBoolean) 1 True, 2 False; Profile flags
# 1 Domain, 2 Private, 4 Public, 0 Any.
DIRECTIONS = {1: "in", 2: "out", "inbound": "in", "outbound": "out", "in": "in", "out": "out"}
ACTIONS = {2: "allow", 4: "block", "allow": "allow", "block": "block", "bypass": "allow"}
ENABLED = {1: True, 2: False, "true": True, "false": False, "yes": True, "no": False}
PROFILE_BITS = {1: "domain", 2: "private", 4: "public"}
# Port keywords: the endpoint mapper is 135; the rest name ports a capture cannot tell.
PORT_KEYWORDS = {"rpcepmap": (135, 135)}
TEXT_MAX = 200


@dataclass
class WinRule:
    location: str
    text: str  # the rule's display name
    name: str = ""
    enabled: bool = True
    direction: str = "in"
    action: str = "allow"
    profiles: frozenset[str] = frozenset(PROFILES)
    protocol: str = "*"  # tcp | udp | * | another protocol's number
    local_ports: tuple[tuple[int, int], ...] | None = None  # None: any
    remote_ports: tuple[tuple[int, int], ...] | None = None
    local_addrs: tuple | None = None
    remote_addrs: tuple | None = None
    unknown: list[str] = field(default_factory=list)  # conditions a capture cannot tell
    comment: str = ""
    chain: str = ""

    def matches(self, p: Packet, hook: str, profile: str | None) -> bool | None:
        if not self.enabled or self.direction != ("in" if hook == "input" else "out"):
            return False
        if self.protocol not in ("*", p.transport):
            return False
        local, remote = (p.dst, p.src) if hook == "input" else (p.src, p.dst)
        lport, rport = (p.dport, p.sport) if hook == "input" else (p.sport, p.dport)
        if self.local_ports is not None and not any(lo <= lport <= hi for lo, hi in self.local_ports):
            return False
        if self.remote_ports is not None and not any(lo <= rport <= hi for lo, hi in self.remote_ports):
            return False
        if self.local_addrs is not None and not _in(local, self.local_addrs):
            return False
        if self.remote_addrs is not None and not _in(remote, self.remote_addrs):
            return False
        undecided = bool(self.unknown)
        if profile is None:
            undecided |= self.profiles != frozenset(PROFILES)
        elif profile not in self.profiles:
            return False
        return None if undecided else True

    def ports(self) -> Iterator[int]:
        for lo, hi in self.local_ports or ():
            yield lo
            if hi < 65535:
                yield hi + 1


def _in(a: Any, nets: Iterable[Any]) -> bool:
    for n in nets:
        if isinstance(n, tuple):
            if n[0].version == a.version and n[0] <= a <= n[1]:
                return True
        elif n.version == a.version and a in n:
            return True
    return False


def evaluate(rs: Ruleset, p: Packet, hook: str) -> Decision:
    profile = rs.profile
    # Decision names netfilter rules; a Windows rule stands in with the attributes it reads.
    blocks: list[Any] = []
    allows: list[Any] = []
    maybe_block: list[Any] = []
    maybe_allow: list[Any] = []
    for r in rs.windows:
        m = r.matches(p, hook, profile)
        if m is False:
            continue
        bucket = (blocks if m else maybe_block) if r.action == "block" else (allows if m else maybe_allow)
        bucket.append(r)
    hits = blocks + allows
    if blocks:
        return Decision(DROPPED, blocks[0], _name(blocks[0]), hits)
    if maybe_block:
        return Decision(UNDECIDED, maybe_block[0], _name(maybe_block[0]), hits)
    if allows:
        return Decision(ALLOWED, allows[0], _name(allows[0]), hits)
    if maybe_allow:
        return Decision(UNDECIDED, maybe_allow[0], _name(maybe_allow[0]), hits)
    default = rs.default_inbound if hook == "input" else rs.default_outbound
    return Decision(
        ALLOWED if default == "allow" else DROPPED,
        None,
        f"default {'inbound' if hook == 'input' else 'outbound'} action: {default}",
        hits,
    )


def _name(r: WinRule) -> str:
    return f"{r.location}: {r.text}"


def _short(text: str) -> str:
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 3] + "..."


# --- readers ------------------------------------------------------------------------------------


def looks_like_json(text: str) -> bool:
    head = text.lstrip()[:1]
    return head in ("[", "{") and '"nftables"' not in text[:4096]


def looks_like_netsh(text: str) -> bool:
    return bool(re.search(r"^\s*Rule Name:", text[:65536], re.MULTILINE))


def read_windows_json(text: str, file: str) -> Ruleset:
    """An array (or one object) of rules, each with the properties of `Get-NetFirewallRule` and of
    its port, address, application and service filters flattened beside them (docs/firewall.md
    gives the pipeline). Enumerations may be numbers or names. Line numbers are those of each
    object's opening brace."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise RulesetError(
            file, 1, f"JSON nested deeper than Python can read (limit {MAX_NESTING})"
        ) from None
    except json.JSONDecodeError as e:
        raise RulesetError(file, e.lineno, f"not JSON: {e.msg} (column {e.colno})") from None
    items = doc if isinstance(doc, list) else [doc]
    if len(items) > MAX_RULES:
        raise RulesetError(file, 1, f"more than {MAX_RULES} rules")
    lines = json_object_lines(text, 1 if isinstance(doc, list) else 0, len(items))
    rs = Ruleset(source="windows-json", file=file)
    for i, obj in enumerate(items):
        line = lines[i] if i < len(lines) else 1
        if not isinstance(obj, dict):
            raise RulesetError(file, line, f"rule {i}: not an object")
        props = {str(k).lower(): v for k, v in obj.items()}
        rs.windows.append(_from_props(props, file, line, i))
    _list_unknown(rs)
    return rs


def _from_props(props: dict[str, Any], file: str, line: int, i: int) -> WinRule:
    def enum(key: str, table: dict, default: Any) -> Any:
        v = props.get(key, default)
        if v is None:
            return default
        if isinstance(v, bool) and table is ENABLED:
            return v
        k = v.lower() if isinstance(v, str) else v
        if not isinstance(k, (str, int)) or k not in table:
            raise RulesetError(file, line, f"rule {i}: bad {key} {v!r}")
        return table[k]

    name = _text(props.get("displayname") or props.get("name") or f"rule {i}")
    r = WinRule(location=f"{file}:{line}", text=_short(name), name=_text(props.get("name", "")))
    r.enabled = enum("enabled", ENABLED, True)
    r.direction = enum("direction", DIRECTIONS, "in")
    r.action = enum("action", ACTIONS, "allow")
    r.profiles = _profiles(props.get("profile", "Any"), file, line)
    r.protocol = _protocol(props.get("protocol", "Any"), file, line)
    r.local_ports = _ports(props.get("localport", "Any"), r, file, line)
    r.remote_ports = _ports(props.get("remoteport", "Any"), r, file, line)
    r.local_addrs = _addrs(props.get("localaddress", "Any"), r, file, line)
    r.remote_addrs = _addrs(props.get("remoteaddress", "Any"), r, file, line)
    _scoped(r, "program", props.get("program", "Any"))
    _scoped(r, "service", props.get("service", "Any"))
    _scoped(r, "interface type", props.get("interfacetype", "Any"))
    _scoped(r, "interface alias", props.get("interfacealias", "Any"))
    r.comment = _text(props.get("description") or "")
    return r


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _list(v: Any) -> list[str]:
    if v is None:
        return ["any"]
    if isinstance(v, list):
        return [str(x).strip() for x in v]
    return [x.strip() for x in str(v).split(",")]


def _any(values: list[str]) -> bool:
    return not values or any(x.lower() in ("any", "*", "") for x in values)


def _profiles(v: Any, file: str, line: int) -> frozenset[str]:
    if isinstance(v, int):
        if v == 0:
            return frozenset(PROFILES)
        return frozenset(name for bit, name in PROFILE_BITS.items() if v & bit)
    words = [w.lower() for w in _list(v)]
    if _any(words) or "all" in words:
        return frozenset(PROFILES)
    bad = [w for w in words if w not in PROFILES]
    if bad:
        raise RulesetError(file, line, f"bad profile {bad[0]!r}")
    return frozenset(words)


def _protocol(v: Any, file: str, line: int) -> str:
    s = str(v).strip().lower()
    if s in ("any", "*", "256", ""):
        return "*"
    if s in ("tcp", "6"):
        return "tcp"
    if s in ("udp", "17"):
        return "udp"
    if s.isdigit() or s.startswith("icmp"):
        return s  # another protocol: never a TCP or UDP attempt
    raise RulesetError(file, line, f"bad protocol {v!r}")


def _ports(v: Any, r: WinRule, file: str, line: int) -> tuple[tuple[int, int], ...] | None:
    items = _list(v)
    if _any(items):
        return None
    out = []
    for x in items:
        low = x.lower()
        if low in PORT_KEYWORDS:
            out.append(PORT_KEYWORDS[low])
            continue
        if re.fullmatch(r"[a-z][a-z0-9-]*", low):
            r.unknown.append(f"port keyword {x}")
            continue
        lo, _, hi = x.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise RulesetError(file, line, f"bad port {x!r}") from None
        if not 0 <= a <= b <= 65535:
            raise RulesetError(file, line, f"bad port range {x!r}")
        out.append((a, b))
    return tuple(out)


ADDRESS_KEYWORDS = (
    "localsubnet",
    "dns",
    "dhcp",
    "wins",
    "defaultgateway",
    "intranet",
    "internet",
    "playtodevice",
    "rmtintranet",
    "intranetremoteaccess",
    "ply2renders",
    "captiveportaladdresses",
    "localsubnet4",
    "localsubnet6",
)


def _addrs(v: Any, r: WinRule, file: str, line: int) -> tuple | None:
    items = _list(v)
    if _any(items):
        return None
    out: list = []
    for x in items:
        if x.lower() in ADDRESS_KEYWORDS:
            r.unknown.append(f"address keyword {x}")
            continue
        try:
            if "-" in x:
                lo, hi = x.split("-", 1)
                out.append((ipaddress.ip_address(lo.strip()), ipaddress.ip_address(hi.strip())))
            elif "/" in x and "." in x.split("/", 1)[1]:
                addr, mask = x.split("/", 1)
                out.append(ipaddress.ip_network(f"{addr}/{mask}", strict=False))
            else:
                out.append(ipaddress.ip_network(x, strict=False))
        except ValueError:
            raise RulesetError(file, line, f"bad address {x!r}") from None
    if r.unknown and not out:
        # Only keywords: whether the address matches cannot be told.
        return None
    return tuple(out)


def _scoped(r: WinRule, what: str, v: Any) -> None:
    if not _any(_list(v)):
        r.unknown.append(f"{what} {_short(', '.join(_list(v)))}")


def _list_unknown(rs: Ruleset) -> None:
    for r in rs.windows:
        if r.unknown:
            rs.not_evaluated.append(NotEvaluated(r.location, r.text, "; ".join(r.unknown)))


NETSH_KEYS = {
    "rule name": "displayname",
    "description": "description",
    "enabled": "enabled",
    "direction": "direction",
    "profiles": "profile",
    "grouping": "group",
    "localip": "localaddress",
    "remoteip": "remoteaddress",
    "protocol": "protocol",
    "localport": "localport",
    "remoteport": "remoteport",
    "edge traversal": "edge",
    "program": "program",
    "service": "service",
    "interfacetypes": "interfacetype",
    "security": "security",
    "rule source": "source",
    "action": "action",
    "type": "icmptype",
    "code": "icmpcode",
    "remotecomputergroup": "remotecomputergroup",
    "remoteusergroup": "remoteusergroup",
    "localusergroup": "localusergroup",
}


def read_netsh(text: str, file: str) -> Ruleset:
    """`netsh advfirewall firewall show rule name=all verbose`: blocks of `Key: value` lines, each
    opened by `Rule Name:` and a line of dashes, ended by a blank line; `Ok.` at the end."""
    rs = Ruleset(source="windows-netsh", file=file)
    current: dict[str, Any] | None = None
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip() or set(line.strip()) == {"-"} or line.strip() == "Ok.":
            continue
        key, sep, value = line.partition(":")
        k = key.strip().lower()
        if not sep or k not in NETSH_KEYS:
            if current is not None and not sep and raw[:1].isspace():
                continue  # a wrapped description
            raise RulesetError(file, n, f"expected 'Key: value' of a netsh rule, not {_short(line)!r}")
        if k == "rule name":
            if current is not None:
                rs.windows.append(_from_netsh(current, file, start, len(rs.windows)))
            if len(rs.windows) >= MAX_RULES:
                raise RulesetError(file, n, f"more than {MAX_RULES} rules")
            current, start = {}, n
        elif current is None:
            raise RulesetError(file, n, "a rule's property before its 'Rule Name:'")
        current[NETSH_KEYS[k]] = value.strip()
    if current is not None:
        rs.windows.append(_from_netsh(current, file, start, len(rs.windows)))
    _list_unknown(rs)
    return rs


def _from_netsh(props: dict[str, Any], file: str, line: int, i: int) -> WinRule:
    # netsh writes `LocalIP: 10.0.0.0/255.255.255.0` and `RemoteIP: LocalSubnet`; its own values
    # are the ones the JSON reader knows, so one conversion serves both.
    props = dict(props)
    if "remotecomputergroup" in props or "remoteusergroup" in props or "localusergroup" in props:
        props["service"] = props.get("service", "Any")
    r = _from_props(props, file, line, i)
    for k in ("remotecomputergroup", "remoteusergroup", "localusergroup"):
        if props.get(k) and not _any(_list(props[k])):
            r.unknown.append(f"{k} {_short(props[k])}")
    if props.get("security", "NotRequired").lower() not in ("notrequired", ""):
        r.unknown.append(f"security {props['security']}")
    return r
