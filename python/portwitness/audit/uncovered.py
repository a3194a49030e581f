"""The `uncovered` frame: traffic nothing explains. Accepted TCP connections and answered UDP
exchanges to server ports that no configuration line, policy rule, learned mapping, callback
session or catalog entry explains, grouped by server, transport and port, with what the payload
looked like (TLS and its SNI, an ONC RPC program, a DCE/RPC interface, or unknown). An audit that
only compares the traffic with what was configured cannot see a service nobody configured: this
section is where it shows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import polars as pl

from portwitness.names import DCERPC_INTERFACES, RPC_PROGRAMS

from .groups import EVIDENCE_SCHEMA, Groups, largest_first

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

# Any names: polars types a schema's names as str for a new frame and as str or selector for a cast.
SCHEMA: dict[Any, PolarsDataType] = {
    "server_ip": pl.String,
    "transport": pl.String,
    "port": pl.UInt16,
    "payload": pl.String,
    "bytes": pl.UInt64,
    **{k: v for k, v in EVIDENCE_SCHEMA.items() if k != "learned_from"},
}

# Outcomes of flows the server took part in: a TCP handshake it answered, or data both ways.
ACCEPTED_TCP = ("completed", "open", "reset")


def _payload() -> pl.Expr:
    progs = {k: v for k, v in RPC_PROGRAMS.items()}
    ifaces = {k: v for k, v in DCERPC_INTERFACES.items()}
    prog = pl.col("rpc_program")
    iface = pl.col("dcerpc_interface").str.to_lowercase()
    prog_name = prog.replace_strict(progs, default=None, return_dtype=pl.String)
    iface_name = iface.replace_strict(ifaces, default=None, return_dtype=pl.String)
    tls = pl.col("security").is_in(["tls", "starttls"])
    return (
        pl.when(tls & pl.col("tls_sni").is_not_null())
        .then(pl.format("TLS, SNI {}", pl.col("tls_sni")))
        .when(tls)
        .then(pl.lit("TLS"))
        .when(prog.is_not_null())
        .then(
            pl.format("ONC RPC program {}", prog.cast(pl.String))
            + pl.when(prog_name.is_not_null()).then(pl.format(" ({})", prog_name)).otherwise(pl.lit(""))
        )
        .when(iface.is_not_null())
        .then(
            pl.format("DCE/RPC interface {}", iface)
            + pl.when(iface_name.is_not_null()).then(pl.format(" ({})", iface_name)).otherwise(pl.lit(""))
        )
        .when(pl.col("app").is_not_null())
        .then(pl.col("app"))
        .otherwise(pl.lit("unknown"))
    )


class Uncovered:
    """Fed attributed flows (service, evidence) a batch at a time; `known_services`: the names the
    configuration and the catalog give. A flow named only by its own payload (an RPC program no
    rule knows) is as unexplained as one nothing named."""

    def __init__(self, known_services: Iterable[str]) -> None:
        self.known = sorted(set(known_services))
        self.groups = Groups(
            ["server_ip", "transport", "port"],
            modes={"payload": _payload()},
            sums={"bytes": pl.col("bytes_c2s") + pl.col("bytes_s2c")},
        )

    def add(self, flows: pl.DataFrame) -> None:
        accepted = ((pl.col("transport") == "tcp") & pl.col("outcome").is_in(ACCEPTED_TCP)) | (
            (pl.col("transport") == "udp") & (pl.col("outcome") == "completed")
        )
        unexplained = (pl.col("evidence") == "unknown") | (
            (pl.col("evidence") == "payload") & ~pl.col("service").is_in(self.known)
        )
        self.groups.add(
            flows.filter(accepted & unexplained).with_columns(pl.col("server_port").alias("port"))
        )

    def result(self) -> pl.DataFrame:
        out = self.groups.result()
        if out is None:
            return pl.DataFrame(schema=SCHEMA)
        return largest_first(out.select(list(SCHEMA)).cast(SCHEMA))


def uncovered(flows: pl.DataFrame, known_services: Iterable[str]) -> pl.DataFrame:
    u = Uncovered(known_services)
    u.add(flows)
    return u.result()
