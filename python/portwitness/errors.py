"""The errors portwitness raises: every one derives from `PortwitnessError`.

The core (`_core`) defines the classes it raises itself and this module names them for the rest
of the package. Two branches tell the command line's exit code apart: `UsageError` (what was
asked cannot be done as asked: a bad argument, configuration, filter or output; exit 2) and the
rest (an input that cannot be read; exit 1). `ArgumentError` is also a `ValueError`, for callers
of the library that catch that. Files that cannot be opened stay `OSError`, as Python has them.
"""

from __future__ import annotations

from portwitness._core import (
    ArgumentError,
    CaptureFormatError,
    InternalError,
    PortwitnessError,
    UsageError,
)

__all__ = [
    "ArgumentError",
    "CaptureFormatError",
    "InternalError",
    "PortwitnessError",
    "UsageError",
]
