"""Interop: DCE/RPC over an SMB named pipe between real programs. Samba's samba-dcerpcd (the RPC
services) behind smbd (SMB on 445), queried by Samba's rpcclient over
`ncacn_np:127.0.0.1[\\pipe\\epmapper]` with an anonymous session, captured with tcpdump inside
fresh namespaces (tests/interop_peers.py), as tests/test_interop.py does for the endpoint mapper on
135. What portwitness learns from the ept_lookup answers read out of the pipe must be what
rpcclient printed. The same on SMB1 (NT LM 0.12, `client ipc max protocol = NT1`), where rpcclient
writes a request longer than one fragment in Write AndX and reads a response's later fragments
with Read AndX, held against what tshark decodes from the same capture."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from interop_peers import Loopback, capture, serve
from test_interop import DYNAMIC_PORTS, EPM, SAMBA_DCERPCD, SMB_CONF, parse_epmlookup

import portwitness as pw
from portwitness.rpcinfo import msrpc_endpoints

pytestmark = pytest.mark.interop

SMBD = "/usr/sbin/smbd"
PIPE_BINDING = "ncacn_np:127.0.0.1[\\pipe\\epmapper]"
LSA_BINDING = "ncacn_np:127.0.0.1[\\pipe\\lsarpc]"
LSARPC = "12345778-1234-abcd-ef00-0123456789ab"
# SMB1 both ways: smbd accepts it, rpcclient's IPC$ connections ask for nothing newer.
NT1_CONF = """\
  server min protocol = NT1
  client min protocol = NT1
  client ipc min protocol = NT1
  client ipc max protocol = NT1
