"""Interop: real, unmodified programs from Debian's packages talk to each other on a private loopback
while tcpdump captures them, and portwitness's reading of the capture is held against what the
programs themselves printed.

- ONC RPC: rpcbind (in the foreground, remote calls on) with programs that a small server of ours
  (tests/interop_oncrpc.py) registers through real SET calls; clients `rpcinfo -p`, `-s`, `-l`, `-T
  tcp|udp|tcp6` for registered and unregistered programs and versions, and our CALLIT and GETPORT,
  the procedures rpcinfo never sends.
- MSRPC: Samba's samba-dcerpcd (the endpoint mapper on 135 and the RPC services on dynamic ports)
  queried by impacket's rpcdump.py and by Samba's rpcclient, which then calls the services.
- TLS: `openssl s_server` on 7099 with a throwaway certificate, `openssl s_client` with TLS 1.2 and
  1.3 over IPv4 and IPv6, with and without SNI; plaintext on 2099 and on 7099; a refused connection.
- SMTP STARTTLS: `openssl s_client -starttls smtp` against a minimal SMTP preamble that hands the
  connection to OpenSSL (Python's `ssl`) once STARTTLS is accepted.

Where portwitness disagreed with a real program, portwitness was changed and the test asserts what
the program says: rpcbind answers GETADDR/GETPORT for an unregistered version with another version's
port (withdrawn when the program's PROG_MISMATCH or a DUMP contradicts it); its DUMP over IPv4 lists
tcp6-only programs at `::.p1.p2` (not put on the IPv4 address); it answers CALLIT from its forwarding
socket (the call's flow is answered, the answers' flow is turned to the caller as client).

Everything runs as root inside fresh network, mount and PID namespaces (tests/interop_peers.py), so
only `lo` exists there and the host's own services are neither seen nor disturbed. The captures are
kept in pytest's temporary directory (`/tmp/pytest-of-root/pytest-N/interop0/`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from interop_peers import Loopback, capture, serve, wait_for

import portwitness as pw
from conftest import SAMBA_DCERPCD
from portwitness.rpcinfo import msrpc_endpoints, rpcinfo

pytestmark = pytest.mark.interop  # implies root and every peer (conftest.INTEROP)

TESTS = Path(__file__).resolve().parent


def rpcdump_script() -> str | None:
    """impacket's rpcdump.py (the test extra): beside this Python's executable, else on PATH."""
    beside = Path(sys.executable).with_name("rpcdump.py")
    return str(beside) if beside.exists() else shutil.which("rpcdump.py")


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    with Loopback(tmp_path_factory.mktemp("interop")) as lo:
        yield lo


def flows_to(cap, server_ip: str, transport: str, port: int) -> pl.DataFrame:
    return cap.flows.filter(server_ip=server_ip, transport=transport, server_port=port)


# --- ONC RPC: rpcbind and rpcinfo ------------------------------------------------------------------

ONCRPC = [sys.executable, str(TESTS / "interop_oncrpc.py")]
# program:version:transports:how our server registers it (portmap v2 SET or rpcbind v3/v4 SET).
REGISTER = ["395644:1:tcp+udp:pmap2", "395648:1:tcp:rpcb4", "395649:1:udp:rpcb3", "395649:2:tcp:pmap2"]
REGISTER_TCP6 = ["395646:1:tcp6:rpcb4"]  # on [::] only (IPV6_V6ONLY), as `::.p1.p2`
UNREGISTERED = 395650  # caloggerd: never registered
TCP_ONLY = 395648  # registered on TCP only: asked for on UDP too
TWO_VERSIONS = 395649  # v1 on UDP, v2 on TCP: asked for v3, and for v1 on TCP
SET_SOURCE = {"pmap2": "portmap.set", "rpcb3": "rpcbind.set", "rpcb4": "rpcbind.set"}


@dataclass
class OncRpc:
    regs: list[dict]  # what our server registered
    regs6: list[dict]  # what the second server registered, later, on tcp6
    printed: set[tuple]  # what `rpcinfo -p 127.0.0.1` printed: (program, version, proto, port)
    printed6: set[tuple]  # the same, once the tcp6 program was registered too
    runs: dict[str, subprocess.CompletedProcess]
    said: dict[str, list[dict]]  # our CALLIT and GETPORT clients' JSON lines
    caps: dict[str, pw.Capture]  # register, clients, versions, unregister, tcp6
    pcaps: dict[str, Path]


def parse_rpcinfo_p(out: str) -> set[tuple]:
    rows = re.findall(r"^\s*(\d+)\s+(\d+)\s+(tcp|udp)\s+(\d+)", out, re.MULTILINE)
    return {(int(p), int(v), proto, int(port)) for p, v, proto, port in rows}


def json_lines(run: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in run.stdout.splitlines()]


@pytest.fixture(scope="module")
def oncrpc(loopback) -> OncRpc:
    d = loopback.workdir
    phases = ("register", "clients", "versions", "unregister", "tcp6")
    pcaps = {k: d / f"oncrpc-{k}.pcap" for k in phases}
    runs: dict[str, subprocess.CompletedProcess] = {}
    run = loopback.run

    def rpcinfo_T(transport: str, host: str, prog: int, vers: int) -> None:
        runs[f"T {transport} {prog} {vers}"] = run(["rpcinfo", "-T", transport, host, str(prog), str(vers)])

    with ExitStack() as running:
        # -r: Debian's rpcbind answers CALLIT/INDIRECT only with remote calls turned on.
        running.enter_context(serve(loopback, "rpcbind", ["rpcbind", "-f", "-r"]))
        loopback.wait_listening(111, "tcp")
        loopback.wait_listening(111, "udp")
        with capture(loopback, pcaps["register"], "udp port 111"):
            server = running.enter_context(serve(loopback, "oncrpc-server", [*ONCRPC, "serve", *REGISTER]))
            regs = json.loads(server.wait_output(r"^\[.*\]$").group(0))
        ports = " or ".join(f"port {r['port']}" for r in regs)
        # All of UDP: rpcbind answers CALLIT from a port of its own choosing.
        with capture(loopback, pcaps["clients"], f"udp or (tcp port 111) or (tcp and ({ports}))"):
            runs["p"] = run(["rpcinfo", "-p", "127.0.0.1"], check=True)
            runs["s"] = run(["rpcinfo", "-s", "127.0.0.1"], check=True)
            runs["l"] = run(["rpcinfo", "-l", "127.0.0.1", "395644", "1"], check=True)
            for r in regs:
                rpcinfo_T(r["transport"], "127.0.0.1", r["program"], r["version"])
            rpcinfo_T("tcp", "127.0.0.1", UNREGISTERED, 1)
            rpcinfo_T("udp", "127.0.0.1", UNREGISTERED, 1)
            rpcinfo_T("udp", "127.0.0.1", TCP_ONLY, 1)
            # A connection that says nothing, to a port only the portmapper's answers name.
            tcp_only = next(r["port"] for r in regs if r["program"] == TCP_ONLY)
            connect = f"import socket; socket.create_connection(('127.0.0.1', {tcp_only}), 5).close()"
            runs["connect"] = run([sys.executable, "-c", connect], check=True)
            runs["callit"] = run([*ONCRPC, "callit", "395644", "1"], check=True)
        with capture(loopback, pcaps["versions"], f"udp or (tcp port 111) or (tcp and ({ports}))"):
            rpcinfo_T("tcp", "127.0.0.1", TWO_VERSIONS, 3)
            runs["getport v3 tcp"] = run([*ONCRPC, "getport", str(TWO_VERSIONS), "3", "tcp"], check=True)
            runs["getport v1 tcp"] = run([*ONCRPC, "getport", str(TWO_VERSIONS), "1", "tcp"], check=True)
        with capture(loopback, pcaps["unregister"], "udp port 111"):
            status = server.stop()
        assert status == 0, f"our ONC RPC server failed to unregister:\n{server.tail()}"

        server6 = running.enter_context(serve(loopback, "oncrpc-server6", [*ONCRPC, "serve", *REGISTER_TCP6]))
        regs6 = json.loads(server6.wait_output(r"^\[.*\]$").group(0))
        with capture(loopback, pcaps["tcp6"], f"port 111 or tcp port {regs6[0]['port']}"):
            runs["p6"] = run(["rpcinfo", "-p", "127.0.0.1"], check=True)
            runs["dump6"] = run(["rpcinfo", "127.0.0.1"], check=True)
            rpcinfo_T("tcp6", "::1", regs6[0]["program"], regs6[0]["version"])
            # The same port on 127.0.0.1: nothing listens there.
            connect = f"import socket; socket.create_connection(('127.0.0.1', {regs6[0]['port']}), 5)"
            runs["connect6 on 127.0.0.1"] = run([sys.executable, "-c", connect])
    return OncRpc(
        regs=regs,
        regs6=regs6,
        printed=parse_rpcinfo_p(runs["p"].stdout),
        printed6=parse_rpcinfo_p(runs["p6"].stdout),
        runs=runs,
        said={k: json_lines(runs[k]) for k in ("callit", "getport v3 tcp", "getport v1 tcp")},
        caps={k: pw.decode(path) for k, path in pcaps.items()},
        pcaps=pcaps,
    )


def view_rows(view: pl.DataFrame, server: str) -> set[tuple]:
    return {
        (r["program"], r["version"], r["proto"], r["port"])
        for r in view.filter(server=server).iter_rows(named=True)
    }


def test_rpcinfo_clients_did_what_we_meant(oncrpc):
    """The programs themselves: everything registered is printed by `rpcinfo -p` and answers a NULL
    call through `rpcinfo -T`; the unregistered program and the TCP-only one on UDP are refused."""
    registered = {(r["program"], r["version"], r["transport"], r["port"]) for r in oncrpc.regs}
    assert registered <= oncrpc.printed
    assert {p for p, *_ in oncrpc.printed - registered} == {100000}
    for r in oncrpc.regs:
        run = oncrpc.runs[f"T {r['transport']} {r['program']} {r['version']}"]
        assert run.returncode == 0 and "ready and waiting" in run.stdout, run
    for key in (f"T tcp {UNREGISTERED} 1", f"T udp {UNREGISTERED} 1", f"T udp {TCP_ONLY} 1"):
        run = oncrpc.runs[key]
        assert run.returncode == 1 and "Program not registered" in run.stderr, run


def test_rpcinfo_view_equals_rpcinfo_p(oncrpc):
    """portwitness's `rpcinfo` view of the clients' capture is what `rpcinfo -p 127.0.0.1` printed."""
    view = rpcinfo(oncrpc.caps["clients"])
    assert set(view["server"]) == {"127.0.0.1"}, f"{oncrpc.pcaps['clients']}: {view}"
    got = view_rows(view, "127.0.0.1")
    assert got == oncrpc.printed, (
        f"{oncrpc.pcaps['clients']}: extra {got - oncrpc.printed}, missing {oncrpc.printed - got}"
    )


def test_nothing_learned_for_unregistered_programs(oncrpc):
    m = oncrpc.caps["clients"].mappings
    assert m.filter(rpc_program=UNREGISTERED, registered=True).is_empty()
    negative = m.filter(rpc_program=UNREGISTERED).select("transport", "port", "registered").unique()
    assert sorted(negative.rows()) == [("tcp", None, False), ("udp", None, False)]
    tcp_only = m.filter(rpc_program=TCP_ONLY, transport="udp").select("port", "registered").unique()
    assert tcp_only.rows() == [(None, False)]


def test_learned_ports_are_attributed(oncrpc):
    """Every flow to a registered port — rpcinfo's NULL calls and a connection that sends nothing —
    is the registered program's, and rpcinfo's NULL calls were answered."""
    cap = oncrpc.caps["clients"]
    for r in oncrpc.regs:
        flows = flows_to(cap, "127.0.0.1", r["transport"], r["port"])
        assert not flows.is_empty(), r
        attributed = flows.select("app", "rpc_program", "rpc_version").unique().rows()
        assert attributed == [("oncrpc", r["program"], r["version"])], (r, flows)
        nulls = cap.rpc_calls.filter(server_port=r["port"], transport=r["transport"], procedure=0)
        assert nulls.select("program", "version", "reply", "accept_stat").unique().rows() == [
            (r["program"], r["version"], "accepted", 0)
        ]
    port = next(r["port"] for r in oncrpc.regs if r["program"] == TCP_ONLY)
    silent = flows_to(cap, "127.0.0.1", "tcp", port).filter(payload_c2s=0, payload_s2c=0)
    assert silent.select("orientation", "app", "rpc_program").rows() == [("syn", "oncrpc", TCP_ONLY)]


def test_registrations_and_unregistrations_on_the_wire(oncrpc):
    """The server's SET calls (portmap v2 and rpcbind v3/v4), as rpcbind accepted them, and its UNSETs."""
    expected = {
        (r["program"], r["version"], r["transport"], r["port"], SET_SOURCE[r["how"]]) for r in oncrpc.regs
    }
    sets = oncrpc.caps["register"].mappings.filter(pl.col("source").str.ends_with(".set"))
    got = {
        (m["rpc_program"], m["rpc_version"], m["transport"], m["port"], m["source"])
        for m in sets.iter_rows(named=True)
    }
    assert got == expected and sets["registered"].all()
    calls = oncrpc.caps["register"].rpc_calls
    assert calls.select("program", "procedure", "auth_machine", "reply", "accept_stat").unique().rows() == [
        (100000, 1, "portwitness-interop", "accepted", 0)
    ]
    unsets = oncrpc.caps["unregister"].mappings.filter(pl.col("source").str.ends_with(".unset"))
    assert {(m["rpc_program"], m["rpc_version"]) for m in unsets.iter_rows(named=True)} == {
        (r["program"], r["version"]) for r in oncrpc.regs
    }
    assert not unsets["registered"].any()


