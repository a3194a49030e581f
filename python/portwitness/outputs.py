"""Every file portwitness writes appears whole or not at all, and never in place of an input.

`atomic_output(path)` hands the writer a temporary name beside `path`; only once the writer is done
is the file flushed to disk and renamed over `path` (a rename within one directory is atomic), so
an existing output survives any failure (a full disk, an error, Ctrl-C, SIGTERM) unchanged, and a
reader never sees half of one. On every exit path but SIGKILL the temporary file is removed; the
names carry the writer's pid (`.portwitness-tmp-<pid>-...`, `.portwitness-spill-<pid>-...`), so
what a killed run left is recognised and removed by the next run writing into that directory, once
that pid is gone (`sweep`).

`protect(paths)` records a run's inputs (captures, configuration files) by device and inode, after
symlinks; `atomic_output` then refuses to write over any of them (OutputIsInputError, exit 2).

Outputs that are no regular file (`/dev/null`, a FIFO, a terminal) cannot be replaced by a rename
and are written in place; a symlink is followed, and the file it names replaced.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from portwitness.errors import UsageError

# Names of what a run leaves beside its outputs while it writes: temporary files, spill and dataset
# run directories. The pid tells whether their writer is still alive.
TEMP_PREFIX = ".portwitness-tmp-"
SPILL_PREFIX = ".portwitness-spill-"
_LEFT_BY = re.compile(r"^\.portwitness-(?:tmp|spill)-(\d+)-")

# Crash injection for the tests: PORTWITNESS_CRASH_AT=<point> makes the process kill itself
# (SIGKILL: no cleanup at all) when it reaches that point; `<point>:<n>` at its n-th time.
# PORTWITNESS_PAUSE_AT=<point>:<seconds> makes it wait there (the first time) instead.
CRASH_ENV = "PORTWITNESS_CRASH_AT"
PAUSE_ENV = "PORTWITNESS_PAUSE_AT"


class OutputIsInputError(UsageError):
    """An output that names one of the run's inputs: refused before anything is written."""

    def __init__(self, output: str, given: str) -> None:
        same = "" if os.path.abspath(output) == os.path.abspath(given) else f" (the same file as {given})"
        super().__init__(f"{output}: is an input of this run{same}; refusing to write over it")
        self.filename = output


_protected: dict[tuple[int, int], str] = {}
_crash_counts: dict[str, int] = {}
_paused: set[str] = set()


def reset() -> None:
    """Forgets the inputs recorded by `protect` (one command line's worth)."""
    _protected.clear()
    _crash_counts.clear()
    _paused.clear()


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def protect(paths: Iterable[str | os.PathLike[str] | None]) -> None:
    """Records `paths` (inputs of this run; `-` and missing files are ignored) as never to be
    written over."""
    for p in paths:
        if p is None or os.fspath(p) in ("-", ""):
            continue
        ident = _identity(p)
        if ident is not None:
            _protected.setdefault(ident, os.fspath(p))


def refuse_inputs(outputs: Iterable[str | os.PathLike[str] | None]) -> None:
    """Raises OutputIsInputError when an output names a recorded input (through any symlink or
    hard link). Outputs that do not exist yet cannot be inputs."""
    for out in outputs:
        if out is None or os.fspath(out) in ("-", ""):
            continue
        ident = _identity(out)
        if ident is not None and ident in _protected:
            raise OutputIsInputError(os.fspath(out), _protected[ident])


