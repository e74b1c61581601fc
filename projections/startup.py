"""The views on an async ``Recorder`` (the tools and the tests): open, rebuild, write.

Each runs the synchronous lifecycle (``projections.lifecycle``) on the recorder's
appending connection, on that connection's thread, and makes the runner the
recorder's follower, so the recorder's appends fold into the views in their
transaction. The daemon's writer uses ``projections.lifecycle`` directly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from eventstore.busy import retry_busy
from eventstore.recorder import Recorder
from projections import lifecycle
from projections.lifecycle import log_left_out
from projections.runner import ViewRunner

__all__ = ["flush_views", "log_left_out", "open_views", "rebuild_views"]


async def rebuild_views(recorder: Recorder,
                        progress: Callable[[int], None] | None = None) -> tuple[ViewRunner, int]:
    """Rebuild every view from the log; ``progress(n)`` is called after each n events.
    The runner becomes the recorder's follower. Returns it and the events folded."""
    runner = ViewRunner()
    runner.progress = progress

    def work(conn: sqlite3.Connection) -> int:
        return retry_busy(lambda: lifecycle.rebuild(conn, runner), recorder.busy_timeout_s)

    recorder.follower = runner
    folded = await recorder.on_appender(work)
    runner.progress = None
    return runner, folded


async def open_views(recorder: Recorder,
                     progress: Callable[[int], None] | None = None) -> tuple[ViewRunner, int]:
    """Bring the views up to date (``lifecycle.open_on``: catch up, or rebuild when the
    projection version changed) and make them the recorder's follower for its appends.
    Returns the runner and the number of events folded."""

    def work(conn: sqlite3.Connection) -> tuple[ViewRunner, int]:
        return retry_busy(lambda: lifecycle.open_on(conn, progress), recorder.busy_timeout_s)

    runner, folded = await recorder.on_appender(work)
    log_left_out(runner)
    recorder.follower = runner
    return runner, folded


async def flush_views(recorder: Recorder) -> None:
    """Write what the recorder's views hold back (``lifecycle.flush``); a no-op without
    views or when their tables are current."""
    runner = recorder.follower
    if not isinstance(runner, ViewRunner):
        return

    def work(conn: sqlite3.Connection) -> None:
        retry_busy(lambda: lifecycle.flush(conn, runner), recorder.busy_timeout_s)

    await recorder.on_appender(work)