def test_callit_answered_from_another_port(oncrpc):
    """rpcbind forwards CALLIT to the program and answers from its forwarding socket, not from 111:
    portwitness still pairs the answer with the call and learns the program's port from it."""
    udp_port = next(r["port"] for r in oncrpc.regs if r["program"] == 395644 and r["transport"] == "udp")
    callit = oncrpc.said["callit"]
    assert [c["said"] for c in callit] == [udp_port, f"127.0.0.1.{udp_port >> 8}.{udp_port & 0xFF}"]
    assert all(c["reply_port"] != 111 for c in callit)
    cap = oncrpc.caps["clients"]
    for c in callit:
        call = cap.rpc_calls.filter(xid=c["xid"], program=100000, procedure=5)
        assert call.select("version", "server_port", "reply", "accept_stat").rows() == [
            (c["rpcbind"], 111, "accepted", 0)
        ]
    learned = cap.mappings.filter(pl.col("source").str.ends_with(".callit"))
    assert sorted(learned.select("source", "rpc_program", "transport", "port").rows()) == [
        ("portmap.callit", 395644, "udp", udp_port),
        ("rpcbind.callit", 395644, "udp", udp_port),
    ]


def test_callit_is_no_unanswered_attempt(oncrpc):
    """The CALLIT flow to 111 got its answers on another flow: it is completed, not an unanswered
    attempt a firewall stopped; the answers' flow has our client as its client (the sender of a reply
    is the server) and is completed too."""
    cap = oncrpc.caps["clients"]
    callit = oncrpc.said["callit"]
    xids = [c["xid"] for c in callit]
    (to_111,) = set(cap.rpc_calls.filter(pl.col("xid").is_in(xids))["flow_id"])
    flow = cap.flows.filter(flow_id=to_111)
    assert flow.select("server_port", "outcome").rows() == [(111, "completed")]
    client_port = flow["client_port"][0]
    answers = cap.flows.filter(transport="udp", client_port=client_port, server_port=callit[0]["reply_port"])
    assert answers.select("orientation", "outcome", "packets_c2s", "packets_s2c").rows() == [
        ("rpc", "completed", 0, len(callit))
    ]