"""
# lsa_LookupNames of this many names: a request of several fragments and a response of two.
LOOKUP_NAMES = 600


@dataclass
class NamedPipe:
    epmlookup: set[tuple]
    stdout: str
    cap: pw.Capture


@pytest.fixture(scope="module")
def named_pipe(tmp_path_factory) -> NamedPipe:
    if os.geteuid() != 0:
        pytest.fail("interop tests need root (CI runs them as root through .ci/run)", pytrace=False)
    missing = [
        exe for exe in (SAMBA_DCERPCD, SMBD, "rpcclient", "tcpdump", "unshare") if shutil.which(exe) is None
    ]
    if missing:
        pytest.fail(f"interop tests need {', '.join(missing)}: bash .ci/run installs them", pytrace=False)
    with Loopback(tmp_path_factory.mktemp("interop-np")) as lo:
        d = lo.workdir / "samba"
        for sub in ("state", "lock", "private", "cache", "run", "bind-dns"):
            (d / sub).mkdir(parents=True)
        conf = d / "smb.conf"
        conf.write_text(
            SMB_CONF.format(d=d, lo=DYNAMIC_PORTS[0], hi=DYNAMIC_PORTS[1]) + "  smb ports = 445\n"
        )
        common = [f"--configfile={conf}", "--foreground", "--no-process-group", "--debug-stdout", "-d", "1"]
        pcap = lo.workdir / "named-pipe.pcap"
        rpcclient = ["rpcclient", f"--configfile={conf}", "-U%"]
        with (
            serve(lo, "samba-dcerpcd", [SAMBA_DCERPCD, *common, "--libexec-rpcds"]),
            serve(lo, "smbd", [SMBD, *common]),
        ):
            lo.wait_listening(135)
            lo.wait_listening(445)
            with capture(lo, pcap, "tcp port 445"):
                run = lo.run([*rpcclient, PIPE_BINDING, "-c", "epmlookup"], check=True)
        return NamedPipe(parse_epmlookup(run.stdout), run.stdout, pw.decode(pcap))


@dataclass
class Smb1Pipe:
    stdout: str
    pcap: Path
    cap: pw.Capture


@pytest.fixture(scope="module")
def smb1_pipe(tmp_path_factory) -> Smb1Pipe:
    if os.geteuid() != 0:
        pytest.fail("interop tests need root (CI runs them as root through .ci/run)", pytrace=False)
    with Loopback(tmp_path_factory.mktemp("interop-np1")) as lo:
        d = lo.workdir / "samba"
        for sub in ("state", "lock", "private", "cache", "run", "bind-dns"):
            (d / sub).mkdir(parents=True)
        conf = d / "smb.conf"
        conf.write_text(
            SMB_CONF.format(d=d, lo=DYNAMIC_PORTS[0], hi=DYNAMIC_PORTS[1]) + "  smb ports = 445\n" + NT1_CONF
        )
        common = [f"--configfile={conf}", "--foreground", "--no-process-group", "--debug-stdout", "-d", "1"]
        pcap = lo.workdir / "named-pipe-nt1.pcap"
        names = " ".join(f"pwuser{i:04d}" for i in range(LOOKUP_NAMES))
        with (
            serve(lo, "samba-dcerpcd", [SAMBA_DCERPCD, *common, "--libexec-rpcds"]),
            serve(lo, "smbd", [SMBD, *common]),
        ):
            lo.wait_listening(135)
            lo.wait_listening(445)
            with capture(lo, pcap, "tcp port 445"):
                argv = ["rpcclient", f"--configfile={conf}", "-U%", LSA_BINDING, "-c", f"lookupnames {names}"]
                run = lo.run(argv)
        # None of the names exists: rpcclient says so, having had its answer.
        assert "NT_STATUS_NONE_MAPPED" in run.stdout + run.stderr, run.stderr
        return Smb1Pipe(run.stdout, pcap, pw.decode(pcap))


def tshark_rows(pcap: Path, display_filter: str, *fields: str) -> list[list[str]]:
    argv = ["tshark", "-r", str(pcap), "-Y", display_filter, "-T", "fields"]
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_smb1_write_andx_and_read_andx_carry_the_calls(smb1_pipe):
    pcap, cap = smb1_pipe.pcap, smb1_pipe.cap
    # What tshark decodes: SMB1 only, and fragments of DCE/RPC in Write AndX (0x2f) requests and in
    # Read AndX (0x2e) responses, besides those of TransactNmPipe (0x25).
    assert tshark_rows(pcap, "smb2", "frame.number") == []
    carriers = {row[0].split(",")[0] for row in tshark_rows(pcap, "dcerpc", "smb.cmd")}
    assert {"0x2f", "0x2e", "0x25"} <= carriers
    binds = {
        (int(c), u)
        for c, u in tshark_rows(pcap, "dcerpc.pkt_type == 11", "dcerpc.cn_call_id", "dcerpc.cn_bind_to_uuid")
    }
    requests = tshark_rows(pcap, "dcerpc.pkt_type == 0", "dcerpc.cn_call_id", "dcerpc.opnum")
    fragments: dict[tuple[int, int], int] = {}
    for call_id, opnum in requests:
        key = (int(call_id), int(opnum))
        fragments[key] = fragments.get(key, 0) + 1
    assert max(fragments.values()) > 1, fragments  # the LookupNames request spans Write AndX PDUs
    rows = cap.dcerpc_calls.filter(pipe="lsarpc").sort("ts")
    assert {
        (r["call_id"], r["interface_uuid"]) for r in rows.filter(ptype="bind").iter_rows(named=True)
    } == binds
    assert rows.filter(ptype="bind")["bind_result"].to_list() == ["acceptance"]
    got = rows.filter(ptype="request")
    assert {(r["call_id"], r["opnum"]): r["fragments"] for r in got.iter_rows(named=True)} == fragments
    assert set(got["interface_uuid"]) == {LSARPC}
    # Every request answered: the LookupNames response's last fragment came by Read AndX.
    assert got["reply"].to_list() == ["response"] * got.height
    assert cap.dcerpc_calls.height == rows.height  # every call on the pipe, named by it


def test_smb1_flow_is_the_pipes(smb1_pipe):
    cap = smb1_pipe.cap
    flow = cap.flows.filter(server_port=445).row(0, named=True)
    assert (flow["app"], flow["dcerpc_interface"], flow["orientation"]) == ("dcerpc", LSARPC, "syn")
    assert cap.stats["smb_pipes"] == 1 and cap.stats["smb_encrypted"] == 0
    assert cap.anomaly_counts() == {}, cap.anomalies.to_dicts()


def test_rpcclient_listed_endpoints(named_pipe):
    # The oracle is not empty: the endpoint mapper itself and Samba's services on dynamic ports.
    assert (EPM, "3.0", 135) in named_pipe.epmlookup, named_pipe.stdout
    assert any(DYNAMIC_PORTS[0] <= port <= DYNAMIC_PORTS[1] for _, _, port in named_pipe.epmlookup)


def test_endpoints_learned_through_the_pipe_equal_epmlookup(named_pipe):
    rows = msrpc_endpoints(named_pipe.cap).filter(server="127.0.0.1", protocol="ncacn_ip_tcp")
    learned = {(r["interface"], r["version"], r["port"]) for r in rows.iter_rows(named=True)}
    assert learned == named_pipe.epmlookup


def test_the_pipe_carries_the_endpoint_mapper(named_pipe):
    cap = named_pipe.cap
    epm = cap.dcerpc_calls.filter(pipe="epmapper")
    assert set(epm["interface_uuid"]) == {EPM}
    assert set(epm.filter(ptype="request")["opnum"]) == {2}  # ept_lookup, batch after batch
    assert epm.filter(ptype="bind")["bind_result"].to_list() == ["acceptance"]
    flow = cap.flows.filter(server_port=445).row(0, named=True)
    assert (flow["app"], flow["dcerpc_interface"], flow["orientation"]) == ("dcerpc", EPM, "syn")
    assert cap.stats["smb_encrypted"] == 0 and cap.stats["smb_pipes"] == 1
    assert all(m["flow_id"] == flow["flow_id"] for m in cap.mappings.to_dicts())


def test_nothing_is_left_unread(named_pipe):
    assert named_pipe.cap.anomaly_counts() == {}, named_pipe.cap.anomalies.to_dicts()
    assert Path(named_pipe.cap.captures["capture"][0]).exists()
