"""Fitting the tools analysts use: every flows output carries the Community ID v1 hash, the same
string as the `communityid` reference package gives; `flows --format zeek` writes a conn.log that
Zeek's readers parse (header, fields, types, one row per flow) and `--format zeek-json` Zeek's JSON
log with dotted keys."""

from __future__ import annotations

import ipaddress
import json
import random

import communityid
import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS, fixtures
from portwitness.cli import main
from portwitness.communityid import community_id, community_ids
from portwitness.render.zeek import FIELDS

REFERENCE = communityid.CommunityID()


def reference(transport: str, client: str, cport: int, server: str, sport: int) -> str:
    make = communityid.FlowTuple.make_tcp if transport == "tcp" else communityid.FlowTuple.make_udp
    return REFERENCE.calc(make(client, server, cport, sport))


def _address(rng: random.Random, v6: bool, few: bool) -> str:
    if v6:
        value = rng.randrange(4) if few else rng.getrandbits(128)
        return str(ipaddress.IPv6Address((0x20010DB8 << 96) | value if few else value))
    return str(ipaddress.IPv4Address(rng.randrange(4) if few else rng.getrandbits(32)))


def test_community_id_equals_the_reference_on_many_random_flows():
    rng = random.Random(24)
    rows = []
    for n in range(5000):
        v6 = n % 3 == 0
        # Few distinct addresses and ports half the time: equal addresses and ports, both orders.
        few = n % 2 == 0
        a, b = _address(rng, v6, few), _address(rng, v6, few)
        pa = rng.randrange(4) if few else rng.randrange(65536)
        pb = rng.randrange(4) if few else rng.randrange(65536)
        transport = rng.choice(["tcp", "udp"])
        want = reference(transport, a, pa, b, pb)
        assert community_id(transport, a, pa, b, pb) == want, (transport, a, pa, b, pb)
        # Both directions of a conversation hash the same.
        assert community_id(transport, b, pb, a, pa) == want
        rows.append((transport, a, pa, b, pb, want))
    # The whole-table form used on every decode gives the same.
    names = ["transport", "client_ip", "client_port", "server_ip", "server_port", "want"]
    frame = pl.DataFrame(rows, schema=names, orient="row")
    assert community_ids(frame).to_list() == frame["want"].to_list()


def test_community_id_of_the_spec_example():
    # The specification's own example (community-id-spec, baseline): TCP 128.232.110.120:34855 ->
    # 66.35.250.204:80.
    assert community_id("tcp", "128.232.110.120", 34855, "66.35.250.204", 80) == (
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    )


def test_every_decoded_flow_has_the_reference_community_id():
    seen = set()
    for capture in fixtures():
        flows = pw.decode(capture).flows
        assert flows.columns[-1] == "community_id"
        for r in flows.iter_rows(named=True):
            want = reference(
                r["transport"], r["client_ip"], r["client_port"], r["server_ip"], r["server_port"]
            )
            assert r["community_id"] == want, (capture.name, r["flow_id"])
            seen.add((r["transport"], ":" in r["client_ip"]))
    assert seen >= {("tcp", False), ("udp", False), ("tcp", True), ("udp", True)}


def test_community_id_of_what_is_no_flow_is_null():
    assert community_id("icmp", "10.0.0.1", 0, "10.0.0.2", 0) is None
    assert community_id("tcp", "10.0.0.1", 1, "2001:db8::1", 2) is None
    assert community_id("tcp", "not an address", 1, "10.0.0.2", 2) is None


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet", "zeek-json"])
def test_every_flows_output_carries_the_community_id(tmp_path, capsys, fmt):
    ext = {"zeek-json": "log"}.get(fmt, fmt)
    out = tmp_path / f"flows.{ext}"
    assert main(["flows", str(PCAPS / "sample.pcap"), "--format", fmt, "-o", str(out)]) == 0
    if fmt == "parquet":
        got = pl.read_parquet(out)["community_id"].to_list()
    elif fmt == "csv":
        got = pl.read_csv(out)["community_id"].to_list()
    else:
        got = [json.loads(line)["community_id"] for line in out.read_text().splitlines()]
    want = pw.decode(PCAPS / "sample.pcap").flows["community_id"].to_list()
    assert sorted(got) == sorted(want) and len(got) == 21


