"""The flows table spilled to disk while decoding (`flows -o FILE`): the parts merged back in flow
order equal the table of a decode held in memory, row for row and byte for byte in every output
format; the spill's directory never outlives the command, also when writing fails."""

from __future__ import annotations

import errno
import os
import pickle
import random
import subprocess
import sys

import polars as pl
import pytest

import portwitness as pw
from conftest import PCAPS, ROOT, fixtures
from portwitness.capture import TABLES
from portwitness.cli import main
from portwitness.render import write_frame
from portwitness.spill import FlowSpill, merged, write_flows, write_parquet

sys.path.insert(0, str(ROOT / "benches"))
import hostile  # noqa: E402


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def spilled(paths, rows: int, **options) -> tuple[pl.DataFrame, pw.Capture, int]:
    """The flows of a decode whose finished flows were spilled `rows` at a time, merged back;
    the capture (its `flows` the rest) and the number of parts."""
    with FlowSpill() as spill:
        cap = pw.decode(paths, flow_sink=spill, spill_rows=rows, **options)
        parts = len(spill.parts)
        flows = pl.concat(list(merged(spill.parts, cap.flows, merge_rows=4096)))
    return flows, cap, parts


def leftovers(directory) -> list:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".portwitness-spill-"))


def test_merge_orders_sorted_runs_that_overlap(tmp_path):
    rng = random.Random(7)
    ids = list(range(50_000))
    rng.shuffle(ids)
    # Runs of uneven sizes, each sorted, their ranges interleaved as flows finishing out of order.
    cuts = sorted(rng.sample(range(1, len(ids)), 30))
    runs = [sorted(ids[a:b]) for a, b in zip([0, *cuts], [*cuts, len(ids)], strict=True)]
    parts = []
    for i, run_ids in enumerate(runs[:-1]):
        path = tmp_path / f"{i}.parquet"
        pl.DataFrame({"flow_id": run_ids, "x": [f"r{i}"] * len(run_ids)}).write_parquet(path)
        parts.append((path, len(run_ids)))
    rest = pl.DataFrame({"flow_id": runs[-1], "x": ["rest"] * len(runs[-1])})
    batches = list(merged(parts, rest, merge_rows=2048))
    out = pl.concat(batches)
    assert out["flow_id"].to_list() == list(range(50_000))
    assert max(b.height for b in batches) <= 2048 + 31 * 1024
    # Every row keeps its own columns.
    owner = {fid: f"r{i}" for i, r in enumerate(runs[:-1]) for fid in r} | {f: "rest" for f in runs[-1]}
    assert out["x"].to_list() == [owner[i] for i in range(50_000)]


def test_merge_of_nothing_spilled_is_the_rest():
    rest = pl.DataFrame({"flow_id": [3, 5, 9]}, schema={"flow_id": pl.UInt64})
    assert pl.concat(list(merged([], rest))).equals(rest)
    assert list(merged([], rest.clear())) == []


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("capture", fixtures(), ids=lambda p: p.name)
def test_spilled_flows_equal_the_whole_table(capture, threads):
    # A table of 4 flows evicts all the time: flows finish all through the capture.
    whole = pw.decode(capture, max_flows=4, threads=threads)
    flows, cap, _ = spilled(capture, 3, max_flows=4, threads=threads)
    assert flows.equals(whole.flows)
    assert cap.stats == whole.stats
    for table in ("anomalies", "captures", "rpc_calls", "mappings", "dcerpc_calls", "tls", "names"):
        assert getattr(cap, table).equals(getattr(whole, table)), table


def test_a_syn_flood_spills_in_parts_and_merges_back(tmp_path):
    path = tmp_path / "synflood.pcap"
    hostile.write_synflood(path, n=60_000)
    whole = pw.decode(path, max_flows=5_000)
    flows, cap, parts = spilled(path, 2_000, max_flows=5_000)
    assert parts >= 20 and cap.flows.height <= 5_000 + 2_000
    assert flows.height == whole.flows.height == cap.stats["flows"] == 60_000
    assert flows.equals(whole.flows)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson", "json"])
