#!/usr/bin/env python3
"""Generate the audit's focused cases: for each, a capture, the configuration it is audited
against, and what the report must say, written from what was planted (never from a decode).

Run from anywhere:  python pcaps/make_audit_cases.py --out DIR [CASE ...]

Cases (each a directory DIR/CASE with capture.pcap, its configuration files and expect.json):

* ``hosts``: a generic `caservd` line beside host-specific lines for two servers, one named by
  address, one by a name only the wire teaches (the server name a TLS client asked for), and one
  for a host the capture never names; traffic on each line's port on its host, and traffic on the
  generic port to a host that has its own line (the generic line must not claim it).
* ``dns``: a host-specific line naming a host known only from a DNS answer.
* ``dynamic``: a policy's dynamic MSRPC range (49152-65535) on one server; its endpoint mapper
  hands out one port inside the range and one outside (the tape engine's 6502).
* ``reconnect``: a backup of an agent reset mid-way, its reconnection from inside the
  reconnection range, then an ordinary later connection from outside it.
* ``misspelt``: `tapengine 6502` in PortsConfig.cfg, and traffic on 6502 that attribution names
  `tapeengine`: the line is used, and the reader says what it likely meant.
* ``uncovered``: traffic nothing explains: TLS with an SNI, an ONC RPC program nobody configured,
  and plain bytes on a port of no service; beside it, configured traffic.
* ``grouped``: 150 clients log in over plaintext on 2099 while usessl is true, and 30 are
  refused on 6050: one violation row and one blocked row, not 180.

Everything is deterministic: running the script again writes byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_fixtures as mf  # noqa: E402
from make_demo import Timeline  # noqa: E402
from scapy.layers.dns import DNS, DNSQR, DNSRR  # noqa: E402

CAPTURE = "capture.pcap"


class Case:
    """One case: its capture (through a timeline of groups of packets), files and expectations."""

    def __init__(self) -> None:
        self.cap = mf.Capture()
        self.timeline = Timeline(self.cap)
        self.rpc, self.dce, self.tlslog = mf.RpcLog(), mf.DceLog(), mf.TlsLog()
        self.files: dict[str, str] = {}
        self.expect: dict = {}
        self._isn = 0

    def isn(self) -> int:
        self._isn += 1
        return 0x21000000 + self._isn * 0x00A10000

    def tcp(self, c: str, cport: int, s: str, sport: int) -> mf.Tcp:
        isn = self.isn()
        return mf.Tcp(self.cap, c, cport, s, sport, isn_c=isn, isn_s=isn ^ 0x40000000)

    def session(self, at: float, c: str, cport: int, s: str, sport: int, tag: str) -> None:
        """A completed TCP connection carrying one request and one answer of plain bytes."""
        t = self.tcp(c, cport, s, sport)
        self.timeline.at(at, t.handshake() + t.exchange(120, 480, tag) + t.close())

    def reset(self, at: float, c: str, cport: int, s: str, sport: int, tag: str) -> None:
        """A connection that carries data, then is reset by the client."""
        t = self.tcp(c, cport, s, sport)
        self.timeline.at(at, t.handshake() + t.exchange(200, 900, tag) + [lambda: t.send(True, "RA")])

    def refused(self, at: float, c: str, cport: int, s: str, sport: int) -> None:
        t = self.tcp(c, cport, s, sport)
        self.timeline.at(at, [lambda: t.send(True, "S"), lambda: t.send(False, "RA", ack_no=t.isn[True] + 1)])

    def tls(self, at: float, c: str, cport: int, s: str, sport: int, sni: str | None, tag: str) -> None:
        conv = mf.conn(self.cap, c, cport, s, sport, self.isn(), "tls", handshake=False)
        hello = {"sni": sni} if sni else {}
        steps = mf.tls13_steps(self.tlslog, conv, tag, records=1, versions=(mf.TLS13, mf.TLS12), **hello)
        self.timeline.at(at, conv.t.handshake() + steps)

    def dns_answer(self, at: float, client: str, server: str, name: str, address: str) -> None:
        """A DNS query for `name` over UDP and its answer, A `address`."""
        q = DNS(id=0x5157, rd=1, qd=DNSQR(qname=name, qtype="A"))
        a = DNS(
            id=0x5157,
            qr=1,
            aa=1,
            rd=1,
            ra=1,
            qd=DNSQR(qname=name, qtype="A"),
            an=DNSRR(rrname=name, type="A", ttl=300, rdata=address),
        )
        self.timeline.at(
            at,
            [
                lambda: self.cap.udp(client, 53001, server, 53, bytes(q)),
                lambda: self.cap.udp(server, 53, client, 53001, bytes(a)),
            ],
        )

    def write(self, out: Path) -> None:
        self.timeline.play()
        out.mkdir(parents=True, exist_ok=True)
        (out / CAPTURE).write_bytes(mf.write_pcap(self.cap.frames, mf.LINKTYPE_ETHERNET))
        for name, text in self.files.items():
            (out / name).write_text(text)
        (out / "expect.json").write_text(json.dumps(self.expect, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------


def hosts() -> Case:
    k = Case()
    gui, a, b, c = "10.30.0.50", "10.30.0.10", "10.30.0.11", "10.30.0.12"
    k.files["PortsConfig.cfg"] = (
        "caservd 7000\n"  # line 1: every host without its own line
        f"caservd 7100 SRVA {a}\n"  # line 2: by address
        "caservd 7200 srvb\n"  # line 3: by a name the wire teaches (SNI)
        "caservd 7300 srvz\n"  # line 4: a host the capture never names
    )
    k.session(0.0, gui, 50001, a, 7100, "a-own")
    k.session(1.0, gui, 50002, a, 7000, "a-generic")  # srva's own line governs it: not the generic's
    k.tls(2.0, gui, 50003, b, 7099, "srvb.corp.example", "b-sni")
    k.session(3.0, gui, 50004, b, 7200, "b-own")
    k.session(4.0, gui, 50005, c, 7000, "c-generic")
    k.expect = {
        "services": {
            # origin line: (used, servers)
            "PortsConfig.cfg:1": [True, [c]],
            "PortsConfig.cfg:2": [True, [a]],
            "PortsConfig.cfg:3": [True, [b]],
        },
        "matched": [["srvb", b, "sni", "srvb.corp.example"]],
        "unmatched": [["caservd", "srvz", "PortsConfig.cfg:4"]],
        "unused": [],
        # The generic port on a host that has its own line is explained by nothing.
        "uncovered": [[a, "tcp", 7000]],
    }
    return k


def dns() -> Case:
    k = Case()
    gui, resolver, srv = "10.31.0.50", "10.31.0.2", "10.31.0.10"
    k.files["PortsConfig.cfg"] = "caservd 7000\ncaservd 7100 backup1\n"
    k.dns_answer(0.0, gui, resolver, "backup1.corp.example", srv)
    k.session(1.0, gui, 50001, srv, 7100, "own")
    k.expect = {
        "services": {"PortsConfig.cfg:2": [True, [srv]]},
        "matched": [["backup1", srv, "dns", "backup1.corp.example"]],
        "unmatched": [],
    }
    return k


def dynamic() -> Case:
    k = Case()
    gui, srv = "10.40.0.50", "10.40.0.10"
    k.files["policy.toml"] = (
        "[[service]]\n"
        'name = "windows-rpc"\n'
        'family = "msrpc"\n'
        "dynamic = true\n"
        'ports = ["49152-65535"]\n'
        f'hosts = ["{srv}"]\n'
    )
    epm = mf.dce_assoc(k.cap, 50010, 135, k.isn(), c=gui, s=srv, handshake=False)
    steps = epm.conv.t.handshake() + mf.bind_steps(k.dce, epm, mf.EPM, "135")
    steps += mf.call_steps(epm.conv, *k.dce.ept_map(epm, 2, 0, mf.JOB_ENGINE, [mf.Endpoint("ncacn_ip_tcp", 49701, srv)]))
    steps += mf.call_steps(epm.conv, *k.dce.ept_map(epm, 3, 0, mf.TAPE_ENGINE, [mf.Endpoint("ncacn_ip_tcp", 6502, srv)]))
    k.timeline.at(0.0, steps + epm.conv.t.close())
    k.session(2.0, gui, 50011, srv, 49701, "inside")
    k.session(3.0, gui, 50012, srv, 6502, "outside")
    k.expect = {
        "used": True,
        "learned_inside": 1,
        "dynamic_outside": [
            {"port": 6502, "interface": mf.TAPE_ENGINE.uuid, "server": srv, "source": "epm.map", "flows": 1}
        ],
    }
    return k


def reconnect() -> Case:
    k = Case()
    backup, agent = "10.50.0.10", "10.50.0.20"
    k.files["PortsConfig.cfg"] = "reconnection 20200-20300\n"
    k.reset(0.0, backup, 40001, agent, 6050, "backup")  # the backup's connection, reset
    k.session(10.0, backup, 20250, agent, 6050, "again")  # its reconnection, inside the range
    k.session(30.0, backup, 40002, agent, 6050, "later")  # an ordinary connection, outside it
    k.expect = {
        "reconnections": [[20250, 6050]],
        "range": {"range": "20200-20300", "ports_used": "20250", "flows": 1},
        "violations": [],
    }
    return k


def misspelt() -> Case:
    k = Case()
    gui, srv = "10.60.0.50", "10.60.0.10"
    k.files["PortsConfig.cfg"] = "tapengine 6502\n"
    k.session(0.0, gui, 50001, srv, 6502, "tape")  # the catalog names 6502 the tape engine
    k.expect = {
        "warning": "PortsConfig.cfg:1:1: unknown service 'tapengine' \u2014 did you mean 'tapeengine'? "
        "(kept as a TCP service)",
        "used": {"PortsConfig.cfg:1": True},
        "unused": [],
    }
    return k


def uncovered() -> Case:
    k = Case()
    gui, srv = "10.70.0.50", "10.70.0.10"
    k.files["PortsConfig.cfg"] = "caservd 7000\n"
    k.session(0.0, gui, 50001, srv, 7000, "configured")
    k.tls(1.0, gui, 50002, srv, 8443, "portal.corp.example", "portal")
    k.tls(2.0, "10.70.0.51", 50003, srv, 8443, "portal.corp.example", "portal-2")
    conv = mf.TcpConv(k.cap, gui, 50004, srv, 7777, isn_c=k.isn(), isn_s=0x7777, handshake=False)
    rpc = mf.rpc_exchange_steps(k.rpc, conv, 0x55550001, 600100, 1, 1, mf.AUTH_NULL, b"\0" * 8, b"\0" * 4)
    k.timeline.at(3.0, conv.t.handshake() + rpc + conv.t.close())
    k.session(4.0, gui, 50005, srv, 9999, "mystery")
    k.refused(5.0, gui, 50006, srv, 9998)  # refused: blocked, not traffic
    k.expect = {
        "uncovered": [
            [srv, "tcp", 8443, "TLS, SNI portal.corp.example", 2, 2],
            [srv, "tcp", 7777, "ONC RPC program 600100", 1, 1],
            [srv, "tcp", 9999, "unknown", 1, 1],
        ]
    }
    return k


def grouped() -> Case:
    k = Case()
    srv, agent = "10.80.0.10", "10.80.0.20"
    k.files["mgmt.properties"] = "usessl=true\nsslport=7099\nnonsslport=2099\n"
    steps: list[Callable[[], object]] = []
    for i in range(150):
        t = k.tcp(f"10.81.{i // 200}.{i % 200 + 1}", 40000 + i, srv, 2099)
        steps += t.handshake() + t.exchange(64, 64, f"login-{i}") + t.close()
    k.timeline.at(0.0, steps)
    steps = []
    for i in range(30):
        t = k.tcp(srv, 41000 + i, agent, 6050)
        steps += [lambda t=t: t.send(True, "S"), lambda t=t: t.send(False, "RA", ack_no=t.isn[True] + 1)]
    k.timeline.at(60.0, steps)
    k.expect = {
        "violations": [["plaintext-ssl", "mgmt-plain", 2099, 150, 1, 150]],
        "blocked": [["refused", "universal-agent", 6050, 30, 1, 1]],
    }
    return k


CASES = {
    "hosts": hosts,
    "dns": dns,
    "dynamic": dynamic,
    "reconnect": reconnect,
    "misspelt": misspelt,
    "uncovered": uncovered,
    "grouped": grouped,
}


def build(name: str, out: Path) -> Path:
    """Writes case `name` into out/name and returns that directory."""
    where = out / name
    CASES[name]().write(where)
    return where


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("cases", nargs="*", choices=[*CASES, []], help="cases (default: all)")
    args = parser.parse_args(argv)
    for name in args.cases or CASES:
        build(name, args.out)


if __name__ == "__main__":
    main()
