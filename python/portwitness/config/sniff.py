"""What a configuration file is, told by its content: Arcserve's PortsConfig.cfg, the CA Management
Service's settings, a TOML policy, or none of them. A file given to the wrong option would otherwise be
read as a stream of warnings and an audit against nothing; `expect` refuses it with one line naming
the file, what it looks like and the option it belongs to.

Every test is a linear scan of the lines (no regular expression that can backtrack), and only the
first `MAX_SNIFF_LINES` lines are looked at."""

from __future__ import annotations

import os
from dataclasses import dataclass

from portwitness.config.model import ConfigError
from portwitness.config.source import read_source

PORTSCONFIG = "portsconfig"
MGMT = "mgmt"
POLICY = "policy"
EMPTY = "empty"  # comments and blank lines only: fits every option
UNKNOWN = "unknown"

# The option each kind of file belongs to, and how messages name the kind.
OPTION = {PORTSCONFIG: "--config", MGMT: "--mgmt-config", POLICY: "--policy"}
NAMED = {
    PORTSCONFIG: "Arcserve's PortsConfig.cfg",
    MGMT: "the CA Management Service's settings",
    POLICY: "a TOML port policy",
}

MAX_SNIFF_LINES = 4096
_MGMT_KEYS = frozenset(
    {"sslport", "nonsslport", "usessl", "portrange", "callbackportrange", "cbportrange", "clntportrange"}
)
_POLICY_TABLES = frozenset({"[[service]]", "[policy]", "[policy.switches]"})


@dataclass(frozen=True)
class Sniffed:
    kind: str
    line: int = 0  # the line that told (0: none)
    text: str = ""  # that line, stripped

    def why(self) -> str:
        return repr(self.text[:60]) if self.line else "its content"


def _mgmt_key(content: str) -> bool:
    """`key=value`, `key: value` or `scenario.key=value` with a management-service key."""
    for sep in ("=", ":"):
        at = content.find(sep)
        if at > 0:
            key = content[:at].strip().casefold()
            if "." in key:
                key = key.rsplit(".", 1)[1]
            return key in _MGMT_KEYS
    return False


def _looks_like_ports(token: str) -> bool:
    return bool(token) and all(c.isascii() and (c.isdigit() or c in "-;, ") for c in token)


def _service_line(tokens: list[str]) -> bool:
    """A PortsConfig.cfg entry: a name, then optionally ports, a host name and an address."""
    if not 1 <= len(tokens) <= 4:
        return False
    name = tokens[0]
    if not (name[0].isascii() and name[0].isalpha()):
        return False
    if not all(c.isascii() and (c.isalnum() or c in "._-") for c in name):
        return False
    # An entry without ports names its host after the service; a catalog name tells that apart
    # from two words of prose, which the caller checks.
    return len(tokens) == 1 or _looks_like_ports(tokens[1])


def sniff_text(text: str) -> Sniffed:
    """The kind of configuration `text` holds."""
    from portwitness.config.catalog import lookup

    if "\x00" in text[:65536]:
        return Sniffed(UNKNOWN, 0, "binary content")
    first_mgmt: tuple[int, str] | None = None
    first_catalog: tuple[int, str] | None = None
    first_other: tuple[int, str] | None = None
    mgmt = catalog = shaped = other = 0
    for n, raw in enumerate(text.splitlines()[:MAX_SNIFF_LINES], start=1):
        content = raw.strip()
        if not content or content.startswith(("#", ";", "!", "//")):
            continue
        squeezed = "".join(content.split())
        if squeezed.casefold() in _POLICY_TABLES or squeezed.startswith("[[service]]"):
            return Sniffed(POLICY, n, content)
        if squeezed.casefold() in ("[remote]", "[client]") or _mgmt_key(content):
            mgmt += 1
            first_mgmt = first_mgmt or (n, content)
            continue
        tokens = content.split()
        if "=" in tokens[0] or (len(tokens) > 1 and tokens[1].startswith("=")):
            continue  # a PortsConfig.cfg switch (RPCServices=...) or an unknown key: says little
        if _service_line(tokens):
            shaped += 1
            if lookup(tokens[0]) is not None:
                catalog += 1
                first_catalog = first_catalog or (n, content)
                continue
        else:
            other += 1
        first_other = first_other or (n, content)
    if mgmt and mgmt >= catalog:
        return Sniffed(MGMT, *first_mgmt) if first_mgmt else Sniffed(MGMT)
    if catalog:
        return Sniffed(PORTSCONFIG, *first_catalog) if first_catalog else Sniffed(PORTSCONFIG)
    if shaped and shaped >= other:
        return Sniffed(PORTSCONFIG, *first_other) if first_other else Sniffed(PORTSCONFIG)
    if other:
        return Sniffed(UNKNOWN, *first_other) if first_other else Sniffed(UNKNOWN)
    return Sniffed(EMPTY)


def sniff(path: str | os.PathLike[str]) -> Sniffed:
    _, text = read_source(path, None)
    return sniff_text(text)


def expect(path: str | os.PathLike[str], kind: str) -> None:
    """Raises ConfigError (exit 2) when the file given as `kind` is another kind of file, or none."""
    got = sniff(path)
    if got.kind in (kind, EMPTY):
        return
    name = os.fspath(path)
    if got.kind == UNKNOWN:
        raise ConfigError(
            name,
            got.line,
            0,
            f"is not {NAMED[kind]} ({OPTION[kind]}), nor any configuration portwitness reads "
            f"({'its content' if not got.line else 'line ' + repr(got.text[:60])} fits none of PortsConfig.cfg, the management settings or a TOML policy)",
        )
    raise ConfigError(
        name,
        got.line,
        0,
        f"looks like {NAMED[got.kind]} ({got.why()}), not {NAMED[kind]}: "
        f"give it to {OPTION[got.kind]}, not {OPTION[kind]}",
    )
