"""Interop: DCE/RPC over an SMB named pipe between real programs. Samba's samba-dcerpcd (the RPC
services) behind smbd (SMB on 445), queried by Samba's rpcclient over
`ncacn_np:127.0.0.1[\\pipe\\epmapper]` with an anonymous session, captured with tcpdump inside
fresh namespaces (tests/interop_peers.py), as tests/test_interop.py does for the endpoint mapper on
135. What portwitness learns from the ept_lookup answers read out of the pipe must be what
rpcclient printed."""

from __future__ import annotations

import os
import shutil
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
