"""The audit of a capture whose flows were kept on disk (a batch at a time, as `report` and `usage`
read a capture of millions of flows) says exactly what the audit of the same flows held in memory
says: every finding, count, set, example flow and first flow, whatever the batches' sizes."""

from __future__ import annotations

import importlib
import json
import sys

import polars as pl
import pytest

import portwitness as pw
import portwitness.capture as capture_mod
from conftest import PCAPS, ROOT
from portwitness.audit import audit
from portwitness.config import load_config
from portwitness.render.html import report_html
from portwitness.render.report_doc import document
from portwitness.rpcinfo import msrpc_endpoints, rpcinfo
from portwitness.spill import FlowSpill

sys.path.insert(0, str(ROOT / "pcaps"))
import make_audit_cases  # noqa: E402

DEMO = ROOT / "python" / "portwitness" / "demo"
# (`portwitness.audit` is also the function: the modules are reached by their full names.)
groups = importlib.import_module("portwitness.audit.groups")
services_mod = importlib.import_module("portwitness.audit.services")
usage_mod = importlib.import_module("portwitness.audit.usage")


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    out = tmp_path_factory.mktemp("cases")
    for name in make_audit_cases.CASES:
        make_audit_cases.build(name, out)
    return out


def _inputs(cases):
    yield DEMO / "demo.pcap", load_config(config=DEMO / "PortsConfig.cfg", mgmt=DEMO / "mgmt.properties")
    yield PCAPS / "sample.pcap", None
    for name in make_audit_cases.CASES:
        where = cases / name
        files = {f.name: f for f in where.iterdir()}
        policy = load_config(
            config=files.get("PortsConfig.cfg"),
            mgmt=files.get("mgmt.properties"),
            policy=files.get("policy.toml"),
        )
        yield where / make_audit_cases.CAPTURE, policy


# A flow table of 2 flows hands finished flows out early: the spill gets parts of 3 flows or more.
SMALL = {"max_flows": 2}


def _on_disk(path, spill_dir):
    spill = FlowSpill(spill_dir)
    cap = pw.decode(path, flow_sink=spill, spill_rows=3, **SMALL)
    return cap.keep_flows_on_disk(spill), spill


def _same(a, b, what: str) -> None:
    assert a.schema == b.schema, what
    assert a.equals(b, null_equal=True), f"{what}\n{a}\n{b}"


def test_every_case_audits_the_same_from_disk_in_small_batches(cases, tmp_path, monkeypatch):
    # Each audited whole first (one batch), then from disk in batches of 5 flows with partial
    # states merged once past 4 rows: every merge is exercised.
    inputs = list(_inputs(cases))
    wholes = [audit(pw.decode(path, **SMALL), policy) for path, policy in inputs]
    monkeypatch.setattr(capture_mod, "BATCH_ROWS", 5)
    monkeypatch.setattr(groups, "COMPACT_ROWS", 4)
    monkeypatch.setattr(services_mod, "COMPACT_ROWS", 4)
    monkeypatch.setattr(usage_mod, "COMPACT_ROWS", 4)
    checked = spilled = 0
    for (path, policy), whole in zip(inputs, wholes, strict=True):
        cap, spill = _on_disk(path, tmp_path)
        assert cap.flows_on_disk, path
        spilled += bool(spill.parts)
        try:
            parts = audit(cap, policy, spill_dir=tmp_path)
            assert parts.attributed.parts, "the attributed flows went to disk"
            doc_whole, doc_parts = document(whole), document(parts)
            assert json.dumps(doc_parts, sort_keys=True, default=str) == json.dumps(
                doc_whole, sort_keys=True, default=str
            ), path
            for name in ("services", "ranges", "violations", "blocked", "uncovered", "unused"):
                _same(getattr(parts, name), getattr(whole, name), f"{path.name}: {name}")
            for by in ("port", "service", "host"):
                _same(parts.usage(by), whole.usage(by), f"{path.name}: usage by {by}")
            _same(parts.flows, whole.flows, f"{path.name}: attributed flows")
            assert report_html(parts) == report_html(whole)
            _same(rpcinfo(cap), rpcinfo(pw.decode(path, **SMALL)), "rpcinfo")
            _same(msrpc_endpoints(cap), msrpc_endpoints(pw.decode(path, **SMALL)), "msrpc")
            checked += 1
        finally:
            parts.close()
            spill.close()
        assert not parts.attributed.dir.exists(), "closing the audit removes its parts"
    assert checked == len(inputs) == 2 + len(make_audit_cases.CASES)
    assert spilled >= 4, "most captures had flows in parts on disk"


