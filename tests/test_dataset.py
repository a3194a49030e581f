"""Parquet datasets: `flows CAPTURES -o DIR/` writes every table partitioned by capture and hour,
run after run; `report|usage --from-dataset DIR` audit it without the captures and say exactly
what they say on the captures."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

import portwitness
from conftest import PCAPS, ROOT
from portwitness.cli import main
from portwitness.dataset import MANIFEST, TABLES, DatasetError, capture_key, read_dataset, write_dataset

DEMO = ROOT / "python" / "portwitness" / "demo"
SAMPLE = PCAPS / "sample.pcap"
CONFIG = ["--config", str(DEMO / "PortsConfig.cfg"), "--mgmt-config", str(DEMO / "mgmt.properties")]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_report_from_dataset_equals_report_on_the_captures(tmp_path, capsys):
    ds = tmp_path / "ds"
    rc, _, err = run(capsys, "flows", str(DEMO / "demo.pcap"), str(SAMPLE), "-o", f"{ds}/")
    assert rc == 0 and "run 0 added 42 flows of 2 captures" in err
    for fmt in ("json", "csv", "markdown"):
        rc1, direct, _ = run(capsys, "report", str(DEMO / "demo.pcap"), str(SAMPLE), *CONFIG, "--format", fmt)
        rc2, stored, _ = run(capsys, "report", "--from-dataset", str(ds), *CONFIG, "--format", fmt)
        assert (rc1, rc2) == (0, 0)
        assert stored == direct, fmt
    rc, direct, _ = run(
        capsys, "usage", str(DEMO / "demo.pcap"), str(SAMPLE), "--by", "service", "--format", "csv"
    )
    rc2, stored, _ = run(capsys, "usage", "--from-dataset", str(ds), "--by", "service", "--format", "csv")
    assert stored == direct and rc == rc2 == 0
    # --fail-on works on a dataset as on the captures.
    out = ["-o", str(tmp_path / "r.json"), "--fail-on", "violations"]
    rc, _, err = run(capsys, "report", "--from-dataset", str(ds), *CONFIG, *out)
    rc1, _, err1 = run(capsys, "report", str(DEMO / "demo.pcap"), str(SAMPLE), *CONFIG, *out)
    assert rc == rc1 == 3 and "failing on 6 violations" in err and err == err1


def test_tables_round_trip_exactly(tmp_path):
    cap = portwitness.decode([DEMO / "demo.pcap", SAMPLE, PCAPS / "epm_dynamic.pcap"])
    write_dataset(cap, tmp_path)
    back = read_dataset(tmp_path)
    for name in TABLES:
        assert getattr(back, name).equals(getattr(cap, name), null_equal=True), name
    assert back.stats == cap.stats
    assert back.anomaly_counts() == cap.anomaly_counts()


def test_runs_add_up_and_a_capture_written_again_is_replaced(tmp_path):
    a = portwitness.decode(SAMPLE)
    b = portwitness.decode(DEMO / "demo.pcap")
    write_dataset(a, tmp_path)
    write_dataset(b, tmp_path)
    both = read_dataset(tmp_path)
    assert both.flows.height == a.flows.height + b.flows.height
    # Flow ids stay unique across runs, and the calls still point at their flows.
    assert both.flows["flow_id"].n_unique() == both.flows.height
    assert both.rpc_calls.join(both.flows, on="flow_id", how="anti").is_empty()
    assert both.stats["records"] == a.stats["records"] + b.stats["records"]
    # The sample again: its rows replace the old ones; its counters count once.
    entry = write_dataset(a, tmp_path)
    assert entry["run"] == 2
    again = read_dataset(tmp_path)
    assert again.flows.height == both.flows.height
    assert again.stats["records"] == both.stats["records"]
    assert (
        again.flows.filter(pl.col("capture") == str(SAMPLE))["flow_id"].min()
        >= both.flows["flow_id"].max() + 1
    )
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert [r["run"] for r in manifest["runs"]] == [0, 1, 2]
    assert manifest["captures"][capture_key(str(SAMPLE))]["run"] == 2


def test_partitions_by_capture_and_hour(tmp_path):
    cap = portwitness.decode(SAMPLE)
    # Half the flows three hours later: two hour partitions.
    late = (
        cap.flows.with_row_index("i")
        .with_columns(
            pl.when(pl.col("i") % 2 == 1)
            .then(pl.col("first_ts") + timedelta(hours=3))
            .otherwise(pl.col("first_ts"))
            .alias("first_ts")
        )
        .drop("i")
    )
    shifted = portwitness.Capture(
        **{**{n: getattr(cap, n) for n in TABLES}, "flows": late, "stats": cap.stats}
    )
    write_dataset(shifted, tmp_path)
    key = capture_key(str(SAMPLE))
    hours = sorted(p.name for p in (tmp_path / "flows" / f"capture={key}").iterdir())
    assert hours == ["hour=20260301T02", "hour=20260301T05"], hours
    # Tables without rows keep their schema; anomalies have no time.
    assert read_dataset(tmp_path).flows.equals(late, null_equal=True)
    assert read_dataset(tmp_path).tls.schema == cap.tls.schema
    assert not (tmp_path / "anomalies").exists() or all(
        p.name == "hour=none" for p in (tmp_path / "anomalies").glob("*/*")
    )


def test_two_files_of_one_name_stay_apart(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "x.pcap").write_bytes(SAMPLE.read_bytes())
    assert capture_key(str(tmp_path / "a" / "x.pcap")) != capture_key(str(tmp_path / "b" / "x.pcap"))
    write_dataset(portwitness.decode(tmp_path / "a" / "x.pcap"), tmp_path / "ds")
    write_dataset(portwitness.decode(tmp_path / "b" / "x.pcap"), tmp_path / "ds")
    assert read_dataset(tmp_path / "ds").flows.height == 2 * portwitness.decode(SAMPLE).flows.height


def test_errors_are_one_line(tmp_path, capsys):
    rc, _, err = run(capsys, "report", "--from-dataset", str(tmp_path))
    assert rc == 1 and err.strip().endswith("write one with flows CAPTURES -o DIR/)")
    (tmp_path / MANIFEST).write_text('{"format": "other/9"}')
    rc, _, err = run(capsys, "usage", "--from-dataset", str(tmp_path))
    assert rc == 1 and "not a portwitness.dataset/1 dataset (format 'other/9')" in err
    rc, _, err = run(capsys, "report")
    assert rc == 2 and "missing CAPTURES (or --from-dataset DIR)" in err
    rc, _, err = run(capsys, "report", str(SAMPLE), "--from-dataset", str(tmp_path))
    assert rc == 2 and "not both" in err
    rc, _, err = run(capsys, "flows", str(SAMPLE), "-o", f"{tmp_path}/new/", "--format", "csv")
    assert rc == 2 and "written as Parquet, not csv" in err
    with pytest.raises(DatasetError, match="no such dataset directory"):
        read_dataset(tmp_path / "missing")
    assert len(err.strip().splitlines()) == 1


def test_existing_directory_without_slash_is_a_dataset(tmp_path, capsys):
    rc, _, _ = run(capsys, "flows", str(SAMPLE), "-o", str(tmp_path))
    assert rc == 0 and (tmp_path / MANIFEST).exists()
    assert Path(tmp_path / "flows").is_dir()
