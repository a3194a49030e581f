"""The one model every configuration form is read into: rules saying which service may use which
ports, on which hosts, over which transport, with or without TLS. PortsConfig.cfg, the management
service's settings, TOML policies and the built-in catalog all become `Rule`s of a `Policy`."""

from __future__ import annotations

from dataclasses import dataclass, field

from portwitness.errors import UsageError

# What a rule is about.
KIND_SERVICE = "service"  # clients connect to the host on these ports
KIND_CALLBACK = "callback"  # the server connects back to its clients on these ports
KIND_RECONNECTION = "reconnection"  # the backup server's side of a re-established agent connection

# How the service is reached.
FAMILY_ONCRPC = "oncrpc"
FAMILY_MSRPC = "msrpc"
FAMILY_TCP = "tcp"
FAMILY_UDP = "udp"


class ConfigError(UsageError):
    """A configuration file that cannot be used: names the file, line and column."""

    def __init__(self, file: str, line: int, column: int, message: str) -> None:
        self.file, self.line, self.column, self.message = file, line, column, message
        super().__init__(f"{file}:{line}:{column}: {message}")


@dataclass(frozen=True)
class ConfigWarning:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True, order=True)
class PortRange:
    lo: int
    hi: int

    def __post_init__(self) -> None:
        if not (1 <= self.lo <= self.hi <= 65535):
            raise ValueError(f"bad port range {self.lo}-{self.hi}")

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.lo <= port <= self.hi

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1

    def __str__(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


@dataclass(frozen=True)
class Origin:
    """Where a rule came from: a file and line, or the built-in catalog (line 0)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Rule:
    service: str  # canonical lower-case name: "caservd", "tapeengine", "mgmt", "nfs", ...
    kind: str = KIND_SERVICE
    family: str = FAMILY_TCP
    transports: tuple[str, ...] = ("tcp",)  # "tcp" and/or "udp"
    ports: tuple[PortRange, ...] = ()  # empty with dynamic=True: handed out by a portmapper / EPM
    dynamic: bool = False
    host: str | None = None  # host name the rule is bound to (PortsConfig.cfg's HostName)
    ip: str | None = None  # IP address the rule is bound to; None with host None: every host
    tls: bool | None = None  # True: TLS required; False: plaintext expected; None: either
    program: int | None = None  # ONC RPC program number
    interface: str | None = None  # DCE/RPC interface UUID (lower case)
    needed_by: str = ""  # who needs the port open: "GUI", "server-to-server", "agents", ...
    scenario: str = ""  # management service scenario ("remote" | "client") or a policy's label
    ambiguous: bool = False  # the `a|b` reading of the management settings may mean a range
    origin: Origin = Origin("catalog")
    # Addresses a generic rule (no host, no ip) does not govern: hosts that have their own line for
    # the same service (set by the audit once host names are matched to addresses).
    exclude_ips: tuple[str, ...] = ()

    def covers(self, port: int) -> bool:
        return any(port in r for r in self.ports)

    @property
    def ports_text(self) -> str:
        if not self.ports:
            return "dynamic" if self.dynamic else ""
        return ";".join(str(r) for r in self.ports)


@dataclass
class Policy:
    """Rules in priority order for attribution: host-specific before general, files before catalog."""

    rules: list[Rule] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)
    # PortsConfig.cfg `KEY=VALUE` switch lines, as written.
    switches: dict[str, str] = field(default_factory=dict)
    # PortsConfig.cfg's RPCServices key: every Arcserve RPC service on system-assigned ports.
    rpc_services_dynamic: bool = False
    # The management service's usessl (None: no settings given).
    usessl: bool | None = None
    files: list[str] = field(default_factory=list)

    def extend(self, other: Policy) -> Policy:
        self.rules.extend(other.rules)
        self.warnings.extend(other.warnings)
        self.switches.update(other.switches)
        self.rpc_services_dynamic |= other.rpc_services_dynamic
        if other.usessl is not None:
            self.usessl = other.usessl
        self.files.extend(other.files)
        return self

    def prioritise(self) -> Policy:
        """Host-specific rules before general ones; a stable sort, so each group keeps its file order."""
        self.rules.sort(key=lambda r: r.host is None and r.ip is None)
        return self
