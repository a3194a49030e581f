"""DCE/RPC over SMB named pipes (ncacn_np): the pipe each call rode on, the calls and binds, the
flow's interface and the endpoint mapper's answers over \\pipe\\epmapper, on the real captures of
shared/captures/real-networks and the generated smb_pipe.pcap and smb1_pipe.pcap (tshark's frame
numbers below)."""

from __future__ import annotations

import struct

import polars as pl

import portwitness as pw
from conftest import PCAPS, SHARED_CAPTURES

NETWORKS = SHARED_CAPTURES / "real-networks"
SRVSVC = "4b324fc8-1670-01d3-1278-5a47bf6ee188"
LSARPC = "12345778-1234-abcd-ef00-0123456789ab"
EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
TAPE_ENGINE = "62b93df0-8b02-11ce-876c-00805f842837"


def calls(cap, **where):
    return cap.dcerpc_calls.filter(**where).sort("ts")


def test_smb1_nt_create_and_transact_nm_pipe():
    cap = pw.decode(NETWORKS / "zeek-raw_ntlm_in_smb.pcap")
    # NT Create AndX \srvsvc (frame 28): bind SRVSVC v3.0 (31) accepted (32), NetShareEnumAll (34/35).
    srvsvc = calls(cap, pipe="srvsvc")
    assert srvsvc.select(
        "ptype", "call_id", "interface_uuid", "interface_version", "opnum", "reply"
    ).rows() == [
        ("bind", 3, SRVSVC, "3.0", None, "bind_ack"),
        ("request", 2, SRVSVC, "3.0", 15, "response"),
    ]
    assert srvsvc["bind_result"][0] == "acceptance"
    # \lsarpc (frame 51): bind LSARPC v0.0 (54/55), GetUserName 45, OpenPolicy2 44, LookupNames 14, Close 0.
    lsa = calls(cap, pipe="lsarpc")
    assert lsa["interface_uuid"].unique().to_list() == [LSARPC]
    assert lsa.filter(ptype="request")["opnum"].to_list() == [45, 44, 14, 0]
    assert lsa.filter(ptype="request")["reply"].to_list() == ["response"] * 4
    # All of it inside 445: one flow, no dynamic port, no mapping.
    flow = cap.flows.filter(client_port=56062).row(0, named=True)
    assert (flow["server_port"], flow["app"], flow["dcerpc_interface"]) == (445, "dcerpc", SRVSVC)
    assert cap.mappings.height == 0 and set(cap.dcerpc_calls["server_port"]) == {445}
    assert cap.stats["smb_pipes"] == 2 and cap.stats["smb_encrypted"] == 0


def test_smb2_write_read_and_transceive():
    cap = pw.decode(NETWORKS / "attack-Discovery_dcerp_srvsvc_NetShareEnum.pcapng")
    rows = calls(cap, pipe="srvsvc")
    binds = rows.filter(ptype="bind")
    # WRITE (frames 17, 29) binds SRVSVC with NDR, NDR64 and bind-time features; READ (20, 32)
    # answers 2,0,3: NDR64 accepted.
    assert binds["bind_result"].to_list() == ["provider_rejection", "acceptance", "negotiate_ack"] * 2
    assert binds["context_id"].to_list() == [0, 1, 2] * 2
    # IOCTL FSCTL_PIPE_TRANSCEIVE: NetShareEnumAll (21/22) and NetSrvGetInfo (33/34), context 1.
    requests = rows.filter(ptype="request")
    assert requests.select("opnum", "context_id", "reply").rows() == [
        (15, 1, "response"),
        (21, 1, "response"),
    ]
    flow = cap.flows.row(0, named=True)
    assert (flow["server_port"], flow["orientation"], flow["dcerpc_interface"]) == (445, "well_known", SRVSVC)
    # Signed SMB3 is read (signing hides nothing) and counted.
    assert cap.stats["smb_signed"] > 0 and cap.stats["smb_pipes"] == 2


def test_file_transfer_over_smb_is_not_a_pipe():
    # smbexec writes __LegitFile on C$ over SMB2: no pipe, no DCE/RPC row on 445.
    cap = pw.decode(NETWORKS / "attack-LM_smbexec_smb_dcerpc_svcctl_epm.pcapng")
    assert cap.stats["smb_pipes"] == 0 and cap.stats["smb_messages"] > 0
    assert cap.dcerpc_calls.filter(server_port=445).height == 0
    assert cap.anomaly_counts() == {}


