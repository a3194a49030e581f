"""The flows table as Zeek's conn.log: the TSV form with its `#fields`/`#types` header and
`#open`/`#close` lines (`--format zeek`), or Zeek's JSON logs, one object per line with dotted keys
such as `id.orig_h` (`--format zeek-json`), so tools that read Zeek (Splunk, Elastic, Security
Onion, RITA, zeek-cut) take portwitness's flows unchanged.

What the flows table cannot tell is left unset (`-` in TSV, left out in JSON) rather than guessed:
`conn_state` is derived from the outcome where the codes mean the same (a reset's side is unknown,
so RSTO/RSTR are never claimed), `history` holds the handshake, a refusal and data in each
direction but not the order of FINs, `orig_ip_bytes`/`resp_ip_bytes` are unset (the table counts
frame bytes, not IP bytes), and `service` is `ssl` or `dce_rpc` when the payload said so."""

from __future__ import annotations

import json
from base64 import b32encode
from datetime import datetime, timezone
from hashlib import blake2b
from typing import IO, Any

import polars as pl

FIELDS = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("community_id", "string"),
]
SERVICES = {"tls": "ssl", "dcerpc": "dce_rpc"}
# The outcome's Zeek conn_state, where both say the same.
TCP_STATES = {"completed": "SF", "refused": "REJ", "unanswered": "S0", "open": "S1", "midstream": "OTH"}
UDP_STATES = {"completed": "SF", "unanswered": "S0"}


def uid(capture: str | None, flow_id: int) -> str:
    """A stable Zeek-like uid: `C` and 17 characters of a hash of the capture and the flow id."""
    digest = blake2b(f"{capture}\0{flow_id}".encode(), digest_size=16).digest()
    return "C" + b32encode(digest).decode("ascii").rstrip("=")[:17]


def conn_state(transport: str, outcome: str | None) -> str | None:
    return (TCP_STATES if transport == "tcp" else UDP_STATES).get(outcome or "")


def history(r: dict[str, Any]) -> str | None:
    data = ("D" if r["payload_c2s"] else "") + ("d" if r["payload_s2c"] else "")
    if r["transport"] != "tcp":
        sides = ("D" if r["packets_c2s"] else "") + ("d" if r["packets_s2c"] else "")
        return sides or None
    outcome = r["outcome"]
    if outcome == "unanswered":
        return "S"
    if outcome == "refused":
        return "Sr"
    if outcome in ("completed", "reset", "open"):
        return "ShA" + data
    return data or None


def _epoch(t: datetime) -> float:
    return t.timestamp()


def records(flows: pl.DataFrame) -> list[dict[str, Any]]:
    """One dict per flow with Zeek's field names; None for unset fields."""
    out = []
    for r in flows.iter_rows(named=True):
        duration = (r["last_ts"] - r["first_ts"]).total_seconds()
        out.append(
            {
                "ts": _epoch(r["first_ts"]),
                "uid": uid(r["capture"], r["flow_id"]),
                "id.orig_h": r["client_ip"],
                "id.orig_p": r["client_port"],
                "id.resp_h": r["server_ip"],
                "id.resp_p": r["server_port"],
                "proto": r["transport"],
                "service": SERVICES.get(r["app"] or ""),
                "duration": duration,
                "orig_bytes": r["payload_c2s"],
                "resp_bytes": r["payload_s2c"],
                "conn_state": conn_state(r["transport"], r["outcome"]),
                "local_orig": None,
                "local_resp": None,
                "missed_bytes": None,
                "history": history(r),
                "orig_pkts": r["packets_c2s"],
                "orig_ip_bytes": None,
                "resp_pkts": r["packets_s2c"],
                "resp_ip_bytes": None,
                "tunnel_parents": None,
                "community_id": r["community_id"],
            }
        )
    return out


def _tsv_value(v: Any, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "time":
        return f"{v:.6f}"
    if kind == "interval":
        return f"{v:.6f}"
    if kind == "bool":
        return "T" if v else "F"
    text = str(v)
    if text == "":
        return "(empty)"
    # Zeek escapes the separator and non-printable bytes as \xNN.
    return "".join(c if c.isprintable() and c != "\t" else f"\\x{ord(c):02x}" for c in text)


def _stamp(t: Any) -> str:
    """`t`: a datetime (Any: polars gives a column's min and max as any of its scalar types)."""
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")


def write_conn_log(flows: pl.DataFrame, f: IO[str], now: datetime | None = None) -> int:
    """Writes `flows` as a Zeek conn.log (TSV); `#open` is the first flow's start and `#close`
    the last packet's time (the capture's time, not the wall clock: the same input gives the same
    file). Returns the rows written."""
    rows = records(flows)
    first = flows["first_ts"].min() if flows.height else now or datetime.now(timezone.utc)
    last = flows["last_ts"].max() if flows.height else first
    f.write("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n")
    f.write(f"#open\t{_stamp(first)}\n")
    f.write("#fields\t" + "\t".join(k for k, _ in FIELDS) + "\n")
    f.write("#types\t" + "\t".join(t for _, t in FIELDS) + "\n")
    for r in rows:
        f.write("\t".join(_tsv_value(r[k], t) for k, t in FIELDS) + "\n")
    f.write(f"#close\t{_stamp(last)}\n")
    return len(rows)


def write_json_log(flows: pl.DataFrame, f: IO[str]) -> int:
    """Writes `flows` as Zeek's JSON log: one object per line, unset fields left out."""
    rows = records(flows)
    for r in rows:
        f.write(json.dumps({k: v for k, v in r.items() if v is not None}, separators=(",", ":")) + "\n")
    return len(rows)