def crash_point(name: str) -> None:
    """For the crash-injection tests: SIGKILL this process here when CRASH_ENV names this point."""
    pause = os.environ.get(PAUSE_ENV)
    if pause and pause.partition(":")[0] == name and name not in _paused:
        _paused.add(name)
        time.sleep(float(pause.partition(":")[2] or 1))
    want = os.environ.get(CRASH_ENV)
    if not want:
        return
    point, _, nth = want.partition(":")
    if point != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def sweep(directory: str | os.PathLike[str]) -> list[Path]:
    """Removes what killed runs left in `directory` (temporary files, spill directories) whose
    writer is gone; returns what it removed. Never raises: a directory that cannot be listed has
    nothing this run could remove."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for e in entries:
        m = _LEFT_BY.match(e.name)
        if m is None or pid_alive(int(m[1])):
            continue
        p = Path(e.path)
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(p)
            else:
                p.unlink()
        except FileNotFoundError:
            pass  # another run swept it first
        except OSError:
            continue
        removed.append(p)
    return removed


def temp_name(prefix: str, name: str = "") -> str:
    """A name for something this process writes and will remove: recognisable, with its pid."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]
    return f"{prefix}{os.getpid()}-{secrets.token_hex(4)}{'-' + tail if tail else ''}"


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Makes a rename or a new entry in `directory` durable (where the system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replaceable(target: str) -> bool:
    """Whether `target` is a new name or a regular file (what a rename may replace)."""
    try:
        return stat.S_ISREG(os.stat(target).st_mode)
    except OSError:
        return True  # a new name (or one the writer's open will fail on, naming the output)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[str]:
    """A temporary path beside `path` for the writer; renamed over `path` (after a flush to disk)
    when the block ends without an exception, removed otherwise. `path` itself is untouched until
    then. A symlink is followed; an output that is no regular file (a device, a FIFO) is written in
    place. Refuses an output that is one of the run's inputs (`protect`)."""
    given = os.fspath(path)
    refuse_inputs([given])
    target = os.path.realpath(given)
    if not _replaceable(target):
        yield target
        return
    directory = os.path.dirname(target) or "."
    sweep(directory)
    tmp = os.path.join(directory, temp_name(TEMP_PREFIX, os.path.basename(target)))
    try:
        # Created here, so that it exists (with the permissions a new output would get, or those of
        # the output it replaces) whatever the writer does with the name.
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            mode = None
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
    except OSError as e:
        # The temporary file's failure is the output's: name the output, as the user gave it.
        raise OSError(e.errno, e.strerror, given) from None
    try:
        yield tmp
        crash_point("before-rename")
        _fsync_file(tmp)
        refuse_inputs([given])
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # A writer's failure that names no file (polars says only "... (os error 28)") or the
        # temporary one is the output's, in the system's words.
        if isinstance(e, Exception) and _OS_ERROR.search(str(e)) and not isinstance(e, OSError):
            raise output_error(e, given) from None
        if isinstance(e, OSError) and e.filename in (None, tmp):
            raise output_error(e, given) from None
        raise
    fsync_dir(directory)


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def output_error(e: BaseException, output: str) -> OSError:
    """`e`, a failed write of `output`, as every failed write is reported: the output's path and
    the system's words for the errno. Writers differ in what they keep: polars gives neither errno
    nor file name, only "... (os error N)" in its message; the core gives Rust's wording."""
    said = _OS_ERROR.search(str(e))
    code = (e.errno if isinstance(e, OSError) else None) or (int(said[1]) if said else 0)
    return OSError(code, os.strerror(code) if code else str(e), output)


@contextlib.contextmanager
def open_output(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """`atomic_output` as an open file (`mode`: "wb" or "w" with `encoding`)."""
    with atomic_output(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        f.flush()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """`text` written to `path` as UTF-8, whole or not at all."""
    with open_output(path, "w", encoding="utf-8") as f:
        f.write(text)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is so that every `finally` and `with` runs (temporary
    files removed) before the process ends with 143."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Ctrl-C held back until the block ends, then raised as KeyboardInterrupt. For a Parquet
    write: polars stops a write it sees interrupted and raises, and the interpreter raises the
    same Ctrl-C a second time, at any point of the clean-up that follows, which then leaves a
    part behind. Outside the main thread (no signal handler can be set there) nothing changes."""
    seen: list[int] = []
    before = None
    with contextlib.suppress(ValueError):
        # Only Python's own Ctrl-C handler is held back; an ignored SIGINT stays ignored.
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            before = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        yield
    finally:
        if before is not None:
            signal.signal(signal.SIGINT, before)
    if seen:
        raise KeyboardInterrupt


@contextlib.contextmanager
def handle_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM raises Terminated on the main thread (when SIGTERM had its
    default action; called from another thread, nothing changes)."""
    before = None
    with contextlib.suppress(ValueError):
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            before = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)