def test_endpoint_mapper_over_a_pipe_is_learned():
    cap = pw.decode(PCAPS / "smb_pipe.pcap")
    epm = calls(cap, pipe="epmapper")
    # The bind_ack was read in two READs (the first STATUS_BUFFER_OVERFLOW), the ept_map response
    # in an IOCTL output that overflowed and a READ after it.
    assert epm.select("ptype", "interface_uuid", "opnum", "reply").rows() == [
        ("bind", EPM, None, "bind_ack"),
        ("request", EPM, 3, "response"),
    ]
    learned = cap.mappings.filter(source="epm.map").row(0, named=True)
    assert (learned["server_ip"], learned["port"], learned["interface_uuid"]) == (
        "10.20.0.20",
        6502,
        TAPE_ENGINE,
    )
    smb_flow = cap.flows.filter(server_port=445)["flow_id"][0]
    assert learned["flow_id"] == smb_flow
    # The related WRITE of a CREATE + WRITE compound binds SAMR on the new pipe, not on epmapper.
    samr = calls(cap, pipe="samr")
    assert samr.select("ptype", "opnum", "reply").rows() == [
        ("bind", None, "bind_ack"),
        ("request", 6, "response"),
    ]
    tape = cap.flows.filter(server_port=6502).row(0, named=True)
    assert (tape["app"], tape["dcerpc_interface"]) == ("dcerpc", TAPE_ENGINE)
    assert cap.dcerpc_calls.filter(pl.col("server_port") == 6502)["pipe"].null_count() == 2


def test_smb1_write_andx_and_read_andx():
    cap = pw.decode(PCAPS / "smb1_pipe.pcap")
    # NT Create AndX \epmapper -> FID 0x4000 (frames 4/5); Write AndX (WriteMode 0x0008) carries the
    # bind (7), Read AndX its bind_ack (9/10); ept_map written in raw mode (0x000c: a 2-byte length
    # first) by a Write AndX chained to a Read AndX (11), whose response (12, STATUS_BUFFER_OVERFLOW)
    # holds the answer's first 40 bytes, a second Read AndX the rest (13/14).
    epm = calls(cap, pipe="epmapper")
    assert epm.select("ptype", "call_id", "interface_uuid", "opnum", "reply").rows() == [
        ("bind", 1, EPM, None, "bind_ack"),
        ("request", 2, EPM, 3, "response"),
    ]
    learned = cap.mappings.filter(source="epm.map").row(0, named=True)
    assert (learned["server_ip"], learned["port"], learned["interface_uuid"]) == (
        "10.20.0.20",
        6502,
        TAPE_ENGINE,
    )
    # \lsarpc -> FID 0x4001 (16/17): bind (18, 20/21), lsa_LookupNames in two Write AndX (22, 24),
    # its response read whole (26/27).
    lsa = calls(cap, pipe="lsarpc")
    assert lsa.select("ptype", "interface_uuid", "opnum", "fragments", "reply").rows() == [
        ("bind", LSARPC, None, 1, "bind_ack"),
        ("request", LSARPC, 14, 2, "response"),
    ]
    smb = cap.flows.filter(server_port=445).row(0, named=True)
    assert (smb["app"], smb["dcerpc_interface"], smb["orientation"]) == ("dcerpc", EPM, "syn")
    assert learned["flow_id"] == smb["flow_id"]
    tape = cap.flows.filter(server_port=6502).row(0, named=True)
    assert (tape["app"], tape["dcerpc_interface"]) == ("dcerpc", TAPE_ENGINE)
    assert cap.stats["smb_pipes"] == 2 and cap.anomaly_counts() == {}


def test_smb1_read_of_a_file_is_not_a_pipe():
    # zeek-raw_ntlm_in_smb.pcap frame 158: NT Create AndX of a file chained to a Read AndX; what
    # is read from files is not awaited, and no pipe or anomaly comes of it.
    cap = pw.decode(NETWORKS / "zeek-raw_ntlm_in_smb.pcap")
    assert cap.stats["smb_pipes"] == 2
    assert set(cap.dcerpc_calls["pipe"]) == {"srvsvc", "lsarpc"}
    assert cap.anomaly_counts() == {}


def _pcap(segments: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    seq = 1000
    for i, payload in enumerate(segments):
        tcp = struct.pack(">HHIIBBHHH", 50000, 445, seq, 0, 0x50, 0x18, 65535, 0, 0) + payload
        ip = struct.pack(
            ">BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(tcp),
            i,
            0,
            64,
            6,
            0,
            bytes([10, 0, 0, 1]),
            bytes([10, 0, 0, 2]),
        )
        frame = b"\x02" * 12 + b"\x08\x00" + ip + tcp
        out += struct.pack("<IIII", 1772330400 + i, 0, len(frame), len(frame)) + frame
        seq += len(payload)
    return out


def test_encrypted_smb3_is_counted_not_guessed(tmp_path):
    # Two transform headers (0xFD 'SMB'): nothing inside is read.
    transform = b"\xfdSMB" + b"\x00" * 48 + b"\x05\x00\x0b\x03" * 8
    nb = struct.pack(">I", len(transform)) + transform
    path = tmp_path / "encrypted.pcap"
    path.write_bytes(_pcap([nb, nb]))
    cap = pw.decode(path)
    assert (cap.stats["smb_encrypted"], cap.stats["smb_pipes"]) == (2, 0)
    assert cap.dcerpc_calls.height == 0 and cap.anomaly_counts() == {}
