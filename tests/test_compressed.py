"""Compressed captures decode to the same tables as the plain file, on one thread (decompression
inline) and on two (decompression on threads of its own, zstd frames in parallel): zstd files of
several frames, gzip files of several members, and both cut short in the middle of a frame or
member, where the rows and the read error must be those of the serial read."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
import zstandard

import portwitness as pw
from conftest import generate_capture
from portwitness import _core

# The captures table names the compression itself: every other table must be the same.
TABLES = [t for t in _core.TABLES if t != "captures"]
PIECES = 7


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compressed") / "mixed.pcap"
    return generate_capture(out, "--size", "12M", "--flows", "2000", "--seed", "5")


def pieces(data: bytes, n: int = PIECES) -> list[bytes]:
    # Cut anywhere, not at record boundaries: a frame or member may end inside a packet.
    step = len(data) // n + 1
    return [data[i : i + step] for i in range(0, len(data), step)]


def zstd_frames(data: bytes) -> bytes:
    return b"".join(zstandard.ZstdCompressor(level=1).compress(p) for p in pieces(data))


def gzip_members(data: bytes) -> bytes:
    return b"".join(gzip.compress(p, compresslevel=1) for p in pieces(data))


def decode(path: Path, threads: int) -> _core.DecodeResult:
    return _core.decode([str(path)], threads=threads, idle_timeout=600.0)


def tables(out: _core.DecodeResult) -> dict:
    return {name: pl.DataFrame(t).drop("capture", strict=False) for name, t in out.tables.items()}


def assert_same_tables(a: _core.DecodeResult, b: _core.DecodeResult, but: tuple = ()) -> None:
    ta, tb = tables(a), tables(b)
    for name in set(TABLES) - set(but):
        assert ta[name].equals(tb[name], null_equal=True), name
    assert a.stats["records"] == b.stats["records"]


@pytest.mark.parametrize("threads", [1, 2])
def test_zstd_of_several_frames_equals_the_plain_file(plain, tmp_path, threads):
    z = tmp_path / "frames.pcap.zst"
    z.write_bytes(zstd_frames(plain.read_bytes()))
    assert z.read_bytes().count(b"\x28\xb5\x2f\xfd") >= PIECES
    base = decode(plain, 1)
    got = decode(z, threads)
    assert pl.DataFrame(got.captures)["compression"].to_list() == ["zstd"]
    assert got.stats["records"] > 20_000
    assert_same_tables(base, got)


@pytest.mark.parametrize("threads", [1, 2])
def test_gzip_of_several_members_equals_the_plain_file(plain, tmp_path, threads):
    z = tmp_path / "members.pcap.gz"
    z.write_bytes(gzip_members(plain.read_bytes()))
    got = decode(z, threads)
    assert pl.DataFrame(got.captures)["compression"].to_list() == ["gzip"]
    assert_same_tables(decode(plain, 1), got)


def test_one_frame_zstd_equals_the_plain_file_on_two_threads(plain, tmp_path):
    z = tmp_path / "one.pcap.zst"
    with open(plain, "rb") as src, open(z, "wb") as dst:
        zstandard.ZstdCompressor(level=3).copy_stream(src, dst)
    assert_same_tables(decode(plain, 1), decode(z, 2))


def read_errors(out: dict) -> list[tuple]:
    a = pl.DataFrame(out.anomalies).filter(pl.col("kind") == "read_error")
    return a.select("record_index", "byte_offset", "detail").rows()


@pytest.mark.parametrize("where", [0.5, 0.93])
def test_zstd_cut_mid_frame_keeps_what_a_serial_read_keeps(plain, tmp_path, where):
    data = zstd_frames(plain.read_bytes())
    cut = tmp_path / "cut.pcap.zst"
    cut.write_bytes(data[: int(len(data) * where)])
    one, two = decode(cut, 1), decode(cut, 2)
    errors = read_errors(one)
    assert len(errors) == 1 and errors[0][2].startswith("zstd stream error")
    assert read_errors(two) == errors
    assert 0 < one.stats["records"] == two.stats["records"]
    assert_same_tables(one, two)


@pytest.mark.parametrize("where", [0.5, 0.93])
def test_gzip_cut_mid_member_keeps_what_a_serial_read_keeps(plain, tmp_path, where):
    data = gzip_members(plain.read_bytes())
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(data[: int(len(data) * where)])
    one, two = decode(cut, 1), decode(cut, 2)
    errors = read_errors(one)
    assert len(errors) == 1 and errors[0][2].startswith("gzip stream error")
    assert read_errors(two) == errors
    assert 0 < one.stats["records"] == two.stats["records"]
    assert_same_tables(one, two)


def test_garbage_after_the_frames_is_the_same_error(plain, tmp_path):
    z = tmp_path / "tail.pcap.zst"
    z.write_bytes(zstd_frames(plain.read_bytes()) + b"trailing bytes that are no zstd frame")
    one, two = decode(z, 1), decode(z, 2)
    assert len(read_errors(one)) == 1
    assert read_errors(two) == read_errors(one)
    assert_same_tables(one, two)
    # Every packet is there; only the read error is more.
    assert_same_tables(decode(plain, 1), one, but=("anomalies",))


@pytest.mark.parametrize("threads", [1, 2])
def test_zstd_opening_with_a_skippable_frame_is_a_capture(plain, tmp_path, threads):
    # pzstd writes a skippable frame (its index) before every frame; the magic is not zstd's.
    skippable = bytes((0x50, 0x2A, 0x4D, 0x18)) + (4).to_bytes(4, "little") + b"\0\0\0\0"
    z = tmp_path / "indexed.pcap.zst"
    z.write_bytes(
        b"".join(skippable + zstandard.ZstdCompressor().compress(p) for p in pieces(plain.read_bytes()))
    )
    cap = pw.decode(z, threads=threads)
    assert cap.captures["compression"].to_list() == ["zstd"]
    assert cap.flows.drop("capture").equals(pw.decode(plain).flows.drop("capture"))
