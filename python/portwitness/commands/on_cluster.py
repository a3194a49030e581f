"""The decode of a command run with --scheduler: on a Dask cluster's workers, its failures as one
line each."""

from __future__ import annotations

import os

import click

from portwitness.capture import Capture, decode
from portwitness.commands.context import threads


def decode_on_cluster(
    files: list[str], address: str, max_flows: int, idle_timeout: float, skip: bool = False
) -> Capture:
    """The decode on a Dask cluster's workers (they must see the captures at the same paths)."""
    if "-" in files:
        raise click.UsageError(
            "standard input cannot be decoded on a cluster: give files its workers can read"
        )
    try:
        from distributed import Client
    except ImportError:
        raise click.ClickException(
            "--scheduler needs Dask's distributed scheduler: pip install 'portwitness[cluster]'"
        ) from None
    for f in files:
        if not os.path.isfile(f):
            # A FIFO or device would be read by one worker and found empty by the next.
            raise click.UsageError(
                f"{f}: not a regular file; a cluster decodes files its workers can read again"
            )
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError

    _check_scheduler_address(address)
    with _quiet_distributed():
        try:
            client = Client(address, timeout="15s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise click.ClickException(f"cannot reach the Dask scheduler at {address}: {e}") from None
        with client:
            try:
                return decode(
                    files,
                    max_flows=max_flows,
                    idle_timeout=idle_timeout,
                    threads=threads(),
                    client=client,
                    skip_unreadable=skip,
                )
            except (CancelledError, CommClosedError) as e:
                raise click.ClickException(
                    f"lost the Dask scheduler at {address} during the run "
                    f"({_first_line(e) or type(e).__name__}); nothing was written"
                ) from None


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0]


def _check_scheduler_address(address: str) -> None:
    """Refuses an address Dask cannot parse before a client is made of it: a client that failed on
    one still tries to close its connection at exit, and says so in a traceback 30 s later."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss", "ucx"):
            parse_host_port(location)
        from distributed.comm.registry import get_backend

        get_backend(scheme)
    except (ValueError, TypeError) as e:
        raise click.ClickException(f"cannot reach the Dask scheduler at {address}: {e}") from None


class _quiet_distributed:
    """Silences distributed's own logging while a command runs on a cluster: a lost scheduler is
    logged as tracebacks on stderr, where the command's one error line says it."""

    def __enter__(self) -> None:
        import logging

        # Its loggers set their own levels (dask's logging configuration): disabled as a whole.
        self.before = logging.root.manager.disable
        logging.disable(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        import logging

        logging.disable(self.before)
