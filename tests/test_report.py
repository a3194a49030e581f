"""The audit and its report: the bundled demo names every planted fact and nothing else; golden
JSON for the demo and for focused configurations that trigger each violation kind; the CLI's forms,
filters and exit codes; strings from the wire escaped in HTML, Markdown and the terminal."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path

import polars as pl
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.layers.tls.extensions import ServerName, TLS_Ext_ServerName
from scapy.layers.tls.handshake import TLSClientHello
from scapy.layers.tls.record import TLS
from scapy.utils import wrpcap

import portwitness as pw
from conftest import requires
from portwitness.audit import audit
from portwitness.audit.reconnections import reconnections
from portwitness.audit.violations import violations
from portwitness.cli import main
from portwitness.config import Policy, read_mgmt, read_policy, read_portsconfig
from portwitness.config.model import KIND_RECONNECTION, Origin, PortRange, Rule
from portwitness.demo import load
from portwitness.render.html import report_html
from portwitness.render.markdown import markdown
from portwitness.render.report_doc import document, findings
from portwitness.render.terminal import print_report

DEMO = Path(str(files("portwitness") / "demo"))
GOLDEN = Path(__file__).resolve().parent / "golden"
PLANTED = json.loads((DEMO / "planted.json").read_text())
PRIMARY, MEMBER = PLANTED["hosts"]["primary"], PLANTED["hosts"]["member"]


def flat(r: dict) -> dict:
    """A grouped finding with its servers and clients as the `;`-joined text of its lists."""
    return {
        **r,
        "server_ip": ";".join(r.get("server_ips") or []) or None,
        "client_ip": ";".join(r.get("client_ips") or []) or None,
    }


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def golden(name: str, value: object) -> None:
    """Compares with tests/golden/NAME.json; PORTWITNESS_REGOLD=1 rewrites it (review the diff)."""
    path = GOLDEN / f"{name}.json"
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if os.environ.get("PORTWITNESS_REGOLD"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert json.loads(text) == json.loads(path.read_text()), (
        f"{path} differs (PORTWITNESS_REGOLD=1 to rewrite)"
    )


@pytest.fixture(scope="module")
def demo():
    cap, policy = load()
    return cap, policy, audit(cap, policy)


# --- the demo -----------------------------------------------------------------------------------


def test_demo_attributes_every_flow_as_planted(demo):
    _, _, a = demo
    got = {
        (r["transport"], r["client_ip"], r["client_port"], r["server_ip"], r["server_port"]): (
            r["outcome"],
            r["service"],
            r["evidence"],
        )
        for r in a.flows.iter_rows(named=True)
    }
    want = {
        (f["transport"], f["client_ip"], f["client_port"], f["server_ip"], f["server_port"]): (
            f["outcome"],
            f["service"],
            f["evidence"],
        )
        for f in PLANTED["flows"]
    }
    assert got == want


def test_demo_names_every_planted_fact_and_nothing_else(demo):
    _, _, a = demo
    facts = PLANTED["facts"]
    want_v = {(f["type"], f["service"], f["server_ip"], f["port"]) for f in facts if f["kind"] == "violation"}
    got_v = {
        (r["type"], r["service"], r["server_ip"], r["port"])
        for r in map(flat, a.violations.iter_rows(named=True))
    }
    assert got_v == want_v
    assert a.violations.height == len(want_v)
    want_b = {
        (f["outcome"], f["server_ip"], f["port"], f["service"]) for f in facts if f["kind"] == "blocked"
    }
    got_b = {
        (r["outcome"], r["server_ip"], r["port"], r["service"])
        for r in map(flat, a.blocked.iter_rows(named=True))
    }
    assert got_b == want_b
    want_u = {(f["service"], f["configured"]) for f in facts if f["kind"] == "unused"}
    assert {(r["service"], r["configured"]) for r in a.unused.iter_rows(named=True)} == want_u
    # The callback outside the range: the member listens on 20150, the primary calls back.
    (cb,) = map(flat, a.violations.filter(type="callback-outside").iter_rows(named=True))
    assert (cb["server_ip"], cb["client_ip"], cb["configured"]) == (MEMBER, PRIMARY, "20000-20100;7199")
    # The moved service: both the portmapper's answers and the flows on 1026 are named.
    (pin,) = a.violations.filter(type="pinned-dynamic").iter_rows(named=True)
    assert (pin["flows"], pin["origin"]) == (2, "PortsConfig.cfg:28")


def test_demo_ranges_and_services(demo):
    _, _, a = demo
    r = a.ranges.filter(range="20000-20100").row(0, named=True)
    assert (r["ports_used"], r["ports_used_count"], r["utilisation_pct"], r["outside_ports"]) == (
        "20010;20055;20077",
        3,
        2.97,
        "20150",
    )
    s = {row["service"]: row for row in a.services.iter_rows(named=True)}
    assert (s["caauthd"]["used"], s["caauthd"]["ports_seen"], s["caauthd"]["flows"]) == (False, "1026", 2)
    assert (s["mgmt-ssl"]["flows"], s["mgmt-ssl"]["sni"]) == (2, "arcprimary.corp.example")
    assert s["caservd"]["machines"] == "ARCGUI"
    assert a.verdict.startswith("21 flows from 2026-03-01T02:00:00Z to 2026-03-01T02:09:45Z")


def test_demo_json_golden(demo):
    _, _, a = demo
    doc = document(a)
    assert doc["schema"] == "portwitness.report/2"
    doc.pop("generator")
    doc["captures"] = [Path(c).name for c in doc["captures"]]
    # Paths as the machine has them: only the file's name is the demo's.
    for i in doc["inputs"]:
        i["path"] = Path(i["path"]).name
    for section in ("violations", "blocked", "uncovered"):
        for row in doc[section]:
            row["first_capture"] = Path(row["first_capture"]).name if row["first_capture"] else None
    golden("demo_report", doc)


def test_demo_cli_forms_and_fail_on(tmp_path, capsys):
    code, out, err = run(["demo"], capsys)
    assert code == 0 and out.startswith("21 flows from") and "Violations (4)" in out
    code, _, err = run(["demo", "--fail-on", "violations"], capsys)
    assert code == 3 and "failing on 4 violations" in err
    code, _, _ = run(["demo", "--fail-on", "blocked", "--fail-on", "unused", "--format", "json"], capsys)
    assert code == 3
    for fmt, name in [("json", "r.json"), ("csv", "r.csv"), ("markdown", "r.md"), ("html", "r.html")]:
        code, _, _ = run(["demo", "--format", fmt, "-o", str(tmp_path / name)], capsys)
        assert code == 0 and (tmp_path / name).stat().st_size > 500
    rows = pl.read_csv(tmp_path / "r.csv")
    assert rows.group_by("finding").len().sort("finding").rows() == [
        ("blocked", 2),
        ("unused", 3),
        ("violation", 4),
    ]
    page = (tmp_path / "r.html").read_text()
    assert "<script" not in page and "http://" not in page.replace("http-equiv", "") and "<svg" in page


def test_report_command_reads_the_files_like_demo(tmp_path, capsys):
    args = ["report", str(DEMO / "demo.pcap"), "--config", str(DEMO / "PortsConfig.cfg")]
    args += ["--mgmt-config", str(DEMO / "mgmt.properties"), "--format", "json"]
    code, out, _ = run(args, capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"]["violations"] == 4 and doc["configured"] is True
    # A window and a host filter narrow the flows.
    code, out, _ = run([*args, "--since", "2026-03-01T02:03", "--until", "2026-03-01T02:04:30Z"], capsys)
    assert json.loads(out)["summary"]["flows"] == 6
    code, out, _ = run([*args, "--host", "10.20.0.102"], capsys)
    doc = json.loads(out)
    assert doc["summary"]["flows"] == 1 and [b["port"] for b in doc["blocked"]] == [6051]


def test_report_without_configuration_uses_the_catalog(capsys):
    code, out, _ = run(["report", str(DEMO / "demo.pcap"), "--format", "json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["configured"] is False and doc["unused"] == []
    assert "built-in catalog" in doc["verdict"]
    assert {b["port"] for b in doc["blocked"]} == {20077, 6051}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "'yesterday' is no ISO 8601 time"),
        (["--config", "/nonexistent/PortsConfig.cfg"], "/nonexistent/PortsConfig.cfg"),
        (["--format", "pdf"], "'pdf' is not one of"),
    ],
)
def test_report_bad_input_is_one_line_and_exit_2(args, message, capsys):
    code, out, err = run(["report", str(DEMO / "demo.pcap"), *args], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("portwitness: error:") and message in err


def test_report_config_error_names_file_line_column(tmp_path, capsys):
    cfg = tmp_path / "PortsConfig.cfg"
    cfg.write_text("# ports\ncaservd 7000\ncaauthd 70000\n")
    code, _, err = run(["report", str(DEMO / "demo.pcap"), "--config", str(cfg)], capsys)
    assert code == 2 and f"{cfg}:3:9:" in err and err.count("\n") == 1


# --- focused configurations, one per violation kind ---------------------------------------------


def _violations(policy: Policy) -> list[dict]:
    cap, _ = load()
    a = audit(cap, policy)
    return [
        {
            k: r[k]
            for k in ("type", "service", "server_ip", "client_ip", "port", "configured", "flows", "origin")
        }
        for r in map(flat, a.violations.iter_rows(named=True))
    ]


def test_moved_port_violations():
    """The tape engine pinned to 6602: the endpoint mapper still hands out 6502 and the GUI goes
    there — the catalogued default port of a moved service."""
    pol = read_portsconfig("PortsConfig.cfg", text="tapeengine 6602\n")
    got = _violations(pol)
    assert {v["type"] for v in got} == {"moved-port", "pinned-dynamic", "service-port"}
    assert {v["port"] for v in got} == {6502}
    golden("violations_moved_port", got)


def test_tls_on_plain_violations():
    """usessl false and the remote scenario's ports swapped (SSL on 7443, plain on 7099): the TLS
    sessions on 7099 break the setting. (The client scenario keeps its defaults, 2099 among them,
    so the plaintext session there is configured.)"""
    pol = read_mgmt(
        "mgmt.properties", text="usessl=false\nsslport=7443\nnonsslport=7099\nportrange=20000-20200\n"
    )
    got = _violations(pol)
    assert [(v["type"], v["service"], v["port"], v["flows"]) for v in got] == [
        ("tls-on-plain", "mgmt-plain", 7099, 2)
    ]
    golden("violations_tls_on_plain", got)


def test_policy_requiring_tls_flags_plaintext():
    """A TOML policy for any stack: TLS required on 2099."""
    pol = read_policy(
        "policy.toml",
        text='[[service]]\nname = "mgmt-plain"\nports = [2099]\ntls = true\n',
    )
    got = _violations(pol)
    assert [(v["type"], v["port"], v["origin"]) for v in got] == [("plaintext-ssl", 2099, "policy.toml:1")]
    golden("violations_policy_tls", got)


def test_callback_outside_violation_alone():
    pol = read_mgmt("mgmt.properties", text="portrange=20000-20100\nclntportrange=7199\n")
    got = [v for v in _violations(pol) if v["type"] == "callback-outside"]
    assert [(v["server_ip"], v["client_ip"], v["port"]) for v in got] == [(MEMBER, PRIMARY, 20150)]
    golden("violations_callback_outside", got)


def _flow(
    fid: int, client: str, cport: int, server: str, sport: int, start: int, end: int, outcome: str, service
):
    t0 = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
    return {
        "flow_id": fid,
        "transport": "tcp",
        "client_ip": client,
        "client_port": cport,
        "server_ip": server,
        "server_port": sport,
        "first_ts": t0 + timedelta(seconds=start),
        "last_ts": t0 + timedelta(seconds=end),
        "outcome": outcome,
        "service": service,
        "evidence": "catalog" if service else "unknown",
    }


def test_reconnection_outside_violation():
    """A backup to an agent reset mid-way; the server reconnects from port 20350 (outside the
    reconnection range 20200-20300) and the agent, another time, reconnects to the server's port
    20250 (inside)."""
    server, agent, agent2 = "10.20.0.10", "10.20.0.101", "10.20.0.103"
    flows = pl.DataFrame(
        [
            _flow(1, server, 49000, agent, 6050, 0, 30, "reset", "universal-agent"),
            _flow(2, server, 20350, agent, 6050, 45, 90, "completed", "universal-agent"),
            _flow(3, server, 49001, agent2, 6050, 100, 130, "open", "universal-agent"),
            _flow(4, agent2, 51000, server, 20250, 140, 150, "completed", None),
            _flow(5, server, 49002, agent, 6050, 1000, 1010, "completed", "universal-agent"),
        ]
    ).with_columns(pl.col("client_port", "server_port").cast(pl.UInt16), pl.col("flow_id").cast(pl.UInt64))
    recon = reconnections(flows)
    assert recon.select("flow_id", "range_port", "broken_flow").rows() == [(2, 20350, 1), (4, 20250, 3)]
    rule = Rule(
        "reconnection",
        kind=KIND_RECONNECTION,
        ports=(PortRange(20200, 20300),),
        origin=Origin("PortsConfig.cfg", 9),
    )
    v = violations(
        flows,
        pl.DataFrame(schema={"registered": pl.Boolean, "port": pl.UInt16}),
        flows.clear(),
        recon,
        Policy(rules=[rule]),
        [],
    )
    got = [
        {
            k: r[k]
            for k in ("type", "service", "server_ip", "client_ip", "port", "configured", "flows", "origin")
        }
        for r in map(flat, v.iter_rows(named=True))
    ]
    assert [(g["type"], g["port"], g["server_ip"]) for g in got] == [("reconnection-outside", 20350, agent)]
    golden("violations_reconnection_outside", got)


# --- usage and config check ---------------------------------------------------------------------


def test_usage_by_service_and_port(capsys):
    code, out, _ = run(["usage", str(DEMO / "demo.pcap"), "--by", "service", "--format", "json"], capsys)
    rows = {r["service"]: r for r in json.loads(out)}
    assert code == 0
    # Lists are JSON arrays: the ports as numbers, the evidence as "kind:flows" strings.
    assert (rows["caauthd"]["flows"], rows["caauthd"]["ports"], rows["caauthd"]["evidence"]) == (
        2,
        [1026],
        ["learned:2"],
    )
    assert (rows["mgmt-ssl"]["tls"], rows["caauthd"]["plaintext"]) == (2, 2)
    assert (rows["unix-agent"]["refused"], rows["mgmt-callback"]["unanswered"]) == (1, 1)
    code, out, _ = run(["usage", str(DEMO / "demo.pcap"), "--format", "csv"], capsys)
    df = pl.read_csv(out.encode())
    # 21 flows; the two to 1026 and the two to 7099 share their row.
    assert df.columns[:4] == ["server_ip", "transport", "port", "service"] and df.height == 19


def test_config_check_plan(capsys):
    code, out, _ = run(
        ["config", "check", str(DEMO / "PortsConfig.cfg"), str(DEMO / "mgmt.properties"), "--format", "json"],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "portwitness.plan/1"
    got = {(r["service"], r["transport"], r["ports"], r["direction"]) for r in doc["rules"]}
    assert {("catirpc", "tcp", "111", "inbound"), ("caauthd", "tcp", "7001", "inbound")} <= got
    assert ("mgmt-callback", "tcp", "20000-20100", "outbound") in got


# --- strings from the wire ----------------------------------------------------------------------

EVIL_SNI = "<script>alert('sni')</script>"
EVIL_MACHINE = "<script>alert(1)</script>\x1b[2J\x07"


def _evil_capture(path: Path, sni: str = EVIL_SNI, machine: str = EVIL_MACHINE) -> None:
    c, s = "192.0.2.10", "192.0.2.1"
    t = 1772330400.0
    pkts = []

    def conv(cport: int, sport: int, c2s: bytes) -> None:
        nonlocal t
        e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        seq_c, seq_s = 1000, 5000
        for p in (
            e / IP(src=c, dst=s) / TCP(sport=cport, dport=sport, flags="S", seq=seq_c),
            e / IP(src=s, dst=c) / TCP(sport=sport, dport=cport, flags="SA", seq=seq_s, ack=seq_c + 1),
            e
            / IP(src=c, dst=s)
            / TCP(sport=cport, dport=sport, flags="PA", seq=seq_c + 1, ack=seq_s + 1)
            / c2s,
            e
            / IP(src=s, dst=c)
            / TCP(sport=sport, dport=cport, flags="FA", seq=seq_s + 1, ack=seq_c + 1 + len(c2s)),
            e
            / IP(src=c, dst=s)
            / TCP(sport=cport, dport=sport, flags="FA", seq=seq_c + 1 + len(c2s), ack=seq_s + 2),
        ):
            t += 0.001
            p.time = t
            pkts.append(p)

    hello = TLS(
        msg=[TLSClientHello(ext=[TLS_Ext_ServerName(servernames=[ServerName(servername=sni.encode())])])]
    )
    conv(50000, 7099, bytes(hello))
    name = machine.encode()
    pad = b"\0" * (-len(name) % 4)
    cred = struct.pack(">II", 0, len(name)) + name + pad + struct.pack(">III", 0, 0, 0)
    call = struct.pack(">IIIIII", 0x1234, 0, 2, 100000, 2, 0) + struct.pack(">II", 1, len(cred)) + cred
    call += struct.pack(">II", 0, 0)
    conv(50001, 111, struct.pack(">I", 0x80000000 | len(call)) + call)
    wrpcap(str(path), pkts)


def test_strings_from_the_wire_are_escaped(tmp_path):
    pcap = tmp_path / "evil.pcap"
    _evil_capture(pcap)
    a = audit(pw.decode(pcap))
    s = {r["service"]: r for r in a.services.iter_rows(named=True)}
    assert s["mgmt-ssl"]["sni"] == EVIL_SNI and s["catirpc"]["machines"] == EVIL_MACHINE
    page = report_html(a)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;sni&#x27;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J\\x07" in page
    md = markdown(a)
    assert "<script" not in md and "\x1b" not in md and "&lt;script&gt;" in md
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    print_report(a, Console(file=buf, width=400, color_system=None, soft_wrap=False))
    text = buf.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[2J" in text
    # JSON keeps the string as seen (escaped by JSON itself); CSV findings have no wire strings.
    assert EVIL_SNI in json.dumps(document(a), ensure_ascii=False)
    assert findings(a).height == a.violations.height + a.blocked.height


# What a hostile client would try: markup that runs script or changes the page when not escaped.
DOM_SNI = (
    "<script>document.title='pwned-by-sni'</script><img src=x onerror=\"document.title='pwned-by-img'\">"
)
DOM_MACHINE = "<svg onload=\"document.body.dataset.pwned='machine'\"></svg>\x1b]0;pwned\x07"


def _chromium_dom(page: Path) -> str:
    """The page's DOM after headless Chromium (Debian's chromium package) loaded it and ran
    whatever would run."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Debian's chromium package is needed (.ci/run installs it)"
    args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-500:]
    return out.stdout


