#!/usr/bin/env python3
"""Generate the malformed-capture suite in pcaps/broken/ and what portwitness must do with each.

Run from anywhere:  python pcaps/make_broken.py

Writes only the captures of ``CASES`` below (new files); the older broken fixtures are written by
``make_fixtures.build_broken`` and are only given a ``<file>.cli.json`` here (what the command line
says about them), never rewritten. Everything is deterministic (fixed timestamps and addresses,
gzip mtime=0, fixed zstd level); re-running rewrites byte-identical files.

For every new capture, ``<file>.expect.json`` holds

* ``damage``: what is wrong with it;
* ``packets_decoded`` / ``anomaly_kinds``: ``stats["records"]`` and the anomaly kinds of
  ``portwitness.decode`` (the keys ``tests/test_broken.py`` reads), ``anomalies``: the count of each;
* ``flows``: rows of the flow table still decoded;
* ``exit_code`` and ``stderr``: what ``portwitness flows FILE -o OUT.csv`` exits with and the one line
  it prints on stderr (``{path}`` stands for the file name as given), ``""`` when it prints nothing;
* ``decode_error``: the message of the ``CaptureFormatError`` ``portwitness.decode`` raises, or null;
* ``xfail`` (only while the core disagrees): why the expectation is not met yet.

The expectations are an oracle, not a recording: packets and flows are counted from what was
planted (``make_fixtures.expected_flows`` over the frames that must survive the damage); for the
damaged compressed streams, from the bytes Python's own zlib / libzstd recover before the damage.
"""

from __future__ import annotations

import gzip
import json
import struct
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import zstandard
from scapy.layers.inet import IP, TCP

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

HERE = Path(__file__).resolve().parent
BROKEN = HERE / "broken"
E = "<"
A, B = "10.7.0.1", "10.7.0.2"


# --------------------------------------------------------------------------
# Base captures
# --------------------------------------------------------------------------


def build_base() -> mf.Capture:
    """A TCP session and a UDP exchange on ports no application decoder claims, so the only
    anomalies are the planted ones: 11 frames, 2 flows."""
    cap = mf.Capture()
    t = mf.Tcp(cap, A, 40300, B, 9000, isn_c=0x70000000, isn_s=0x71000000)
    mf.run(t.handshake() + t.exchange(40, 28, "base") + t.close())
    cap.udp(A, 40301, B, 9001, mf.blob(56, "base-query"))
    cap.udp(B, 9001, A, 40301, mf.blob(28, "base-answer"))
    return cap


def build_bulk(segments: int = 300) -> mf.Capture:
    """One TCP connection carrying ``segments`` full-size segments (about 440 kB of capture that
    compresses to a few kB): enough for a damaged compressed stream to have a before and an after."""
    cap = mf.Capture()
    t = mf.Tcp(cap, A, 40310, B, 9100, isn_c=0x72000000, isn_s=0x73000000)
    mf.run(t.handshake())
    for i in range(segments):
        t.send(True, "A", mf.blob(1400, f"bulk-{i:04d}"))
    mf.run(t.close())
    return cap


def pcap_bytes(frames, snaplen=mf.SNAPLEN, linktype=mf.LINKTYPE_ETHERNET) -> bytes:
    return mf.write_pcap(frames, linktype, snaplen=snaplen)


def record_ends(frames) -> list[int]:
    """Byte offset just past each record of ``pcap_bytes(frames)``."""
    ends, at = [], 24
    for fr in frames:
        at += 16 + len(fr.data)
        ends.append(at)
    return ends


def flows(frames) -> int:
    return len(mf.expected_flows(frames))


def warning(anomalies: dict[str, int]) -> str:
    """The CLI's anomalies line."""
    if not anomalies:
        return ""
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(anomalies.items()))
    total = sum(anomalies.values())
    return (
        f"portwitness: warning: {total} {'anomaly' if total == 1 else 'anomalies'} while decoding ({kinds}); "
        "write them with --anomalies FILE"
    )


def ok(damage: str, frames, anomalies: dict[str, int], **extra) -> dict:
    """Expectation for a capture that is read (exit 0) with ``frames`` decoded."""
    return {
        "damage": damage,
        "packets_decoded": len(frames),
        "anomaly_kinds": sorted(anomalies),
        "anomalies": dict(sorted(anomalies.items())),
        "flows": flows(frames),
        "exit_code": 0,
        "stderr": warning(anomalies),
        "decode_error": None,
        **extra,
    }


