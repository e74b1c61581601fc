"""Opening the views on a recorder: rebuild when the fold's version changed, else catch up."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog

from eventstore.recorder import Recorder
from projections.fold import PROJECTION_VERSION
from projections.runner import ViewRunner

__all__ = ["log_left_out", "open_views", "rebuild_views"]

log = structlog.get_logger(component="tradelog.views")


def log_left_out(runner: ViewRunner) -> None:
    """Log each stored event the views left out while opening (``event_left_out``, with
    its seq and why; the first ``LEFT_OUT_KEPT``) and their count, then forget them, so
    that each is logged once per fold of it."""
    for seq, reason in runner.left_out:
        log.warning("event_left_out", seq=seq, reason=reason)
    if runner.left_out_count:
        log.warning("events_left_out", count=runner.left_out_count,
                    logged=len(runner.left_out),
                    hint="values version 1.1 refuses; kept in the log, left out of every view")
    runner.left_out.clear()
    runner.left_out_count = 0


async def _stored_version(recorder: Recorder) -> int | None:
    rows = await recorder.fetch(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'projection_checkpoint'")
    if not rows:
        return None
    found = await recorder.fetch(
        "SELECT version FROM projection_checkpoint WHERE name = 'views'")
    return int(found[0][0]) if found else None


class WriterLookup:
    """Reads on the recorder's writer connection, for the runner's folds (which run on
    that connection's thread, inside its transaction, so they see its own writes)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of ``sql`` run with ``params`` on the writer connection."""
        return self.conn.execute(sql, params).fetchall()

    def chunks(self, sql: str, params: Sequence[Any]) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``sql`` run with ``params``, lazily, in lists of up to 4096."""
        cursor = self.conn.execute(sql, params)
        while rows := cursor.fetchmany(4096):
            yield rows


def _same(conn: sqlite3.Connection) -> sqlite3.Connection:
    return conn


async def _attach(recorder: Recorder, runner: ViewRunner) -> None:
    runner.attach(WriterLookup(await recorder._on_writer(_same)))


async def _read_log(recorder: Recorder, runner: ViewRunner) -> None:
    """Let a rebuild read a void's account history on the writer connection."""
    runner.read_log(WriterLookup(await recorder._on_writer(_same)))


async def rebuild_views(recorder: Recorder,
                        progress: Callable[[int], None] | None = None) -> tuple[ViewRunner, int]:
    """Rebuild every view from the log; ``progress(n)`` is called after each n events."""
    runner = ViewRunner()
    runner.progress = progress
    await _read_log(recorder, runner)
    folded = await recorder.rebuild_views(runner)
    runner.progress = None
    return runner, folded


async def open_views(recorder: Recorder,
                     progress: Callable[[int], None] | None = None) -> tuple[ViewRunner, int]:
    """Attach the views to ``recorder`` for its appends.

    A normal start loads the state from the tables and folds only the events past the
    checkpoint. When the stored projection version differs from ``PROJECTION_VERSION``
    the views are rebuilt from the log first (into new tables, swapped in when done).
    Returns the runner and the number of events folded.
    """
    version = await _stored_version(recorder)
    if version is not None and version != PROJECTION_VERSION:
        runner, folded = await rebuild_views(recorder, progress)
        log_left_out(runner)
        recorder.views = runner
        # Reloaded from the tables at the next append, signals and orders on demand.
        await _attach(recorder, runner)
        runner.discard()
        return runner, folded
    runner = ViewRunner()
    await _attach(recorder, runner)
    runner.progress = progress
    folded = await recorder.prepare_views(runner)
    runner.progress = None
    log_left_out(runner)
    return runner, folded
