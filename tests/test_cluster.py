"""Scale-out: the decode mapped over a Dask cluster (a `distributed.LocalCluster` of 2 worker
processes) or any `concurrent.futures` executor equals the one-pass decode, table for table and
row for row: captures apart in time decode as separate runs joined afterwards, rotated files and
files that share learned ports as one run, broken files and errors as one pass has them."""

from __future__ import annotations

import multiprocessing
import struct
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest

import portwitness
from conftest import PCAPS, ROOT, SHARED_CAPTURES, generate_capture, requires
from portwitness import _core, cluster, parallel
from portwitness.capture import Options
from portwitness.cli import main

distributed = pytest.importorskip("distributed")

TABLES = ["flows", "anomalies", "captures", "rpc_calls", "mappings", "dcerpc_calls", "tls", "names"]
DAY = 86_400
DEMO = ROOT / "python" / "portwitness" / "demo"


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as lc,
        distributed.Client(lc) as c,
    ):
        yield c


def assert_same(a: portwitness.Capture, b: portwitness.Capture) -> None:
    for name in TABLES:
        x, y = getattr(a, name), getattr(b, name)
        assert x.height == y.height, name
        assert x.equals(y, null_equal=True), f"{name} differs"
    assert a.stats == b.stats
    assert a.anomaly_counts() == b.anomaly_counts()


def _records(data: bytes) -> tuple[str, list[tuple[int, int]]]:
    """Byte order and (offset, length) of each record of a classic pcap."""
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    out, pos = [], 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(order + "I", data, pos + 8)[0]
        out.append((pos, 16 + incl))
        pos += 16 + incl
    return order, out


def retime(src: Path, dst: Path, start: int) -> None:
    """A copy of a classic pcap moved in time: its earliest record at `start` (Unix seconds)."""
    data = bytearray(src.read_bytes())
    order, recs = _records(bytes(data))
    secs = [struct.unpack_from(order + "I", data, pos)[0] for pos, _ in recs]
    base = min(secs, default=0)
    for (pos, _), s in zip(recs, secs, strict=True):
        struct.pack_into(order + "I", data, pos, s - base + start)
    dst.write_bytes(bytes(data))


