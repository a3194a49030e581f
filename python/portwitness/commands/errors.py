"""How a command line run ends: every error as one line on stderr and an exit code. 0 ok,
1 unreadable capture (or output), 2 bad usage, 3 findings asked for with --fail-on, 130 Ctrl-C,
141 a reader that closed stdout, 143 SIGTERM."""

from __future__ import annotations

import errno
import os
import sys
import threading
from typing import Any, cast

import click

from portwitness.errors import PortwitnessError, UsageError
from portwitness.outputs import Terminated

EXIT_UNREADABLE = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3
EXIT_INTERRUPTED = 130
# A reader that closed the pipe (`| head`): the status a process killed by SIGPIPE has in a shell.
EXIT_CLOSED_PIPE = 128 + 13
EXIT_TERMINATED = 143


# The system's words for the commonest failures to open an input, shorter than its own.
_OS_WORDS = (
    (FileNotFoundError, "no such file"),
    (IsADirectoryError, "is a directory"),
    (PermissionError, "permission denied"),
)


class Interrupted(PortwitnessError):
    """Ctrl-C during a command (exit 130)."""


def run(group: click.Group, argv: list[str] | None) -> int:
    """Runs `group` on `argv`, turning every error into one line and an exit code."""
    try:
        rv = group.main(args=argv, prog_name="portwitness", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except SystemExit:
        # click ends a write to a closed pipe with exit 1, having wrapped stdout to stay quiet.
        if _pacified(sys.stdout):
            return closed_pipe()
        raise
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        click.echo(f"portwitness: error: {e.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.ClickException as e:
        click.echo(f"portwitness: error: {e.format_message()}", err=True)
        return e.exit_code
    except Terminated:
        # SIGTERM (outputs.Terminated, a KeyboardInterrupt): temporary files are gone by now.
        _quiet_stdout()
        click.echo("portwitness: error: terminated", err=True)
        return EXIT_TERMINATED
    except (Interrupted, KeyboardInterrupt):
        _quiet_stdout()
        click.echo("portwitness: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.Abort as e:
        # click makes Ctrl-C (and so SIGTERM, see `outputs.Terminated`) an Abort.
        if isinstance(e.__cause__, Terminated):
            click.echo("portwitness: error: terminated", err=True)
            return EXIT_TERMINATED
        click.echo("portwitness: error: aborted", err=True)
        return EXIT_INTERRUPTED
    except OSError as e:
        if e.errno == errno.EPIPE or "os error 32" in str(e):
            return closed_pipe()
        words = next((w for kind, w in _OS_WORDS if isinstance(e, kind)), None)
        if words is not None:
            click.echo(f"portwitness: error: {e.filename}: {words}", err=True)
        else:
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"portwitness: error: {where}{e.strerror or e}", err=True)
        return EXIT_UNREADABLE
    except PortwitnessError as e:
        click.echo(f"portwitness: error: {e}", err=True)
        # A bad argument, configuration, filter, --host or output (`portwitness.errors`).
        return EXIT_USAGE if isinstance(e, UsageError) else EXIT_UNREADABLE
    except Exception as e:
        # Errors of modules loaded on demand: when they were not loaded, they were not raised.
        polars = sys.modules.get("polars")
        if polars is not None and isinstance(e, polars.exceptions.PolarsError):
            if "os error 32" in str(e) or "Broken pipe" in str(e):
                return closed_pipe()
            # One line: polars 2.2 adds the expression it was evaluating on further lines.
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            click.echo(f"portwitness: error: writing the output failed: {first}", err=True)
            return EXIT_UNREADABLE
        raise


def _pacified(stream: Any) -> bool:
    """Whether click wrapped `stream` after a closed pipe (its wrapper class is public before click
    8.5, private and the public name deprecated since: told by name, not imported)."""
    return type(stream).__name__ in ("PacifyFlushWrapper", "_PacifyFlushWrapper") and hasattr(
        stream, "wrapped"
    )


def _quiet_stdout() -> None:
    """Points stdout at /dev/null: what is still buffered for a reader that is gone (a closed
    pipe, an interrupted run) is dropped instead of failing again at the exit's flush."""
    if _pacified(sys.stdout):
        sys.stdout = cast(Any, sys.stdout).wrapped
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def closed_pipe() -> int:
    _quiet_stdout()
    return EXIT_CLOSED_PIPE


def exit_process(code: int) -> None:
    """Ends the process with `code` once the command is done and its outputs are written and
    closed. The interpreter's teardown (every module and object freed, the heap consolidated, a
    last garbage collection: 10-18 ms after a 2 GB decode, 4 % of the command) does nothing anyone
    needs, so it is skipped, unless another thread still runs or a library that registers work for
    the exit (a cluster client, a process pool) was loaded."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = closed_pipe()
    except (OSError, ValueError):
        pass
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    if code == EXIT_INTERRUPTED:
        # The decode's worker may still run in the core: the process ends now, without it.
        os._exit(code)
    if threading.active_count() == 1 and not _EXIT_WORK.intersection(sys.modules):
        os._exit(code)
    sys.exit(code)


# Libraries whose exit handlers do work: close cluster connections, shut down worker processes.
_EXIT_WORK = frozenset({"distributed", "multiprocessing", "concurrent.futures.process"})
