"""The generated nftables and iptables rules against the kernel: `nft -c -f` and
`iptables-restore --test` accept them; then, live on one end of a veth pair between two private
network namespaces (tests/firewall_netns.py), a real TCP or UDP connection is made from the other
end for every flow of the demo capture and of a generated Arcserve scenario, from the flow's own
addresses and ports. Every connection the rules must allow gets through and every other is
dropped, and `firewall check` of the ruleset the kernel then lists (`nft -j list ruleset`,
`iptables-save`) predicts exactly what the kernel did, connection by connection."""

from __future__ import annotations

import json
import os
import shutil
from importlib.resources import files
from pathlib import Path

import pytest
from firewall_netns import Netns, veth_pair

import portwitness as pw
from conftest import generate_capture
from portwitness.audit import audit
from portwitness.cli import main
from portwitness.config import load_config
from portwitness.firewall.plan import allow_list

pytestmark = [pytest.mark.interop, pytest.mark.slow]

DEMO = Path(str(files("portwitness") / "demo"))
DEMO_ARGS = ["--config", str(DEMO / "PortsConfig.cfg"), "--mgmt-config", str(DEMO / "mgmt.properties")]
PROGRAMS = {
    "nft": "nftables",
    "iptables-restore": "iptables",
    "iptables-save": "iptables",
    "ip": "iproute2",
    "unshare": "util-linux",
    "nsenter": "util-linux",
}
TIMEOUT = 0.6  # seconds a dropped attempt waits; an allowed one on a veth answers in microseconds
RETRY_TIMEOUT = 3.0


@pytest.fixture(scope="module", autouse=True)
def _root_and_programs():
    # CI runs as root with these installed (.ci/run): missing, the tests fail, they never skip.
    if os.geteuid() != 0:
        pytest.fail(
            "the firewall kernel tests need root: they make network namespaces and load rules", pytrace=False
        )
    missing = sorted({pkg for exe, pkg in PROGRAMS.items() if shutil.which(exe) is None})
    if missing:
        pytest.fail(
            f"the firewall kernel tests need {', '.join(missing)}: bash .ci/run installs them", pytrace=False
        )


@pytest.fixture(scope="module")
def link():
    fw, peer = Netns("fw"), Netns("peer")
    try:
        veth_pair(fw, peer)
        fw.start_agent()
        peer.start_agent()
        yield fw, peer
    finally:
        fw.close()
        peer.close()


def _rounds(flows: list[dict]) -> list[list[dict]]:
    """Flows grouped so that within a group no address is a server on one end and a client on the
    other: each group's servers go on the firewall's end, its clients on the peer's."""
    rounds: list[tuple[set, set, list]] = []
    for f in flows:
        for servers, clients, group in rounds:
            if f["server_ip"] not in clients and f["client_ip"] not in servers:
                servers.add(f["server_ip"])
                clients.add(f["client_ip"])
                group.append(f)
                break
        else:
            rounds.append(({f["server_ip"]}, {f["client_ip"]}, [f]))
    return [g for _, _, g in rounds]


def _kernel(link, flows: list[dict]) -> dict[tuple, str]:
    fw, peer = link
    fw.ask(
        op="listen",
        tcp=sorted({f["server_port"] for f in flows if f["transport"] == "tcp"}),
        udp=sorted({f["server_port"] for f in flows if f["transport"] == "udp"}),
    )
    out = {}
    for group in _rounds(flows):
        fw.ask(op="addrs", dev="fw0", addresses=sorted({f["server_ip"] for f in group}))
        peer.ask(op="addrs", dev="peer0", addresses=sorted({f["client_ip"] for f in group}))
        attempts = [
            {
                "transport": f["transport"],
                "src": f["client_ip"],
                "sport": f["client_port"],
                "dst": f["server_ip"],
                "dport": f["server_port"],
            }
            for f in group
        ]
        results = peer.ask(op="connect", attempts=attempts, timeout=TIMEOUT)["results"]
        # A dropped attempt is tried again with more time, so that a loaded machine's slow answer
        # is never taken for a drop (the kernel's drops do not change).
        again = [i for i, r in enumerate(results) if r == "dropped"]
        if again:
            slow = peer.ask(op="connect", attempts=[attempts[i] for i in again], timeout=RETRY_TIMEOUT)[
                "results"
            ]
            for i, r in zip(again, slow, strict=True):
                results[i] = r
        out.update({_key(f): r for f, r in zip(group, results, strict=True)})
    return out


