"""Configurations of real size: load a generated PortsConfig.cfg of --rules lines (or a TOML policy
naming --rules hosts with --items port items in all) and audit a generated capture of --flows flows
against it. Prints the decode time, then the configuration's load and audit time and the peak RSS of
the process that did them (a fresh process per measurement, so the peaks do not mix).

    python benches/config_scale.py --flows 1000000 --rules 10000 --form portsconfig
    python benches/config_scale.py --flows 1000000 --rules 10000 --items 300000 --form policy

The capture: every flow a SYN and a SYN/ACK from a client to one of --servers servers on one of the
ports the configuration names, so attribution has real work: host-bound lines for every server,
general lines, and lines whose host excludes it from the general line of its service."""

from __future__ import annotations

import argparse
import json
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = 1772330400  # 2026-03-01T02:00:00Z
ETH_C2S = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
ETH_S2C = bytes.fromhex("020000000001020000000002") + b"\x08\x00"
SYN, ACK = 0x02, 0x10
SERVICES = ("caservd", "tapeengine", "jobengine", "dbengine", "casdscsvc", "mediasvr")
BASE_PORT = 20000


def server_ip(k: int) -> str:
    return f"10.200.{k // 250}.{k % 250 + 1}"


def client_ip(i: int) -> bytes:
    q = i // 60000
    return bytes((10, 64 + q // 65536, (q // 256) % 256, q % 256))


def write_capture(path: Path, flows: int, servers: int, ports: int) -> None:
    """`flows` SYN + SYN/ACK pairs, client i to server i % servers on port BASE_PORT + i % ports."""
    rec = struct.Struct(">IIII14s12s4s4sHHIIBBHHH6s")
    ip_head = struct.pack(">BBHHHBBH", 0x45, 0, 40, 0, 0x4000, 64, 6, 0)
    dsts = [bytes(int(x) for x in server_ip(k).split(".")) for k in range(servers)]
    with open(path, "wb") as f:
        f.write(struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        chunk = 100_000
        for base in range(0, flows, chunk):
            m = min(chunk, flows - base)
            buf = bytearray(rec.size * 2 * m)
            off = 0
            for i in range(base, base + m):
                src, dst = client_ip(i), dsts[i % servers]
                cport, sport = 1024 + i % 60000, BASE_PORT + (i * 7919) % ports
                sec, usec = T0 + i // 100_000, (i % 100_000) * 10
                isn = (i * 2654435761) & 0xFFFFFFFF
                rec.pack_into(
                    buf, off, sec, usec, 60, 60, ETH_C2S, ip_head, src, dst, cport, sport, isn, 0, 5 << 4, SYN,
                    64240, 0, 0, bytes(6),
                )  # fmt: skip
                off += rec.size
                rec.pack_into(
                    buf, off, sec, usec + 5, 60, 60, ETH_S2C, ip_head, dst, src, sport, cport, isn ^ 0x5A5A5A5A,
                    (isn + 1) & 0xFFFFFFFF, 5 << 4, SYN | ACK, 64240, 0, 0, bytes(6),
                )  # fmt: skip
                off += rec.size
            f.write(buf)


def write_portsconfig(path: Path, rules: int, servers: int, ports: int) -> None:
    """One general line per service, then host-bound lines cycling over the servers and services
    (with an address, so they bind without a name in the capture), each with two ranges."""
    lines = ["# generated: configuration scale benchmark", "RPCServices=0"]
    for n, name in enumerate(SERVICES):
        lines.append(f"{name} {BASE_PORT + n * 7}-{BASE_PORT + n * 7 + 5}")
    for i in range(rules - len(lines)):
        k, name = i % servers, SERVICES[i % len(SERVICES)]
        lo = BASE_PORT + (i * 13) % ports
        lines.append(f"{name}\t{lo}-{lo + 3};{lo + 40}\tsrv{k}\t{server_ip(k)}")
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")


def write_policy(path: Path, rules: int, items: int, servers: int, ports: int) -> None:
    """`rules` services bound to one address each, `items` port items in all."""
    per = max(1, items // rules)
    out = ['[policy]\nname = "scale"\n']
    for i in range(rules):
        k, name = i % servers, SERVICES[i % len(SERVICES)]
        lo = BASE_PORT + (i * 13) % ports
        listed = ", ".join(
            str(lo + 2 * j) if j % 2 else f'"{lo + 2 * j}-{lo + 2 * j + 1}"' for j in range(per)
        )
        out.append(f'[[service]]\nname = "{name}"\nip = "{server_ip(k)}"\nports = [{listed}]\n')
    path.write_text("\n".join(out), encoding="utf-8")


def measure(capture: Path, config: Path, form: str) -> dict:
    """Run in a fresh process: decode, then load the configuration and audit."""
    import portwitness
    from portwitness.audit import audit
    from portwitness.config import load_config

    t = time.perf_counter()
    cap = portwitness.decode(str(capture), max_flows=4_000_000)
    flows = cap.flows.height  # the flows table is converted to a frame on first use: part of decoding
    decoded = time.perf_counter() - t
    decode_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    t = time.perf_counter()
    policy = load_config(config) if form == "portsconfig" else load_config(policy=config)
    loaded = time.perf_counter() - t
    t = time.perf_counter()
    a = audit(cap, policy)
    audited = time.perf_counter() - t
    return {
        "flows": flows,
        "rules": len(policy.rules),
        "attributed_config": a.flows.filter(a.flows["evidence"] == "config").height,
        "decode_s": round(decoded, 2),
        "load_s": round(loaded, 2),
        "audit_s": round(audited, 2),
        "decode_peak_rss_mib": decode_rss,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=300_000, help="port items in all (policy form)")
    ap.add_argument("--servers", type=int, default=2_000)
    ap.add_argument("--ports", type=int, default=2_000, help="distinct server ports in the capture")
    ap.add_argument("--form", choices=("portsconfig", "policy"), default="portsconfig")
    ap.add_argument("--dir", type=Path, help="where to keep the generated files (default: a temporary one)")
    ap.add_argument("--measure", nargs=2, metavar=("CAPTURE", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]), args.form)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        d = args.dir or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        capture = d / f"scale-{args.flows}.pcap"
        if not capture.exists():
            write_capture(capture, args.flows, args.servers, args.ports)
        config = d / ("PortsConfig.cfg" if args.form == "portsconfig" else "policy.toml")
        if args.form == "portsconfig":
            write_portsconfig(config, args.rules, args.servers, args.ports)
        else:
            write_policy(config, args.rules, args.items, args.servers, args.ports)
        run = [sys.executable, __file__, "--form", args.form, "--measure", str(capture), str(config)]
        out = subprocess.run(run, capture_output=True, text=True)
        if out.returncode:
            sys.stderr.write(out.stderr)
            return out.returncode
        print(out.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