def test_rpcbind_answers_for_another_version(oncrpc):
    """Asked for a version that is not registered, rpcbind names the port of another version of the
    program on that transport (GETADDR and GETPORT alike; only v4 GETVERSADDR insists on the
    version): rpcinfo then gets PROG_MISMATCH from the program itself."""
    v2_tcp = next(r["port"] for r in oncrpc.regs if r["program"] == TWO_VERSIONS and r["transport"] == "tcp")
    run = oncrpc.runs[f"T tcp {TWO_VERSIONS} 3"]
    assert run.returncode == 1 and f"program {TWO_VERSIONS} version 3 is not available" in run.stdout, run
    assert [x["port"] for x in oncrpc.said["getport v3 tcp"] + oncrpc.said["getport v1 tcp"]] == [
        v2_tcp,
        v2_tcp,
    ]
    calls = oncrpc.caps["versions"].rpc_calls.filter(program=TWO_VERSIONS)
    assert calls.select("version", "server_port", "reply", "accept_stat").rows() == [
        (3, v2_tcp, "accepted", 2)
    ]


def test_nothing_learned_for_a_version_the_program_does_not_serve(oncrpc):
    """rpcbind's GETADDR for 395649 v3 named v2's TCP port; the program itself then answered
    PROG_MISMATCH 1..2 there, so portwitness withdraws the portmapper's v3 answers (the later
    GETPORT v3 included). GETPORT v1 on TCP names the same port and the program does serve v1:
    with nothing else in this capture, that answer stands."""
    v2_tcp = next(r["port"] for r in oncrpc.regs if r["program"] == TWO_VERSIONS and r["transport"] == "tcp")
    view = view_rows(rpcinfo(oncrpc.caps["versions"]), "127.0.0.1")
    assert {(TWO_VERSIONS, 1, "tcp", v2_tcp)} == {row for row in view if row[0] == TWO_VERSIONS}


