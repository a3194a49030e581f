"""The capture being measured: its packets (a fast header walk), a copy cut at a record boundary,
the generator's statistics, and a warm page cache."""

from __future__ import annotations

import json
import os
import struct


def warm(path: str) -> None:
    """Read the file once so it sits in the page cache (cat FILE >/dev/null)."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 << 20)
        while f.readinto(buf):
            pass


def _pcap_endian(magic: bytes):
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return "<"
    if magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        return ">"
    return None


def walk_capture(path: str, stop_after: int | None = None):
    """Fast header walk (chunked reads, no mmap: keeps this process small).
    Returns (packets, end offset of the last complete packet record/block
    within stop_after bytes, format)."""
    size = os.path.getsize(path)
    limit = size if stop_after is None else min(size, stop_after)
    chunk = 4 << 20
    with open(path, "rb") as f:
        head = f.read(24)
        end = _pcap_endian(head[:4])
        if end is not None:
            unpack = struct.Struct(end + "I").unpack_from
            pos, n, last = 24, 0, 24
            while pos + 16 <= size:
                f.seek(pos)
                buf = f.read(chunk)
                off, lb = 0, len(buf)
                while off + 16 <= lb:
                    nxt = off + 16 + unpack(buf, off + 8)[0]
                    if pos + nxt > limit:
                        return n, last, "pcap"
                    n += 1
                    last = pos + nxt
                    off = nxt
                if off == 0:
                    break
                pos += off
            return n, last, "pcap"
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            pos, n, last, endc = 0, 0, 0, "<"
            while pos + 12 <= size:
                f.seek(pos)
                buf = f.read(chunk)
                off, lb = 0, len(buf)
                while off + 12 <= lb:
                    if buf[off : off + 4] == b"\x0a\x0d\x0d\x0a":
                        endc = "<" if buf[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                    btype, blen = struct.unpack_from(endc + "II", buf, off)
                    if blen < 12:
                        return n, last, "pcapng"
                    nxt = off + blen
                    if btype in (2, 3, 6):
                        if pos + nxt > limit:
                            return n, last, "pcapng"
                        n += 1
                    last = pos + nxt
                    off = nxt
                if off == 0:
                    break
                pos += off
            return n, last, "pcapng"
    raise SystemExit(f"{path}: not a pcap/pcapng file")


def truncate_capture(src: str, dst: str, max_bytes: int) -> int:
    """Copy the first max_bytes of src, cut at a record/block boundary."""
    n, end, _ = walk_capture(src, max_bytes)
    with open(src, "rb") as fi, open(dst + ".tmp", "wb") as fo:
        left = end
        while left:
            b = fi.read(min(left, 8 << 20))
            fo.write(b)
            left -= len(b)
    os.replace(dst + ".tmp", dst)
    return n


def load_stats(path: str):
    p = path + ".stats.json"
    try:
        with open(p) as f:
            st = json.load(f)
        if st.get("bytes") == os.path.getsize(path):
            return st
    except (OSError, ValueError):
        pass
    return None
