"""The filters `flows`, `usage`, `rpcinfo` and `report` share: `--host` (an address, a CIDR network
or a name the captures taught), `--port` (ports and ranges, either end of a flow), `--transport`,
`--since`/`--until` (flows still going at `since`, started by `until`) and `--where` (a SQL
predicate over the flows table, run by Polars' SQL engine).

A value that cannot be read is refused before anything is decoded (exit 2); filters that leave
nothing refuse with one line (exit 1), as an empty answer would read as a clean one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from portwitness.errors import PortwitnessError, UsageError

if TYPE_CHECKING:
    import polars as pl

    from portwitness.capture import Capture


class FilterError(UsageError):
    """A filter value that cannot be read (exit 2)."""


class NothingMatches(PortwitnessError):
    """The filters leave no row (exit 1)."""


def parse_ports(values: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """`--port` values: ports and ranges, comma separated or repeated (`111,135`, `20000-20100`)."""
    out = []
    for value in values:
        for part in value.split(","):
            text = part.strip()
            lo, dash, hi = text.partition("-")
            try:
                a, b = int(lo), int(hi) if dash else int(lo)
            except ValueError:
                raise FilterError(
                    f"--port {value!r}: not a port or a range of ports (e.g. 111 or 20000-20100)"
                ) from None
            if not (0 <= a <= b <= 65535):
                raise FilterError(f"--port {value!r}: ports go from 0 to 65535, the lower first")
            out.append((a, b))
    return tuple(out)


def _first_line(e: Exception) -> str:
    """The message of a polars error without the context polars 2.2 adds on further lines (the
    expression it was evaluating): an error is one line."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def parse_where(predicate: str | None) -> pl.Expr | None:
    """`--where`: the SQL predicate as a polars expression (its syntax checked here)."""
    if predicate is None:
        return None
    import polars as pl

    try:
        return pl.sql_expr(predicate)
    except pl.exceptions.PolarsError as e:
        raise FilterError(f"--where {predicate!r}: {_first_line(e)}") from None


@dataclass(frozen=True)
class Filters:
    hosts: tuple[str, ...] = ()
    ports: tuple[tuple[int, int], ...] = ()
    transports: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    where: str | None = None
    _where: pl.Expr | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(
        cls,
        hosts: Sequence[str] = (),
        ports: Sequence[str] = (),
        transports: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        where: str | None = None,
    ) -> Filters:
        return cls(
            tuple(hosts), parse_ports(ports), tuple(transports), since, until, where, parse_where(where)
        )

    def __bool__(self) -> bool:
        return bool(
            self.hosts or self.ports or self.transports or self.since or self.until or self.where is not None
        )

    def names(self) -> str:
        given = [
            ("--host", self.hosts),
            ("--port", self.ports),
            ("--transport", self.transports),
            ("--since", self.since),
            ("--until", self.until),
            ("--where", self.where),
        ]
        return ", ".join(name for name, v in given if v)

    def check_where(self, schema: pl.Schema) -> None:
        """Runs `--where` on an empty flows table: an unknown column or a type mismatch is refused
        before any row is written."""
        if self._where is None:
            return
        import polars as pl

        try:
            pl.DataFrame(schema=schema).filter(self._where)
        except pl.exceptions.PolarsError as e:
            raise FilterError(f"--where {self.where!r}: {_first_line(e)}") from None

    def flow_expr(self, addresses: Sequence[str] | None = None) -> pl.Expr | None:
        """The row filter on flows of every filter but time and host (the audit applies those
        itself), plus the host addresses when given."""
        import polars as pl

        parts = []
        if addresses is not None:
            parts.append(
                pl.col("client_ip").is_in(list(addresses)) | pl.col("server_ip").is_in(list(addresses))
            )
        if self.ports:
            parts.append(
                pl.any_horizontal(
                    [
                        pl.col(c).is_between(a, b)
                        for a, b in self.ports
                        for c in ("client_port", "server_port")
                    ]
                )
            )
        if self.transports:
            parts.append(pl.col("transport").is_in(list(self.transports)))
        if self._where is not None:
            parts.append(self._where)
        if not parts:
            return None
        return pl.all_horizontal(parts)

    def time_expr(self) -> pl.Expr | None:
        import polars as pl

        parts = []
        if self.since is not None:
            parts.append(pl.col("last_ts") >= self.since)
        if self.until is not None:
            parts.append(pl.col("first_ts") <= self.until)
        return pl.all_horizontal(parts) if parts else None

    def addresses(self, cap: Capture) -> list[str] | None:
        """The addresses `--host` selects among the flows' (None without `--host`)."""
        if not self.hosts:
            return None

        from portwitness.audit.hosts import host_filter, names_seen
        from portwitness.capture import flow_addresses

        found = host_filter(self.hosts, flow_addresses(cap), names_seen(cap))
        if not found:
            raise NothingMatches(f"no flow to or from {', '.join(self.hosts)}: nothing to show")
        return found

    def flows(self, cap: Capture) -> pl.Expr | None:
        """The whole row filter on `cap`'s flows."""
        import polars as pl

        parts = [e for e in (self.flow_expr(self.addresses(cap)), self.time_expr()) if e is not None]
        return pl.all_horizontal(parts) if parts else None
