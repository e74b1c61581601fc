"""Opening the views on a recorder: rebuild when the fold's version changed, else catch up."""

from __future__ import annotations

from collections.abc import Callable

from eventstore.recorder import Recorder
from projections.fold import PROJECTION_VERSION
from projections.runner import ViewRunner

__all__ = ["open_views", "rebuild_views"]


async def _stored_version(recorder: Recorder) -> int | None:
    rows = await recorder.fetch(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'projection_checkpoint'")
    if not rows:
        return None
    found = await recorder.fetch(
        "SELECT version FROM projection_checkpoint WHERE name = 'views'")
    return int(found[0][0]) if found else None


async def rebuild_views(recorder: Recorder,
                        progress: Callable[[int], None] | None = None) -> tuple[ViewRunner, int]:
    """Rebuild every view from the log; ``progress(n)`` is called after each n events."""
    runner = ViewRunner()
    runner.progress = progress
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
        recorder.views = runner
        return runner, folded
    runner = ViewRunner()
    runner.progress = progress
    folded = await recorder.prepare_views(runner)
    runner.progress = None
    return runner, folded