def test_cli_output_equals_the_frame_written_whole(tmp_path, capsys, fmt):
    capture = PCAPS / "sample.pcap"
    reference = tmp_path / f"whole.{fmt}"
    write_frame(pw.decode(capture, max_flows=4).flows, str(reference), fmt)
    out = tmp_path / f"flows.{fmt}"
    args = ["flows", str(capture), "--max-flows", "4", "--spill-rows", "2", "-o", str(out)]
    code, _, err = run(args, capsys)
    assert code == 0, err
    if fmt == "parquet":
        assert pl.read_parquet(out).equals(pl.read_parquet(reference))
    else:
        assert out.read_bytes() == reference.read_bytes()
    assert leftovers(tmp_path) == []


def test_cli_streams_csv_to_stdout(tmp_path, capsys, monkeypatch):
    capture = PCAPS / "sample.pcap"
    reference = tmp_path / "whole.csv"
    write_frame(pw.decode(capture, max_flows=4).flows, str(reference), "csv")
    monkeypatch.chdir(tmp_path)
    code = main(["flows", str(capture), "--max-flows", "4", "--spill-rows", "2", "--format", "csv"])
    out = capsys.readouterr().out
    assert code == 0 and out == reference.read_text()
    assert leftovers(tmp_path) == []


def test_empty_table_streams_its_header(tmp_path):
    empty = pw.decode(PCAPS / "sample.pcap").flows.clear()
    out = tmp_path / "empty.csv"
    assert write_flows(merged([], empty), empty.schema, str(out), "csv") == 0
    write_frame(empty, str(tmp_path / "whole.csv"), "csv")
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_a_failing_sink_ends_the_decode_with_its_error():
    def full(table):
        raise OSError(errno.ENOSPC, "No space left on device", "part-000000.parquet")

    with pytest.raises(OSError) as e:
        pw.decode(PCAPS / "sample.pcap", max_flows=4, flow_sink=full, spill_rows=2)
    assert e.value.errno == errno.ENOSPC


def test_cli_disk_full_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    def full(self, table):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.dir / "part-000000.parquet"))

    monkeypatch.setattr(FlowSpill, "__call__", full)
    out = tmp_path / "flows.parquet"
    args = ["flows", str(PCAPS / "sample.pcap"), "--max-flows", "4", "--spill-rows", "2", "-o", str(out)]
    code, _, err = run(args, capsys)
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith("portwitness: error: ") and line.endswith(": No space left on device")
    assert leftovers(tmp_path) == [] and not out.exists()


def test_cli_output_in_a_missing_directory(tmp_path, capsys):
    out = tmp_path / "no" / "such" / "flows.parquet"
    code, _, err = run(["flows", str(PCAPS / "sample.pcap"), "-o", str(out)], capsys)
    assert code == 1
    assert err.splitlines() == [f"portwitness: error: {out}: no such file"]


def test_flow_sink_is_not_for_a_cluster():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="flow_sink"):
        pw.decode(PCAPS / "sample.pcap", client=pool, flow_sink=lambda t: None)


@pytest.mark.parametrize("capture", ["sample.pcap", "tcp_basic.pcap", "broken/truncated_last_record.pcap"])
def test_parquet_of_flows_held_in_memory_is_written_by_the_core_as_polars_writes_it(
    tmp_path, capsys, capture
):
    path = PCAPS / capture
    whole = pw.decode(path).flows
    reference = tmp_path / "polars.parquet"
    whole.write_parquet(reference)
    out = tmp_path / "flows.parquet"
    code, _, err = run(["flows", str(path), "-o", str(out)], capsys)
    assert code in (0, 1) and "error" not in err, err
    back = pl.read_parquet(out)
    assert back.schema == pl.read_parquet(reference).schema == whole.schema
    assert back.equals(whole, null_equal=True) and back.height == whole.height > 0
    assert leftovers(tmp_path) == []


