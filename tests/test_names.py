"""The `names` table (DNS, mDNS and NetBIOS name service bindings) against what the fixture
generator planted and against tshark on real captures, and `names_seen`, which adds AUTH_UNIX
machine names and TLS SNI to it."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from test_parallel import assert_same

import portwitness as pw
from conftest import PCAPS, SHARED_CAPTURES, ns_rows, planted
from portwitness.capture import Options
from portwitness.cluster import decode_runs
from portwitness.dataset import ADDED_LATER, read_dataset, write_dataset

NAMES = PCAPS / "names.pcap"
SAMPLE = PCAPS / "sample.pcap"
REAL = SHARED_CAPTURES / "real-networks"
COLUMNS = ["ts_ns", "name", "ip", "source", "record", "ttl", "canonical", "sender_ip"]


def test_rows_are_the_bindings_planted():
    got = ns_rows(pw.decode(NAMES).names, COLUMNS)
    assert got == planted(NAMES, "names")


def test_each_row_names_the_flow_that_carried_it():
    cap = pw.decode(NAMES)
    rows = cap.names.join(cap.flows, on="flow_id", how="left")
    assert rows["transport"].null_count() == 0
    by_source = rows.group_by("source").agg(
        pl.col("transport").unique().sort(), pl.col("server_port").unique()
    )
    got = {r["source"]: (r["transport"], sorted(r["server_port"])) for r in by_source.to_dicts()}
    assert got == {"dns": (["tcp", "udp"], [53]), "mdns": (["udp"], [5353]), "nbns": (["udp"], [137])}
    # DNS over TCP: the two answers of one segment and the answer cut in three.
    tcp = rows.filter(pl.col("transport") == "tcp")
    assert tcp["name"].to_list() == [
        "arcsrv01.example.com",
        "mgmt.example.com",
        "agent01.example.com",
        "agent01.example.com",
        "tape.example.com",
    ]
    # The flows keep their contract: DNS sets no `app`.
    carriers = cap.flows.filter(pl.col("server_port").is_in([53, 137, 5353]))
    assert carriers.height == 6 and carriers["app"].is_null().all()
    # Every response and registration planted but the one naming nothing, the group name and the
    # domain name.
    assert cap.stats["name_messages"] == 9


def test_only_the_table_asked_for_is_built():
    cap = pw.decode(NAMES, tables=["names"])
    assert cap.names.height == len(planted(NAMES, "names"))
    with pytest.raises(AttributeError, match="tls"):
        _ = cap.tls


def test_same_rows_on_every_schedule():
    assert_same([NAMES])
    assert_same([NAMES, SAMPLE])
    assert_same([REAL / "mercury-dns_packet.capture2.pcap"])


def _shifted(src: Path, out: Path, seconds: int) -> Path:
    """A copy of a classic little-endian pcap with every record `seconds` later."""
    b = bytearray(src.read_bytes())
    at = 24
    while at + 16 <= len(b):
        sec, _, incl, _ = struct.unpack_from("<IIII", b, at)
        struct.pack_into("<I", b, at, sec + seconds)
        at += 16 + incl
    out.write_bytes(bytes(b))
    return out


def test_files_decoded_apart_join_as_one_pass(tmp_path):
    # The fixture, then itself two hours later: a clean border, so the files decode apart and
    # their tables are joined, flow ids renumbered.
    files = [str(NAMES), str(_shifted(NAMES, tmp_path / "later.pcap", 7200))]
    one = pw.decode(files, threads=1)
    with ThreadPoolExecutor(2) as pool:
        joined, runs = decode_runs(files, pool, Options(threads=1))
    assert runs == [(0,), (1,)]
    assert joined.names.equals(one.names)
    assert one.names.height == 2 * len(planted(NAMES, "names"))


def test_dataset_round_trip(tmp_path):
    cap = pw.decode([NAMES, SAMPLE])
    write_dataset(cap, tmp_path)
    back = read_dataset(tmp_path)
    assert back.names.equals(cap.names)
    # A dataset written before the table existed reads it back empty, with its schema.
    shutil.rmtree(tmp_path / "names")
    (tmp_path / "_schema" / "names.parquet").unlink()
    manifest = tmp_path / "portwitness-dataset.json"
    m = json.loads(manifest.read_text())
    for run in m["runs"]:
        run["parts"] = {k: v for k, v in run["parts"].items() if not k.startswith("names/")}
        run["rows"].pop("names", None)
    manifest.write_text(json.dumps(m))
    old = read_dataset(tmp_path)
    assert old.names.is_empty() and old.names.schema == cap.names.schema
    assert dict(cap.names.schema) == ADDED_LATER["names"]


def test_names_seen_unions_every_kind_of_evidence():
    cap = pw.decode([NAMES, SAMPLE])
    seen = pw.names_seen(cap)
    assert seen.columns == ["name", "ip", "source", "first_seen", "flow_id"]
    assert seen.equals(cap.names_seen())
    rows = {(r["name"], r["ip"], r["source"]) for r in seen.to_dicts()}
    # DNS twice (UDP, then TCP) is one row, with the first time and flow.
    dns = seen.filter((pl.col("name") == "arcsrv01.example.com") & (pl.col("source") == "dns"))
    assert dns.height == 1
    first = cap.names.filter(pl.col("name") == "arcsrv01.example.com").row(0, named=True)
    assert (dns["first_seen"][0], dns["flow_id"][0]) == (first["ts"], first["flow_id"])
    assert ("backup.example.com", "2001:db8::21", "dns") in rows
    assert ("nas01.local", "10.20.0.50", "mdns") in rows
    assert ("agent04", "10.20.0.23", "nbns") in rows
    # AUTH_UNIX machine names bind the calling client; SNI binds the server asked.
    machines = cap.rpc_calls.filter(pl.col("auth_machine").is_not_null())
    assert machines.height > 0
    for r in machines.unique(["auth_machine", "client_ip"]).to_dicts():
        assert (r["auth_machine"].lower().rstrip("."), r["client_ip"], "auth_unix") in rows
    sni = cap.tls.filter(pl.col("sni").is_not_null())
    assert sni.height > 0
    for r in sni.unique(["sni", "server_ip"]).to_dicts():
        assert (r["sni"].lower(), r["server_ip"], "sni") in rows
    assert seen.select(pl.struct("name", "ip", "source").is_unique().all()).item()
    assert set(seen["source"]) == {"dns", "mdns", "nbns", "auth_unix", "sni"}


def test_an_sni_that_is_an_address_names_nothing():
    cap = pw.decode(PCAPS / "tls_mgmt.pcap")
    literals = ["127.0.0.1", "2001:db8::7", "Casmgmt.Example."]
    sni = pl.Series("sni", (literals * cap.tls.height)[: cap.tls.height])
    cap = dataclasses.replace(cap, tls=cap.tls.with_columns(sni))
    assert cap.tls.height >= 3
    assert set(pw.names_seen(cap)["name"]) == {"casmgmt.example"}


# --------------------------------------------------------------------------------------------
# Against tshark


def _tshark() -> str:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed: apt-get install tshark (.ci/run does)")
    return exe


TSHARK_FIELDS = ["frame.time_epoch", "dns.resp.name", "dns.resp.type", "dns.a", "dns.aaaa", "dns.cname"]
# Responses to queries, by the ports the core reads them on; DNS quoted inside ICMP errors is not
# a message anyone received.
TSHARK_FILTER = (
    "dns.flags.response == 1 && dns.flags.opcode == 0 && !icmp && !icmpv6 && "
    "(udp.srcport == 53 || tcp.srcport == 53 || udp.srcport == 5353)"
)


def tshark_bindings(path: Path) -> Counter:
    """(time ns, name, address, canonical) of every response, computed from tshark's records the
    way the `names` table states them: each A/AAAA record under its owner, and under each alias
    whose CNAME chain (at most 16 links) in the same message ends at that owner."""
    args = [_tshark(), "-n", "-r", str(path), "-Y", TSHARK_FILTER, "-T", "fields", "-E", "occurrence=a"]
    for f in TSHARK_FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    found: Counter = Counter()
    for line in out.splitlines():
        epoch, names, types, a, aaaa, cname = (line.split("\t") + [""] * 6)[:6]
        ts = int(Decimal(epoch) * 1_000_000_000)
        values = {
            "1": a.split(",") if a else [],
            "28": aaaa.split(",") if aaaa else [],
            "5": cname.split(","),
        }
        addrs, cnames = [], {}
        for owner, t in zip(names.split(","), types.split(","), strict=True):
            owner = owner.lower()
            if t in ("1", "28"):
                addrs.append((owner, values[t].pop(0)))
            elif t == "5":
                cnames.setdefault(owner, values["5"].pop(0).lower())
        bound = {(o, ip, None) for o, ip in addrs}
        for alias in cnames:
            end = alias
            for _ in range(16):
                if end not in cnames:
                    break
                end = cnames[end]
            else:
                continue
            bound |= {(alias, ip, end) for o, ip in addrs if o == end and alias != end}
        found.update((ts, *b) for b in bound if b[0] != "<root>")
    return found


def our_bindings(path: Path) -> Counter:
    names = pw.decode(path).names.filter(pl.col("source") != "nbns")
    rows = names.select(pl.col("ts").dt.epoch("ns"), "name", "ip", "canonical").rows()
    return Counter(rows)


@pytest.mark.tshark
@pytest.mark.parametrize(
    "capture",
    [
        NAMES,
        REAL / "mercury-dns_packet.capture2.pcap",
        REAL / "tcpreplay-test.pcap",
        SHARED_CAPTURES / "zeek-pcapng-multi-interface.pcapng",
        SHARED_CAPTURES / "zeek-dce-rpc-mapi.pcap",
    ],
    ids=lambda p: p.name,
)
def test_names_match_tshark(capture):
    expected = tshark_bindings(capture)
    got = our_bindings(capture)
    assert got == expected
    if capture.name.startswith("mercury"):
        # Plain DNS of many years: hundreds of bindings, CNAME chains among them.
        assert sum(got.values()) == 248
        assert sum(n for (_, _, _, canonical), n in got.items() if canonical) == 30


def test_real_answers_hold_known_bindings():
    multi = pw.decode(SHARED_CAPTURES / "zeek-pcapng-multi-interface.pcapng").names
    www = multi.filter(pl.col("name") == "www.apple.com").row(0, named=True)
    assert (www["ip"], www["canonical"], www["record"]) == (
        "23.194.101.24",
        "e6858.dsce9.akamaiedge.net",
        "A",
    )
    mercury = pw.decode(REAL / "mercury-dns_packet.capture2.pcap").names
    netbsd = mercury.filter(pl.col("name") == "www.netbsd.org")
    assert {"204.152.190.12", "2001:4f8:4:7:2e0:81ff:fe52:9a6b"} <= set(netbsd["ip"])
