"""Built-in knowledge of Arcserve Backup's services: their names in PortsConfig.cfg, how they are
reached, their default ports, ONC RPC programs and DCE/RPC interfaces.

Sources are in /work/shared/reference/arcserve.md: Arcserve's "Ports Used by the Arcserve Backup Base
Product" pages, nmap-rpc (the Computer Associates program block) and Metasploit's brightstor modules
(interface UUIDs). The documentation's own spellings "caserved", "caathd" and "idbserver" are aliases.
"""

from __future__ import annotations

from dataclasses import dataclass

from portwitness.config.model import (
    FAMILY_MSRPC,
    FAMILY_ONCRPC,
    FAMILY_TCP,
    FAMILY_UDP,
    KIND_CALLBACK,
    KIND_RECONNECTION,
    KIND_SERVICE,
    Origin,
    PortRange,
    Rule,
)

# Where Windows' endpoint mapper hands out ports since Vista / Server 2008 (netsh int ipv4 show dynamicport).
WINDOWS_DYNAMIC = PortRange(49152, 65535)
CATALOG_ORIGIN = Origin("catalog")

TCP = ("tcp",)
UDP = ("udp",)
TCP_UDP = ("tcp", "udp")


def _p(*items: int | tuple[int, int]) -> tuple[PortRange, ...]:
    return tuple(PortRange(i, i) if isinstance(i, int) else PortRange(*i) for i in items)


@dataclass(frozen=True)
class Binding:
    """One default placement of a service: the ports it takes on these transports. Most services have
    one; the discovery service (41523/tcp, 41524/udp) and the management callback (one range per
    scenario) have two."""

    transports: tuple[str, ...]
    ports: tuple[PortRange, ...]
    scenario: str = ""
    family: str | None = None  # overrides the entry's family (a UDP-only binding of a TCP service)


@dataclass(frozen=True)
class CatalogEntry:
    name: str  # canonical name, the one PortsConfig.cfg uses where it has one
    family: str
    bindings: tuple[Binding, ...] = ()  # empty: no default port (dynamic, or the reconnection range)
    dynamic: bool = False  # handed out by the portmapper / endpoint mapper
    aliases: tuple[str, ...] = ()
    executable: str = ""  # "" where no source names it
    program: int | None = None
    interface: str | None = None
    kind: str = KIND_SERVICE
    tls: bool | None = None
    needed_by: str = ""
    description: str = ""
    # False: fixed by Windows or another product, so naming it in PortsConfig.cfg changes nothing.
    configurable: bool = True

    @property
    def transports(self) -> tuple[str, ...]:
        """The transports of all bindings (or TCP, what every Arcserve service without one uses)."""
        seen = {t for b in self.bindings for t in b.transports}
        return tuple(t for t in TCP_UDP if t in seen) or TCP

    @property
    def ports(self) -> tuple[PortRange, ...]:
        """Every default port of every binding, sorted."""
        return tuple(sorted({r for b in self.bindings for r in b.ports}))

    def rules(self, origin: Origin = CATALOG_ORIGIN) -> list[Rule]:
        if not self.bindings:
            if not self.dynamic:
                return []
            return [self.rule(self.transports, (), origin=origin)]
        return [
            self.rule(b.transports, b.ports, scenario=b.scenario, family=b.family, origin=origin)
            for b in self.bindings
        ]

    def rule(
        self,
        transports: tuple[str, ...],
        ports: tuple[PortRange, ...],
        *,
        dynamic: bool | None = None,
        scenario: str = "",
        family: str | None = None,
        origin: Origin = CATALOG_ORIGIN,
        host: str | None = None,
        ip: str | None = None,
    ) -> Rule:
        """A rule for this service with everything the catalog knows filled in."""
        return Rule(
            service=self.name,
            kind=self.kind,
            family=family or self.family,
            transports=transports,
            ports=ports,
            dynamic=self.dynamic if dynamic is None else dynamic,
            tls=self.tls,
            program=self.program,
            interface=self.interface,
            needed_by=self.needed_by,
            scenario=scenario,
            origin=origin,
            host=host,
            ip=ip,
        )


def _oncrpc(
    name: str, program: int, executable: str, needed_by: str, description: str, *aliases: str
) -> CatalogEntry:
    return CatalogEntry(
        name,
        FAMILY_ONCRPC,
        dynamic=True,
        aliases=aliases,
        executable=executable,
        program=program,
        needed_by=needed_by,
        description=description,
    )


