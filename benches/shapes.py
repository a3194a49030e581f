"""Every shape in every container: `python benches/run.py --all-shapes`.

For each shape of generate.py's SHAPES the capture is generated once as pcap and once as pcapng,
the pcap compressed with gzip and zstd, and each container measured in rounds: portwitness (the
whole CLI process) on one and two threads, the Rust and C walks (classic pcap), tshark's defaults
and minimal profile, nfpcapd and argus (uncompressed containers), and for the compressed ones the
decompressor alone (`zcat`, `zstd -dc`, output to /dev/null). Ratios are taken within a shape:
Mpkt/s against the C flow walk on the pcap, wall time against the decompressor on the same file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import generate
import run as runner

from portwitness import bench
from portwitness.bench import tools

DOC = os.path.join(runner.ROOT, "docs", "performance.md")
BEGIN = "<!-- all-shapes table: begin (benches/run.py --all-shapes --write-doc) -->"
END = "<!-- all-shapes table: end -->"
CONTAINERS = ("pcap", "pcapng", "pcap.gz", "pcap.zst")
COMPRESS = {"pcap.gz": ["gzip", "-6", "-c"], "pcap.zst": ["zstd", "-3", "-q", "-c"]}
FLOWS = 50000


def files(shape: str, size: str, seed: int) -> dict[str, str]:
    """The shape's capture in every container (made when missing, reused otherwise)."""
    d = os.path.join(runner.DATA, "shapes")
    os.makedirs(d, exist_ok=True)
    base = os.path.join(d, f"{shape}-{size}-f{FLOWS}-s{seed}")
    out = {c: f"{base}.{c}" for c in CONTAINERS}
    for fmt in ("pcap", "pcapng"):
        if not os.path.exists(out[fmt]):
            try:
                runner.generate(out[fmt], size, fmt, shape, FLOWS, seed)
            except subprocess.CalledProcessError:
                # A shape may write classic pcap only.
                print(f"# {shape}: no {fmt}", flush=True)
    for c, cmd in COMPRESS.items():
        if not os.path.exists(out[c]) and shutil.which(cmd[0]):
            with open(out[c] + ".tmp", "wb") as fh:
                subprocess.run([*cmd, out["pcap"]], stdout=fh, check=True)
            os.replace(out[c] + ".tmp", out[c])
    return {c: p for c, p in out.items() if os.path.exists(p)}


def container_tools(container: str, path: str, tmp: str, walks, peers: bool) -> list:
    tmp = tempfile.mkdtemp(dir=tmp)  # each container's outputs and tshark profiles apart
    # The in-process decode (start-up and import excluded) is what the ratios are taken on; the
    # whole CLI process, writing Parquet, is what a user waits for.
    pw = tools.portwitness_tools("portwitness", path, tmp, threads=(1, 2))
    if container == "pcap":
        return (
            runner.walk_tools(path, walks)
            + pw
            + (tools.tshark_tools(path, tmp) if peers else [])
            + (tools.flow_exporter_tools(path, tmp) if peers else [])
        )
    if container == "pcapng":
        return pw + (tools.tshark_tools(path, tmp) + tools.flow_exporter_tools(path, tmp) if peers else [])
    dec = tools.decompressor_tool(path)
    return ([dec] if dec else []) + pw


def measure_shape(shape: str, a, walks, tmp: str) -> dict:
    paths = files(shape, a.size, a.seed)
    stats = bench.capture.load_stats(paths["pcap"]) or {}
    plain = os.path.getsize(paths["pcap"])
    out = {"shape": shape, "about": generate.about(shape), "stats": stats, "containers": {}}
    for container, path in paths.items():
        print(f"# {shape} / {container}: {os.path.getsize(path) / 1e6:.1f} MB", flush=True)
        packed = container in COMPRESS
        res = bench.run(
            path,
            container_tools(container, path, tmp, walks, not a.quick),
            a.runs,
            timeout=a.timeout,
            packets=stats.get("packets") if packed else None,
            content_bytes=plain if packed else None,
            log=lambda m: print(m, flush=True),
        )
        out["containers"][container] = {"file_bytes": res.file_bytes, "rows": res.rows}
    return out