def test_a_dump_in_the_same_decode_settles_the_version(oncrpc):
    """Decoded together with the capture where `rpcinfo -p` dumped the table, nothing is learned
    that `rpcinfo -p 127.0.0.1` did not print: the DUMP lists 395649 only as v2 on that TCP port."""
    both = pw.decode([oncrpc.pcaps["clients"], oncrpc.pcaps["versions"]])
    view = view_rows(rpcinfo(both), "127.0.0.1")
    assert view <= oncrpc.printed, f"{view - oncrpc.printed}"
    v2_tcp = next(r["port"] for r in oncrpc.regs if r["program"] == TWO_VERSIONS and r["transport"] == "tcp")
    assert (TWO_VERSIONS, 2, "tcp", v2_tcp) in view


def test_ipv6_getaddr(oncrpc):
    """rpcinfo over ::1: rpcbind's GETADDR answer names the tcp6 program on ::1, and the NULL call
    that follows there is attributed to it."""
    (r,) = oncrpc.regs6
    run = oncrpc.runs[f"T tcp6 {r['program']} {r['version']}"]
    assert run.returncode == 0 and "ready and waiting" in run.stdout, run
    cap = oncrpc.caps["tcp6"]
    assert (r["program"], r["version"], "tcp", r["port"]) in view_rows(rpcinfo(cap), "::1")
    flows = flows_to(cap, "::1", "tcp", r["port"])
    assert flows.select("app", "rpc_program", "rpc_version").rows() == [
        ("oncrpc", r["program"], r["version"])
    ]


def test_tcp6_only_program_as_rpcbind_lists_it(oncrpc):
    """The program registered on tcp6 only (an IPV6_V6ONLY socket on `::`): `rpcinfo -p 127.0.0.1`
    does not list it, a connection to its port on 127.0.0.1 is refused, and rpcbind's v3/v4 DUMP
    over IPv4 lists it with the wildcard universal address `::.p1.p2`."""
    (r,) = oncrpc.regs6
    assert all(p != r["program"] for p, *_ in oncrpc.printed6)
    assert "ConnectionRefusedError" in oncrpc.runs["connect6 on 127.0.0.1"].stderr
    wildcard = rf"^\s*{r['program']}\s+1\s+tcp6\s+::\.{r['port'] >> 8}\.{r['port'] & 0xFF}\s"
    assert re.search(wildcard, oncrpc.runs["dump6"].stdout, re.MULTILINE)