@requires("chromium")
@pytest.mark.parametrize("with_csp", [True, False], ids=["as-written", "csp-removed"])
def test_html_report_runs_no_script_in_chromium(tmp_path, with_csp):
    """The HTML report of a capture whose SNI and AUTH_UNIX machine name carry markup: opened in
    headless Chromium, no script runs, no element is injected, and the text shows literally. The
    second run removes the Content-Security-Policy, so escaping alone is what is proven."""
    pcap = tmp_path / "evil.pcap"
    _evil_capture(pcap, sni=DOM_SNI, machine=DOM_MACHINE)
    page = report_html(audit(pw.decode(pcap)))
    if not with_csp:
        start = page.index('<meta http-equiv="Content-Security-Policy"')
        page = page[:start] + page[page.index(">", start) + 1 :]
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    dom = _chromium_dom(path)
    assert "<title>portwitness report</title>" in dom
    assert "pwned" not in dom.split("<body", 1)[0]  # the title was not changed
    assert "<script" not in dom and "<img" not in dom and "<svg onload" not in dom
    assert "data-pwned" not in dom
    # The markup is there as text: serialised back escaped.
    assert "&lt;script&gt;document.title='pwned-by-sni'&lt;/script&gt;&lt;img src=x" in dom
    assert "&lt;svg onload=\"document.body.dataset.pwned='machine'\"&gt;&lt;/svg&gt;\\x1b]0;pwned\\x07" in dom
