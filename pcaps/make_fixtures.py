#!/usr/bin/env python3
"""Generate the portwitness capture fixtures and their expected results.

Run from anywhere:  python pcaps/make_fixtures.py

Everything is deterministic: fixed addresses, fixed timestamps starting at
2026-03-01T02:00:00Z, fixed sequence numbers / IP ids, seeded RNGs for the
interleaving of ``sample.pcap`` and the bytes of ``rpc_garbage_111.pcap``,
gzip mtime=0.  Re-running rewrites
byte-identical files.

Packets (Ethernet, VLAN tags, IPv4/IPv6, extension headers, TCP, UDP, ICMP,
ARP, fragmentation) are built with scapy; the capture containers (pcap in
both byte orders and resolutions, pcapng blocks in both byte orders, the
small non-Ethernet link headers) are written with ``struct``.

The expected flows (``<capture file name>.flows.json``) are an independent
oracle: every packet is registered together with a ``Meta`` record that
states what was planted (addresses, ports, TCP flags, transport payload
length, VLAN id).  The flow table is computed from those records and the
recorded frame lengths only; no capture decoder (scapy's or ours) ever reads
the produced bytes back.

The ONC RPC fixtures (``RPC_FIXTURES``) and the portmapper and Arcserve
conversations of ``sample.pcap`` carry RPC messages written here with
``struct`` (XDR, TCP record marking).  Their two further oracles,
``<file>.rpc_calls.json`` and ``<file>.mappings.json``, are kept by ``RpcLog``
from the values planted in each call and reply, in the same way.

The DCE/RPC, endpoint mapper and TLS fixtures (``APP_FIXTURES``) and the
endpoint mapper, tape engine and management conversations of ``sample.pcap``
are built with scapy's DCE/RPC, MS-RPCE and TLS layers.  ``DceLog`` keeps
``<file>.dcerpc_calls.json`` and the DCE/RPC rows of ``<file>.mappings.json``,
``TlsLog`` keeps ``<file>.tls.json``; each message tells the flow oracle what
it planted (``Meta.facts``: protocol, interface, SNI, negotiated version).

This script is the command; the code lives in ``fixtures/`` by job (``planted``, ``builder``,
``oracle``, ``containers``) and by fixture family (``basic``, ``tunnels``, ``sample``, ``oncrpc``,
``dcerpc``, ``tls``, ``names``, ``smb1``, ``smb2``, ``broken``...).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import zstandard

# The fixtures by family live in fixtures/; make_broken.py and make_audit_cases.py take their
# building blocks from this module (`mf.<name>`), so it imports them all (F401: re-exported).
from fixtures.app_fixtures import (  # noqa: F401
    bind_steps,
    build_dcerpc_bigendian,
    build_dcerpc_fragmented,
    build_epm_dynamic,
    build_epm_ndr64,
    build_epm_tape_engine,
    build_epm_udp,
    build_tls_mgmt,
    call_steps,
    conn,
    dce_assoc,
    interface_steps,
    tls12_steps,
    tls13_steps,
)
from fixtures.basic import (  # noqa: F401
    LT_IFACES,
    build_ipv4_frag,
    build_ipv6_ext,
    build_linktypes,
    build_multi_section,
    build_tcp_basic,
    build_vlan_qinq,
)
from fixtures.broken import build_broken  # noqa: F401
from fixtures.builder import Capture, Tcp, run  # noqa: F401
from fixtures.containers import SHB_OPTS, ng_idb, ng_packet, ng_shb, pcap_record, simple_pcapng, write_pcap  # noqa: F401
from fixtures.conversations import Msg, TcpConv, UdpConv  # noqa: F401
from fixtures.dcerpc import DB_ENGINE, EPM, JOB_ENGINE, TAPE_ENGINE, Assoc, DceLog, Endpoint  # noqa: F401
from fixtures.names import build_names, build_starttls  # noqa: F401
from fixtures.oncrpc import (  # noqa: F401
    AUTH_NULL,
    RpcLog,
    auth_unix,
    pmap_getport_steps,
    rpc_exchange_steps,
    xdr_string,
    xdr_u32,
)
from fixtures.oncrpc_fixtures import RPC_FIXTURES  # noqa: F401
from fixtures.oracle import expected_flows  # noqa: F401
from fixtures.planted import (  # noqa: F401
    BASE_NS,
    BROKEN,
    HERE,
    LINKTYPE_ETHERNET,
    LINKTYPE_USER0,
    SNAPLEN,
    Frame,
    blob,
    mac_bytes,
    mac_for,
    noise,
)
from fixtures.sample import build_sample  # noqa: F401
from fixtures.smb1 import build_smb1_pipe  # noqa: F401
from fixtures.smb2 import build_smb_pipe  # noqa: F401
from fixtures.tls import ECDHE_RSA_AES256_GCM_SHA384, TLS12, TLS13, TlsLog, tls_opaque  # noqa: F401
from fixtures.tunnels import TUN_IFACES, build_tunnels  # noqa: F401

APP_FIXTURES = [
    ("epm_tape_engine.pcap", build_epm_tape_engine),
    ("epm_dynamic.pcap", build_epm_dynamic),
    ("dcerpc_bigendian.pcap", build_dcerpc_bigendian),
    ("dcerpc_fragmented.pcap", build_dcerpc_fragmented),
    ("epm_udp.pcap", build_epm_udp),
    ("epm_ndr64.pcap", build_epm_ndr64),
    ("tls_mgmt.pcap", build_tls_mgmt),
    ("names.pcap", build_names),
    ("starttls.pcap", build_starttls),
    ("smb_pipe.pcap", build_smb_pipe),
    ("smb1_pipe.pcap", build_smb1_pipe),
]


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def dump_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def in_capture_order(rows: list[dict]) -> list[dict]:
    """Rows with a timestamp sorted by it; the sort is stable, so the rows of one reply (the
    entries of a DUMP or ept_lookup) keep their order."""
    if rows and "ts_ns" in rows[0]:
        assert all(r["ts_ns"] is not None for r in rows), "every planted row was sent"
        return sorted(rows, key=lambda r: r["ts_ns"])
    return rows


def summary(frames) -> dict:
    kinds: dict[str, int] = {}
    for f in frames:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    return {
        "packets": len(frames),
        "packets_by_kind": dict(sorted(kinds.items())),
        "first_ts_ns": frames[0].ts_ns,
        "last_ts_ns": frames[-1].ts_ns,
    }


def main() -> None:
    BROKEN.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict] = {}

    def emit(name: str, data: bytes, frames, info: dict, *logs) -> None:
        """Write a capture, its expected flows and the tables of its oracles (``logs``)."""
        (HERE / name).write_bytes(data)
        firsts: list[int] = []
        flows = expected_flows(frames, firsts)
        dump_json(HERE / f"{name}.flows.json", flows)
        manifest[name] = {
            **info,
            **summary(frames),
            "flows": len(flows),
            "expected_flows_file": f"{name}.flows.json",
            "flow_first_ts_ns": firsts,
        }
        tables: dict[str, list[dict]] = {}
        for log in logs:
            for table, rows in log.tables().items():
                tables.setdefault(table, []).extend(rows)
        for table, rows in tables.items():
            dump_json(HERE / f"{name}.{table}.json", in_capture_order(rows))
            manifest[name].update({table: len(rows), f"expected_{table}_file": f"{name}.{table}.json"})

    tb = build_tcp_basic()
    tb_bytes = write_pcap(tb.frames, LINKTYPE_ETHERNET)
    emit(
        "tcp_basic.pcap",
        tb_bytes,
        tb.frames,
        {
            "format": "pcap",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )
    # same packets, sub-microsecond part added to every timestamp (never zero)
    ns_frames = [replace(f, ts_ns=f.ts_ns + 1 + (i * 137) % 999) for i, f in enumerate(tb.frames)]
    emit(
        "tcp_basic_be_ns.pcap",
        write_pcap(ns_frames, LINKTYPE_ETHERNET, endian=">", nano=True),
        ns_frames,
        {
            "format": "pcap",
            "byte_order": "big",
            "ts_resolution": "ns",
            "linktypes": [1],
            "note": "same packets as tcp_basic.pcap; record i has +(1 + (137*i) % 999) ns",
        },
    )

    vq = build_vlan_qinq()
    emit(
        "vlan_qinq.pcap",
        write_pcap(vq.frames, LINKTYPE_ETHERNET),
        vq.frames,
        {
            "format": "pcap",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )

    v6 = build_ipv6_ext()
    v6_bytes = simple_pcapng(v6.frames, tsresol=6)
    emit(
        "ipv6_ext.pcapng",
        v6_bytes,
        v6.frames,
        {
            "format": "pcapng",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )

    f4 = build_ipv4_frag()
    emit(
        "ipv4_frag.pcap",
        write_pcap(f4.frames, LINKTYPE_ETHERNET),
        f4.frames,
        {
            "format": "pcap",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )

    ms_bytes, ms_frames = build_multi_section()
    emit(
        "multi_section_be.pcapng",
        ms_bytes,
        ms_frames,
        {
            "format": "pcapng",
            "byte_order": "little then big",
            "sections": 2,
            "linktypes": [1, 101, 113],
            "note": "section 1: EPB, one SPB (no timestamp; 3rd packet), NRB, custom block "
            "0x00000BAD, ISB; section 2 (big-endian, section length -1): if0 raw IP "
            "with if_tsresol 0x89, if1 Linux SLL, one OPB (type 2) on if0",
        },
    )

    lt_bytes, lt_frames = build_linktypes()
    emit(
        "linktypes.pcapng",
        lt_bytes,
        lt_frames,
        {
            "format": "pcapng",
            "byte_order": "little",
            "linktypes": [lt for lt, _ in LT_IFACES],
            "note": "the linktype-147 packet (if6) is expected to be an anomaly, not a flow",
        },
    )

    tun_bytes, tun_frames = build_tunnels()
    emit(
        "tunnels.pcapng",
        tun_bytes,
        tun_frames,
        {
            "format": "pcapng",
            "byte_order": "little",
            "linktypes": [lt for lt, _ in TUN_IFACES],
            "note": "MPLS, PPPoE, GRE, ERSPAN II/III, Geneve, IP in IP and VXLAN (two tenants) with VLAN "
            "tags outside and inside, and the PPP, 802.11, radiotap and NFLOG link types",
        },
    )

    emit(
        "tcp_basic.pcap.gz",
        gzip.compress(tb_bytes, compresslevel=9, mtime=0),
        tb.frames,
        {
            "format": "pcap+gzip",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )
    emit(
        "ipv6_ext.pcapng.zst",
        zstandard.ZstdCompressor(level=3).compress(v6_bytes),
        v6.frames,
        {
            "format": "pcapng+zstd",
            "byte_order": "little",
            "ts_resolution": "us",
            "linktypes": [1],
        },
    )

    classic = {"format": "pcap", "byte_order": "little", "ts_resolution": "us", "linktypes": [1]}
    sm, *sm_logs = build_sample()
    emit("sample.pcap", write_pcap(sm.frames, LINKTYPE_ETHERNET), sm.frames, classic, *sm_logs)

    for name, build in RPC_FIXTURES + APP_FIXTURES:
        rc, rlog = build()
        emit(name, write_pcap(rc.frames, LINKTYPE_ETHERNET), rc.frames, classic, rlog)

    broken_manifest = {}
    for name, (data, expect, info) in build_broken(tb_bytes, tb.frames).items():
        (BROKEN / name).write_bytes(data)
        dump_json(BROKEN / f"{name}.expect.json", expect)
        broken_manifest[name] = {**expect, **info}

    dump_json(HERE / "manifest.json", {"fixtures": manifest, "broken": broken_manifest})

    for p in sorted(HERE.rglob("*")):
        # The fixtures' modules are compiled into __pycache__ as they are imported: not fixtures.
        if p.is_file() and p.suffix not in (".py", ".md") and "__pycache__" not in p.parts:
            # The manifest grows by a few hundred bytes with each fixture it lists.
            bound = 32 if p.name == "manifest.json" else 20
            assert p.stat().st_size < bound * 1024, f"{p} too large"


if __name__ == "__main__":
    main()