def fatal(damage: str, reason: str) -> dict:
    """Expectation for a file that is no readable capture (exit 1, one error line)."""
    return {
        "damage": damage,
        "packets_decoded": 0,
        "anomaly_kinds": ["bad_magic"],
        "anomalies": {"bad_magic": 1},
        "flows": 0,
        "exit_code": 1,
        "stderr": f"portwitness: error: {{path}}: {reason}",
        "decode_error": reason,
    }


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------


def case_truncated_global_header():
    data = pcap_bytes(build_base().frames)[:10]
    reason = "truncated inside the pcap file header (10 of 24 bytes)"
    return data, fatal("the first 10 bytes of a pcap file: the magic, then the end", reason)


def case_truncated_record_header():
    fr = build_base().frames
    nxt = mf.pcap_record(E, False, fr[-1].ts_ns + 1_000_000, fr[0].data, len(fr[0].data))
    data = pcap_bytes(fr) + nxt[:9]
    return data, ok(
        "11 good records, then 9 of the 16 bytes of a 12th record header",
        fr,
        {"truncated_record_header": 1},
    )


def case_snaplen_zero():
    fr = build_base().frames
    return pcap_bytes(fr, snaplen=0), ok(
        "snaplen 0 in the global header (some writers mean 'unlimited'); every record is fine", fr, {}
    )


def _ng(frames, swap_index=None, swap=None) -> bytes:
    blocks = [mf.ng_idb(E, mf.LINKTYPE_ETHERNET, "eth0")]
    for i, fr in enumerate(frames):
        blocks.append(swap(fr) if i == swap_index else mf.ng_packet(E, fr, None))
    return mf.ng_shb(E, -1, mf.SHB_OPTS) + b"".join(blocks)


def case_wrong_byte_order_block():
    fr = build_base().frames
    data = _ng(fr, 5, lambda f: mf.ng_packet(">", f, None))
    survivors = fr[:5] + fr[6:]
    return data, ok(
        "little-endian section; its 6th EPB (92 bytes) is written big-endian, so its length reads "
        "0x5c000000: only that packet is lost",
        survivors,
        {"implausible_record_length": 1},
    )


def _sized_frame(fr: mf.Frame, size: int) -> mf.Frame:
    """``fr`` padded with trailing zero bytes to ``size`` captured bytes (an Ethernet trailer)."""
    return replace(fr, data=fr.data + bytes(size - len(fr.data)), orig_len=size)


def case_wrong_byte_order_block_256():
    fr = build_base().frames
    fr[5] = _sized_frame(fr[5], 256 - 32)  # the EPB is 256 bytes: 00 00 01 00 big-endian
    data = _ng(fr, 5, lambda f: mf.ng_packet(">", f, None))
    survivors = fr[:5] + fr[6:]
    return data, ok(
        "as wrong_byte_order_block.pcapng, but the big-endian EPB is 256 bytes long, so its length "
        "reads 65536 little-endian: a plausible length that runs past the end of the file. The "
        "block type 0x06000000 is unknown and its trailing length does not match: only that "
        "packet should be lost",
        survivors,
        {"implausible_record_length": 1},
    )


def case_block_length_unaligned():
    fr = build_base().frames
    good = mf.ng_packet(E, fr[5], None)

    def bad(_f):
        b = bytearray(good)
        struct.pack_into(E + "I", b, 4, len(good) + 2)  # one flipped bit in the leading length
        return bytes(b)

    data = _ng(fr, 5, bad)
    return data, ok(
        "the 6th EPB's leading block length is 94 (its block is 92 bytes and says so at its end): "
        "not a multiple of 4, only that packet is lost",
        fr[:5] + fr[6:],
        {"block_length_not_aligned": 1},
    )