def test_flows_to_parquet_holds_the_community_ids(tmp_path):
    # The core writes the Parquet file of flows that stayed in memory, Community IDs included.
    out = tmp_path / "flows.parquet"
    assert main(["flows", str(PCAPS / "sample.pcap"), "-o", str(out)]) == 0
    back = pl.read_parquet(out)
    assert back.columns[-1] == "community_id" and back["community_id"].null_count() == 0
    assert back.equals(pw.decode(PCAPS / "sample.pcap").flows)


def test_flows_to_parquet_never_loads_polars(tmp_path):
    # The Community IDs come from the core with the rest of the table, which the core writes: a
    # flows output of a capture that does not spill needs no dataframe library at all.
    out = tmp_path / "flows.parquet"
    probe = (
        "import sys\n"
        "from portwitness.cli import main\n"
        f"code = main(['flows', {str(PCAPS / 'sample.pcap')!r}, '-o', {str(out)!r}])\n"
        "assert code == 0, code\n"
        "assert 'polars' not in sys.modules, 'polars was loaded'\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
    assert pl.read_parquet(out).equals(pw.decode(PCAPS / "sample.pcap").flows)


def test_the_core_writer_names_an_unwritable_output(tmp_path):
    target = tmp_path / "no" / "such" / "flows.parquet"
    cap = pw.decode(PCAPS / "sample.pcap")
    with pytest.raises(FileNotFoundError) as e:
        write_parquet(cap.arrow("flows"), str(target))
    assert (e.value.errno, e.value.strerror, e.value.filename) == (
        errno.ENOENT,
        os.strerror(errno.ENOENT),
        str(target),
    )
    assert not target.parent.exists()


def test_a_capture_converts_each_table_once_and_pickles_as_frames():
    cap = pw.decode(PCAPS / "sample.pcap")
    arrow = cap.arrow("flows")
    assert hasattr(arrow, "__arrow_c_stream__") and not isinstance(arrow, pl.DataFrame)
    flows = cap.flows
    assert cap.flows is flows and cap.arrow("flows") is flows
    assert flows.columns[-1] == "community_id" and flows.equals(pl.DataFrame(arrow))
    again = pickle.loads(pickle.dumps(cap))
    for name in TABLES:
        assert getattr(again, name).equals(getattr(cap, name), null_equal=True)
    assert (again.stats, again.anomaly_kinds) == (cap.stats, cap.anomaly_kinds)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = cap.nope


def test_a_decode_builds_only_the_tables_asked_for():
    whole = pw.decode(PCAPS / "sample.pcap")
    cap = pw.decode(PCAPS / "sample.pcap", tables=["flows", "tls"])
    assert cap.flows.equals(whole.flows) and cap.tls.equals(whole.tls)
    assert cap.stats == whole.stats
    with pytest.raises(AttributeError, match="table 'rpc_calls' was not decoded"):
        _ = cap.rpc_calls
    again = pickle.loads(pickle.dumps(cap))
    assert again.flows.equals(whole.flows)
    with pytest.raises(AttributeError):
        _ = again.mappings
    with pytest.raises(ValueError, match="no table named 'flow'"):
        pw.decode(PCAPS / "sample.pcap", tables=["flow"])


def test_flows_with_anomalies_builds_the_anomalies_too(tmp_path, capsys):
    path = PCAPS / "broken/truncated_last_record.pcap"
    out, anomalies = tmp_path / "flows.parquet", tmp_path / "anomalies.csv"
    code, _, err = run(["flows", str(path), "-o", str(out), "--anomalies", str(anomalies)], capsys)
    assert code in (0, 1) and "error" not in err, err
    assert pl.read_csv(anomalies).height == pw.decode(path).anomalies.height > 0


def test_the_core_writer_takes_any_arrow_table(tmp_path):
    # A polars frame exports other Arrow types (string views, large lists) than the core makes.
    frame = pw.decode(PCAPS / "sample.pcap").flows.with_columns(
        ends=pl.concat_list("client_port", "server_port"),
        pair=pl.struct("client_ip", "server_ip"),
    )
    out = tmp_path / "frame.parquet"
    assert write_parquet(frame, str(out)) == frame.height
    assert pl.read_parquet(out).equals(frame, null_equal=True)
