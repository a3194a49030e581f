"""What a run's options say beyond its command's arguments, kept in click's context: the decode
options every command shares (threads, --skip-unreadable, --scheduler), and the files the run
reads and writes, so that no output is written over an input."""

from __future__ import annotations

import click

from portwitness.outputs import protect, refuse_inputs

_THREADS = "portwitness.threads"
_SKIP = "portwitness.skip_unreadable"
_SCHEDULER = "portwitness.scheduler"
_OUTPUTS = "portwitness.outputs"


def keep_threads(ctx: click.Context, _param: click.Parameter, value: int) -> int:
    ctx.meta[_THREADS] = value
    return value


def keep_skip(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta[_SKIP] = value
    return value


def keep_scheduler(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    ctx.meta[_SCHEDULER] = value
    return value


def threads() -> int:
    ctx = click.get_current_context(silent=True)
    return int(ctx.meta.get(_THREADS, 0)) if ctx is not None else 0


def skip_unreadable() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx.meta.get(_SKIP)) if ctx is not None else False


def scheduler() -> str | None:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_SCHEDULER) if ctx is not None else None


def will_write(*outputs: str | None) -> None:
    """Names the files this command will write, so that `reads` refuses inputs among them."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_OUTPUTS] = [o for o in outputs if o not in (None, "-")]


def reads(paths: list[str]) -> None:
    """Records `paths` as inputs of this run: no output may be written over one of them (exit 2,
    before anything is decoded or written)."""
    protect(paths)
    ctx = click.get_current_context(silent=True)
    refuse_inputs(ctx.meta.get(_OUTPUTS, ()) if ctx is not None else ())