def split(src: Path, dsts: list[Path]) -> None:
    """Rotated files: a classic pcap cut at record boundaries into equal parts."""
    data = src.read_bytes()
    _, recs = _records(data)
    per = -(-len(recs) // len(dsts))
    for i, dst in enumerate(dsts):
        part = recs[i * per : (i + 1) * per]
        dst.write_bytes(data[:24] + b"".join(data[p : p + n] for p, n in part))


def classic_pcaps() -> list[Path]:
    found = sorted(p for p in PCAPS.glob("*.pcap"))
    found += sorted(SHARED_CAPTURES.glob("*.pcap"))
    return found


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> list[Path]:
    """Every classic fixture, one a day: most decode alone, those sharing learned ports do not."""
    d = tmp_path_factory.mktemp("days")
    files = []
    for i, src in enumerate(classic_pcaps()):
        dst = d / f"{i:02d}-{src.name}"
        retime(src, dst, 1_600_000_000 + i * DAY)
        files.append(dst)
    return files


def generate(out: Path, size: str, seed: int, start: int) -> Path:
    return generate_capture(out, "--size", size, "--seed", str(seed), "--start", str(start))


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> list[Path]:
    """Three generated nightly captures (every protocol decoded), then one night's capture rotated
    into three files whose conversations cross them."""
    d = tmp_path_factory.mktemp("nights")
    files = [generate(d / f"night{i}.pcap", "6M", i + 1, 1_700_000_000 + i * DAY) for i in range(3)]
    whole = generate(d / "whole.pcap", "9M", 7, 1_700_000_000 + 5 * DAY)
    rotated = [d / f"night5-{k}.pcap" for k in range(3)]
    split(whole, rotated)
    whole.unlink()
    return files + rotated


@requires("real captures")  # the fixtures alone share learned ports across most days
def test_apart_in_time_decode_alone_and_join_exactly(client, days):
    one = portwitness.decode(days, threads=1)
    many, runs = cluster.decode_runs([str(p) for p in days], client, Options(threads=1))
    assert_same(one, many)
    # Most days decode alone; some runs hold several (ports learned on one day used on another,
    # calls a later day could answer).
    assert len(runs) >= 10 and any(len(r) > 1 for r in runs), runs
    assert sorted(i for r in runs for i in r) == list(range(len(days)))
    assert many.flows["flow_id"].to_list() == list(range(many.flows.height))


def test_short_timeouts_cut_more_runs(client, days):
    one = portwitness.decode(days, threads=1, idle_timeout=5.0, fragment_timeout=5.0)
    opts = Options(threads=1, idle_timeout=5.0, fragment_timeout=5.0)
    many, _ = cluster.decode_runs([str(p) for p in days], client, opts)
    assert_same(one, many)


def test_nights_and_rotated_files(client, nights):
    one = portwitness.decode(nights, threads=1)
    many, runs = cluster.decode_runs([str(p) for p in nights], client, Options(threads=1))
    assert_same(one, many)
    # The nights alone; the rotated files, which share conversations, as one run.
    assert runs == [(0,), (1,), (2,), (3, 4, 5)]
    assert one.rpc_calls.height > 0 and one.dcerpc_calls.height > 0 and one.tls.height > 0
    # The joined tables hold what each night decoded alone, flow ids moved past the ones before.
    alone = portwitness.decode(nights[1], threads=1)
    offset = portwitness.decode(nights[0], threads=1).flows.height
    mine = many.flows.filter(pl.col("capture") == str(nights[1]))
    assert mine.drop("flow_id").equals(alone.flows.drop("flow_id"), null_equal=True)
    assert mine["flow_id"].to_list() == [i + offset for i in alone.flows["flow_id"]]
    # Flows the first night left live are counted as expired, as one pass counts them.
    assert many.stats["flows_expired"] == one.stats["flows_expired"] > 0


def test_every_fixture_at_once_broken_ones_between(client):
    """pcaps/ as it is: the same times, broken and unreadable files between: one run."""
    paths = [
        str(p)
        for p in sorted(PCAPS.rglob("*"))
        if p.is_file() and p.suffix in (".pcap", ".pcapng", ".gz", ".zst")
    ]
    # The files that are no capture are named and left out the same way on both.
    one = portwitness.decode(paths, threads=1, skip_unreadable=True)
    many = portwitness.decode(paths, threads=1, client=client, skip_unreadable=True)
    assert_same(one, many)
    assert one.skipped and [i.path for i in one.skipped] == [i.path for i in many.skipped]


@pytest.mark.parametrize(
    "capture",
    sorted(p for p in PCAPS.rglob("*") if p.is_file() and p.suffix in (".pcap", ".pcapng", ".gz", ".zst")),
    ids=lambda p: str(p.relative_to(PCAPS)),
)
def test_each_fixture_alone(client, capture):
    try:
        one = portwitness.decode(capture, threads=1)
    except _core.PortwitnessError as e:
        with pytest.raises(type(e)) as got:
            portwitness.decode(capture, threads=1, client=client)
        assert str(got.value) == str(e)
        return
    assert_same(one, portwitness.decode(capture, threads=1, client=client))


def test_relative_paths_name_the_files_as_given(client, days, monkeypatch):
    """Workers open absolute paths (their working directory is not the client's); the tables
    name the files as given."""
    monkeypatch.chdir(days[0].parent)
    names = [p.name for p in days[:6]]
    one = portwitness.decode(names, threads=1)
    assert_same(one, portwitness.decode(names, threads=1, client=client))
    assert one.captures["capture"].to_list() == names


def test_errors_are_the_local_ones(client, tmp_path):
    missing = tmp_path / "missing.pcap"
    with pytest.raises(_core.CaptureFormatError, match="missing.pcap: no such file"):
        portwitness.decode([PCAPS / "sample.pcap", missing], client=client)
    zeros = PCAPS / "broken" / "zeros.pcap"
    with pytest.raises(_core.CaptureFormatError) as local:
        portwitness.decode([zeros, zeros])
    with pytest.raises(_core.CaptureFormatError) as remote:
        portwitness.decode([zeros, zeros], client=client)
    assert str(remote.value) == str(local.value)


def test_any_executor(days):
    # Spawned, not forked: a fork of a process running Polars' or Dask's threads can deadlock.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        many = portwitness.decode(days[:8], threads=1, client=pool)
    assert_same(portwitness.decode(days[:8], threads=1), many)


def test_files_in_parallel_on_threads(days, nights):
    """More than 2 threads: files that can be decoded apart are, one per thread, in this process."""
    for paths in (days, nights):
        one = portwitness.decode(paths, threads=1)
        apart = parallel.decode_in_parallel([str(p) for p in paths], Options(threads=3))
        assert apart is not None
        assert_same(one, apart)
        assert_same(one, portwitness.decode(paths, threads=4))
    with ThreadPoolExecutor(2) as pool:
        assert_same(portwitness.decode(days, threads=1), portwitness.decode(days, client=pool))


def test_files_in_parallel_only_where_it_pays(nights, tmp_path):
    paths = [str(p) for p in nights]
    # Two threads: the one-pass pipeline keeps both busy. Rotated files: one run. Stdin: unknown.
    assert parallel.decode_in_parallel(paths, Options(threads=2)) is None
    assert parallel.decode_in_parallel(paths[3:], Options(threads=4)) is None
    assert parallel.decode_in_parallel([*paths, "-"], Options(threads=4)) is None
    missing = str(tmp_path / "missing.pcap")
    assert parallel.decode_in_parallel([*paths, missing], Options(threads=4)) is None
    with pytest.raises(_core.CaptureFormatError, match="missing.pcap: no such file"):
        portwitness.decode([*paths, missing], threads=4)


def test_first_timestamps_plan_rotated_files_before_decoding(nights):
    firsts = parallel.first_timestamps([str(p) for p in nights] + [str(PCAPS / "broken" / "zeros.pcap")])
    assert firsts[0] == 1_700_000_000 * 10**9
    assert firsts[-1] is None
    assert parallel._preplan(firsts, Options()) == [(0,), (1,), (2,), (3, 4, 5, 6)]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_scheduler(client, days, tmp_path, capsys):
    address = client.scheduler.address
    files = [str(p) for p in days]
    config = ["--config", str(DEMO / "PortsConfig.cfg"), "--mgmt-config", str(DEMO / "mgmt.properties")]
    for argv in (["usage", *files, "--format", "csv"], ["report", *files, *config, "--format", "json"]):
        rc, local, _ = run(capsys, *argv)
        rc2, remote, _ = run(capsys, *argv, "--scheduler", address)
        assert rc == rc2 and remote == local, argv[0]
    rc, _, _ = run(capsys, "flows", *files, "-o", str(tmp_path / "a.parquet"))
    rc2, _, _ = run(capsys, "flows", *files, "-o", str(tmp_path / "b.parquet"), "--scheduler", address)
    assert rc == rc2 == 0
    assert pl.read_parquet(tmp_path / "a.parquet").equals(
        pl.read_parquet(tmp_path / "b.parquet"), null_equal=True
    )


def test_cli_scheduler_errors(capsys):
    rc, out, err = run(capsys, "usage", str(PCAPS / "sample.pcap"), "--scheduler", "nonsense://nowhere")
    assert rc == 1 and not out
    assert err.startswith("portwitness: error: cannot reach the Dask scheduler at nonsense://nowhere: ")
    assert err.count("\n") == 1
    rc, _, err = run(capsys, "usage", "-", "--scheduler", "tcp://127.0.0.1:8786")
    assert rc == 2 and "standard input cannot be decoded on a cluster" in err
