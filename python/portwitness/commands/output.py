"""What commands write: data to stdout or `-o`, in the format one resolver chose; warnings to stderr."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portwitness.formats import FormatError, check_writable, resolve_format, to_stdout

if TYPE_CHECKING:
    from portwitness.capture import Capture


def warn(msg: str) -> None:
    click.echo(f"portwitness: warning: {msg}", err=True)


def warn_anomalies(cap: Capture) -> None:
    evicted = cap.stats.get("flows_evicted", 0)
    if evicted:
        warn(
            f"{evicted} flows were emitted early because --max-flows was reached; they may continue as new flows"
        )
    total = cap.stats.get("anomalies", 0)
    if not total:
        return
    kinds = ", ".join(f"{k} {n}" for k, n in cap.anomaly_counts().items())
    warn(
        f"{total} {'anomaly' if total == 1 else 'anomalies'} while decoding ({kinds}); write them with --anomalies FILE"
    )


def output_format(command: str, formats: tuple[str, ...], fmt: str | None, output: str | None) -> str:
    """The format `command` writes (`portwitness.formats.resolve_format`), and `-o` checked
    writable: both before anything is decoded."""
    try:
        got = resolve_format(command, formats, fmt, output)
    except FormatError as e:
        raise click.UsageError(str(e)) from None
    check_writable(output)
    return got


def to_text(output: str | None, write: Any) -> None:
    """Calls `write(console)` with a console on stdout or on the file `output` (a file is no
    terminal: its tables are plain text, never cut)."""
    from portwitness.render import _console, file_console

    if to_stdout(output):
        write(_console())
        return
    from portwitness.outputs import open_output

    try:
        # Whole or not at all, as every output (`outputs.atomic_output`).
        with open_output(str(output), "w", encoding="utf-8") as fh:
            write(file_console(fh))
    except OSError as e:
        from portwitness.spill import output_error

        raise output_error(e, str(output)) from None


def emit(text: str, output: str | None) -> None:
    if output in (None, "-"):
        click.echo(text, nl=False)
    else:
        from portwitness.outputs import write_text

        write_text(output, text)


def is_dataset_target(output: str | None) -> bool:
    """Whether `-o OUTPUT` names a dataset directory: it ends with a slash or is a directory."""
    if not output or output == "-":
        return False
    return output.endswith(("/", "\\")) or Path(output).is_dir()


def spill_dir(output: str | None) -> Path | None:
    """Where a command keeps what grows with the flows: beside its output, else the temporary directory."""
    return None if to_stdout(output) else Path(str(output)).parent