def test_tcp6_only_program_is_not_on_the_ipv4_address(oncrpc):
    """portwitness's view of 127.0.0.1 is still what `rpcinfo -p 127.0.0.1` printed: a wildcard
    universal address of the other family is not put on the IPv4 server that answered."""
    view = view_rows(rpcinfo(oncrpc.caps["tcp6"]), "127.0.0.1")
    assert view == oncrpc.printed6, f"{oncrpc.pcaps['tcp6']}: extra {view - oncrpc.printed6}"


# --- MSRPC: Samba's endpoint mapper, rpcdump.py and rpcclient -----------------------------------

DYNAMIC_PORTS = (49152, 49200)
SMB_CONF = """\
[global]
  server role = standalone server
  workgroup = PWGROUP
  netbios name = PWTEST
  interfaces = lo
  bind interfaces only = yes
  disable netbios = yes
  rpc start on demand helpers = no
  rpc server dynamic port range = {lo}-{hi}
  state directory = {d}/state
  lock directory = {d}/lock
  private dir = {d}/private
  cache directory = {d}/cache
  pid directory = {d}/run
  ncalrpc dir = {d}/run/ncalrpc
  binddns dir = {d}/bind-dns
  log file = {d}/log.%m
  passdb backend = tdbsam:{d}/private/passdb.tdb
  load printers = no
  disable spoolss = yes
"""
# rpcclient commands and the interface each one binds (on the port ept_map names for it).
RPCCLIENT_CALLS = {
    "srvinfo": "4b324fc8-1670-01d3-1278-5a47bf6ee188",  # SRVSVC
    "enumdomusers": "12345778-1234-abcd-ef00-0123456789ac",  # SAMR
    "wkssvc_wkstagetinfo": "6bffd098-a112-3610-9833-46c3f87e345a",  # WKSSVC
    "dsroledominfo": "3919286a-b10c-11d0-9ba8-00c04fd92ef5",  # DSSETUP
    "lsaquery": "12345778-1234-abcd-ef00-0123456789ab",  # LSARPC (answered access denied)
}
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
SRVSVC = RPCCLIENT_CALLS["srvinfo"]


@dataclass
class MsRpc:
    rpcdump: set[tuple]  # rpcdump.py's ncacn_ip_tcp endpoints on 127.0.0.1: (uuid, version, port)
    rpcdump_patched: bool  # whether rpcdump.py needed the fortra/impacket#1849 fix to list anything
    epmlookup: set[tuple]  # rpcclient's epmlookup, the same way
    runs: dict[str, subprocess.CompletedProcess]
    cap: pw.Capture
    pcap: Path


def parse_rpcdump(out: str) -> set[tuple]:
    """(uuid, "major.minor", port) of each ncacn_ip_tcp binding on 127.0.0.1 that rpcdump.py printed."""
    found = set()
    for block in out.split("\n\n"):
        head = re.search(r"^UUID\s*:\s*([0-9A-Fa-f-]{36}) v(\d+)\.(\d+)", block, re.MULTILINE)
        for port in re.findall(r"^\s+ncacn_ip_tcp:127\.0\.0\.1\[(\d+)\]", block, re.MULTILINE):
            assert head, block
            found.add((head.group(1).lower(), f"{head.group(2)}.{head.group(3)}", int(port)))
    return found


def parse_epmlookup(out: str) -> set[tuple]:
    """The same from rpcclient's epmlookup: `ncacn_ip_tcp:IP[PORT,abstract_syntax=UUID/0xVERS]`, where
    VERS is the 32-bit interface version, major in the low 16 bits."""
    found = set()
    for ip, port, uuid, vers in re.findall(
        r"ncacn_ip_tcp:([0-9.]+)\[(\d+),abstract_syntax=([0-9a-f-]{36})/0x([0-9a-f]{8})\]", out
    ):
        v = int(vers, 16)
        assert ip == "127.0.0.1", out
        found.add((uuid, f"{v & 0xFFFF}.{v >> 16}", int(port)))
    return found


