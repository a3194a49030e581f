"""The dataset's locks: one writer at a time, readers shared with each other."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from portwitness.dataset.manifest import LOCK, LOCK_TIMEOUT, LOCK_TIMEOUT_ENV, DatasetError


def _lock_timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if raw is None:
        return LOCK_TIMEOUT
    try:
        return max(0.0, float(raw))
    except ValueError:
        return LOCK_TIMEOUT


def _holder(f: IO[str]) -> str:
    with contextlib.suppress(OSError, ValueError):
        f.seek(0)
        said = f.read(64).strip()
        if said.isdigit():
            return f"pid {said}"
    return "another process"


@contextlib.contextmanager
def writer_lock(root: Path, timeout: float | None = None) -> Iterator[None]:
    """The dataset's write lock: one writer at a time. Waits up to `timeout` seconds (default
    LOCK_TIMEOUT, or the PORTWITNESS_DATASET_LOCK_TIMEOUT variable) for another writer, then
    raises DatasetError naming the pid that holds it. The lock goes with the process: a killed
    writer holds nothing."""
    timeout = _lock_timeout() if timeout is None else timeout
    path = root / LOCK
    try:
        f = open(path, "a+", encoding="ascii")
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    with f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise OSError(e.errno, e.strerror, str(path)) from None
            if time.monotonic() >= deadline:
                waited = f" after {timeout:g} s" if timeout else ""
                raise DatasetError(
                    f"{root}: another writer ({_holder(f)}) holds the dataset's lock{waited}; "
                    f"try again once it is done"
                )
            time.sleep(0.05)
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                f.seek(0)
                f.truncate()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _reader_lock(root: Path) -> Iterator[None]:
    """Shared with other readers, excluding a writer (for `check`: a run being written is not a
    problem). A dataset whose lock cannot be opened (read-only, or written before there was a
    lock) is checked without."""
    try:
        f = open(root / LOCK, encoding="ascii")
    except OSError:
        yield
        return
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        except OSError:
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
