"""The attributed flows of an audit, a batch at a time: in memory when the capture's flows were in
memory, in Parquet parts under a private directory when they were kept on disk (a capture of
millions of flows: memory then holds one batch, not the capture)."""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import polars as pl


class AttributedFlows:
    def __init__(self, directory: str | Path | None = None, on_disk: bool = False) -> None:
        self.frames: list[pl.DataFrame] = []
        self.parts: list[Path] = []
        self.schema: pl.Schema | None = None
        self.dir: Path | None = None
        if on_disk:
            from portwitness.outputs import SPILL_PREFIX, sweep

            where = directory if directory is not None else tempfile.gettempdir()
            sweep(where)
            self.dir = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-audit-", dir=where))
            # Removed with the audit, or at exit at the latest; a killed run's is swept by the next.
            self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, True)

    def add(self, frame: pl.DataFrame) -> None:
        if self.schema is None:
            self.schema = frame.schema
        if frame.is_empty():
            return
        if self.dir is None:
            self.frames.append(frame)
            return
        path = self.dir / f"part-{len(self.parts):06d}.parquet"
        try:
            frame.write_parquet(path, compression="lz4", statistics=False)
        except (OSError, pl.exceptions.PolarsError) as e:
            from portwitness.outputs import output_error

            raise output_error(e, str(path)) from None
        self.parts.append(path)

    def __iter__(self) -> Iterator[pl.DataFrame]:
        """Every batch in order; at least one frame (empty when there is no flow)."""
        if self.frames:
            yield from self.frames
        elif self.parts:
            for path in self.parts:
                yield pl.read_parquet(path)
        else:
            yield pl.DataFrame(schema=self.schema or {})

    def frame(self) -> pl.DataFrame:
        """Every attributed flow in one frame (what a caller that wants them all asks for)."""
        frames = list(self)
        return frames[0] if len(frames) == 1 else pl.concat(frames)

    def close(self) -> None:
        if self.dir is not None:
            self._cleanup()
