"""Decoding on a Dask cluster: the exact runs of `portwitness.parallel` on the workers of a
`distributed.Client` (`decode(paths, client=...)`, `--scheduler`). The workers must read the
captures at the same absolute paths; each file is sent to them by name, and its tables come back
as Arrow IPC bytes. This module imports no Dask itself: the caller makes the client
(`pip install 'portwitness[cluster]'`)."""

from __future__ import annotations

from portwitness.parallel import MakesExecutor, decode_on, decode_runs

__all__ = ["MakesExecutor", "decode_on", "decode_runs"]
