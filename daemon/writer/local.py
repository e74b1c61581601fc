"""The one-process writer (``writer_process = false``): the same ``WriterCore`` on one
thread of the daemon, which its event loop must not block on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from daemon.writer.core import CoreBase
from daemon.writer.messages import Ready
from daemon.writer.opening import open_core
from eventstore.record import AppendOutcome, AppendRequest

__all__ = ["LocalWriter"]

T = TypeVar("T")


class LocalWriter:
    """``append_groups`` like a ``Recorder``, on a thread of the daemon. The views'
    rows are written with every commit (nothing held back)."""

    def __init__(self, core: CoreBase, thread: ThreadPoolExecutor, ready: Ready) -> None:
        self._core = core
        self._thread = thread
        self.ready = ready
        self._closed = False

    @classmethod
    async def start(cls, db: Path | str, *, busy_timeout_s: float = 5.0,
                    max_page_count: int | None = None) -> LocalWriter:
        """Open ``db`` (a file, or a PostgreSQL URI) and bring the views up to date
        (``opening.open_core``), on the writer's thread. Raises what that raises."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradelog-writer")
        try:
            core, ready = await asyncio.get_running_loop().run_in_executor(
                thread, lambda: open_core(db, busy_timeout_s=busy_timeout_s,
                                          max_page_count=max_page_count))
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(core, thread, ready)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    @property
    def checkpoint(self) -> int:
        """The views' checkpoint: seq of the last event folded."""
        return self._core.checkpoint

    @property
    def flushed(self) -> int:
        """The seq up to which the views' tables are written."""
        return self._core.flushed

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """``WriterCore.commit`` (same outcomes and errors)."""
        return await self._run(lambda: self._core.commit(requests))

    async def flush_views(self) -> None:
        """``WriterCore.flush``."""
        await self._run(self._core.flush)

    async def close(self) -> None:
        """Write the views, close the file and end the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._run(self._core.close)
        finally:
            self._thread.shutdown(wait=False)