@pytest.fixture(scope="module")
def msrpc(loopback) -> MsRpc:
    d = loopback.workdir / "samba"
    for sub in ("state", "lock", "private", "cache", "run", "bind-dns"):
        (d / sub).mkdir(parents=True)
    conf = d / "smb.conf"
    conf.write_text(SMB_CONF.format(d=d, lo=DYNAMIC_PORTS[0], hi=DYNAMIC_PORTS[1]))
    argv = [SAMBA_DCERPCD, f"--configfile={conf}", "--foreground", "--no-process-group", "--libexec-rpcds"]
    rpcclient = ["rpcclient", f"--configfile={conf}", "-U%"]
    pcap = loopback.workdir / "msrpc.pcap"
    runs: dict[str, subprocess.CompletedProcess] = {}
    with serve(loopback, "samba-dcerpcd", [*argv, "--debug-stdout", "-d", "1"]):
        loopback.wait_listening(135)
        # Ready when the endpoint mapper hands out a dynamic port (asked before the capture starts).
        wait_for(
            lambda: bool(
                parse_epmlookup(
                    loopback.run([*rpcclient, "ncacn_ip_tcp:127.0.0.1", "-c", "epmlookup"]).stdout
                )
                - {(EPM, "3.0", 135)}
            ),
            "samba-dcerpcd's endpoint mapper to name a dynamic port",
        )
        bpf = f"tcp port 135 or tcp portrange {DYNAMIC_PORTS[0]}-{DYNAMIC_PORTS[1]}"
        with capture(loopback, pcap, bpf):
            run = loopback.run
            runs["rpcdump"] = run([sys.executable, rpcdump_script(), "127.0.0.1"], check=True)
            patched = "UUID" not in runs["rpcdump"].stdout
            if patched:
                fixed = [sys.executable, str(TESTS / "interop_rpcdump.py"), rpcdump_script(), "127.0.0.1"]
                runs["rpcdump#1849"] = run(fixed, check=True)
            runs["epmlookup"] = run([*rpcclient, "ncacn_ip_tcp:127.0.0.1", "-c", "epmlookup"], check=True)
            runs["calls"] = run([*rpcclient, "ncacn_ip_tcp:127.0.0.1", "-c", ";".join(RPCCLIENT_CALLS)])
            runs["calls6"] = run([*rpcclient, "ncacn_ip_tcp:::1", "-c", "srvinfo"], check=True)
    return MsRpc(
        rpcdump=parse_rpcdump(runs["rpcdump#1849" if patched else "rpcdump"].stdout),
        rpcdump_patched=patched,
        epmlookup=parse_epmlookup(runs["epmlookup"].stdout),
        runs=runs,
        cap=pw.decode(pcap),
        pcap=pcap,
    )


def learned_tcp_endpoints(cap, server: str) -> set[tuple]:
    rows = msrpc_endpoints(cap).filter(server=server, protocol="ncacn_ip_tcp")
    return {(r["interface"], r["version"], r["port"]) for r in rows.iter_rows(named=True)}


def test_rpcdump_lists_samba_endpoints(msrpc):
    """The oracle is not empty: Samba's services are on ports of the configured dynamic range. And
    the one reason rpcdump.py may need tests/interop_rpcdump.py: impacket drops the last ept_lookup
    batch, which Samba sends with status 0x16c9a0d6 (fortra/impacket#1849)."""
    if msrpc.rpcdump_patched:
        said = msrpc.runs["rpcdump"].stdout + msrpc.runs["rpcdump"].stderr
        assert "ept_s_not_registered" in said and "No endpoints found" in said, said
    assert (EPM, "3.0", 135) in msrpc.rpcdump
    dynamic = {port for _, _, port in msrpc.rpcdump if port != 135}
    assert dynamic and all(DYNAMIC_PORTS[0] <= p <= DYNAMIC_PORTS[1] for p in dynamic)
    assert {uuid for uuid, *_ in msrpc.rpcdump} >= set(RPCCLIENT_CALLS.values())
    assert msrpc.rpcdump == msrpc.epmlookup


def test_endpoints_equal_rpcdump(msrpc):
    learned = learned_tcp_endpoints(msrpc.cap, "127.0.0.1")
    assert learned == msrpc.rpcdump, (
        f"{msrpc.pcap}: extra {learned - msrpc.rpcdump}, missing {msrpc.rpcdump - learned}"
    )


def test_endpoints_equal_rpcclient_epmlookup(msrpc):
    assert learned_tcp_endpoints(msrpc.cap, "127.0.0.1") == msrpc.epmlookup


def test_connections_to_learned_ports_carry_the_interface(msrpc):
    """rpcclient asks ept_map for each interface, then connects to the port it was given: that
    connection carries the interface, and Samba's bind_ack leaves the secondary address empty."""
    cap = msrpc.cap
    maps = cap.mappings.filter(source="epm.map", server_ip="127.0.0.1", registered=True)
    port_of = {m["interface_uuid"]: m["port"] for m in maps.iter_rows(named=True)}
    assert set(port_of) == set(RPCCLIENT_CALLS.values())
    flows = cap.flows.filter(pl.col("server_ip") == "127.0.0.1", pl.col("server_port") != 135)
    got = {(f["server_port"], f["app"], f["dcerpc_interface"]) for f in flows.iter_rows(named=True)}
    assert got == {(port_of[uuid], "dcerpc", uuid) for uuid in RPCCLIENT_CALLS.values()}
    binds = cap.dcerpc_calls.filter(pl.col("server_port") != 135, ptype="bind")
    assert set(binds["bind_result"]) == {"acceptance"}
    assert set(binds["sec_addr"].fill_null("")) == {""}
    assert cap.mappings.filter(pl.col("port") != 135, source="dcerpc.bind_ack").is_empty()


def test_ept_map_over_ipv6(msrpc):
    """Over ::1 Samba's towers say 0.0.0.0: the endpoint is the answering server's, ::1."""
    cap = msrpc.cap
    maps = cap.mappings.filter(source="epm.map", server_ip="::1", interface_uuid=SRVSVC)
    srvsvc = {(uuid, vers, port) for uuid, vers, port in msrpc.rpcdump if uuid == SRVSVC}
    assert {(SRVSVC, m["interface_version"], m["port"]) for m in maps.iter_rows(named=True)} == srvsvc
    (port,) = maps["port"]
    flows = flows_to(cap, "::1", "tcp", port)
    assert flows.select("app", "dcerpc_interface").rows() == [("dcerpc", SRVSVC)]