def case_block_unpadded():
    fr = build_base().frames
    assert len(fr[3].data) % 4 == 2

    def unpadded(f):
        body = struct.pack(E + "IIIII", 0, *divmod(f.ts_ns // 1000, 1 << 32), len(f.data), f.orig_len)
        body += f.data
        total = 12 + len(body)
        return struct.pack(E + "II", 6, total) + body + struct.pack(E + "I", total)

    data = _ng(fr, 3, unpadded)
    return data, ok(
        "a writer that forgets the padding: the 4th EPB holds 94 bytes of packet data unpadded, "
        "its lengths (both) say 126, and every later block starts 2 bytes off the 4-byte grid. "
        "The next block starts where its lengths say: at most that packet may be lost",
        fr[:3] + fr[4:],
        {"block_length_not_aligned": 1},
    )


def case_unknown_linktype_pcap():
    fr = build_base().frames
    data = pcap_bytes(fr, linktype=mf.LINKTYPE_USER0)
    expect = ok(
        "a pcap file of link type 147 (USER0) whose records hold Ethernet frames",
        fr,
        {"unknown_link_type": 1},
    )
    expect["flows"] = 0  # counted as records, never guessed at
    return data, expect


def case_unknown_linktype_idb():
    cap = build_base()
    fr = cap.frames
    odd = [
        mf.Frame(f.ts_ns + 500_000, b"LT65000:" + mf.blob(52, f"opaque-{i}"), 60, None, ifid=1, kind="x")
        for i, f in enumerate(fr[2:5])
    ]
    order = fr[:3] + [odd[0]] + fr[3:6] + [odd[1]] + fr[6:] + [odd[2]]
    order.sort(key=lambda f: f.ts_ns)
    blocks = [mf.ng_idb(E, mf.LINKTYPE_ETHERNET, "eth0"), mf.ng_idb(E, 65000, "odd0")]
    blocks += [mf.ng_packet(E, f, None) for f in order]
    data = mf.ng_shb(E, -1, mf.SHB_OPTS) + b"".join(blocks)
    return data, ok(
        "pcapng: interface 0 Ethernet, interface 1 link type 65000; 3 opaque packets on if1 among "
        "the 11 good ones on if0",
        order,
        {"unknown_link_type": 1},
    )


def case_vlan_100_deep():
    cap = build_base()
    fr = cap.frames
    l3 = IP(src=A, dst=B, id=0x7777, ttl=64, flags="DF") / TCP(sport=40302, dport=9002, flags="S", seq=7)
    tags = b"".join(struct.pack(">HH", 0x8100, 1 + i) for i in range(100))
    deep = mf.mac_bytes(mf.mac_for(B)) + mf.mac_bytes(mf.mac_for(A)) + tags + b"\x08\x00" + bytes(l3)
    frame = mf.Frame(fr[5].ts_ns + 500_000, deep, len(deep), None, kind="vlan100")
    frames = fr[:6] + [frame] + fr[6:]
    expect = ok(
        "among the 11 good frames, a TCP SYN behind 100 stacked 802.1Q tags (VLAN 1..100)",
        frames,
        {"too_many_vlan_tags": 1},
    )
    return pcap_bytes(frames), expect


def case_cut_gzip():
    fr = build_bulk().frames
    raw = pcap_bytes(fr)
    gz = gzip.compress(raw, compresslevel=9, mtime=0)
    cut = gz[: len(gz) // 2]
    d = zlib.decompressobj(wbits=31)
    recovered = len(d.decompress(cut))
    whole = sum(1 for end in record_ends(fr) if end <= recovered)
    survivors = fr[:whole]
    partial = recovered > record_ends(fr)[whole - 1]
    anomalies = {"read_error": 1}
    if partial:
        anomalies["truncated_record"] = 1
    return cut, ok(
        f"pcap.gz of {len(fr)} records ({len(raw)} bytes) cut after {len(cut)} of its {len(gz)} "
        f"bytes; zlib recovers {recovered} bytes: {whole} whole records",
        survivors,
        anomalies,
    )


def zstd_blocks(frame: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each block of a single zstd frame (header parsed by RFC 8878)."""
    fhd = frame[4]
    fcs_flag, single, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    at = 5 + (0 if single else 1) + [0, 1, 2, 4][dict_flag] + [1 if single else 0, 2, 4, 8][fcs_flag]
    out = []
    while True:
        (h,) = struct.unpack("<I", frame[at : at + 3] + b"\x00")
        last, btype, size = h & 1, (h >> 1) & 3, h >> 3
        body = 1 if btype == 1 else size
        out.append((at, 3 + body))
        at += 3 + body
        if last:
            return out


def case_corrupt_zstd():
    fr = build_bulk().frames
    raw = pcap_bytes(fr)
    z = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw)
    blocks = zstd_blocks(z)
    assert len(blocks) >= 4, blocks
    at = blocks[2][0]
    bad = bytearray(z)
    for i in range(at, at + 8):  # the third block's header and first bytes, inverted
        bad[i] ^= 0xFF
    bad = bytes(bad)
    # Fed one byte at a time, libzstd hands out every block it completed before the damage.
    d = zstandard.ZstdDecompressor().decompressobj()
    out = b""
    try:
        for i in range(len(bad)):
            out += d.decompress(bad[i : i + 1])
    except zstandard.ZstdError:
        pass
    recovered = len(out)
    assert 0 < recovered < len(raw) and raw.startswith(out)
    whole = sum(1 for end in record_ends(fr) if end <= recovered)
    anomalies = {"read_error": 1}
    if recovered > record_ends(fr)[whole - 1]:
        anomalies["truncated_record"] = 1
    return bad, ok(
        f"pcap.zst ({len(raw)} bytes in {len(blocks)} blocks of 128 KiB) with 8 bytes inverted at "
        f"the start of its third block (offset {at}); libzstd recovers the first {recovered} bytes: "
        f"{whole} whole records",
        fr[:whole],
        anomalies,
    )


def case_zeros():
    return bytes(4096), fatal("4096 zero bytes", "not a pcap or pcapng capture (bad magic 00 00 00 00)")


CASES = {
    "truncated_global_header.pcap": case_truncated_global_header,
    "truncated_record_header.pcap": case_truncated_record_header,
    "snaplen_zero.pcap": case_snaplen_zero,
    "wrong_byte_order_block.pcapng": case_wrong_byte_order_block,
    "wrong_byte_order_block_256.pcapng": case_wrong_byte_order_block_256,
    "block_length_unaligned.pcapng": case_block_length_unaligned,
    "block_unpadded.pcapng": case_block_unpadded,
    "unknown_linktype.pcap": case_unknown_linktype_pcap,
    "unknown_linktype_idb.pcapng": case_unknown_linktype_idb,
    "vlan_100_deep.pcap": case_vlan_100_deep,
    "cut_gzip.pcap.gz": case_cut_gzip,
    "corrupt_zstd.pcap.zst": case_corrupt_zstd,
    "zeros.pcap": case_zeros,
}

# What the command line says about the broken fixtures make_fixtures.py writes, which this suite
# reuses (truncated inside packet data; captured length 0xffffffff). Their packets_decoded and
# anomaly kinds are in their own .expect.json.
REUSED = {
    "truncated_last_record.pcap": {
        "damage": "tcp_basic.pcap with the last record (the only packet of the syslog flow) cut "
        "halfway through its data",
        "flows": 5,
        # the filler on port 111 is no ONC RPC: one not_oncrpc per flow to 111
        "anomalies": {"not_oncrpc": 2, "truncated_record": 1},
    },
    "huge_caplen.pcap": {
        "damage": "record 3 of 11 claims incl_len 0xffffffff; the reader resynchronises after it",
        "flows": 2,
        # the filler on port 111 is no ONC RPC: one not_oncrpc per flow
        "anomalies": {"implausible_record_length": 1, "not_oncrpc": 2},
    },
}


def dump_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def main() -> None:
    BROKEN.mkdir(exist_ok=True)
    for name, build in CASES.items():
        data, expect = build()
        assert len(data) < 20 * 1024, f"{name}: {len(data)} bytes (make_fixtures.py allows < 20 kB)"
        (BROKEN / name).write_bytes(data)
        dump_json(BROKEN / f"{name}.expect.json", expect)
    for name, cli in REUSED.items():
        assert (BROKEN / name).exists(), f"{name} is written by make_fixtures.py: run it first"
        dump_json(
            BROKEN / f"{name}.cli.json",
            {**cli, "exit_code": 0, "stderr": warning(cli["anomalies"])},
        )


if __name__ == "__main__":
    main()
