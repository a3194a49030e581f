"""Inputs: compression by magic, stdin, several files, directories and globs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS
from portwitness.inputs import UnreadableInputError


def test_gzip_and_zstd_equal_plain():
    plain = pw.decode(PCAPS / "tcp_basic.pcap").flows.drop("capture")
    gz = pw.decode(PCAPS / "tcp_basic.pcap.gz")
    assert gz.flows.drop("capture").equals(plain)
    assert gz.captures["compression"][0] == "gzip"
    zst = pw.decode(PCAPS / "ipv6_ext.pcapng.zst")
    assert zst.flows.drop("capture").equals(pw.decode(PCAPS / "ipv6_ext.pcapng").flows.drop("capture"))
    assert zst.captures["compression"][0] == "zstd"


def test_format_detected_by_magic_not_name(tmp_path):
    odd = tmp_path / "capture.txt"
    shutil.copy(PCAPS / "ipv6_ext.pcapng", odd)
    cap = pw.decode(odd)
    assert cap.captures["format"][0] == "pcapng"


def test_stdin():
    code = "import portwitness as pw; print(pw.decode('-').flows.height)"
    data = (PCAPS / "tcp_basic.pcap.gz").read_bytes()
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True)
    assert out.stdout.strip() == b"6"


def test_several_files_in_order_one_flow_table():
    cap = pw.decode([PCAPS / "vlan_qinq.pcap", PCAPS / "tcp_basic.pcap"])
    assert cap.captures["capture"].to_list() == [str(PCAPS / "vlan_qinq.pcap"), str(PCAPS / "tcp_basic.pcap")]
    assert cap.flows.height == 2 + 6
    assert cap.flows["flow_id"].to_list() == list(range(8))


def test_directory_and_glob(tmp_path):
    for name in ["tcp_basic.pcap", "vlan_qinq.pcap"]:
        shutil.copy(PCAPS / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a capture")
    by_dir = pw.decode(tmp_path)
    assert by_dir.captures.height == 2
    by_glob = pw.decode(str(tmp_path / "*.pcap"))
    assert by_glob.flows.drop("capture").equals(by_dir.flows.drop("capture"))
    with pytest.raises(UnreadableInputError, match=r"\*\.pcapng: no file matches the pattern$"):
        pw.decode(str(tmp_path / "*.pcapng"))


def test_missing_file():
    with pytest.raises(UnreadableInputError, match=r"does-not-exist\.pcap: no such file$"):
        pw.decode(PCAPS / "does-not-exist.pcap")


def test_limits_bound_the_table():
    cap = pw.decode(PCAPS / "sample.pcap", max_flows=2)
    full = pw.decode(PCAPS / "sample.pcap")
    assert cap.stats["flows_evicted"] > 0
    # Evicted flows are emitted, never lost: every packet is still accounted for.
    total = pl.col("packets_c2s") + pl.col("packets_s2c")
    assert cap.flows.select(total.sum()).item() == full.flows.select(total.sum()).item()
