"""The decode on two threads equals the decode on one, table for table and row for row: on every
capture in pcaps/ (broken ones included), on the real captures, on compressed input, and on
generated captures large enough to cross many batches and read buffers, alone and as rotated
files that share conversations."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import polars as pl
import pytest

from conftest import PCAPS, SHARED_CAPTURES, generate_capture
from portwitness import _core

TABLES = _core.TABLES


def _inputs() -> list[Path]:
    exts = (".pcap", ".pcapng", ".gz", ".zst", ".cap", ".bin")
    found = [p for p in sorted(PCAPS.rglob("*")) if p.is_file() and p.name.endswith(exts)]
    found += [p for p in sorted(SHARED_CAPTURES.glob("*")) if p.name.endswith((".pcap", ".pcapng"))]
    return found


def _decode(paths: list[Path], threads: int, chunk_bytes: int = 0) -> _core.DecodeResult | str:
    try:
        return _core.decode(
            [str(p) for p in paths], threads=threads, idle_timeout=600.0, chunk_bytes=chunk_bytes
        )
    except (OSError, _core.PortwitnessError) as e:
        return f"{type(e).__name__}: {e}"


# The ways to decode on more than one thread: the default (classic pcap files of two chunks or
# more split across threads, the rest in the pipeline), and chunks small enough that even the
# small fixtures are split at many places (records longer than a chunk, guesses that fail).
WAYS = [(2, 0), (2, 512), (3, 4096)]


def _same(one: _core.DecodeResult | str, many: _core.DecodeResult | str, way: tuple[int, int]) -> None:
    if isinstance(one, str) or isinstance(many, str):
        assert one == many, way
        return
    for name in TABLES:
        a = pl.DataFrame(getattr(one, name))
        b = pl.DataFrame(getattr(many, name))
        assert a.height == b.height, (name, way)
        assert a.equals(b, null_equal=True), f"{name} differs between 1 thread and {way}"
    assert one.stats == many.stats, way
    assert one.anomaly_counts == many.anomaly_counts, way


def assert_same(paths: list[Path], ways=WAYS) -> _core.DecodeResult | str:
    one = _decode(paths, 1)
    for threads, chunk in ways:
        _same(one, _decode(paths, threads, chunk), (threads, chunk))
    return one


def test_inputs_are_found():
    names = {p.name for p in _inputs()}
    assert "sample.pcap" in names and len(names) > 40


@pytest.mark.parametrize("capture", _inputs(), ids=lambda p: str(p.relative_to(p.parent.parent)))
def test_two_threads_equal_one(capture: Path):
    assert_same([capture])


def test_every_fixture_at_once():
    """All inputs as one run: flows and learned ports carry across files, broken files between."""
    out = assert_same(_inputs())
    assert not isinstance(out, str)
    assert out.stats["records"] > 1000


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("gen")
    files = []
    for i, (fmt, size) in enumerate([("pcap", "24M"), ("pcapng", "12M")]):
        out = d / f"part{i}.{fmt}"
        generate_capture(out, "--size", size, "--format", fmt, "--flows", "3000", "--seed", str(7 + i))
        files.append(out)
    return files


def test_generated_capture(generated):
    out = assert_same(generated[:1])
    assert not isinstance(out, str)
    # Many batches of packets, many read buffers, and the protocols decoded.
    assert out.stats["records"] > 40_000
    assert pl.DataFrame(out.mappings).height > 0 and pl.DataFrame(out.tls).height > 0


def test_generated_pcapng_and_rotation(generated):
    assert_same(generated)


def test_gzip_input(generated, tmp_path):
    z = tmp_path / "part0.pcap.gz"
    z.write_bytes(gzip.compress(generated[0].read_bytes(), compresslevel=1))
    assert_same([z], ways=[(2, 0)])


@pytest.mark.parametrize("way", [(2, 0), (2, 1 << 20)])
def test_tiny_flow_table_evicts_the_same(generated, way):
    threads, chunk = way
    one = _core.decode([str(generated[0])], threads=1, max_flows=64)
    two = _core.decode([str(generated[0])], threads=threads, max_flows=64, chunk_bytes=chunk)
    assert one.stats["flows_evicted"] > 0
    assert one.stats == two.stats
    for name in TABLES:
        assert pl.DataFrame(getattr(one, name)).equals(pl.DataFrame(getattr(two, name)), null_equal=True), (
            name
        )


def test_threads_must_not_be_negative():
    import portwitness

    with pytest.raises(ValueError, match="threads must be 0"):
        portwitness.decode(PCAPS / "sample.pcap", threads=-1)


def test_pcapng_in_chunks_equals_one_pass(generated, tmp_path):
    """pcapng split across threads: alone, as two sections one after the other (the second
    section's interfaces are read by the careful reader), and with chunks of one record or less."""
    assert_same(generated[1:], ways=[(2, 0), (2, 1 << 20), (3, 300)])
    two = tmp_path / "two-sections.pcapng"
    two.write_bytes(generated[1].read_bytes() + generated[1].read_bytes())
    assert_same([two], ways=[(2, 1 << 20), (3, 4096)])


def test_pcapng_and_pcap_of_the_same_packets_decode_alike(generated, tmp_path):
    """editcap's pcapng of a pcap file: the same flows and counters, on one thread and in chunks."""
    ng = tmp_path / "part0.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(generated[0]), str(ng)], check=True)
    pcap = _decode(generated[:1], 1)
    one = assert_same([ng], ways=[(2, 0), (2, 1 << 20)])
    assert not isinstance(one, str) and not isinstance(pcap, str)
    assert one.stats == pcap.stats
    # Each row names its file: the rest is the same.
    ng_flows = pl.DataFrame(one.flows).drop("capture")
    assert ng_flows.equals(pl.DataFrame(pcap.flows).drop("capture"), null_equal=True)