# --- TLS: openssl s_server and s_client; plaintext ----------------------------------------------

TLS_PORT, PLAIN_PORT, CLOSED_PORT = 7099, 2099, 7100
# name: (connect to, s_client options, SNI sent)
TLS_CLIENTS = {
    "tls12": ("127.0.0.1", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"], "tls12.arcsrv01.example"),
    "tls13": (
        "127.0.0.1",
        ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
        "tls13.arcsrv01.example",
    ),
    "tls13v6": ("::1", ["-tls1_3"], "v6.arcsrv01.example"),
    "tls12nosni": ("127.0.0.1", ["-tls1_2", "-noservername"], None),
}
PLAIN_SERVER = f"""
import socket
s = socket.create_server(("127.0.0.1", {PLAIN_PORT}))
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"OK " + c.recv(1024))
    c.close()
"""
PLAIN_CLIENT = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5) as c:
    c.sendall(b"STATUS arcserve\\r\\n")
    c.shutdown(socket.SHUT_WR)
    while c.recv(4096):
        pass
"""


@dataclass
class Tls:
    said: dict[str, tuple[str, str]]  # s_client's "New, <protocol>, Cipher is <cipher>"
    codepoints: dict[str, int]  # `openssl ciphers -V -stdname`: OpenSSL and IANA names -> code point
    runs: dict[str, subprocess.CompletedProcess]
    cap: pw.Capture
    pcap: Path


@pytest.fixture(scope="module")
def tls(loopback) -> Tls:
    d = loopback.workdir
    key, cert, pcap = d / "tls-key.pem", d / "tls-cert.pem", d / "tls.pcap"
    run = loopback.run
    req = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(
        [*req, "-days", "2", "-subj", "/CN=arcsrv01.example", "-keyout", str(key), "-out", str(cert)],
        check=True,
    )
    codepoints = {}
    for hi, lo, iana, ossl in re.findall(
        r"0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+- (\S+)",
        run(["openssl", "ciphers", "-V", "-stdname", "ALL"], check=True).stdout,
    ):
        codepoints[iana] = codepoints[ossl] = int(hi + lo, 16)
    runs: dict[str, subprocess.CompletedProcess] = {}
    s_server = ["openssl", "s_server", "-accept", str(TLS_PORT), "-cert", str(cert), "-key", str(key), "-rev"]
    with (
        serve(loopback, "s_server", s_server) as server,
        serve(loopback, "plain-server", [sys.executable, "-c", PLAIN_SERVER]) as plain,
    ):
        server.wait_output(r"^ACCEPT$")
        plain.wait_output(r"^listening$")
        with capture(
            loopback, pcap, f"tcp port {TLS_PORT} or tcp port {PLAIN_PORT} or tcp port {CLOSED_PORT}"
        ):
            for name, (host, opts, sni) in TLS_CLIENTS.items():
                target = f"[{host}]:{TLS_PORT}" if ":" in host else f"{host}:{TLS_PORT}"
                servername = ["-servername", sni] if sni else []
                runs[name] = run(["openssl", "s_client", "-connect", target, *servername, *opts], check=True)
            runs["plain"] = run([sys.executable, "-c", PLAIN_CLIENT, str(PLAIN_PORT)], check=True)
            runs["plain_on_tls"] = run([sys.executable, "-c", PLAIN_CLIENT, str(TLS_PORT)], check=True)
            runs["refused"] = run(["openssl", "s_client", "-connect", f"127.0.0.1:{CLOSED_PORT}"])
    said = {}
    for name in TLS_CLIENTS:
        m = re.search(r"^New, (\S+), Cipher is (\S+)$", runs[name].stdout, re.MULTILINE)
        assert m, runs[name].stdout
        said[name] = (m.group(1), m.group(2))
    return Tls(said=said, codepoints=codepoints, runs=runs, cap=pw.decode(pcap), pcap=pcap)


def test_s_client_negotiated_what_was_asked(tls):
    assert tls.said == {
        "tls12": ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384"),
        "tls13": ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"),
        "tls13v6": ("TLSv1.3", tls.said["tls13v6"][1]),
        "tls12nosni": ("TLSv1.2", tls.said["tls12nosni"][1]),
    }
    assert "errno=111" in tls.runs["refused"].stderr + tls.runs["refused"].stdout


@pytest.mark.parametrize("name", list(TLS_CLIENTS))
def test_tls_flow_matches_s_client(tls, name):
    host, _, sni = TLS_CLIENTS[name]
    protocol, cipher = tls.said[name]
    rows = tls.cap.tls.filter(pl.col("sni").eq_missing(pl.lit(sni, pl.String)), server_ip=host)
    assert rows.height == 1, f"{tls.pcap}: {rows}"
    hello = rows.row(0, named=True)
    assert (hello["version"], hello["cipher"], hello["server_port"]) == (
        protocol,
        tls.codepoints[cipher],
        TLS_PORT,
    )
    # OpenSSL's ClientHello: record version TLS 1.0, legacy version TLS 1.2, for 1.2 and 1.3 alike.
    assert (hello["record_version"], hello["client_version"]) == ("TLSv1.0", "TLSv1.2")
    flow = tls.cap.flows.filter(flow_id=hello["flow_id"]).row(0, named=True)
    assert (flow["app"], flow["security"], flow["tls_version"], flow["tls_sni"], flow["outcome"]) == (
        "tls",
        "tls",
        protocol,
        sni,
        "completed",
    )


def test_plaintext_flows(tls):
    flows = tls.cap.flows
    plain = flows_to(tls.cap, "127.0.0.1", "tcp", PLAIN_PORT)
    assert plain.select("security", "app", "tls_version", "outcome").rows() == [
        ("plaintext", None, None, "completed")
    ]
    on_tls_port = flows.filter(server_port=TLS_PORT, security="plaintext")
    assert on_tls_port.select("client_ip", "app", "tls_version", "tls_sni").rows() == [
        ("127.0.0.1", None, None, None)
    ]
    assert set(flows.filter(server_port=TLS_PORT)["security"]) == {"tls", "plaintext"}


def test_refused_connection(tls):
    refused = flows_to(tls.cap, "127.0.0.1", "tcp", CLOSED_PORT)
    assert refused.select("outcome", "security", "app", "packets_c2s", "packets_s2c").rows() == [
        ("refused", None, None, 1, 1)
    ]


# --- SMTP STARTTLS: openssl s_client -starttls smtp; a preamble that hands over to OpenSSL -----------

SMTP_PORT = 25
SMTP_SNI = "mail.arcsrv01.example"
# The server's half of an SMTP session up to STARTTLS, read a byte at a time so that no TLS byte is
# taken for the preamble; then Python's ssl (OpenSSL) finishes the handshake on the same socket. It
# prints how many bytes the client sent before TLS and what OpenSSL negotiated.
SMTP_SERVER = """
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s = socket.create_server(("127.0.0.1", int(sys.argv[3])))
print("listening", flush=True)
c, _ = s.accept()
def line():
    out = b""
    while not out.endswith(b"\\n"):
        b = c.recv(1)
        if not b:
            raise SystemExit("closed in the preamble")
        out += b
    return out