def _conn_log(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A Zeek TSV log read as Zeek's own readers do: `#` lines are the header, `#fields` names
    the columns of the rows that follow."""
    header: dict[str, str] = {}
    rows = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition("\t" if not line.startswith("#separator") else " ")
            header[key] = value
            continue
        fields = header["fields"].split("\t")
        cells = line.split("\t")
        assert len(cells) == len(fields), line
        rows.append(dict(zip(fields, cells, strict=True)))
    return header, rows


def test_zeek_conn_log(tmp_path, capsys):
    out = tmp_path / "conn.log"
    # The extension .log alone chooses the Zeek TSV form.
    assert main(["flows", str(PCAPS / "sample.pcap"), "-o", str(out)]) == 0
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0] == "#separator \\x09"
    assert lines[-1].startswith("#close\t")
    header, rows = _conn_log(text)
    assert header["path"] == "conn" and header["unset_field"] == "-" and header["set_separator"] == ","
    assert header["open"] == "2026-03-01-02-00-00"
    assert header["fields"].split("\t") == [k for k, _ in FIELDS]
    assert header["types"].split("\t") == [t for _, t in FIELDS]
    flows = pw.decode(PCAPS / "sample.pcap").flows
    assert len(rows) == flows.height
    by_id = {r["community_id"]: r for r in rows}
    for f in flows.iter_rows(named=True):
        z = by_id[f["community_id"]]
        assert (z["id.orig_h"], int(z["id.orig_p"]), z["id.resp_h"], int(z["id.resp_p"]), z["proto"]) == (
            f["client_ip"],
            f["client_port"],
            f["server_ip"],
            f["server_port"],
            f["transport"],
        )
        assert float(z["ts"]) == pytest.approx(f["first_ts"].timestamp(), abs=1e-6)
        assert (int(z["orig_pkts"]), int(z["resp_pkts"])) == (f["packets_c2s"], f["packets_s2c"])
        assert (int(z["orig_bytes"]), int(z["resp_bytes"])) == (f["payload_c2s"], f["payload_s2c"])
        assert z["uid"].startswith("C") and len(z["uid"]) == 18
        assert z["orig_ip_bytes"] == "-" and z["local_orig"] == "-"
        if f["app"] == "tls":
            assert z["service"] == "ssl"
    # The outcomes the sample holds, as Zeek says them.
    states = {(f["transport"], f["outcome"]): by_id[f["community_id"]] for f in flows.iter_rows(named=True)}
    assert states[("tcp", "completed")]["conn_state"] == "SF"
    assert states[("tcp", "completed")]["history"].startswith("ShA")
    assert states[("tcp", "refused")]["conn_state"] == "REJ" and states[("tcp", "refused")]["history"] == "Sr"
    assert states[("tcp", "unanswered")]["conn_state"] == "S0"
    assert states[("tcp", "reset")]["conn_state"] == "-"  # which side reset is not known
    assert states[("udp", "completed")]["conn_state"] == "SF"
    assert len({r["uid"] for r in rows}) == len(rows)


def test_zeek_json_log_has_dotted_keys_and_leaves_out_unset_fields(capsys):
    assert main(["flows", str(PCAPS / "sample.pcap"), "--format", "zeek-json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 21
    first = rows[0]
    assert {"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "community_id"} <= set(
        first
    )
    assert isinstance(first["ts"], float) and isinstance(first["id.orig_p"], int)
    assert "orig_ip_bytes" not in first and "local_orig" not in first
    assert all(set(r) <= {k for k, _ in FIELDS} for r in rows)


def test_zeek_output_takes_the_filters(capsys):
    assert main(["flows", str(PCAPS / "sample.pcap"), "--format", "zeek-json", "--port", "7099"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(7099 in (r["id.orig_p"], r["id.resp_p"]) for r in rows)
