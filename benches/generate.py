#!/usr/bin/env python3
"""Fast generator of realistic synthetic Ethernet captures (pcap / pcapng).

    python benches/generate.py OUT --size 1G [--format pcap|pcapng]
                                   [--flows 50000] [--seed 1]
                                   [--shape sessions|interleaved|syn-flood|dns-mix]

What is in the capture
----------------------
* Ethernet II frames, ~5 % of the flows 802.1Q tagged, IPv4 (~85 % of the
  flows) and IPv6 (~15 %), frames shorter than 60 bytes are padded (so the
  IP total length, not the frame length, is authoritative).
* TCP flows with a three-way handshake (realistic SYN options), data in both
  directions (TLS 1.3 records, HTTP/1.1, TLS-wrapped chatty RPC-ish
  exchanges, uploads), ACK every 1 or 2 segments, PSH on message ends,
  optional TCP timestamp option, and teardown by FIN (either side), RST or
  nothing (long-lived / cut).  Plus refused connections (SYN -> RST/ACK) and
  unanswered SYNs with retransmissions.
* UDP flows: DNS (real messages), NTP, QUIC short-header bursts and RTP-like
  media streams.
* ~1.3 % of the flows go to "special" ports, with real payloads from the
  PAYLOAD_MAKERS registry (gen/arcserve.py): portmapper GETPORT calls and replies on 111
  (TCP with record marking, and UDP); DCE/RPC on TCP 135 (bind to the
  endpoint mapper, bind_ack, ept_map calls for Arcserve's tape, job and
  database engine interfaces answered with an ncacn_ip_tcp tower naming
  6502-6504 or a dynamic port on the server); later flows from the same
  client (sometimes another) to the ports those answers named, binding the
  interface and making calls; the Arcserve management service, TLS on 7099
  (ClientHello with SNI/ALPN/supported_versions, ServerHello for TLS 1.3 or
  1.2, then application data) and plaintext command lines on 2099; and its
  TLS callbacks from the server of a recent 7099/2099 session to the
  client's port 20000-20100.
* Packets of many concurrent flows are interleaved, timestamps are
  monotonically non-decreasing (a discrete-event scheduler over per-flow
  generators; each flow has its own RTT and throughput).
* Size mix: many 60-100 byte ACKs/handshakes, many 1514-byte full segments,
  DNS/NTP/chatty mid sizes; the average frame is ~450 bytes.

Checksums: IPv4 header and TCP checksums are left zero by default (tools do
not validate them by default); UDP over IPv6 always gets a valid checksum
(zero is illegal there).  --checksums computes all of them (slower).

Flow 5-tuples are unique within a file, so the number of flows printed at the
end is the number of bidirectional 5-tuples in the capture.  --flows is a
target, met within ~10 % for sensible ratios (1G / 50000 gives ~46k); fewer
flows come out when --size cannot hold them (a flow averages a few KB at
least).  Flows still running when the size is reached are cut off (no
teardown), as in a real capture.  Everything is
deterministic for a given --seed (and the same arguments).

--shape interleaved keeps --flows flows open at once and picks the flow of
every packet at random (half uniformly, half by a Zipf law), with ~15 % of the
flows on Arcserve's ports (see InterleavedGenerator); classic pcap only.

Speed: header templates are precomputed per flow and direction as
struct.Struct formats whose constant parts are passed as byte strings; per
packet only lengths, IDs, sequence numbers, flags and timestamps are packed.
Records are joined into multi-MB chunks before writing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from gen.interleaved import InterleavedGenerator
from gen.packets import parse_size
from gen.sessions import Generator
from gen.small_frames import DnsMix, SynFlood

# What a capture holds (--shape): the harness (benches/run.py --all-shapes) and the guard
# (benches/guard.py) measure every entry; the first line of a class's docstring describes it.
SHAPES = {
    "sessions": Generator,
    "interleaved": InterleavedGenerator,
    "syn-flood": SynFlood,
    "dns-mix": DnsMix,
}


def about(shape: str) -> str:
    """The first line of the shape's docstring."""
    return (SHAPES[shape].__doc__ or shape).strip().splitlines()[0].rstrip(".")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", help="output file ('-' for stdout)")
    ap.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("100M"),
        help="target file size: 1G (=2^30), 200M, 500K, 1GB (=10^9), bytes",
    )
    ap.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    ap.add_argument(
        "--shape",
        choices=list(SHAPES),
        default="sessions",
        help="sessions: flows arrive and run their course (default); "
        + "; ".join(f"{k}: {about(k)}" for k in SHAPES if k != "sessions"),
    )
    ap.add_argument(
        "--flows", type=int, default=50000, help="approximate number of flows (bidirectional 5-tuples)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--checksums", action="store_true", help="compute valid IPv4/TCP/UDP checksums (slower)")
    ap.add_argument(
        "--link-mbps",
        type=float,
        default=400.0,
        help="average link throughput, sets the capture duration (default 400)",
    )
    ap.add_argument("--start", type=float, default=1700000000.0, help="capture start time, Unix seconds")
    ap.add_argument("--stats-json", help="also write {packets, flows, bytes, ...} here")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    g = SHAPES[a.shape](a.size, a.flows, a.seed, a.checksums, a.link_mbps)
    if a.out == "-":
        f = sys.stdout.buffer
    else:
        d = os.path.dirname(os.path.abspath(a.out))
        os.makedirs(d, exist_ok=True)
        f = open(a.out + ".tmp", "wb")
    try:
        npk, nfl, nbytes = g.run(f, a.format, int(a.start * 1e6))
    finally:
        if f is not sys.stdout.buffer:
            f.close()
    if a.out != "-":
        os.replace(a.out + ".tmp", a.out)
    dt = time.perf_counter() - t0
    stats = {
        "file": a.out,
        "format": a.format,
        "bytes": nbytes,
        "packets": npk,
        "flows": nfl,
        "shape": a.shape,
        "peak_concurrent_flows": g.peak_active,
        "seed": a.seed,
        "target_size": a.size,
        "target_flows": a.flows,
        "seconds": round(dt, 3),
        "avg_frame": round((nbytes - 24) / max(1, npk) - 16, 1) if a.format == "pcap" else None,
    }
    print(
        f"wrote {a.out}: {npk} packets, {nfl} flows, {nbytes} bytes ({nbytes / 2**20:.1f} MiB)"
        f" in {dt:.2f} s ({nbytes / dt / 1e6:.1f} MB/s), peak {g.peak_active} concurrent flows",
        file=sys.stderr if a.out == "-" else sys.stdout,
    )
    if a.stats_json:
        with open(a.stats_json, "w") as fh:
            json.dump(stats, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
