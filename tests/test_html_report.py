"""The HTML report an analyst would forward: a coloured status line at the top (pass, or the
findings counted by kind), the capture's time span and inputs, the findings before the
inventories and grouped, the charts kept, one self-contained file. Rendered in headless Chromium
at 1280x800: the status band and the first finding are in the screenshot, above the fold."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

import portwitness as pw
from conftest import PCAPS, requires
from portwitness.audit import audit
from portwitness.demo import load
from portwitness.render.html import report_html, status

FAIL_RED = (0xB3, 0x26, 0x1E)
PASS_GREEN = (0x1E, 0x7B, 0x34)
FINDINGS_HEAD = (0xF4, 0xC7, 0xC3)
WIDTH, HEIGHT = 1280, 800


@pytest.fixture(scope="module")
def demo_audit():
    cap, pol = load()
    return audit(cap, pol)


def test_status_counts_the_findings_by_kind(demo_audit):
    passed, headline, detail = status(demo_audit)
    assert (passed, headline) == (False, "FINDINGS")
    assert detail == (
        "4 violations (callback-outside 1, pinned-dynamic 1, plaintext-ssl 1, service-port 1) · "
        "2 blocked attempts · 3 configured but unused"
    )
    assert status(audit(pw.decode(PCAPS / "nfs_session.pcap")))[:2] == (True, "PASS")


def test_page_order_status_span_inputs_findings_then_inventories(demo_audit):
    page = report_html(demo_audit)
    body = page.split("<body>", 1)[1]
    assert body.startswith('<header class="status fail" role="status">FINDINGS ')
    assert "<b>Capture</b> 2026-03-01T02:00:00Z to 2026-03-01T02:09:45Z · 21 flows" in body
    meta = body.split('<p class="meta">', 1)[1].split("</p>", 1)[0]
    assert "demo.pcap" in meta and "PortsConfig.cfg, mgmt.properties" in meta
    order = [body.index(f"<h2>{t}") for t in ("Violations", "Blocked", "Configured but unused", "Services")]
    assert order == sorted(order)
    assert body.index("Callback and reconnection range usage") < body.index("<h2>Services")
    assert body.count("<svg") >= 2  # the range strips and the timeline
    # Grouped: each violation type heads its group of rows.
    assert '<th scope="rowgroup" rowspan="1">pinned-dynamic</th>' in body
    # Self-contained: no script, nothing fetched.
    assert "<script" not in page and not re.search(r"(src|href)=", page)


def _png_rows(data: bytes) -> tuple[int, int, list[bytes], int]:
    """A PNG's size, its unfiltered rows and bytes per pixel (8-bit RGB or RGBA, not interlaced,
    as Chromium writes screenshots)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def _rows_with(rows: list[bytes], bpp: int, colour: tuple[int, int, int], least: int) -> list[int]:
    """The rows (y) holding at least `least` pixels of exactly `colour`."""
    pixel = bytes(colour)
    out = []
    for y, row in enumerate(rows):
        n = sum(1 for x in range(0, len(row), bpp) if row[x : x + 3] == pixel)
        if n >= least:
            out.append(y)
    return out


def _screenshot(page: Path, shot: Path) -> tuple[int, int, list[bytes], int]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe
    args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    args += [f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri()]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-500:]
    return _png_rows(shot.read_bytes())


@requires("chromium")
def test_status_and_first_finding_are_above_the_fold_in_chromium(tmp_path, demo_audit):
    page = tmp_path / "report.html"
    page.write_text(report_html(demo_audit), encoding="utf-8")
    width, height, rows, bpp = _screenshot(page, tmp_path / "shot.png")
    assert (width, height) == (WIDTH, HEIGHT)
    # The status band: red across the page, at the very top.
    band = _rows_with(rows, bpp, FAIL_RED, least=WIDTH // 2)
    assert band and band[0] < 5 and len(band) >= 30 and band[-1] < 80
    # The first finding's table: its header's colour, with room for its first row below, in view.
    head = _rows_with(rows, bpp, FINDINGS_HEAD, least=200)
    assert head and head[0] < HEIGHT - 60, head[:3]


@requires("chromium")
def test_a_clean_capture_shows_a_green_pass(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(report_html(audit(pw.decode(PCAPS / "nfs_session.pcap"))), encoding="utf-8")
    _, _, rows, bpp = _screenshot(page, tmp_path / "shot.png")
    band = _rows_with(rows, bpp, PASS_GREEN, least=WIDTH // 2)
    assert band and band[0] < 5 and len(band) >= 30
    assert _rows_with(rows[:200], bpp, FAIL_RED, least=10) == []
