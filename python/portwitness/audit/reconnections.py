"""Reconnections: how the traffic shows the `reconnection` range of PortsConfig.cfg at work.

Arcserve's documentation says only that the server side (carunjob.exe) uses that range when a
connection with an agent is re-established after a network failure during a backup. Our reading
(an inference, stated in the README): a connection between a backup server and an agent that
ended in a reset, or was left open (went silent), is answered by the first later TCP connection
between the same two hosts, in either direction, starting within `RECONNECT_WINDOW` after the
broken one's last packet. That one connection is the reconnection; the connections after it are
ordinary connections, until the next reset. Its server-side port is the backup server's source
port when the server initiates, its listening port when the agent does; that port (`range_port`)
must lie inside the range."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

AGENT_SERVICES = ("universal-agent", "unix-agent")
RECONNECT_WINDOW = timedelta(minutes=5)


class Reconnections:
    """Fed attributed flows twice, a batch at a time: first every batch to `add_broken` (the
    agent connections that broke), then every batch to `add_candidates` (the connections that may
    answer a break, in any batch)."""

    def __init__(self, window: timedelta = RECONNECT_WINDOW) -> None:
        self.window = window
        self.broken_parts: list[pl.DataFrame] = []
        self.candidates: list[pl.DataFrame] = []
        self.tcp_schema: pl.Schema | None = None

    def add_broken(self, flows: pl.DataFrame) -> None:
        if self.tcp_schema is None:
            self.tcp_schema = flows.schema
        agent = flows.filter(pl.col("service").is_in(AGENT_SERVICES) & (pl.col("transport") == "tcp"))
        self.broken_parts.append(
            agent.filter(pl.col("outcome").is_in(["reset", "open"])).select(
                pl.col("flow_id").alias("broken_flow"),
                pl.col("client_ip").alias("backup_ip"),
                pl.col("server_ip").alias("agent_ip"),
                pl.col("first_ts").alias("broken_start"),
                pl.col("last_ts").alias("broken_at"),
            )
        )

    @property
    def any_broken(self) -> bool:
        return any(not b.is_empty() for b in self.broken_parts)

    def add_candidates(self, flows: pl.DataFrame) -> None:
        if not self.any_broken:
            return
        broken = pl.concat(self.broken_parts)
        self.broken_parts = [broken]
        tcp = flows.filter(pl.col("transport") == "tcp")
        for backup_side in ("client_ip", "server_ip"):
            agent_side = "server_ip" if backup_side == "client_ip" else "client_ip"
            port = "client_port" if backup_side == "client_ip" else "server_port"
            self.candidates.append(
                tcp.join(
                    broken, left_on=[backup_side, agent_side], right_on=["backup_ip", "agent_ip"], how="inner"
                )
                .filter(
                    (pl.col("flow_id") != pl.col("broken_flow"))
                    & (pl.col("first_ts") > pl.col("broken_start"))
                    & (pl.col("first_ts") > pl.col("broken_at") - timedelta(seconds=1))
                    & (pl.col("first_ts") <= pl.col("broken_at") + self.window)
                )
                .with_columns(pl.col(port).alias("range_port"))
            )

    def result(self) -> pl.DataFrame:
        """The reconnection flows, with `range_port` and `broken_flow` (the connection they replace)."""
        tcp = pl.DataFrame(schema=self.tcp_schema or {})
        out = pl.concat(self.candidates, how="diagonal_relaxed") if self.candidates else tcp
        if out.is_empty():
            return tcp.with_columns(
                pl.lit(None, pl.UInt16).alias("range_port"), pl.lit(None, pl.UInt64).alias("broken_flow")
            )
        return (
            # Each break is answered by the first connection after it, and only by that one.
            out.sort("first_ts", "flow_id")
            .group_by("broken_flow", maintain_order=True)
            .first()
            # A connection that answers two breaks at once is one reconnection (for the later break).
            .sort("broken_at")
            .group_by("flow_id", maintain_order=True)
            .last()
            .select(*tcp.columns, "range_port", "broken_flow")
            .sort("first_ts")
        )


def reconnections(flows: pl.DataFrame, window: timedelta = RECONNECT_WINDOW) -> pl.DataFrame:
    """The reconnection flows, with `range_port` and `broken_flow` (the connection they replace)."""
    r = Reconnections(window)
    r.add_broken(flows)
    r.add_candidates(flows)
    return r.result()