def _key(f: dict) -> tuple:
    return (f["transport"], f["client_ip"], f["client_port"], f["server_ip"], f["server_port"])


def _must_allow(allows, f: dict) -> bool:
    """The generated rules' meaning, written out independently of the evaluator."""
    return any(
        a.active
        and a.transport == f["transport"]
        and any(f["server_port"] in r for r in a.ports)
        and (not a.dsts or f["server_ip"] in a.dsts)
        and (not a.peers or f["client_ip"] in a.peers)
        for a in allows
    )


def _attempts(cap, policy, others: int | None = None) -> list[dict]:
    """One attempt per distinct 5-tuple of the capture (self-talk left out); with `others`, every
    flow attributed to a service and only the first `others` of the rest."""
    seen, out, rest = set(), [], 0
    for f in audit(cap, policy).flows.sort("first_ts").to_dicts():
        if (
            f["client_ip"] == f["server_ip"]
            or _key(f) in seen
            or not f["client_port"]
            or not f["server_port"]
        ):
            continue
        if others is not None and f["service"] is None:
            if rest >= others:
                continue
            rest += 1
        seen.add(_key(f))
        out.append(f)
    return out


def _check(tmp_path: Path, ruleset_text: str, capture_args: list[str], capsys) -> dict[tuple, str]:
    f = tmp_path / "listed.ruleset"
    f.write_text(ruleset_text)
    code = main(["firewall", "check", str(f), *capture_args, "--iif", "fw0", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    return {_key(a): a["verdict"] for a in json.loads(out)["attempts"]}


KERNEL_TO_VERDICT = {"allowed": "allowed", "dropped": "dropped", "refused": "rejected"}


def _scenario(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenario") / "arcserve.pcap"
    return generate_capture(path, "--size", "6M", "--flows", "4000", "--seed", "26")


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    demo_policy = load_config(DEMO / "PortsConfig.cfg", DEMO / "mgmt.properties")
    scenario = _scenario(tmp_path_factory)
    return {
        "demo": ([str(DEMO / "demo.pcap"), *DEMO_ARGS], pw.decode(str(DEMO / "demo.pcap")), demo_policy),
        "demo-observed": (
            [str(DEMO / "demo.pcap"), *DEMO_ARGS, "--observed-only"],
            pw.decode(str(DEMO / "demo.pcap")),
            demo_policy,
        ),
        "scenario": ([str(scenario)], pw.decode(str(scenario)), None),
    }


@pytest.mark.parametrize("case", ["demo", "demo-observed", "scenario"])
@pytest.mark.parametrize("syntax", ["nftables", "iptables"])
def test_kernel_agrees_with_the_rules_and_the_check(link, cases, tmp_path, capsys, case, syntax):
    args, cap, policy = cases[case]
    fw, _ = link
    assert main(["firewall", "rules", *args, "--format", syntax]) == 0
    rules = capsys.readouterr().out
    observed = "--observed-only" in args
    allows = allow_list(policy, audit(cap, policy).flows, observed_only=observed).allows
    flows = _attempts(cap, policy, others=60 if case == "scenario" else None)
    assert flows
    fw.ask(op="run", argv=["nft", "flush", "ruleset"], stdin="")
    if syntax == "nftables":
        test = fw.ask(op="run", argv=["nft", "-c", "-f", "-"], stdin=rules)
        assert test["rc"] == 0, test["stderr"]
        load = fw.ask(op="run", argv=["nft", "-f", "-"], stdin=rules)
        listed = fw.ask(op="run", argv=["nft", "-j", "list", "ruleset"], stdin="")
    else:
        assert main(["firewall", "rules", *args, "--format", "ip6tables"]) == 0
        rules6 = capsys.readouterr().out
        for tool, text in (("iptables-restore", rules), ("ip6tables-restore", rules6)):
            test = fw.ask(op="run", argv=[tool, "--test"], stdin=text)
            assert test["rc"] == 0, test["stderr"]
            load = fw.ask(op="run", argv=[tool], stdin=text)
            assert load["rc"] == 0, load["stderr"]
        # The two saves one after the other, as an administrator would hand them in.
        listed = fw.ask(op="run", argv=["sh", "-c", "iptables-save && ip6tables-save"], stdin="")
    assert load["rc"] == 0, load["stderr"]
    assert listed["rc"] == 0, listed["stderr"]
    try:
        kernel = _kernel(link, flows)
    finally:
        fw.ask(op="run", argv=["nft", "flush", "ruleset"], stdin="")
    want = {_key(f): ("allowed" if _must_allow(allows, f) else "dropped") for f in flows}
    assert kernel == want
    outcomes = set(kernel.values())
    assert "allowed" in outcomes and ("dropped" in outcomes or case == "demo-observed")
    if case == "scenario":
        # Both transports and both address families went through the kernel.
        assert {k[0] for k in kernel} == {"tcp", "udp"} and any(":" in k[1] for k in kernel)
    predicted = _check(tmp_path, listed["stdout"], [a for a in args if a != "--observed-only"], capsys)
    assert {k: predicted[k] for k in kernel} == {k: KERNEL_TO_VERDICT[v] for k, v in kernel.items()}


FIXTURES = Path(__file__).resolve().parent / "firewall"


@pytest.mark.parametrize("ruleset", ["features.nft", "features.iptables-save"])
def test_kernel_agrees_with_the_check_on_hand_written_rulesets(link, cases, tmp_path, capsys, ruleset):
    # Sets, verdict maps, jumps, gotos, returns, a second base chain, negations, REJECT: every
    # demo flow the check can decide is decided as the kernel does (refused where it rejects).
    args, cap, policy = cases["demo"]
    fw, _ = link
    text = (FIXTURES / ruleset).read_text()
    fw.ask(op="run", argv=["nft", "flush", "ruleset"], stdin="")
    if ruleset.endswith(".nft"):
        loads = [("nft", "-f", "-", text)]
    else:
        v4, v6 = text.split("# Generated by ip6tables-save")
        loads = [("iptables-restore", v4), ("ip6tables-restore", "# Generated by ip6tables-save" + v6)]
    for *argv, stdin in loads:
        done = fw.ask(op="run", argv=argv, stdin=stdin)
        assert done["rc"] == 0, done["stderr"]
    lister = (
        ["nft", "-j", "list", "ruleset"]
        if ruleset.endswith(".nft")
        else ["sh", "-c", "iptables-save && ip6tables-save"]
    )
    listed = fw.ask(op="run", argv=lister, stdin="")
    assert listed["rc"] == 0, listed["stderr"]
    flows = _attempts(cap, policy)
    try:
        kernel = _kernel(link, flows)
    finally:
        fw.ask(op="run", argv=["nft", "flush", "ruleset"], stdin="")
    predicted = _check(tmp_path, listed["stdout"], args, capsys)
    decided = {k: v for k, v in predicted.items() if k in kernel and v != "not evaluated"}
    assert len(decided) >= len(kernel) - 2
    assert decided == {k: KERNEL_TO_VERDICT[kernel[k]] for k in decided}
    assert {"allowed", "dropped", "rejected"} <= set(decided.values())


def test_hostile_names_load_safely(link, tmp_path, capsys):
    # Quotes, a command substitution, percent signs, control characters and a line break in the
    # configuration's text: nft and iptables-restore take the generated files as rules, nothing else.
    from test_firewall import _evil_policy

    fw, _ = link
    policy = _evil_policy(tmp_path)
    for fmt, argv in (
        ("nftables", ["nft", "-c", "-f", "-"]),
        ("iptables", ["iptables-restore", "--test"]),
        ("ip6tables", ["ip6tables-restore", "--test"]),
    ):
        assert main(["firewall", "rules", "--policy", str(policy), "--format", fmt]) == 0
        text = capsys.readouterr().out
        done = fw.ask(op="run", argv=argv, stdin=text)
        assert done["rc"] == 0, done["stderr"]
    assert not Path("/tmp/pwned").exists()