def ratios(shape: dict) -> None:
    """Mpkt/s of each row against the C flow walk on the shape's pcap; wall time against the
    decompressor on the same compressed file."""
    cs = shape["containers"]
    ref = next(
        (r for r in cs.get("pcap", {}).get("rows", []) if r["tool"] == "flowwalk-c" and not r["skipped"]),
        None,
    )
    for c in cs.values():
        dec = next((r for r in c["rows"] if r["tool"] in ("zcat", "zstd-dc") and not r["skipped"]), None)
        for r in c["rows"]:
            if r.get("skipped") or r is dec:
                continue
            r["of_flowwalk_c"] = round(r["mpkt_s"] / ref["mpkt_s"], 3) if ref and r.get("mpkt_s") else None
            r["of_decompressor"] = round(dec["wall_s"] / r["wall_s"], 3) if dec else None


def fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(results: list[dict], a) -> str:
    lines = [
        f"Files of {a.size} per shape (`benches/run.py --all-shapes --size {a.size} --runs {a.runs}`), "
        f"median of {a.runs} runs in rounds, page cache warm; {time.strftime('%Y-%m-%d')}. "
        'MB/s counts the uncompressed capture\'s bytes, so containers compare; "of C flow" is Mpkt/s as '
        "a fraction of the C flow walk's on the same shape's pcap; \"of decompressor\" is the "
        "decompressor's wall time over the row's (1.0: as fast as `zcat`/`zstd -dc` alone).",
        "",
    ]
    for s in results:
        st = s["stats"]
        lines.append(
            f"**{s['shape']}** ({s['about']}): {st.get('packets', 0):,} packets, {st.get('flows', 0):,} flows, "
            f"{st.get('bytes', 0) / 1e6:.0f} MB as pcap."
        )
        lines.append("")
        lines.append(
            "| container | tool | wall s | MB/s | Mpkt/s | peak RSS MiB | flows | of C flow | of decompressor |"
        )
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        skipped = []
        for c, got in s["containers"].items():
            for r in got["rows"]:
                if r.get("skipped"):
                    skipped.append(f"{c} {r['tool']}: {r.get('note') or 'skipped'}")
                    continue
                cells = [
                    c,
                    r["label"],
                    fmt(r["wall_s"], ".3f"),
                    fmt(r["mb_s"], ".0f"),
                    fmt(r["mpkt_s"], ".2f"),
                    fmt(r["peak_rss_mib"], ".0f"),
                    r["flows"] if r.get("flows") is not None else "-",
                    fmt(r.get("of_flowwalk_c"), ".2f"),
                    fmt(r.get("of_decompressor"), ".2f"),
                ]
                lines.append("| " + " | ".join(str(x) for x in cells) + " |")
        if skipped:
            lines.append("")
            lines.append("Not measured: " + "; ".join(sorted(set(skipped))) + ".")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_doc(text: str) -> None:
    with open(DOC) as fh:
        doc = fh.read()
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + block + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip() + "\n\n## Every shape and container\n\n" + block + "\n"
    with open(DOC, "w") as fh:
        fh.write(doc)


def main(a) -> int:
    if a.quick:
        a.size, a.runs = a.size or "8M", 1
    a.size = a.size or "64M"
    tmp = tempfile.mkdtemp(prefix="pwshapes-")
    try:
        walks = runner.build_walks(tmp)
        results = []
        for shape in generate.SHAPES:
            s = measure_shape(shape, a, walks, tmp)
            ratios(s)
            results.append(s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = table(results, a)
    print()
    print(text)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(
                {"size": a.size, "runs": a.runs, "host": bench.table.host_info(), "shapes": results},
                fh,
                indent=1,
            )
    if a.write_doc:
        write_doc(text)
        print(f"# wrote the table into {os.path.relpath(DOC, runner.ROOT)}")
    return 0