def test_filters_and_host_names_read_flows_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(capture_mod, "BATCH_ROWS", 4)
    policy = load_config(config=DEMO / "PortsConfig.cfg")
    whole_cap = pw.decode(DEMO / "demo.pcap", **SMALL)
    cap, spill = _on_disk(DEMO / "demo.pcap", tmp_path)
    servers = whole_cap.flows["server_ip"].unique().sort().to_list()
    try:
        for kwargs in (
            {"hosts": [servers[0]]},
            {"where": pl.col("server_port") < 1024},
            {"since": whole_cap.flows["first_ts"].sort()[len(servers)]},
        ):
            a, b = audit(cap, policy, **kwargs), audit(whole_cap, policy, **kwargs)
            assert document(a) == document(b), kwargs
            a.close()
    finally:
        spill.close()


def test_the_flows_of_a_capture_on_disk_read_back_whole_and_in_order(tmp_path):
    whole = pw.decode(DEMO / "demo.pcap", **SMALL).flows
    cap, spill = _on_disk(DEMO / "demo.pcap", tmp_path)
    try:
        assert len(spill.parts) > 1
        assert cap.flow_schema == whole.schema
        batches = list(cap.flow_batches(rows=7))
        assert all(b.height <= 7 for b in batches)
        _same(pl.concat(batches), whole, "batches")
        _same(cap.flows, whole, "flows")
    finally:
        spill.close()


@pytest.mark.parametrize("command", ["report", "usage", "rpcinfo"])
def test_the_commands_leave_no_spill_behind(command, tmp_path, capsys):
    from portwitness.cli import main

    out = tmp_path / ("r.json" if command != "usage" else "u.csv")
    assert main([command, str(DEMO / "demo.pcap"), "-o", str(out)]) in (0, 3)
    assert out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_a_dataset_written_a_batch_at_a_time_reads_back_as_one_written_whole(tmp_path, monkeypatch):
    from portwitness.dataset import check, read_dataset, write_dataset

    whole_cap = pw.decode(DEMO / "demo.pcap", **SMALL)
    write_dataset(whole_cap, tmp_path / "whole")
    monkeypatch.setattr(capture_mod, "BATCH_ROWS", 5)
    cap, spill = _on_disk(DEMO / "demo.pcap", tmp_path)
    try:
        run = write_dataset(cap, tmp_path / "parts")
    finally:
        spill.close()
    assert run["rows"]["flows"] == whole_cap.flows.height
    assert any("-1.parquet" in p for p in run["parts"]), "later batches got parts of their own"
    assert check(tmp_path / "parts").problems == []
    a, b = read_dataset(tmp_path / "parts"), read_dataset(tmp_path / "whole")
    for name in capture_mod.TABLES:
        _same(getattr(a, name), getattr(b, name), name)


def test_a_dataset_audits_the_same_read_a_batch_at_a_time(tmp_path, monkeypatch):
    from portwitness.dataset import read_dataset, write_dataset

    policy = load_config(config=DEMO / "PortsConfig.cfg", mgmt=DEMO / "mgmt.properties")
    write_dataset(pw.decode(DEMO / "demo.pcap", **SMALL), tmp_path / "ds")
    write_dataset(pw.decode(PCAPS / "sample.pcap"), tmp_path / "ds")
    whole = read_dataset(tmp_path / "ds")
    expected = document(audit(whole, policy))
    monkeypatch.setattr(capture_mod, "BATCH_ROWS", 5)
    lazy = read_dataset(tmp_path / "ds", flows_on_disk=True)
    assert lazy.flows_on_disk and lazy.flow_schema == whole.flows.schema
    _same(pl.concat(list(lazy.flow_batches())), whole.flows, "flows")
    a = audit(lazy, policy, spill_dir=tmp_path)
    try:
        assert document(a) == expected
    finally:
        a.close()
