"""Which inputs are captures: each input given (file, directory, glob, `-`) is expanded and probed
before anything is decoded, so that an input that is no capture (empty, unreadable, bad magic, a
directory without captures) stops the run before any output is written, or, when the caller asks
to skip such inputs, is named in the result instead of silently counting as an audited capture.

What the probe cannot tell (a gzip or zstd stream whose content is no capture, a pipe) the core
tells after reading it: an input it read no packet from, with an error, is unreadable too."""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from portwitness import _core

# Leading bytes of everything the core can read: pcap (both orders, us/ns), pcapng, gzip, zstd.
MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
    b"\x1f\x8b",
    b"\x28\xb5\x2f\xfd",
    # zstd starting with a skippable frame (pzstd's frame index, seekable zstd's).
    *(bytes((0x50 + i, 0x2A, 0x4D, 0x18)) for i in range(16)),
)

READ = "read"
EMPTY = '""'
SKIPPED = "skipped"

_REASONS = {
    errno.ENOENT: "no such file",
    errno.EACCES: "permission denied",
    errno.EISDIR: "is a directory",
    errno.ELOOP: "symbolic link loop",
}


@dataclass(frozen=True)
class InputStatus:
    """One input as the run treated it: `read` (packets read; `cut_short` when the capture ended
    inside a record or its stream failed part way) or `skipped` (`reason` says why)."""

    path: str
    status: str
    reason: str | None = None
    packets: int = 0
    cut_short: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class UnreadableInputError(_core.CaptureFormatError):
    """Inputs that are no capture: raised before anything is decoded or written (exit 1)."""

    def __init__(self, bad: list[InputStatus], others: bool = False) -> None:
        self.inputs = bad
        # An empty path shows as "" (bare, it would leave the line starting with a colon).
        listed = "; ".join(f"{b.path or EMPTY}: {b.reason}" for b in bad)
        head = listed if len(bad) == 1 else f"{len(bad)} inputs are not captures: {listed}"
        # With readable captures beside them, say how to read those anyway.
        tail = "; nothing was read (--skip-unreadable reads the rest)" if others else ""
        super().__init__(head + tail)


def looks_like_capture(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return any(head.startswith(m) for m in MAGICS)


def _os_reason(e: OSError) -> str:
    return _REASONS.get(e.errno or 0) or e.strerror or str(e)


def probe(path: str) -> str | None:
    """Why `path` is no capture, or None when it may be one. Pipes, devices and standard input are
    not probed: reading them consumes them (the core tells once it has read them)."""
    if path == "-":
        return None
    try:
        st = os.stat(path)
    except OSError as e:
        return _os_reason(e)
    import stat

    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode):
        return None
    if st.st_size == 0:
        return "empty file"
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        return _os_reason(e)
    if len(head) < 4 and not head.startswith(b"\x1f\x8b"):
        return f"{len(head)} bytes, too short for a capture"
    if any(head.startswith(m) for m in MAGICS):
        return None
    return f"not a pcap or pcapng capture (bad magic {head.hex(' ')})"


def _walk(top: Path) -> tuple[list[Path], str | None]:
    """The captures under `top`, symlinked directories followed (each directory once), and the
    reason there are none when a symlink leads back to a directory above it (a loop)."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()

    def visit(d: Path, above: tuple[tuple[int, int], ...]) -> str | None:
        try:
            st = d.stat()
        except OSError as e:
            return None if e.errno != errno.ELOOP else f"symbolic link loop at {d}"
        ident = (st.st_dev, st.st_ino)
        if ident in above:
            return f"symbolic link loop: {d} leads back to a directory above it"
        if ident in seen:
            return None  # reached twice through links: read once
        seen.add(ident)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return None
        for entry in entries:
            q = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                why = visit(q, (*above, ident))
                if why is not None:
                    return why
            elif entry.is_symlink() and not q.exists():
                try:
                    q.stat()
                except OSError as err:
                    if err.errno == errno.ELOOP:
                        return f"symbolic link loop at {q}"
            elif q.is_file() and looks_like_capture(q):
                found.append(q)
        return None

    return found, visit(top, ())


def _expand_one(s: str) -> tuple[list[str], str | None]:
    """One input's files, or why it has none."""
    if s == "":
        return [], "an empty path names no capture"
    p = Path(s)
    if s == "-":
        return [s], None
    if p.is_dir():
        found, loop = _walk(p)
        if loop is not None:
            return [], loop
        if not found:
            return [], "directory holds no pcap or pcapng capture"
        return [str(q) for q in sorted(found)], None
    if not p.exists() and glob.has_magic(s):
        matches = sorted(glob.glob(s, recursive=True))
        if not matches:
            return [], "no file matches the pattern"
        out: list[str] = []
        for m in matches:
            files, _ = _expand_one(m)
            out.extend(files)
        return out, None
    return [s], None


def resolve(inputs: Iterable[str | os.PathLike[str]], skip: bool) -> tuple[list[str], list[InputStatus]]:
    """The files to decode, in order, and the inputs skipped. Without `skip`, any input that is no
    capture raises UnreadableInputError naming every such input."""
    files: list[str] = []
    bad: list[InputStatus] = []
    for item in inputs:
        s = os.fspath(item)
        expanded, why = _expand_one(s)
        if why is not None:
            bad.append(InputStatus(s, SKIPPED, why))
            continue
        for f in expanded:
            reason = probe(f)
            if reason is None:
                files.append(f)
            else:
                bad.append(InputStatus(f, SKIPPED, reason))
    if bad and not skip:
        raise UnreadableInputError(bad, others=bool(files))
    if not files:
        if bad:
            raise UnreadableInputError(bad)
        raise _core.CaptureFormatError("no capture given")
    return files, bad


def after_decode(raw_inputs: list[dict[str, Any]]) -> tuple[list[InputStatus], list[InputStatus]]:
    """The core's word on each input it was given: (read, unreadable). An input it read no packet
    from and that has an error was no capture (a compressed stream of something else, a pipe of
    text); one that has packets and an error was cut short (still audited: an anomaly, not a skip)."""
    read: list[InputStatus] = []
    bad: list[InputStatus] = []
    for i in raw_inputs:
        err, packets = i.get("error"), int(i.get("packets") or 0)
        if err is not None and packets == 0:
            bad.append(InputStatus(i["path"], SKIPPED, err))
        else:
            read.append(InputStatus(i["path"], READ, err, packets, cut_short=err is not None))
    return read, bad