c.sendall(b"220 arcsrv01.example ESMTP\\r\\n")
before = 0
while True:
    cmd = line()
    before += len(cmd)
    if cmd.upper().startswith(b"EHLO"):
        c.sendall(b"250-arcsrv01.example\\r\\n250 STARTTLS\\r\\n")
    elif cmd.upper().startswith(b"STARTTLS"):
        c.sendall(b"220 2.0.0 Ready to start TLS\\r\\n")
        break
    else:
        c.sendall(b"502 5.5.2 not here\\r\\n")
t = ctx.wrap_socket(c, server_side=True)
print(f"upgraded after {before} bytes: {t.version()} {t.cipher()[0]}", flush=True)
while t.recv(4096):
    pass
"""


@dataclass
class Smtp:
    said: tuple[str, str]  # s_client's "New, <protocol>, Cipher is <cipher>"
    preamble: int  # the client bytes the server read before TLS
    cap: pw.Capture
    pcap: Path


@pytest.fixture(scope="module")
def smtp(loopback, tls) -> Smtp:
    d = loopback.workdir
    key, cert, pcap = d / "tls-key.pem", d / "tls-cert.pem", d / "smtp.pcap"
    server = [sys.executable, "-c", SMTP_SERVER, str(cert), str(key), str(SMTP_PORT)]
    with serve(loopback, "smtp-server", server) as peer:
        peer.wait_output(r"^listening$")
        with capture(loopback, pcap, f"tcp port {SMTP_PORT}"):
            client = ["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{SMTP_PORT}"]
            run = loopback.run([*client, "-servername", SMTP_SNI], check=True)
            upgraded = peer.wait_output(r"^upgraded after (\d+) bytes: (\S+) (\S+)")
    m = re.search(r"^New, (\S+), Cipher is (\S+)$", run.stdout, re.MULTILINE)
    assert m, run.stdout
    assert (m.group(1), m.group(2)) == (upgraded.group(2), upgraded.group(3))
    return Smtp(
        said=(m.group(1), m.group(2)), preamble=int(upgraded.group(1)), cap=pw.decode(pcap), pcap=pcap
    )


def test_smtp_starttls_is_learned_as_the_programs_printed(smtp, tls):
    protocol, cipher = smtp.said
    (hello,) = smtp.cap.tls.to_dicts()
    assert (hello["server_port"], hello["sni"], hello["version"], hello["cipher"]) == (
        SMTP_PORT,
        SMTP_SNI,
        protocol,
        tls.codepoints[cipher],
    )
    # s_client's EHLO and STARTTLS, as many bytes as the server read before handing over.
    assert hello["client_offset"] == smtp.preamble > 0
    (flow,) = smtp.cap.flows.to_dicts()
    assert (flow["app"], flow["security"], flow["tls_version"], flow["tls_sni"], flow["outcome"]) == (
        "tls",
        "starttls",
        protocol,
        SMTP_SNI,
        "completed",
    )
