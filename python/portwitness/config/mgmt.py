"""The CA Management Service's (casmgmtsvc.exe) settings: a Java-properties-style file of `sslport`,
`nonsslport`, `usessl` and the callback ranges, for two scenarios: "remote" (remote services
communication, callback range `portrange`, default 20000-20100) and "client" (Arcserve server and client
server communication, `clntportrange`, default 7199). The scenarios are told apart by `[remote]` /
`[client]` sections or by `remote.` / `client.` key prefixes; an unmarked key is the remote scenario's,
except `clntportrange`, which only the client scenario has."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace

from portwitness.config.catalog import lookup
from portwitness.config.model import ConfigError, ConfigWarning, Origin, Policy, PortRange, Rule
from portwitness.config.ports import PortSyntaxError, parse_port_item, parse_port_list
from portwitness.config.portsconfig import FALSE_WORDS, TRUE_WORDS
from portwitness.config.source import read_source

SCENARIOS = ("remote", "client")
CALLBACK_KEYS = frozenset({"portrange", "callbackportrange", "cbportrange", "clntportrange"})
KEYS = frozenset({"sslport", "nonsslport", "usessl"}) | CALLBACK_KEYS
DEFAULT_SSLPORT = 7099
DEFAULT_NONSSLPORT = 2099
DEFAULT_CALLBACK = {"remote": (PortRange(20000, 20100),), "client": (PortRange(7199, 7199),)}

SERVICE_SSL = "mgmt-ssl"
SERVICE_PLAIN = "mgmt-plain"
SERVICE_CALLBACK = "mgmt-callback"

_IGNORED = "<ignored>"  # the section being read is unknown: its keys are skipped
_PAIR = re.compile(r"\s*([0-9]+)\s*\|\s*([0-9]+)\s*")


def _without_comment(line: str) -> str:
    """The line before a `#` that follows whitespace, and that whitespace (a linear scan: the regex
    `\\s+#.*$` it replaces is quadratic on long runs of blanks)."""
    for i in range(1, len(line)):
        if line[i] == "#" and line[i - 1].isspace():
            return line[:i].rstrip()
    return line


@dataclass
class _Setting:
    value: int | bool | tuple[PortRange, ...]
    line: int
    ambiguous: bool = False


@dataclass
class _Scenario:
    settings: dict[str, _Setting] = field(default_factory=dict)

    def port(self, slot: str, default: int) -> tuple[int, int]:
        """The value and its line; line 0 for the default."""
        s = self.settings.get(slot)
        return (s.value, s.line) if s and isinstance(s.value, int) else (default, 0)

    @property
    def usessl(self) -> bool | None:
        s = self.settings.get("usessl")
        return s.value if s and isinstance(s.value, bool) else None

    def callback(self, default: tuple[PortRange, ...]) -> _Setting:
        return self.settings.get("callback") or _Setting(default, 0)


def read_mgmt(
    path: str | os.PathLike[str], *, text: str | None = None, pipe_pair_is_range: bool = False
) -> Policy:
    """Read the management service's settings. A bare `a|b` callback value is read as the two ports a
    and b, flagged ambiguous with a warning; `pipe_pair_is_range=True` reads it as the range a..b."""
    name, body = read_source(path, text)
    return _Reader(name, pipe_pair_is_range).read(body)


class _Reader:
    def __init__(self, file: str, pipe_pair_is_range: bool) -> None:
        self.file = file
        self.pipe_pair_is_range = pipe_pair_is_range
        self.policy = Policy(files=[file])
        self.scenarios = {s: _Scenario() for s in SCENARIOS}

    def _warn(self, line: int, column: int, message: str) -> None:
        self.policy.warnings.append(ConfigWarning(self.file, line, column, message))

    def _error(self, line: int, column: int, message: str) -> ConfigError:
        return ConfigError(self.file, line, column, message)

    def read(self, text: str) -> Policy:
        section: str | None = None
        for lineno, raw in enumerate(text.splitlines(), 1):
            stripped = raw.strip()
            if not stripped or stripped[0] in "#!":
                continue
            line = _without_comment(raw)
            if stripped.startswith("["):
                section = self._section(lineno, line)
            else:
                self._key_value(lineno, line, section)
        self._rules()
        return self.policy

    def _section(self, lineno: int, line: str) -> str:
        col = len(line) - len(line.lstrip()) + 1
        m = re.fullmatch(r"\s*\[\s*([^\]\s]*)\s*\]\s*", line)
        if not m:
            raise self._error(lineno, col, "bad section header: expected [remote] or [client]")
        name = m.group(1).casefold()
        if name in SCENARIOS:
            return name
        self._warn(
            lineno,
            col,
            f"unknown section [{m.group(1)}]: its keys are ignored (expected [remote] or [client])",
        )
        return _IGNORED

    def _key_value(self, lineno: int, line: str, section: str | None) -> None:
        m = re.match(r"\s*([^\s=:]+)\s*", line)
        if m is None:  # a line of only '=' or ':'
            raise self._error(lineno, len(line) - len(line.lstrip()) + 1, "setting without a key")
        written, key_col, pos = m.group(1), m.start(1) + 1, m.end()
        if pos < len(line) and line[pos] in "=:":
            pos += 1
            pos += len(line[pos:]) - len(line[pos:].lstrip())
        value, value_col = line[pos:].rstrip(), pos + 1

        key = written.casefold()
        prefix, dot, base = key.partition(".")
        if dot and prefix in SCENARIOS:
            scenario, key = prefix, base
        elif section == _IGNORED:
            return
        else:
            scenario = section or ("client" if key == "clntportrange" else "remote")
        if key not in KEYS:
            self._warn(lineno, key_col, f"unknown key {written}: ignored")
            return
        if not value:
            raise self._error(lineno, value_col, f"{written} has no value")

        slot = "callback" if key in CALLBACK_KEYS else key
        settings = self.scenarios[scenario].settings
        if slot in settings:
            self._warn(
                lineno,
                key_col,
                f"{written} sets the {scenario} scenario's {slot} again (first at line {settings[slot].line}); "
                "the last counts",
            )
        if slot == "usessl":
            settings[slot] = _Setting(self._bool(lineno, value_col, written, value), lineno)
        elif slot == "callback":
            settings[slot] = self._ranges(lineno, value_col, written, value)
        else:
            settings[slot] = _Setting(self._port(lineno, value_col, written, value), lineno)

    def _bool(self, lineno: int, col: int, key: str, value: str) -> bool:
        word = value.casefold()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise self._error(lineno, col, f"{key} must be true or false (yes/no, 1/0), not {value!r}")

    def _port(self, lineno: int, col: int, key: str, value: str) -> int:
        try:
            r = parse_port_item(value)
        except PortSyntaxError as e:
            raise self._error(lineno, col + e.offset, e.message) from None
        if r.lo != r.hi:
            raise self._error(lineno, col, f"{key} takes one port, not the range {r}")
        return r.lo

    def _ranges(self, lineno: int, col: int, key: str, value: str) -> _Setting:
        try:
            ranges = tuple(r for _, r in parse_port_list(value, "|"))
        except PortSyntaxError as e:
            raise self._error(lineno, col + e.offset, e.message) from None
        pair = _PAIR.fullmatch(value)
        if not pair:
            return _Setting(ranges, lineno)
        a, b = ranges[0].lo, ranges[1].lo
        if self.pipe_pair_is_range:
            if b < a:
                raise self._error(
                    lineno, col + pair.start(1), f"inverted range {a}|{b}: the low port comes first"
                )
            return _Setting((PortRange(a, b),), lineno)
        # Only a pair whose range reading is possible is ambiguous.
        if a < b:
            self._warn(
                lineno,
                col,
                f"{key}={value} read as the two ports {a} and {b}; it may mean the range {a}-{b} "
                "(pipe_pair_is_range reads it so)",
            )
        return _Setting(ranges, lineno, ambiguous=a < b)

    def _rules(self) -> None:
        for name in SCENARIOS:
            sc = self.scenarios[name]
            ssl, ssl_line = sc.port("sslport", DEFAULT_SSLPORT)
            plain, plain_line = sc.port("nonsslport", DEFAULT_NONSSLPORT)
            callback = sc.callback(DEFAULT_CALLBACK[name])
            assert isinstance(callback.value, tuple)
            if ssl == plain:
                self._warn(
                    max(ssl_line, plain_line),
                    1,
                    f"sslport and nonsslport of the {name} scenario are both {ssl}",
                )
            usessl = sc.usessl is not False
            self.policy.rules += [
                replace(
                    _rule(SERVICE_SSL, (PortRange(ssl, ssl),), name, Origin(self.file, ssl_line)),
                    tls=True if usessl else None,
                ),
                _rule(SERVICE_PLAIN, (PortRange(plain, plain),), name, Origin(self.file, plain_line)),
                replace(
                    _rule(SERVICE_CALLBACK, callback.value, name, Origin(self.file, callback.line)),
                    ambiguous=callback.ambiguous,
                ),
            ]
        # One usessl for the policy: the remote scenario's when it is written, else the client's.
        written = [u for u in (self.scenarios[n].usessl for n in SCENARIOS) if u is not None]
        self.policy.usessl = written[0] if written else True


def _rule(service: str, ports: tuple[PortRange, ...], scenario: str, origin: Origin) -> Rule:
    entry = lookup(service)
    assert entry is not None, service
    return entry.rule(("tcp",), ports, dynamic=False, scenario=scenario, origin=origin)