def _msrpc(name: str, legacy: int, interface: str, description: str) -> CatalogEntry:
    # The engines register with the endpoint mapper; the shipped PortsConfig.cfg pins them to their
    # old fixed ports for old agents, so a catalog rule carries both: dynamic, expected on `legacy`.
    return CatalogEntry(
        name,
        FAMILY_MSRPC,
        (Binding(TCP, _p(legacy)),),
        dynamic=True,
        interface=interface,
        needed_by="GUI, backup servers, old agents",
        description=description,
    )


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "catirpc",
        FAMILY_ONCRPC,
        (Binding(TCP_UDP, _p(111)),),
        executable="catirpc.exe",
        program=100000,
        needed_by="every ONC RPC client: GUI, backup servers",
        description="CA Remote Procedure Call server, the ONC RPC portmapper; moves to another free port "
        "when another portmapper holds 111",
    ),
    _oncrpc("cadiscovd", 395649, "cadiscovd.exe", "GUI", "domain service: users, equivalences, hosts"),
    _oncrpc("caservd", 395644, "caserved.exe", "GUI", "service controller", "caserved"),
    _oncrpc(
        "caauthd", 395648, "caauthd.exe", "GUI, backup servers", "authentication (caroot login)", "caathd"
    ),
    _oncrpc("lqserver", 395645, "LQServer.exe", "job queue clients", "job queue"),
    _oncrpc(
        "camediad", 395646, "Mediasvr.exe", "tape engine clients", "tape engine proxy", "mediasvr", "mediasrv"
    ),
    _oncrpc("ldbserver", 395647, "LDBServer.exe", "database clients", "database proxy", "idbserver"),
    _oncrpc("caloggerd", 395650, "caloggerd", "", "logger; no PortsConfig.cfg entry documented"),
    CatalogEntry(
        "reconnection",
        FAMILY_TCP,
        executable="carunjob.exe",
        kind=KIND_RECONNECTION,
        needed_by="agents (backup server side)",
        description="port range of the backup server's side when a connection with an agent is "
        "re-established after a network failure; no default",
    ),
    _msrpc("tapeengine", 6502, "62b93df0-8b02-11ce-876c-00805f842837", "tape engine"),
    _msrpc("jobengine", 6503, "dc246bf0-7a7a-11ce-9f88-00805fe43838", "job (message) engine"),
    _msrpc("databaseengine", 6504, "506b1890-14c8-11d1-bbc3-00805fa6962e", "database engine"),
    CatalogEntry(
        "epm",
        FAMILY_MSRPC,
        (Binding(TCP_UDP, _p(135)),),
        interface="e1af8308-5d1f-11c9-91a4-08002b14a0fa",
        needed_by="every MSRPC client",
        description="Microsoft endpoint mapper",
        configurable=False,
    ),
    CatalogEntry(
        "netbios-smb",
        FAMILY_TCP,
        (Binding(TCP_UDP, _p((137, 139), 445)),),
        needed_by="MSRPC over named pipes (ncacn_np)",
        description="Windows NetBIOS and SMB, carrying MSRPC named pipes",
        configurable=False,
    ),
    CatalogEntry(
        "universal-agent",
        FAMILY_TCP,
        (Binding(TCP_UDP, _p(6050)),),
        needed_by="backup servers (Windows client agent; UDP for browsing)",
        description="Universal Agent",
    ),
    CatalogEntry(
        "unix-agent",
        FAMILY_TCP,
        (Binding(TCP_UDP, _p(6051)),),
        needed_by="backup servers (UNIX/Linux/Mac agent; UDP for browsing)",
        description="UNIX/Linux/Mac common agent; set in agent.cfg and CAPortConfig.cfg, both ends must match",
    ),
    CatalogEntry(
        "discovery",
        FAMILY_TCP,
        (Binding(TCP, _p(41523)), Binding(UDP, _p(41524), family=FAMILY_UDP)),
        needed_by="backup servers",
        description="discovery service",
    ),
    CatalogEntry(
        "sql-agent",
        FAMILY_TCP,
        (Binding(TCP, _p(6070)),),
        needed_by="backup servers",
        description="Agent for Microsoft SQL Server",
    ),
    CatalogEntry(
        "ndmp",
        FAMILY_TCP,
        (Binding(TCP, _p(10000)),),
        needed_by="backup servers (NDMP NAS option)",
        description="NDMP; must match the filer's setting",
    ),
    CatalogEntry(
        "mgmt-ssl",
        FAMILY_TCP,
        (Binding(TCP, _p(7099)),),
        executable="casmgmtsvc.exe",
        tls=True,
        needed_by="command-line utilities",
        description="CA Management Service, SSL port (sslport)",
    ),
    CatalogEntry(
        "mgmt-plain",
        FAMILY_TCP,
        (Binding(TCP, _p(2099)),),
        executable="casmgmtsvc.exe",
        tls=False,
        needed_by="command-line utilities",
        description="CA Management Service, non-SSL port (nonsslport)",
    ),
    CatalogEntry(
        "mgmt-callback",
        FAMILY_TCP,
        (Binding(TCP, _p((20000, 20100)), "remote"), Binding(TCP, _p(7199), "client")),
        executable="casmgmtsvc.exe",
        kind=KIND_CALLBACK,
        needed_by="command-line utilities (the service calls them back)",
        description="CA Management Service callback ranges: remote services (portrange) and "
        "client/server (clntportrange)",
    ),
)

_BY_NAME: dict[str, CatalogEntry] = {}
for _e in CATALOG:
    for _n in (_e.name, *_e.aliases):
        _BY_NAME[_n.casefold()] = _e
_BY_PROGRAM = {e.program: e for e in CATALOG if e.program is not None}
_BY_INTERFACE = {e.interface: e for e in CATALOG if e.interface is not None}


def lookup(name: str) -> CatalogEntry | None:
    """By canonical name, alias or executable name (`caserved.exe`), ignoring case."""
    key = name.strip().casefold()
    if key.endswith(".exe"):
        key = key[:-4]
    return _BY_NAME.get(key)


def closest(name: str) -> str | None:
    """The catalog name a misspelt service name most likely meant (None: nothing close)."""
    import difflib

    key = name.strip().casefold()
    if key.endswith(".exe"):
        key = key[:-4]
    match = difflib.get_close_matches(key, list(_BY_NAME), n=1, cutoff=0.75)
    return _BY_NAME[match[0]].name if match else None


def unknown_service(written: str) -> str:
    """The warning for a service name the catalog does not know, with the name it likely meant."""
    guess = closest(written)
    hint = f" \u2014 did you mean {guess!r}?" if guess else ""
    return f"unknown service {written!r}{hint}"


def by_program(program: int) -> CatalogEntry | None:
    return _BY_PROGRAM.get(program)


def by_interface(uuid: str) -> CatalogEntry | None:
    return _BY_INTERFACE.get(uuid.strip().strip("{}").lower())


def catalog_rules() -> list[Rule]:
    """Every default the catalog knows, as rules with origin "catalog"."""
    return [r for e in CATALOG for r in e.rules()]
