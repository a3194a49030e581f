"""PortsConfig.cfg as Arcserve writes it: one service per line,

    ServiceName  PortRange_1;PortRange_2;...  [HostName]  [IPAddress]

with `#` comments, `KEY=VALUE` switch lines (RPCServices among them) and service lines without a port,
which take the catalog's default: system-assigned for the RPC services, the fixed default otherwise."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import replace

from portwitness.config.catalog import lookup, unknown_service
from portwitness.config.model import (
    FAMILY_ONCRPC,
    ConfigError,
    ConfigWarning,
    Origin,
    Policy,
    PortRange,
    Rule,
)
from portwitness.config.ports import PortSyntaxError, parse_port_list
from portwitness.config.source import read_source

KNOWN_SWITCHES = frozenset({"rpcservices"})
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
PORTMAPPER_PROGRAM = 100000
TOO_MANY_FIELDS = "too many fields: expected ServiceName PortRange [HostName] [IPAddress]"

Token = tuple[int, str]  # 1-based column, text


def read_portsconfig(path: str | os.PathLike[str], *, text: str | None = None) -> Policy:
    """Read PortsConfig.cfg (or `text`, reported under `path`). Raises ConfigError on lines that
    cannot be read; questionable ones become warnings in the returned Policy."""
    name, body = read_source(path, text)
    return _Reader(name).read(body)


def parse_ip(text: str) -> str | None:
    """The canonical form of an IP address (RFC 5952 for IPv6), or None when `text` is not one."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _looks_like_ports(text: str) -> bool:
    # Host names start with a letter or digit and never hold `;`; a port list starts with a digit.
    # A dotted quad also starts with a digit, and is an address in the HostName position.
    return (text[0].isdigit() or text[0] == "-" or ";" in text) and parse_ip(text) is None


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file
        self.policy = Policy(files=[file])
        self.first_line: dict[tuple[str, str | None, str | None], int] = {}
        self.switch_lines: dict[str, int] = {}
        # Rules given explicit ports, with where those ports were written: RPCServices overrides them.
        self.pinned: dict[int, Token] = {}

    def read(self, text: str) -> Policy:
        for lineno, raw in enumerate(text.splitlines(), 1):
            content = raw.split("#", 1)[0]
            tokens = [(m.start() + 1, m.group()) for m in re.finditer(r"\S+", content)]
            if not tokens:
                continue
            if _is_switch(tokens):
                self._switch(lineno, content, tokens)
            else:
                self._service(lineno, tokens)
        if self.policy.rpc_services_dynamic:
            self._rpc_services_dynamic()
        return self.policy.prioritise()

    def _warn(self, line: int, column: int, message: str) -> None:
        self.policy.warnings.append(ConfigWarning(self.file, line, column, message))

    def _error(self, line: int, column: int, message: str) -> ConfigError:
        return ConfigError(self.file, line, column, message)

    def _switch(self, line: int, content: str, tokens: list[Token]) -> None:
        if "=" in content:
            eq = content.index("=")
            key, value = content[:eq].strip(), content[eq + 1 :].strip()
            if not key:
                raise self._error(line, eq + 1, "switch line without a key before '='")
        else:  # a bare `RPCServices`, or `RPCServices 1`
            key, value = tokens[0][1], " ".join(t for _, t in tokens[1:])
        col = tokens[0][0]
        folded = key.casefold()
        if folded in self.switch_lines:
            self._warn(
                line,
                col,
                f"switch {key} repeated (first at line {self.switch_lines[folded]}); the last counts",
            )
        self.switch_lines.setdefault(folded, line)
        self.policy.switches[key] = value
        if folded not in KNOWN_SWITCHES:
            self._warn(line, col, f"unknown switch {key}: kept, but portwitness does not know what it does")
            return
        word = value.casefold()
        if word == "" or word in TRUE_WORDS:
            self.policy.rpc_services_dynamic = True
        elif word in FALSE_WORDS:
            self.policy.rpc_services_dynamic = False
        else:
            self._warn(line, col, f"{key}={value}: expected 1, true or yes (or 0, false, no); ignored")

    def _service(self, line: int, tokens: list[Token]) -> None:
        (name_col, written), rest = tokens[0], tokens[1:]
        ports_tok = rest.pop(0) if rest and _looks_like_ports(rest[0][1]) else None
        host_tok = rest.pop(0) if rest else None
        ip_tok = rest.pop(0) if rest else None
        # Errors in the order they appear on the line, so the leftmost problem is reported.
        ports = self._ports(line, ports_tok) if ports_tok else ()
        host, ip = None, None
        if host_tok:
            as_ip = parse_ip(host_tok[1]) if ip_tok is None else None
            host, ip = (None, as_ip) if as_ip else (host_tok[1], None)
        if ip_tok:
            ip = parse_ip(ip_tok[1])
            if ip is None:
                raise self._error(line, ip_tok[0], f"invalid IP address {ip_tok[1]!r}")
        if rest:
            raise self._error(line, rest[0][0], TOO_MANY_FIELDS)

        origin = Origin(self.file, line)
        entry = lookup(written)
        if entry is None:
            service = written.casefold()
            hint = unknown_service(written)
            if hint.endswith("?"):
                self._warn(line, name_col, f"{hint} (kept as a TCP service)")
            else:
                self._warn(line, name_col, f"{hint}: not in the catalog; kept as a TCP service")
            rules = [Rule(service=service, ports=ports, host=host, ip=ip, origin=origin)]
        else:
            service = entry.name
            if not entry.configurable:
                self._warn(
                    line,
                    name_col,
                    f"{service} is not configurable in PortsConfig.cfg ({entry.description}); "
                    "Arcserve does not move it",
                )
            if ports:
                rules = [entry.rule(entry.transports, ports, dynamic=False, host=host, ip=ip, origin=origin)]
            elif entry.dynamic:
                rules = [entry.rule(entry.transports, (), dynamic=True, host=host, ip=ip, origin=origin)]
            else:
                rules = [replace(r, host=host, ip=ip) for r in entry.rules(origin)]
                if not rules:
                    self._warn(line, name_col, f"{service} has no default port range; the line has no effect")

        key = (service, host.casefold() if host else None, ip)
        if key in self.first_line:
            where = " ".join(x for x in (host, ip) if x) or "every host"
            self._warn(
                line,
                name_col,
                f"duplicate entry for {service} on {where} (first at line {self.first_line[key]})",
            )
        self.first_line.setdefault(key, line)
        if ports_tok:
            first = len(self.policy.rules)
            self.pinned.update((first + i, ports_tok) for i in range(len(rules)))
        self.policy.rules.extend(rules)

    def _ports(self, line: int, tok: Token) -> tuple[PortRange, ...]:
        col, spec = tok
        try:
            return tuple(r for _, r in parse_port_list(spec, ";"))
        except PortSyntaxError as e:
            raise self._error(line, col + e.offset, e.message) from None

    def _rpc_services_dynamic(self) -> None:
        """RPCServices: every Arcserve ONC RPC service on a system-assigned port, whatever its line
        says. The portmapper itself stays where it is: it is how the others are found."""
        for i, rule in enumerate(self.policy.rules):
            if rule.family != FAMILY_ONCRPC or rule.program == PORTMAPPER_PROGRAM:
                continue
            if i in self.pinned:
                col, spec = self.pinned[i]
                self._warn(
                    rule.origin.line,
                    col,
                    f"port {spec} of {rule.service} is ignored: RPCServices makes every RPC service "
                    "use a system-assigned port",
                )
            self.policy.rules[i] = replace(rule, ports=(), dynamic=True)


def _is_switch(tokens: list[Token]) -> bool:
    first = tokens[0][1]
    if "=" in first or first.casefold() in KNOWN_SWITCHES:
        return True
    return len(tokens) > 1 and tokens[1][1].startswith("=")
