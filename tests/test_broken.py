"""Malformed captures: what is still decoded, and the anomaly that says where the damage is."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS
from portwitness.inputs import UnreadableInputError

# The fixtures make_fixtures.py writes (pcaps/make_broken.py's suite has its own test_malformed.py).
BROKEN = [PCAPS / "broken" / n for n in sorted(json.loads((PCAPS / "manifest.json").read_text())["broken"])]


@pytest.mark.parametrize("capture", [p for p in BROKEN if p.name != "bad_magic.pcap"], ids=lambda p: p.name)
def test_broken_capture_decodes_what_it_can(capture):
    expect = json.loads((capture.parent / f"{capture.name}.expect.json").read_text())
    cap = pw.decode(capture)
    assert cap.stats["records"] == expect["packets_decoded"]
    # The fixtures' filler bytes on port 111 add one not_oncrpc anomaly per flow.
    kinds = set(cap.anomalies["kind"].to_list()) - {"not_oncrpc"}
    assert sorted(kinds) == sorted(expect["anomaly_kinds"])
    row = cap.anomalies.filter(pl.col("layer") == "capture").row(0, named=True)
    assert row["capture"] == str(capture) and row["byte_offset"] > 0


def test_bad_magic_is_a_format_error():
    with pytest.raises(pw.CaptureFormatError, match=r"bad magic 48 45 4c 4f"):
        pw.decode(PCAPS / "broken" / "bad_magic.pcap")


def test_bad_magic_among_good_files_stops_unless_skipped():
    inputs = [PCAPS / "broken" / "bad_magic.pcap", PCAPS / "tcp_basic.pcap"]
    with pytest.raises(
        UnreadableInputError, match=r"bad_magic\.pcap: not a pcap or pcapng capture \(bad magic"
    ):
        pw.decode(inputs)
    cap = pw.decode(inputs, skip_unreadable=True)
    assert [(i.path.rsplit("/", 1)[-1], i.status) for i in cap.inputs] == [
        ("tcp_basic.pcap", "read"),
        ("bad_magic.pcap", "skipped"),
    ]
    assert cap.skipped[0].reason == "not a pcap or pcapng capture (bad magic 48 45 4c 4f)"
    assert cap.flows.height == 6


def test_compressed_stream_of_something_else_is_unreadable(tmp_path):
    # Its magic is gzip's: only the core, once it has inflated it, can tell it holds no capture.
    text = tmp_path / "notes.pcap.gz"
    text.write_bytes(gzip.compress(b"hello, this is no capture\n"))
    with pytest.raises(UnreadableInputError, match=r"notes\.pcap\.gz: not a pcap or pcapng capture"):
        pw.decode([text, PCAPS / "tcp_basic.pcap"])
    cap = pw.decode([text, PCAPS / "tcp_basic.pcap"], skip_unreadable=True)
    assert [i.status for i in cap.inputs] == ["read", "skipped"]


def test_truncated_last_record_position():
    cap = pw.decode(PCAPS / "broken" / "truncated_last_record.pcap")
    row = cap.anomalies.filter(pl.col("layer") == "capture").row(0, named=True)
    assert row["kind"] == "truncated_record"
    assert row["record_index"] == cap.stats["records"]


def test_cut_gzip_stream(tmp_path):
    data = (PCAPS / "tcp_basic.pcap.gz").read_bytes()
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    cap = pw.decode(cut)
    assert "read_error" in cap.anomaly_counts()
    assert 0 < cap.stats["records"] < 26
    # Cut short is read, not skipped: an anomaly, and the audit's verdict says so.
    assert [i.path for i in cap.cut_short()] == [str(cut)]


def test_empty_file_and_zeros(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(pw.CaptureFormatError, match="empty file"):
        pw.decode(empty)
    zeros = tmp_path / "zeros.pcap"
    zeros.write_bytes(bytes(4096))
    with pytest.raises(pw.CaptureFormatError, match="bad magic 00 00 00 00"):
        pw.decode(zeros)


def test_truncated_inside_global_header(tmp_path):
    p = tmp_path / "short.pcap"
    p.write_bytes((PCAPS / "tcp_basic.pcap").read_bytes()[:10])
    with pytest.raises(pw.CaptureFormatError, match="truncated inside the pcap file header"):
        pw.decode(p)
