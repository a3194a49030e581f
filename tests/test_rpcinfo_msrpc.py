"""DCE/RPC interface and TLS cipher names, and the MSRPC endpoints view of `rpcinfo` (API and command
line), on hand-built tables that follow the data contract of the core's `mappings` and `flows`."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from test_schema import MAPPINGS as MAPPINGS_SCHEMA

import portwitness.commands.load as load_module
from portwitness.capture import Capture
from portwitness.cli import main
from portwitness.names import DCERPC_INTERFACES, TLS_CIPHERS, cipher_name, interface_name
from portwitness.rpcinfo import msrpc_endpoints, rpcinfo

T0 = datetime(2026, 3, 1, 2, 0, 0, tzinfo=timezone.utc)

EPM = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
NETLOGON = "12345678-1234-abcd-ef00-01234567cffb"
SAMR = "12345778-1234-abcd-ef00-0123456789ac"
TAPE = "62b93df0-8b02-11ce-876c-00805f842837"
UNKNOWN = "01234567-89ab-cdef-0123-456789abcdef"

FLOWS_SCHEMA = {
    "flow_id": pl.UInt64,
    "transport": pl.String,
    "server_ip": pl.String,
    "server_port": pl.UInt16,
    "first_ts": pl.Datetime("ns", "UTC"),
}


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _dce(t, source, server, transport, port, iface, version, protocol, registered=True, annotation=None):
    return {
        "ts": _at(t),
        "source": source,
        "server_ip": server,
        "transport": transport,
        "port": port,
        "rpc_program": None,
        "rpc_version": None,
        "interface_uuid": iface,
        "interface_version": version,
        "protocol": protocol,
        "annotation": annotation,
        "registered": registered,
        "flow_id": 1,
    }


MAPPINGS = [
    # A DC's endpoint mapper: NETLOGON on two ports, one of them also confirmed by a bind_ack.
    _dce(10, "epm.map", "10.0.0.5", "tcp", 49676, NETLOGON, "1.0", "ncacn_ip_tcp"),
    _dce(10, "epm.map", "10.0.0.5", "tcp", 49667, NETLOGON, "1.0", "ncacn_ip_tcp"),
    _dce(20, "dcerpc.bind_ack", "10.0.0.5", "tcp", 49676, NETLOGON, "1.0", "ncacn_ip_tcp"),
    # ept_lookup entries: the same port over RPC over HTTP and a UDP endpoint.
    _dce(5, "epm.lookup", "10.0.0.5", "tcp", 593, EPM, "3.0", "ncacn_http", annotation="x"),
    _dce(6, "epm.lookup", "10.0.0.5", "udp", 1030, SAMR, "1.0", "ncadg_ip_udp"),
    # Negative facts: an ept_map that found nothing, and an empty lookup.
    _dce(7, "epm.map", "10.0.0.5", "tcp", None, SAMR, "1.0", "ncacn_ip_tcp", registered=False),
    _dce(8, "epm.lookup", "10.0.0.5", None, None, None, None, None, registered=False),
    # An Arcserve tape engine that only a bind_ack revealed, and an interface nobody names.
    _dce(30, "dcerpc.bind_ack", "10.0.0.9", "tcp", 6502, TAPE, "1.0", "ncacn_ip_tcp"),
    _dce(31, "dcerpc.bind_ack", "10.0.0.9", "tcp", 6503, UNKNOWN, "2.1", "ncacn_ip_tcp"),
    # An ONC RPC fact in the same table: the ONC view's, not the MSRPC one's.
    {
        **_dce(1, "portmap.getport", "10.0.0.9", "tcp", 1025, None, None, None),
        "rpc_program": 395644,
        "rpc_version": 1,
    },
]

FLOWS = [
    (1, "tcp", "10.0.0.5", 135, 0),
    (2, "tcp", "10.0.0.5", 49676, 8),  # before the mapping was seen: not counted
    (3, "tcp", "10.0.0.5", 49676, 10),  # at the very moment: counted
    (4, "tcp", "10.0.0.5", 49676, 25),
    (5, "udp", "10.0.0.5", 49676, 26),  # other transport
    (6, "tcp", "10.0.0.6", 49676, 26),  # other server
    (7, "tcp", "10.0.0.5", 593, 9),
    (8, "udp", "10.0.0.5", 1030, 9),
    (9, "tcp", "10.0.0.9", 6502, 40),
    (10, "tcp", "10.0.0.9", 1025, 2),
]


def _capture(mappings: list[dict], flows: list[tuple] = FLOWS) -> Capture:
    frames: dict = {f.name: pl.DataFrame() for f in dataclasses.fields(Capture) if f.name != "stats"}
    frames["mappings"] = pl.DataFrame(mappings, schema=MAPPINGS_SCHEMA, orient="row")
    frames["flows"] = pl.DataFrame(
        [(i, tr, ip, port, _at(t)) for i, tr, ip, port, t in flows], schema=FLOWS_SCHEMA, orient="row"
    )
    return Capture(**frames)


def test_interface_names_cover_the_reference_table():
    for key, name in DCERPC_INTERFACES.items():
        assert str(uuid.UUID(key)) == key and name
    named = {
        EPM: "EPM",
        NETLOGON: "NETLOGON",
        SAMR: "SAMR",
        "12345778-1234-abcd-ef00-0123456789ab": "LSARPC",
        "12345678-1234-abcd-ef00-0123456789ab": "SPOOLSS",
        "e3514235-4b06-11d1-ab04-00c04fc2dcd2": "DRSUAPI",
        "367abb81-9844-35f1-ad32-98f038001003": "SVCCTL",
        "000001a0-0000-0000-c000-000000000046": "ISystemActivator",
        "4d9f4ab8-7d1c-11cf-861e-0020af6e7c57": "IActivation",
        "99fcfec4-5260-101b-bbcb-00aa0021347a": "IOXIDResolver",
        "f6beaff7-1e19-4fbb-9f8f-b89e2018337c": "EventLog6",
        "8a885d04-1ceb-11c9-9fe8-08002b104860": "NDR",
        "71710533-beba-4937-8319-b5dbef9ccc36": "NDR64",
        TAPE: "Arcserve tape engine",
        "dc246bf0-7a7a-11ce-9f88-00805fe43838": "Arcserve message engine",
        "506b1890-14c8-11d1-bbc3-00805fa6962e": "Arcserve database engine (ASCORE)",
    }
    for key, name in named.items():
        assert interface_name(key) == name
        assert interface_name(key.upper()) == name
    assert len(DCERPC_INTERFACES) >= 36


def test_unknown_interface_is_its_uuid():
    assert interface_name(UNKNOWN) == UNKNOWN
    assert interface_name(UNKNOWN.upper()) == UNKNOWN
    assert interface_name(None) == ""


def test_cipher_names():
    assert cipher_name(0x1301) == "TLS_AES_128_GCM_SHA256"
    assert cipher_name(0x1303) == "TLS_CHACHA20_POLY1305_SHA256"
    assert cipher_name(0x1305) == "TLS_AES_128_CCM_8_SHA256"
    assert cipher_name(0xC02F) == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert cipher_name(0xCCA8) == "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    assert cipher_name(0x009F) == "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"
    assert cipher_name(0x002F) == "TLS_RSA_WITH_AES_128_CBC_SHA"
    assert cipher_name(0x0A0A) == "0x0a0a"  # GREASE
    assert cipher_name(None) == ""
    assert all(name.startswith("TLS_") and 0 <= code <= 0xFFFF for code, name in TLS_CIPHERS.items())


def test_msrpc_endpoints_rows():
    view = msrpc_endpoints(_capture(MAPPINGS))
    assert view.columns == [
        "server",
        "interface",
        "version",
        "name",
        "protocol",
        "port",
        "source",
        "first_seen",
        "last_seen",
        "flows_after",
    ]
    got = [
        (r["server"], r["interface"], r["version"], r["name"], r["protocol"], r["port"], r["source"])
        for r in view.to_dicts()
    ]
    assert got == [
        ("10.0.0.5", NETLOGON, "1.0", "NETLOGON", "ncacn_ip_tcp", 49667, "map"),
        ("10.0.0.5", NETLOGON, "1.0", "NETLOGON", "ncacn_ip_tcp", 49676, "bind_ack,map"),
        ("10.0.0.5", SAMR, "1.0", "SAMR", "ncadg_ip_udp", 1030, "lookup"),
        ("10.0.0.5", EPM, "3.0", "EPM", "ncacn_http", 593, "lookup"),
        ("10.0.0.9", UNKNOWN, "2.1", UNKNOWN, "ncacn_ip_tcp", 6503, "bind_ack"),
        ("10.0.0.9", TAPE, "1.0", "Arcserve tape engine", "ncacn_ip_tcp", 6502, "bind_ack"),
    ]


def test_msrpc_endpoints_times_and_flows_after():
    rows = {(r["server"], r["port"]): r for r in msrpc_endpoints(_capture(MAPPINGS)).to_dicts()}
    netlogon = rows[("10.0.0.5", 49676)]
    assert (netlogon["first_seen"], netlogon["last_seen"]) == (_at(10), _at(20))
    assert netlogon["flows_after"] == 2  # flows 3 and 4: not 2 (earlier), 5 (udp), 6 (other server)
    assert rows[("10.0.0.5", 49667)]["flows_after"] == 0
    assert rows[("10.0.0.5", 593)]["flows_after"] == 1
    assert rows[("10.0.0.5", 1030)]["flows_after"] == 1
    assert rows[("10.0.0.9", 6502)]["flows_after"] == 1


def test_msrpc_and_onc_views_share_one_table_without_mixing():
    cap = _capture(MAPPINGS)
    onc = rpcinfo(cap)
    assert onc.select("server", "program", "port", "name", "source", "flows_after").rows() == [
        ("10.0.0.9", 395644, 1025, "caservd", "getport", 1)
    ]
    assert 1025 not in msrpc_endpoints(cap)["port"].to_list()


def test_msrpc_endpoints_empty_and_negative_only():
    negatives = [m for m in MAPPINGS if not m["registered"]]
    for cap in (_capture([]), _capture(negatives)):
        view = msrpc_endpoints(cap)
        assert view.is_empty() and view.schema["port"] == pl.UInt16 and view.width == 10


def test_protocol_from_transport_when_the_core_names_none():
    rows = [_dce(1, "epm.map", "10.0.0.5", "udp", 1030, SAMR, "1.0", None)]
    assert msrpc_endpoints(_capture(rows))["protocol"].to_list() == ["ncadg_ip_udp"]
    old_core = _capture(rows)
    old_core = dataclasses.replace(old_core, mappings=old_core.mappings.drop("protocol", "annotation"))
    assert msrpc_endpoints(old_core)["protocol"].to_list() == ["ncadg_ip_udp"]


@pytest.fixture
def patched_decode(monkeypatch):
    cap = _capture(MAPPINGS)
    monkeypatch.setattr(load_module, "decode_captures", lambda *args, **kwargs: cap)
    return cap


def test_cli_table_prints_onc_then_msrpc_per_server(patched_decode, capsys):
    assert main(["rpcinfo", "any.pcap"]) == 0
    out = capsys.readouterr().out
    onc = out.index("1 RPC registrations seen on the wire")
    dc = out.index("4 MSRPC endpoints of 10.0.0.5")
    backup = out.index("2 MSRPC endpoints of 10.0.0.9")
    assert onc < dc < backup
    assert "NETLOGON" in out and "bind_ack,map" in out and "ncacn_http" in out


def test_cli_json_carries_both_views(patched_decode, capsys):
    assert main(["rpcinfo", "any.pcap", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"oncrpc", "msrpc"}
    assert [r["program"] for r in doc["oncrpc"]] == [395644]
    assert len(doc["msrpc"]) == 6
    tape = next(r for r in doc["msrpc"] if r["port"] == 6502)
    assert (tape["interface"], tape["name"], tape["protocol"], tape["flows_after"]) == (
        TAPE,
        "Arcserve tape engine",
        "ncacn_ip_tcp",
        1,
    )


def test_cli_csv_tells_the_views_apart_by_kind(patched_decode, capsys, tmp_path):
    assert main(["rpcinfo", "any.pcap", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0])[:8] == ["kind", "server", "program", "interface", "version", "name", "proto", "port"]
    assert [r["kind"] for r in rows] == ["oncrpc"] + ["msrpc"] * 6
    assert (rows[0]["program"], rows[0]["interface"], rows[0]["proto"]) == ("395644", "", "tcp")
    http = next(r for r in rows if r["proto"] == "ncacn_http")
    assert (http["program"], http["interface"], http["version"], http["port"]) == ("", EPM, "3.0", "593")
    target = tmp_path / "views.json"
    assert main(["rpcinfo", "any.pcap", "--format", "json", "-o", str(target)]) == 0
    assert len(json.loads(target.read_text())["msrpc"]) == 6
