"""A TOML policy: the same rules for any stack (NFS with pinned ports, Windows RPC on its dynamic
range, ...) and for Arcserve beyond PortsConfig.cfg.

    [policy]                      # optional
    name = "nfs-server"           # label; the default `scenario` of every service
    usessl = true                 # optional
    rpc_services_dynamic = false  # PortsConfig.cfg's RPCServices, kept by conversion
    [policy.switches]             # PortsConfig.cfg's KEY=VALUE lines, kept by conversion
    RPCServices = ""

    [[service]]
    name = "nfs"                  # required; Arcserve names and aliases are canonicalised
    ports = [2049, "20048-20050"] # ints and "lo" / "lo-hi" strings; may be empty with dynamic = true
    transport = "both"            # "tcp" | "udp" | "both" | ["tcp", "udp"]
    dynamic = false               # handed out by a portmapper / endpoint mapper (within `ports` if given)
    hosts = ["10.0.0.5", "filer"] # each its own rule: addresses go in `ip`, names in `host`
    host = "filer"                # or one rule bound to a name and an address (not with `hosts`)
    ip = "10.0.0.5"
    tls = false                   # true: TLS required; false: plaintext expected; absent: either
    program = 100003              # ONC RPC program
    interface = "uuid"            # DCE/RPC interface
    kind = "service"              # "service" | "callback" | "reconnection"
    family = "oncrpc"             # "oncrpc" | "msrpc" | "tcp" | "udp"
    needed_by = "NFS clients"
    scenario = "label"

Fields left out are taken from the catalog for Arcserve services (family, kind, transports, program,
interface, needed_by), else derived (family oncrpc with a program, msrpc with an interface). Unknown
keys are errors, and every error names a line and column of the file.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from typing import TypeVar

from portwitness.config.catalog import closest, lookup, unknown_service
from portwitness.config.locate import TomlLocator
from portwitness.config.model import (
    FAMILY_MSRPC,
    FAMILY_ONCRPC,
    FAMILY_TCP,
    FAMILY_UDP,
    KIND_CALLBACK,
    KIND_RECONNECTION,
    KIND_SERVICE,
    ConfigError,
    ConfigWarning,
    Origin,
    Policy,
    PortRange,
    Rule,
)
from portwitness.config.ports import PortSyntaxError, parse_port_item
from portwitness.config.portsconfig import parse_ip
from portwitness.config.source import read_source

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

TOP_KEYS = ("policy", "service")
POLICY_KEYS = ("name", "usessl", "rpc_services_dynamic", "switches")
SERVICE_KEYS = (
    "name",
    "ports",
    "transport",
    "dynamic",
    "hosts",
    "host",
    "ip",
    "tls",
    "program",
    "interface",
    "kind",
    "family",
    "needed_by",
    "scenario",
)
KINDS = (KIND_SERVICE, KIND_CALLBACK, KIND_RECONNECTION)
FAMILIES = (FAMILY_ONCRPC, FAMILY_MSRPC, FAMILY_TCP, FAMILY_UDP)
TRANSPORTS = {"tcp": ("tcp",), "udp": ("udp",), "both": ("tcp", "udp")}

_WHAT: dict[type, str] = {str: "a string", bool: "a boolean", int: "an integer"}
T = TypeVar("T")
D = TypeVar("D")

_AT = re.compile(r" \(at line ([0-9]{1,9}), column ([0-9]{1,9})\)")


def read_policy(path: str | os.PathLike[str], *, text: str | None = None) -> Policy:
    name, body = read_source(path, text)
    check_bounds(name, body)
    try:
        data = tomllib.loads(body)
    except tomllib.TOMLDecodeError as e:
        raise _syntax_error(name, body, e) from None
    except (RecursionError, ValueError) as e:
        # tomllib recurses per nesting level and int() refuses very long numbers: both are bounded
        # above, this is the last guard.
        raise ConfigError(name, 0, 0, f"not a usable TOML policy ({type(e).__name__})") from None
    return _Reader(name, body).read(data)


# A policy is a list of services: deeper nesting, longer numbers or a larger file is no policy, and
# tomllib would recurse once per level (a RecursionError) or convert thousands of digits.
MAX_DEPTH = 32
MAX_BYTES = 64 << 20
MAX_NUMBER = 32


def check_bounds(file: str, text: str) -> None:
    """Refuse, with a line and column, TOML nested deeper than MAX_DEPTH arrays and inline tables or
    holding a number longer than MAX_NUMBER characters; one linear pass that skips strings and comments."""
    if len(text) > MAX_BYTES:
        raise ConfigError(file, 0, 0, f"{len(text)} characters: larger than any policy ({MAX_BYTES} at most)")
    depth, line, line_start, i, n = 0, 1, 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line, line_start = line + 1, i + 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "\"'":
            quote = text[i : i + 3] if text.startswith(c * 3, i) else c
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                if text[j] == "\\" and c == '"':
                    j += 1
                elif text[j] == "\n":
                    if len(quote) == 1:
                        break  # tomllib reports the unterminated string
                    line, line_start = line + 1, j + 1
                j += 1
            i = j + len(quote)
            continue
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(file, line, i - line_start + 1, f"nested deeper than {MAX_DEPTH} levels")
        elif c in "]}":
            depth = max(0, depth - 1)
        elif c.isalnum() or c in "_+-":
            # A bare word: a key, a boolean, a date or a number; only a number can be refused.
            j = i
            while j < n and (text[j].isalnum() or text[j] in "_.+-:"):
                j += 1
            number = c.isdigit() or (c in "+-" and i + 1 < n and text[i + 1].isdigit())
            if number and j - i > MAX_NUMBER:
                raise ConfigError(
                    file,
                    line,
                    i - line_start + 1,
                    f"a value of {j - i} characters: no port or setting is that long",
                )
            i = j
            continue
        i += 1


def _syntax_error(file: str, text: str, e: ValueError) -> ConfigError:
    msg = str(e)
    # tomllib ends its messages with the place; anchored at a fixed suffix, so no scan of the message.
    at = msg.rfind(" (at line ")
    m = _AT.fullmatch(msg, at) if at >= 0 else None
    if m:
        return ConfigError(file, int(m.group(1)), int(m.group(2)), msg[:at].rstrip())
    # The end of the document: after the last character, on a line of its own after a final newline.
    line = text.count("\n") + 1
    column = len(text) - (text.rfind("\n") + 1) + 1
    return ConfigError(file, line, column, msg.removesuffix(" (at end of document)"))


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


class _Reader:
    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.loc = TomlLocator(text)
        self.policy = Policy(files=[file])

    def _error(
        self,
        table: str,
        index: int | None,
        key: str | None,
        message: str,
        *,
        at_key: bool = False,
        item: object = None,
        offset: int = 0,
    ) -> ConfigError:
        line, column = self.loc.locate(table, index, key, at_key=at_key, item=item, offset=offset)
        return ConfigError(self.file, line, column, message)

    def _typed(
        self, table: str, index: int | None, d: dict[str, object], key: str, kind: type[T], default: D
    ) -> T | D:
        """d[key] checked to be of `kind`, or `default` when the key is absent."""
        if key not in d:
            return default
        value = d[key]
        # bool is an int in Python, never in TOML.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self._error(table, index, key, f"{key} must be {_WHAT[kind]}, not {_type_name(value)}")
        return value

    def read(self, data: dict[str, object]) -> Policy:
        for key in data:
            if key not in TOP_KEYS:
                raise self._top_level_error(key)
        label = self._policy_table(data.get("policy", {}))
        services = data.get("service", [])
        if not isinstance(services, list) or not all(isinstance(s, dict) for s in services):
            raise self._top_level_error("service", "service must be an array of tables: write [[service]]")
        for i, entry in enumerate(services):
            self.policy.rules += self._service(i, entry, label)
        return self.policy.prioritise()

    def _top_level_error(self, key: str, message: str = "") -> ConfigError:
        message = message or f"unknown key {key!r} (expected [policy] and [[service]])"
        for table, index in ((key, None), (key, 0)):
            if self.loc.has_table(table, index):
                line, col = self.loc.header(table, index)
                return ConfigError(self.file, line, col, message)
        return self._error("", None, key, message, at_key=True)

    def _policy_table(self, table: object) -> str:
        if not isinstance(table, dict):
            raise self._top_level_error("policy", f"policy must be a table, not {_type_name(table)}")
        for key in table:
            if key not in POLICY_KEYS:
                raise self._error("policy", None, key, f"unknown key {key!r} in [policy]", at_key=True)
        name = self._typed("policy", None, table, "name", str, "")
        self.policy.usessl = self._typed("policy", None, table, "usessl", bool, None)
        self.policy.rpc_services_dynamic = self._typed(
            "policy", None, table, "rpc_services_dynamic", bool, False
        )
        switches = table.get("switches", {})
        if not isinstance(switches, dict):
            raise self._error(
                "policy", None, "switches", f"switches must be a table, not {_type_name(switches)}"
            )
        for key, value in switches.items():
            if not isinstance(value, str):
                raise self._error(
                    "policy.switches", None, key, f"switch {key} must be a string, not {_type_name(value)}"
                )
            self.policy.switches[key] = value
        return name

    def _service(self, i: int, d: dict[str, object], label: str) -> list[Rule]:
        t = "service"
        for key in d:
            if key not in SERVICE_KEYS:
                raise self._error(t, i, key, f"unknown key {key!r} in [[service]]", at_key=True)
        if "name" not in d:
            raise self._error(t, i, None, f"[[service]] number {i + 1} has no name")
        written = self._typed(t, i, d, "name", str, "").strip()
        if not written:
            raise self._error(t, i, "name", "name is empty")
        entry = lookup(written)
        service = entry.name if entry else written.casefold()
        if entry is None and closest(written) is not None:
            # Any stack's services are welcome in a policy; a name one slip away from Arcserve's
            # is most likely that service misspelt, whose traffic would never be attributed to it.
            line, column = self.loc.locate(t, i, "name")
            self.policy.warnings.append(ConfigWarning(self.file, line, column, unknown_service(written)))

        transports = self._transports(i, d["transport"]) if "transport" in d else None
        program = self._typed(t, i, d, "program", int, entry.program if entry else None)
        if program is not None and not 0 <= program <= 0xFFFFFFFF:
            raise self._error(t, i, "program", f"program {program} outside 0-4294967295")
        interface = (
            self._interface(i, d["interface"]) if "interface" in d else (entry.interface if entry else None)
        )

        if "family" in d:
            family = self._choice(i, d, "family", FAMILIES)
        elif entry:
            family = entry.family
        elif program is not None:
            family = FAMILY_ONCRPC
        elif interface is not None:
            family = FAMILY_MSRPC
        else:
            family = FAMILY_UDP if transports == ("udp",) else FAMILY_TCP
        if transports is None:
            if entry and len(entry.bindings) == 1:
                transports = entry.bindings[0].transports
            else:
                transports = ("udp",) if family == FAMILY_UDP else ("tcp",)
        kind = self._choice(i, d, "kind", KINDS) if "kind" in d else (entry.kind if entry else KIND_SERVICE)

        ports = self._ports(i, d["ports"]) if "ports" in d else ()
        dynamic = self._typed(t, i, d, "dynamic", bool, False)
        if not ports and not dynamic:
            key = "ports" if "ports" in d else "name"
            raise self._error(t, i, key, f"service {written!r} has no ports: give ports, or dynamic = true")
        tls = self._typed(t, i, d, "tls", bool, None)
        needed_by = self._typed(t, i, d, "needed_by", str, entry.needed_by if entry else "")
        scenario = self._typed(t, i, d, "scenario", str, label)

        origin = Origin(self.file, self.loc.header(t, i)[0])
        return [
            Rule(
                service=service,
                kind=kind,
                family=family,
                transports=transports,
                ports=ports,
                dynamic=dynamic,
                host=host,
                ip=ip,
                tls=tls,
                program=program,
                interface=interface,
                needed_by=needed_by,
                scenario=scenario,
                origin=origin,
            )
            for host, ip in self._targets(i, d)
        ]

    def _choice(self, i: int, d: dict[str, object], key: str, choices: tuple[str, ...]) -> str:
        value = d[key]
        if not isinstance(value, str) or value not in choices:
            raise self._error(
                "service", i, key, f"{key} {value!r} is not one of {', '.join(choices)}", item=value
            )
        return value

    def _transports(self, i: int, value: object) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        seen: set[str] = set()
        for item in items:
            if (
                not isinstance(item, str)
                or (item not in TRANSPORTS)
                or (isinstance(value, list) and item == "both")
            ):
                raise self._error(
                    "service", i, "transport", f"transport {item!r} is not tcp, udp or both", item=item
                )
            seen.update(TRANSPORTS[item])
        if not seen:
            raise self._error("service", i, "transport", "transport is an empty list")
        return tuple(t for t in ("tcp", "udp") if t in seen)

    def _interface(self, i: int, value: object) -> str:
        try:
            if not isinstance(value, str):
                raise ValueError
            return str(uuid.UUID(value.strip().strip("{}")))
        except ValueError:
            raise self._error("service", i, "interface", f"interface {value!r} is not a UUID") from None

    def _ports(self, i: int, value: object) -> tuple[PortRange, ...]:
        if not isinstance(value, list):
            raise self._error(
                "service",
                i,
                "ports",
                f"ports must be an array of ports and 'lo-hi' strings, not {_type_name(value)}",
            )
        out: list[PortRange] = []
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool):
                if not 1 <= item <= 65535:
                    raise self._error("service", i, "ports", f"port {item} outside 1-65535", item=item)
                out.append(PortRange(item, item))
            elif isinstance(item, str):
                try:
                    out.append(parse_port_item(item))
                except PortSyntaxError as e:
                    raise self._error("service", i, "ports", e.message, item=item, offset=e.offset) from None
            else:
                raise self._error("service", i, "ports", f"port {item!r} is {_type_name(item)}, not a port")
        return tuple(out)

    def _targets(self, i: int, d: dict[str, object]) -> list[tuple[str | None, str | None]]:
        """(host, ip) for each rule the entry makes: one per `hosts` item, or the one `host`/`ip`."""
        t = "service"
        if "hosts" in d:
            if "host" in d or "ip" in d:
                raise self._error(t, i, "hosts", "give hosts, or host and ip, not both")
            hosts = d["hosts"]
            if not isinstance(hosts, list) or not hosts:
                raise self._error(
                    t, i, "hosts", "hosts must be a non-empty array (leave it out for every host)"
                )
            return [self._host_or_ip(i, "hosts", h) for h in hosts]
        host = self._typed(t, i, d, "host", str, None)
        if host is not None and (not host.strip() or any(c.isspace() for c in host)):
            raise self._error(t, i, "host", f"invalid host name {host!r}", item=host)
        ip = None
        written = self._typed(t, i, d, "ip", str, None)
        if written is not None:
            ip = parse_ip(written)
            if ip is None:
                raise self._error(t, i, "ip", f"invalid IP address {written!r}", item=written)
        return [(host, ip)]

    def _host_or_ip(self, i: int, key: str, value: object) -> tuple[str | None, str | None]:
        if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
            raise self._error(
                "service", i, key, f"invalid host {value!r}: a host name or IP address", item=value
            )
        ip = parse_ip(value)
        return (None, ip) if ip else (value, None)
