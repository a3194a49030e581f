"""Firewalls: the rules written from the configuration (goldens for PowerShell, netsh and
firewalld; nftables and iptables are loaded by the real tools in tests/test_firewall_kernel.py),
the ruleset readers on real `nft -j` and `iptables-save` output and on Windows exports written by
hand from Microsoft's documented formats, the evaluation's semantics, and hostile rulesets."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import time
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path

import pytest

from portwitness.cli import main
from portwitness.firewall.evaluate import evaluate
from portwitness.firewall.read import load_ruleset, parse_ruleset
from portwitness.firewall.ruleset import Packet, RulesetError

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "firewall"
GOLDEN = TESTS / "golden"
DEMO = Path(str(files("portwitness") / "demo"))
DEMO_ARGS = ["--config", str(DEMO / "PortsConfig.cfg"), "--mgmt-config", str(DEMO / "mgmt.properties")]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def golden_text(name: str, text: str) -> None:
    """Compares with tests/golden/NAME; PORTWITNESS_REGOLD=1 rewrites it (review the diff)."""
    path = GOLDEN / name
    if os.environ.get("PORTWITNESS_REGOLD"):
        path.write_bytes(text.encode("utf-8"))
    assert text == path.read_bytes().decode("utf-8"), f"{path} differs (PORTWITNESS_REGOLD=1 to rewrite)"


def pkt(transport: str, src: str, sport: int, dst: str, dport: int, iif: str | None = None) -> Packet:
    return Packet(transport, ipaddress.ip_address(src), sport, ipaddress.ip_address(dst), dport, iif)


# --- rules: goldens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "golden", "extra"),
    [
        ("powershell", "firewall_demo.ps1", ["--install-dir", r"C:\Program Files (x86)\CA\ARCserve Backup"]),
        ("netsh", "firewall_demo.cmd", ["--install-dir", r"C:\Program Files (x86)\CA\ARCserve Backup"]),
        ("firewalld", "firewall_demo.firewalld.xml", []),
        ("nftables", "firewall_demo.nft", []),
        ("iptables", "firewall_demo.iptables", []),
    ],
)
def test_rules_of_the_demo_golden(capsys, monkeypatch, fmt, golden, extra):
    # From the demo's directory, so that rules name the files as a user beside them sees them.
    monkeypatch.chdir(DEMO)
    args = ["demo.pcap", "--config", "PortsConfig.cfg", "--mgmt-config", "mgmt.properties"]
    code, out, err = run(["firewall", "rules", *args, "--format", fmt, *extra], capsys)
    assert code == 0, err
    golden_text(golden, out)


def test_rules_name_their_configuration_line_and_learned_flows(capsys):
    code, out, _ = run(["firewall", "rules", str(DEMO / "demo.pcap"), *DEMO_ARGS, "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    by = {(r["service"], r["transport"], r["ports"]): r for r in doc["rules"]}
    # The pinned authentication service: its PortsConfig.cfg line.
    assert by[("caauthd", "tcp", "7001")]["why"][0].startswith(f"{DEMO / 'PortsConfig.cfg'}:28: caauthd")
    # Services the portmapper placed: the ports learned from the wire, each saying it was not configured.
    learned = [r for r in doc["rules"] if r["why"][0].startswith("learned:")]
    assert {(r["service"], r["ports"]) for r in learned} >= {("caservd", "1025"), ("cadiscovd", "1027")}
    assert all("not in the configuration" in r["why"][0] and r["to"] == [r["host"]] for r in learned)
    # Dynamic ONC RPC services without a learned port are named, never opened wholesale.
    assert not any(r["ports"] in ("1-65535", "1024-65535") for r in doc["rules"])


def test_rules_without_captures_and_observed_only(capsys):
    code, out, _ = run(["firewall", "rules", *DEMO_ARGS, "--format", "json"], capsys)
    assert code == 0
    plain = json.loads(out)
    assert not any(r["why"][0].startswith("learned:") for r in plain["rules"])
    assert any("no port to open" in u and u.startswith("caservd") for u in plain["not_opened"])
    code, out, _ = run(
        ["firewall", "rules", str(DEMO / "demo.pcap"), *DEMO_ARGS, "--format", "json", "--observed-only"],
        capsys,
    )
    narrowed = json.loads(out)
    assert code == 0 and narrowed["left_out"]
    for r in narrowed["rules"]:
        assert r["to"] and r["from"], r  # every rule narrowed to the addresses that used it
    # observed-only without captures is a usage error
    code, _, err = run(["firewall", "rules", *DEMO_ARGS, "--observed-only"], capsys)
    assert code == 2 and err.startswith("portwitness: error: ")


# --- readers and semantics ------------------------------------------------------------------------------


def test_nft_json_semantics():
    # features.nft.json is `nft -j list ruleset` of features.nft, loaded by nft 1.0.6.
    rs = load_ruleset(str(FIXTURES / "features.nft.json"))
    assert rs.source == "nftables"
    cases = [
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 135), "allowed", "tcp dport @arcserve_tcp"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 6503), "allowed", "@arcserve_tcp"),
        (pkt("tcp", "192.0.2.7", 40000, "10.20.0.10", 135), "dropped", "ip saddr 192.0.2.0/24"),
        (pkt("tcp", "10.30.4.5", 40000, "10.20.0.10", 22), "allowed", "ip saddr @admins"),
        (pkt("tcp", "10.40.4.5", 40000, "10.20.0.10", 22), "dropped", "policy drop"),
        (pkt("tcp", "2001:db8::5", 40000, "2001:db8::1", 22), "allowed", "ip6 saddr 2001:db8::/32"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 2099), "rejected", "reject"),
        (pkt("udp", "10.20.0.50", 40000, "10.20.0.10", 41524), "allowed", "vmap"),
        (pkt("udp", "10.20.0.50", 40000, "10.20.0.10", 161), "dropped", "vmap"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 7001), "allowed", "tcp dport 7001"),
        # return from `services`, then the rest of input: 7002 reaches the policy.
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 7002), "dropped", "policy drop"),
        # goto rpc: accepted there, or back to the base chain's policy (not to input's next rule).
        (pkt("udp", "10.20.0.50", 40000, "10.20.0.10", 111), "allowed", "ip saddr 10.20.0.0/24"),
        (pkt("udp", "10.99.0.50", 40000, "10.20.0.10", 111), "dropped", "policy drop"),
        # the limit statement cannot be evaluated from a capture: said so, not guessed
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 8050), "not evaluated", "limit"),
        # an interface the capture does not tell
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 9000), "not evaluated", "eth1"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 9000, iif="eth1"), "allowed", "eth1"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 9000, iif="eth0"), "dropped", "policy drop"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 20010), "dropped", "!= 10.20.0.10"),
        (pkt("tcp", "10.20.0.10", 40000, "10.20.0.11", 20010), "allowed", "20000-20100 accept"),
        # accepted by inet filter, then dropped by the second base chain (ip extra, priority 10)
        (pkt("tcp", "10.20.0.66", 40000, "10.20.0.10", 7099), "dropped", "ip extra input"),
        (pkt("tcp", "127.0.0.1", 40000, "127.0.0.1", 5555), "allowed", "iifname lo"),
    ]
    for p, verdict, by in cases:
        d = evaluate(rs, p)
        assert d.verdict == verdict, (p, d.by)
        assert by in d.by or by in (d.rule.text if d.rule else ""), (p, d.by)
    reasons = {n.reason for n in rs.not_evaluated}
    assert any("limit" in r for r in reasons)


def test_iptables_save_semantics():
    # features.iptables-save is iptables-save and ip6tables-save (iptables 1.8.9) one after the other.
    rs = load_ruleset(str(FIXTURES / "features.iptables-save"))
    assert rs.source == "iptables" and rs.families == {4, 6}
    cases = [
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 6504), "allowed", "--dports 111,135,6502:6504,7099"),
        (pkt("tcp", "192.0.2.7", 40000, "10.20.0.10", 135), "dropped", "192.0.2.0/24"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 22), "allowed", "-s 10.20.0.50/32"),
        (pkt("tcp", "10.20.0.51", 40000, "10.20.0.10", 22), "dropped", "policy drop"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 2099), "rejected", "REJECT"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 8050), "not evaluated", "limit"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 7001), "allowed", "arcserve"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 7002), "dropped", "policy drop"),
        (pkt("udp", "10.20.0.50", 40000, "10.20.0.10", 111), "allowed", "rpc"),
        (pkt("udp", "10.21.0.50", 40000, "10.20.0.10", 111), "dropped", "policy drop"),
        (pkt("tcp", "10.20.0.50", 40000, "10.20.0.10", 20010), "dropped", "! -s 10.20.0.10/32"),
        # LOG does not decide; the SYN-only rule after it accepts a first packet
        (pkt("tcp", "10.20.0.10", 40000, "10.20.0.11", 20010), "allowed", "--tcp-flags"),
        # IPv6 goes to the ip6tables-save part
        (pkt("tcp", "2001:db8::5", 40000, "2001:db8::1", 22), "allowed", "2001:db8::/32"),
        (pkt("tcp", "2001:db9::5", 40000, "2001:db8::1", 22), "dropped", "policy drop"),
        (pkt("tcp", "2001:db9::5", 40000, "2001:db8::1", 7099), "allowed", "--dport 7099"),
    ]
    for p, verdict, by in cases:
        d = evaluate(rs, p)
        assert d.verdict == verdict, (p, d.by)
        assert by in d.by, (p, d.by)
    (limit,) = [n for n in rs.not_evaluated if "limit" in n.reason]
    assert limit.location.endswith(":14")  # the line in the file, its header comment counted


def test_iptables_v4_only_file_does_not_judge_ipv6():
    text = (FIXTURES / "features.iptables-save").read_text().split("# Generated by ip6tables-save")[0]
    rs = parse_ruleset(text, "v4.rules")
    assert evaluate(rs, pkt("tcp", "2001:db8::5", 1, "2001:db8::1", 22)).verdict == "not evaluated"


@pytest.mark.parametrize("name", ["windows-rules.json", "netsh-verbose.txt"])
def test_windows_exports(name):
    # windows-rules.json: the shape `Get-NetFirewallRule | Select-Object Name, DisplayName,
    # Description, Enabled, Direction, Action, Profile, @{n='Protocol';e={($_ |
    # Get-NetFirewallPortFilter).Protocol}}, ... | ConvertTo-Json` gives in Windows PowerShell 5.1
    # (two spaces after each colon, enumerations as numbers: MSFT_NetFirewallRule's Direction,
    # Action, Enabled and Profile; PowerShell 7's -EnumsAsStrings names, in the last rules).
    # netsh-verbose.txt: the layout of `netsh advfirewall firewall show rule name=all verbose` on
    # Windows Server 2019 (Microsoft's netsh advfirewall documentation), `Ok.` at the end.
    rs = load_ruleset(str(FIXTURES / name))
    assert rs.source == ("windows-json" if name.endswith(".json") else "windows-netsh")
    cases = [
        (pkt("tcp", "10.20.0.77", 50000, "10.20.0.10", 7001), "allowed", "caauthd"),
        # nothing else allows it but the program-scoped rule, which a capture cannot judge
        (pkt("tcp", "10.21.0.77", 50000, "10.20.0.10", 7001), "not evaluated", "service controller"),
        # Block wins over the allow of the whole engine range
        (pkt("tcp", "10.20.0.50", 50000, "10.20.0.10", 6502), "dropped", "Block the GUI"),
        (pkt("tcp", "10.20.0.51", 50000, "10.20.0.10", 6502), "allowed", "engines"),
        # a disabled rule does not allow (the program-scoped one still might)
        (pkt("tcp", "10.20.0.50", 50000, "10.20.0.10", 2099), "not evaluated", "service controller"),
        (pkt("udp", "10.20.0.100", 50000, "10.20.0.10", 41524), "allowed", "discovery"),
        (pkt("udp", "10.20.0.200", 50000, "10.20.0.10", 41524), "dropped", "default inbound action: block"),
        (pkt("udp", "10.20.0.100", 50000, "10.20.0.11", 41524), "dropped", "default inbound action: block"),
    ]
    for p, verdict, by in cases:
        d = evaluate(rs, p)
        assert (d.verdict, by in d.by) == (verdict, True), (p, d.by)
    rs.profile = "domain"
    assert any("program" in n.reason for n in rs.not_evaluated)
    rs.windows = [r for r in rs.windows if "program" not in r.text]
    d = evaluate(rs, pkt("tcp", "10.21.0.77", 50000, "10.20.0.10", 7001))
    assert (d.verdict, d.by) == ("dropped", "default inbound action: block")


def test_windows_json_enumerations_and_line_numbers():
    rs = load_ruleset(str(FIXTURES / "windows-rules.json"))
    by_name = {r.text: r for r in rs.windows}
    assert by_name["Management service plaintext (disabled)"].enabled is False
    assert by_name["Outbound callbacks"].direction == "out"
    assert by_name["Remote Scheduled Tasks Management (RPC-EPMAP)"].local_ports == ((135, 135),)
    assert by_name["Remote Scheduled Tasks Management (RPC-EPMAP)"].profiles == {"domain", "private"}
    assert by_name["Arcserve caauthd (LAN)"].location.endswith(":2")


@pytest.mark.parametrize(
    ("text", "fmt", "line", "message"),
    [
        (
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nnonsense here\nCOMMIT\n",
            "auto",
            4,
            "expected -A",
        ),
        (
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 99999 -j ACCEPT\nCOMMIT\n",
            "auto",
            3,
            "bad port range",
        ),
        ("*filter\n:INPUT ACCEPT [0:0]\n-A FOO -j ACCEPT\nCOMMIT\n", "auto", 3, "not declared"),
        (
            "*filter\n:INPUT ACCEPT [0:0]\n:a - [0:0]\n:b - [0:0]\n-A a -j b\n-A b -j a\nCOMMIT\n",
            "auto",
            6,
            "loop",
        ),
        ("*filter\n:INPUT ACCEPT [0:0]\n", "auto", 0, "no COMMIT"),
        ('{"nftables": [\n{"table": {"family": "inet", "name": "x"}},\n{"rule": ]}', "auto", 3, "not JSON"),
        ("Rule Name: x\n------\nEnabled: Yes\nthis is not a property\n", "auto", 4, "Key: value"),
        ("Rule Name: x\nLocalPort: 70000\n", "netsh", 1, "bad port range"),
        ("hello world\n", "auto", 1, "cannot tell"),
        (
            '{\n  "nftables": [\n    {"metainfo": {}},\n    {\n      "rule": {"family": "inet", "table": "t",'
            ' "chain": "nope", "expr": []}\n    }\n  ]\n}\n',
            "nftables",
            4,
            "unknown chain",
        ),
    ],
)
def test_unparsable_rulesets_name_the_line(tmp_path, capsys, text, fmt, line, message):
    f = tmp_path / "rules.txt"
    f.write_text(text)
    with pytest.raises(RulesetError) as e:
        parse_ruleset(text, str(f), fmt)
    assert e.value.line == line and message in e.value.message
    code, _, err = run(
        ["firewall", "check", str(f), str(DEMO / "demo.pcap"), "--ruleset-format", fmt], capsys
    )
    assert code == 2 and err.count("\n") == 1
    where = f"{f}:{line}: " if line else f"{f}: "
    assert err.startswith(f"portwitness: error: {where}") and message in err


# --- check on the demo ----------------------------------------------------------------------------------


def test_check_demo_against_a_stricter_ruleset(tmp_path, capsys):
    # Only the portmapper, the management service and the callback range: everything the
    # portmapper handed out is blocked, and the configured engines stay closed.
    rules = tmp_path / "strict.rules"
    rules.write_text(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A INPUT -p tcp -m multiport --dports 111,7099 -j ACCEPT\n"
        "-A INPUT -p tcp -m tcp --dport 20000:20100 -j ACCEPT\n"
        "-A INPUT -p tcp -m tcp --dport 9999 -j ACCEPT\n"
        "COMMIT\n"
    )
    out = tmp_path / "check.json"
    code, _, err = run(
        [
            "firewall",
            "check",
            str(rules),
            str(DEMO / "demo.pcap"),
            *DEMO_ARGS,
            "-o",
            str(out),
            "--fail-on",
            "blocked-needed",
        ],
        capsys,
    )
    assert code == 3 and "failing on" in err
    doc = json.loads(out.read_text())
    assert doc["schema"] == "portwitness.firewall-check/1"
    needed = {(a["server_ip"], a["server_port"]) for a in doc["blocked_needed"]}
    assert ("10.20.0.10", 1025) in needed  # caservd, placed by the portmapper
    assert all(a["outcome"] not in ("refused", "unanswered") for a in doc["blocked_needed"])
    allowed = {
        (a["server_port"], a["verdict"])
        for a in doc["attempts"]
        if a["server_port"] in (111, 7099) and a["transport"] == "tcp"
    }
    assert allowed <= {(111, "allowed"), (7099, "allowed")}
    (unmatched,) = doc["unmatched"]
    assert "9999" in unmatched["rule"] and unmatched["location"].endswith(":8")
    closed = {(c["service"], c["ports"]) for c in doc["closed_configured"]}
    assert ("caauthd", "7001") in closed and ("tapeengine", "6502") in closed
    assert not any((c["transport"], c["ports"]) == ("tcp", "111") for c in doc["closed_configured"])
    assert ("catirpc", "111") in {
        (c["service"], c["ports"]) for c in doc["closed_configured"] if c["transport"] == "udp"
    }
    assert doc["summary"]["attempts"] == len(doc["attempts"]) > 0


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "html"])
def test_check_every_report_format(tmp_path, capsys, fmt):
    code, out, err = run(
        [
            "firewall",
            "check",
            str(FIXTURES / "features.iptables-save"),
            str(DEMO / "demo.pcap"),
            "--format",
            fmt,
        ],
        capsys,
    )
    assert code == 0, err
    assert "connection attempts evaluated" in out or "section" in out.splitlines()[0]


def test_check_from_a_dataset(tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["flows", str(DEMO / "demo.pcap"), "-o", f"{ds}/"]) == 0
    capsys.readouterr()
    code, out, _ = run(
        [
            "firewall",
            "check",
            str(FIXTURES / "features.nft.json"),
            "--from-dataset",
            str(ds),
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0
    from_ds = json.loads(out)
    code, out, _ = run(
        [
            "firewall",
            "check",
            str(FIXTURES / "features.nft.json"),
            str(DEMO / "demo.pcap"),
            "--format",
            "json",
        ],
        capsys,
    )
    direct = json.loads(out)
    key = lambda a: (a["transport"], a["client_ip"], a["client_port"], a["server_ip"], a["server_port"])  # noqa: E731
    assert sorted((key(a), a["verdict"], a["by"]) for a in from_ds["attempts"]) == sorted(
        (key(a), a["verdict"], a["by"]) for a in direct["attempts"]
    )
    code, out, _ = run(
        ["firewall", "rules", "--from-dataset", str(ds), *DEMO_ARGS, "--format", "json"], capsys
    )
    assert code == 0 and any(r["why"][0].startswith("learned:") for r in json.loads(out)["rules"])


# --- hostile rulesets ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_hundred_thousand_rule_iptables_save(tmp_path, capsys):
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for i in range(100_000):
        lines.append(
            f'-A INPUT -s 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32 -p tcp -m tcp --dport {1 + i % 60000} -m comment --comment "r{i}" -j ACCEPT'
        )
    lines += ["-A INPUT -p tcp -m tcp --dport 7099 -j ACCEPT", "COMMIT", ""]
    f = tmp_path / "big.rules"
    f.write_text("\n".join(lines))
    t = time.monotonic()
    code, out, err = run(["firewall", "check", str(f), str(DEMO / "demo.pcap"), "--format", "json"], capsys)
    elapsed = time.monotonic() - t
    assert code == 0, err
    doc = json.loads(out)
    to_mgmt = [a for a in doc["attempts"] if a["server_port"] == 7099]
    assert to_mgmt and all(a["verdict"] == "allowed" and a["by"].endswith("-j ACCEPT") for a in to_mgmt)
    assert all(a["by"].startswith(f"{f}:") or a["by"].startswith("policy") for a in doc["attempts"])
    assert len(doc["unmatched"]) >= 99_990
    print(f"100,000 rules checked in {elapsed:.1f} s")


@pytest.mark.parametrize("depth", [70, 100_000])
def test_deeply_nested_nft_json(tmp_path, capsys, depth):
    inner = "[" * depth + "]" * depth
    text = (
        '{"nftables": [{"chain": {"family": "inet", "table": "t", "name": "input", "hook": "input", '
        '"type": "filter", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "t", '
        f'"chain": "input", "expr": [{{"match": {{"op": "==", "left": {inner}, "right": 1}}}}]}}}}]}}'
    )
    f = tmp_path / "deep.json"
    f.write_text(text)
    code, _, err = run(["firewall", "check", str(f), str(DEMO / "demo.pcap")], capsys)
    assert code == 2 and err.count("\n") == 1 and "nested deeper" in err


def test_deeply_nested_windows_json(tmp_path, capsys):
    f = tmp_path / "deep.json"
    f.write_text("[" * 200_000 + "]" * 200_000)
    code, _, err = run(
        ["firewall", "check", str(f), str(DEMO / "demo.pcap"), "--ruleset-format", "windows-json"], capsys
    )
    assert code == 2 and err.count("\n") == 1


def test_long_chain_of_jumps_is_bounded(tmp_path):
    lines = ["*filter", ":INPUT DROP [0:0]"] + [f":c{i} - [0:0]" for i in range(5000)]
    lines.append("-A INPUT -j c0")
    lines += [f"-A c{i} -j c{i + 1}" for i in range(4999)]
    lines += ["-A c4999 -j ACCEPT", "COMMIT", ""]
    rs = parse_ruleset("\n".join(lines), "deep.rules")
    d = evaluate(rs, pkt("tcp", "10.0.0.1", 1, "10.0.0.2", 2))
    assert d.verdict == "not evaluated"


EVIL = (
    "ev\"il' `$(touch /tmp/pwned)` %PATH% & | < > ^ ! ; \u2018x\u2019 --> \\ \r\nNEWLINE\x00\x1b[31m \u202e"
)


def _evil_policy(tmp_path: Path) -> Path:
    p = tmp_path / "evil.toml"
    p.write_text(
        "[[service]]\n"
        f"name = {json.dumps('evil')}\nports = [7777]\nneeded_by = {json.dumps(EVIL)}\nscenario = {json.dumps(EVIL)}\n"
        "[[service]]\n"
        f"name = {json.dumps(EVIL)}\nports = [7778]\nneeded_by = {json.dumps(EVIL)}\n",
        encoding="utf-8",
    )
    return p


def _no_raw_controls(text: str) -> None:
    body = text.replace("\r\n", "\n")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", body), "a raw control character"
    assert all(ord(c) < 128 for c in body), "non-ASCII characters"


def test_hostile_names_escaped_in_every_output(tmp_path, capsys):
    policy = _evil_policy(tmp_path)
    outs = {}
    for fmt in ("nftables", "iptables", "firewalld", "powershell", "netsh", "json"):
        code, out, err = run(["firewall", "rules", "--policy", str(policy), "--format", fmt], capsys)
        assert code == 0, err
        if fmt != "json":
            _no_raw_controls(out)
        outs[fmt] = out
    # PowerShell: every single-quoted string closes on its line; nothing outside quotes but the cmdlet's words
    for line in outs["powershell"].splitlines():
        if (
            line.startswith("#")
            or line == "Remove-NetFirewallRule -Group 'portwitness' -ErrorAction SilentlyContinue"
        ):
            continue
        assert line.startswith("New-NetFirewallRule ")
        outside = re.sub(r"'(?:[^']|'')*'", "''", line)
        assert "'" not in outside.replace("''", "") and not re.search(r"[$`;|&(){}\"]", outside), outside
    # netsh: quotes only around values, no percent, caret, ampersand, pipe or redirection anywhere
    for line in outs["netsh"].split("\r\n"):
        assert not re.search(r"[%^&|<>!]", line), line
        if line.startswith("netsh"):
            assert line.count('"') % 2 == 0
            assert re.fullmatch(r'(?:[^"]|"[^"]*")*', line)
    # firewalld: well-formed XML whose comments keep the text
    for doc in re.split(r"<!-- ===== [^ ]+ ===== -->\n", outs["firewalld"])[1:]:
        ET.fromstring(doc.split("?>", 1)[1])
    # iptables-restore input: every rule line splits into words the way the restore tool reads them
    for line in outs["iptables"].splitlines():
        if line.startswith("-A") and "--dport" in line:
            words = shlex.split(line)
            assert words[words.index("--comment") + 1].startswith("portwitness ")
    # nft: the comment strings hold no double quote inside
    for line in outs["nftables"].splitlines():
        if "dport" in line and not line.lstrip().startswith("#"):
            assert line.count('"') == 2, line
    doc = json.loads(outs["json"])
    assert any(EVIL in w for r in doc["rules"] for w in r["why"])


def test_hostile_rule_names_in_check_reports(tmp_path, capsys):
    rules = tmp_path / "evil.json"
    rules.write_text(
        json.dumps(
            [
                {
                    "DisplayName": "<script>alert(1)</script>" + EVIL,
                    "Enabled": 1,
                    "Direction": 1,
                    "Action": 2,
                    "Protocol": "TCP",
                    "LocalPort": "9",
                }
            ]
        )
    )
    for fmt in ("html", "markdown", "csv", "json", "table"):
        code, out, err = run(
            ["firewall", "check", str(rules), str(DEMO / "demo.pcap"), "--format", fmt], capsys
        )
        assert code == 0, err
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u202e]", out)
        if fmt in ("html", "markdown"):
            assert "<script>" not in out and "&lt;script&gt;" in out


def test_check_for_one_host_uses_its_input_and_output(tmp_path, capsys):
    # The primary's ruleset: it may not call the member back outside 20000-20100 (output), and
    # nothing reaches its engines (input); attempts between other hosts are left out.
    rules = tmp_path / "primary.rules"
    rules.write_text(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n"
        "-A INPUT -p tcp -m multiport --dports 111,7099,2099 -j ACCEPT\n"
        "-A INPUT -p udp -m udp --dport 111 -j ACCEPT\n"
        "-A OUTPUT -p tcp -m tcp --dport 20000:20100 -j ACCEPT\n"
        "-A OUTPUT -p tcp -m multiport --dports 6050,6051 -j ACCEPT\n"
        "COMMIT\n"
    )
    code, out, _ = run(
        [
            "firewall",
            "check",
            str(rules),
            str(DEMO / "demo.pcap"),
            *DEMO_ARGS,
            "--host",
            "10.20.0.10",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)
    by_port = {(a["hook"], a["server_port"]): a for a in doc["attempts"]}
    assert by_port[("output", 20150)]["verdict"] == "dropped"  # the callback outside the range
    assert by_port[("output", 20150)]["by"] == "policy drop of chain ip filter OUTPUT"
    assert by_port[("output", 20077)]["verdict"] == "allowed"
    assert by_port[("input", 6502)]["finding"] == "blocked-needed"
    assert all("10.20.0.10" in (a["client_ip"], a["server_ip"]) for a in doc["attempts"])
    assert doc["summary"]["not_through_host"] == 0  # every demo flow has the primary at one end
    code, out, _ = run(
        [
            "firewall",
            "check",
            str(rules),
            str(DEMO / "demo.pcap"),
            "--host",
            "10.20.0.101",
            "--format",
            "json",
        ],
        capsys,
    )
    agent = json.loads(out)
    assert (
        len(agent["attempts"]) == 1 and agent["summary"]["not_through_host"] == doc["summary"]["attempts"] - 1
    )
    closed = doc["closed_configured"]
    assert closed and all(c["server_ip"] == "10.20.0.10" for c in closed)


def test_firewalld_services_written_to_a_directory(tmp_path, capsys):
    out = tmp_path / "services"
    code, _, err = run(["firewall", "rules", *DEMO_ARGS, "--format", "firewalld", "-o", f"{out}/"], capsys)
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "portwitness-backup-server.xml",
        "portwitness-callback.xml",
        "portwitness-management.xml",
    ]
    for p in out.iterdir():
        root = ET.parse(p).getroot()
        assert root.tag == "service" and root.find("short").text == p.stem
        assert root.findall("port")


def test_windows_json_in_utf16_as_windows_powershell_writes_it(tmp_path):
    f = tmp_path / "rules.json"
    f.write_bytes(b"\xff\xfe" + (FIXTURES / "windows-rules.json").read_text().encode("utf-16-le"))
    rs = load_ruleset(str(f))
    assert rs.source == "windows-json" and len(rs.windows) == 9


@pytest.mark.parametrize("syntax", ["iptables", "windows-json"])
def test_closed_configured_ranges_are_cut_where_the_rules_change(tmp_path, capsys, syntax):
    # The callback range 20000-20100 opened only up to 20050, 20060 refused; 7199 not at all.
    if syntax == "iptables":
        text = (
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -p tcp -m tcp --dport 20060 -j REJECT --reject-with tcp-reset\n"
            "-A INPUT -p tcp -m tcp --dport 20000:20050 -j ACCEPT\n"
            "-A INPUT -p tcp -m tcp --dport 20060:20070 -j ACCEPT\nCOMMIT\n"
        )
        by = {"20051-20059": "policy drop", "20060": "REJECT", "20071-20100": "policy drop"}
        verdicts = {"20060": "rejected"}
    else:
        rules = [
            {
                "DisplayName": "callbacks",
                "Enabled": 1,
                "Direction": 1,
                "Action": 2,
                "Protocol": "TCP",
                "LocalPort": ["20000-20050", "20060-20070"],
            },
            {
                "DisplayName": "no 20060",
                "Enabled": 1,
                "Direction": 1,
                "Action": 4,
                "Protocol": "TCP",
                "LocalPort": "20060",
            },
        ]
        text = json.dumps(rules)
        by = {"20051-20059": "default inbound", "20060": "no 20060", "20071-20100": "default inbound"}
        verdicts = {}
    f = tmp_path / "rules"
    f.write_text(text)
    code, out, _ = run(
        [
            "firewall",
            "check",
            str(f),
            str(DEMO / "demo.pcap"),
            "--mgmt-config",
            str(DEMO / "mgmt.properties"),
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0
    closed = {c["ports"]: c for c in json.loads(out)["closed_configured"] if c["service"] == "mgmt-callback"}
    assert set(closed) == {"20051-20059", "20060", "20071-20100", "7199"}
    for ports, text_by in by.items():
        assert text_by in closed[ports]["by"]
        assert closed[ports]["verdict"] == verdicts.get(ports, "dropped")


def test_an_option_not_modelled_leaves_only_the_packets_it_could_match_undecided():
    rs = parse_ruleset(
        "*filter\n:INPUT DROP [0:0]\n"
        "-A INPUT -p tcp -m tcp --tcp-option 8 --dport 22 -j ACCEPT\n"
        "-A INPUT -p tcp -m tcp --dport 7099 -j ACCEPT\nCOMMIT\n",
        "opt.rules",
    )
    assert [(n.location, n.reason) for n in rs.not_evaluated] == [("opt.rules:3", "tcp --tcp-option")]
    assert evaluate(rs, pkt("tcp", "10.0.0.1", 40000, "10.0.0.2", 7099)).verdict == "allowed"
    undecided = evaluate(rs, pkt("tcp", "10.0.0.1", 40000, "10.0.0.2", 22))
    assert (undecided.verdict, undecided.by) == (
        "not evaluated",
        "opt.rules:3: INPUT -p tcp -m tcp --tcp-option 8 --dport 22 -j ACCEPT",
    )


# --- any input: a ruleset or one error line, never a crash --------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.sampled_from(["tcp", "udp", "@s", "ip", "10.0.0.0/8", "lo", "accept", "filter", "input", "inet"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "family",
                    "table",
                    "name",
                    "chain",
                    "hook",
                    "type",
                    "prio",
                    "policy",
                    "expr",
                    "match",
                    "op",
                    "left",
                    "right",
                    "payload",
                    "protocol",
                    "field",
                    "meta",
                    "key",
                    "set",
                    "elem",
                    "range",
                    "prefix",
                    "addr",
                    "len",
                    "vmap",
                    "data",
                    "jump",
                    "target",
                    "accept",
                    "drop",
                    "ct",
                    "rule",
                    "counter",
                    "xt",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)
_PACKETS = [pkt("tcp", "10.0.0.1", 40000, "10.0.0.2", 22), pkt("udp", "::1", 5353, "::1", 111)]


def _never_crashes(text: str, fmt: str) -> None:
    try:
        rs = parse_ruleset(text, "any", fmt)
    except RulesetError:
        return
    for p in _PACKETS:
        for hook in ("input", "output"):
            evaluate(rs, p, hook)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["chain", "rule", "set", "map", "table"]), _JSON, min_size=1, max_size=1
        ),
        max_size=6,
    )
)
def test_any_nft_json_is_a_ruleset_or_an_error(items):
    _never_crashes(json.dumps({"nftables": items}), "nftables")


_WORDS = [
    "-A",
    "INPUT",
    "OUTPUT",
    "x",
    "-p",
    "tcp",
    "udp",
    "!",
    "-s",
    "10.0.0.1",
    "::1/64",
    "-m",
    "tcp",
    "multiport",
    "conntrack",
    "--dport",
    "--dports",
    "1:5",
    "70000",
    "--ctstate",
    "NEW",
    "-j",
    "ACCEPT",
    "DROP",
    "x",
    "RETURN",
    "-g",
    "--tcp-flags",
    "SYN",
    "ALL",
    '"q',
    '"a b"',
    "\\",
    "--comment",
    "-i",
    "lo+",
    "--src-range",
    "1.1.1.1-1.1.1.9",
]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.lists(st.sampled_from(_WORDS), max_size=10), max_size=6))
def test_any_iptables_save_is_a_ruleset_or_an_error(lines):
    head = "*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:x - [0:0]\n"
    _never_crashes(head + "".join(" ".join(w) + "\n" for w in lines) + "COMMIT\n", "iptables")


_WIN = st.dictionaries(
    st.sampled_from(
        [
            "DisplayName",
            "Enabled",
            "Direction",
            "Action",
            "Profile",
            "Protocol",
            "LocalPort",
            "RemotePort",
            "LocalAddress",
            "RemoteAddress",
            "Program",
        ]
    ),
    st.none()
    | st.booleans()
    | st.integers(-1, 70000)
    | st.sampled_from(
        ["Any", "TCP", "In", "Block", "1-5", "x-y", "10.0.0.0/8", "LocalSubnet", "RPC", "Domain"]
    )
    | st.lists(st.sampled_from(["1", "2-3", "Any", "::1"]), max_size=3),
    max_size=8,
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(_WIN, max_size=5))
def test_any_windows_json_is_a_ruleset_or_an_error(rules):
    _never_crashes(json.dumps(rules), "windows-json")
    netsh = "".join(
        "Rule Name: r\n" + "".join(f"{k}: {v}\n" for k, v in r.items() if k not in ("DisplayName",)) + "\n"
        for r in rules
    )
    _never_crashes(
        netsh.replace("Direction:", "Direction:")
        .replace("Profile:", "Profiles:")
        .replace("LocalAddress", "LocalIP")
        .replace("RemoteAddress", "RemoteIP"),
        "netsh",
    )


def test_iptables_save_with_counters():
    text = "*filter\n:INPUT DROP [10:600]\n[3:180] -A INPUT -p tcp -m tcp --dport 7099 -j ACCEPT\nCOMMIT\n"
    rs = parse_ruleset(text, "counted.rules")
    assert (
        evaluate(rs, pkt("tcp", "10.0.0.1", 40000, "10.0.0.2", 7099)).by
        == "counted.rules:3: INPUT -p tcp -m tcp --dport 7099 -j ACCEPT"
    )


def test_observed_only_narrows_a_configured_dynamic_range_to_the_ports_handed_out(tmp_path, capsys):
    policy = tmp_path / "dyn.toml"
    policy.write_text(
        '[[service]]\nname = "caservd"\nports = ["1024-1100"]\ndynamic = true\n'
        '[[service]]\nname = "mgmt-ssl"\nports = ["7000-7100"]\n'
    )
    code, out, _ = run(
        [
            "firewall",
            "rules",
            str(DEMO / "demo.pcap"),
            "--policy",
            str(policy),
            "--format",
            "json",
            "--observed-only",
        ],
        capsys,
    )
    assert code == 0
    rules = {r["service"]: r for r in json.loads(out)["rules"]}
    assert rules["caservd"]["ports"] == "1025"  # what the portmapper handed out, not the range
    assert rules["mgmt-ssl"]["ports"] == "7000-7100"  # a fixed range stays as configured
    assert rules["caservd"]["from"] == ["10.20.0.50"] and rules["caservd"]["to"] == ["10.20.0.10"]
