"""The writer's core: the one SQLite connection that appends, with the views folded
into each commit. Plain synchronous code; the writer process calls it directly, the
one-process writer (``LocalWriter``) on one thread of its own.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from daemon.logs import get_logger
from daemon.writer.messages import Ready
from eventstore.busy import retry_busy
from eventstore.errors import StorageUnavailableError
from eventstore.record import AppendOutcome, AppendRequest
from eventstore.sqlitefile import open_sqlite
from eventstore.writes import ViewsRefusedError, append_in_transaction
from projections import lifecycle
from projections.lifecycle import log_left_out
from projections.runner import ViewRunner

__all__ = ["CoreBase", "WriterCore", "log_views_refusals"]

log = get_logger("tradelog.writer")

SLOW_MS = 50.0
"""A commit taking this long is logged (``slow_commit``), with whether it wrote the views."""


def log_views_refusals(outcomes: Sequence[AppendOutcome]) -> None:
    """Log, once each, the requests refused because the views could not fold one of
    their events (``ViewsRefusedError``: nothing of them stored, the daemon goes on)."""
    for outcome in outcomes:
        if isinstance(outcome.error, ViewsRefusedError):
            log.error("append_refused_by_views", error=str(outcome.error),
                      last_seq=outcome.last_seq)


class CoreBase:
    """What a writer's core does on any store: the commit's timing and logging, the
    views' runner; the store's own ``_append``, ``_flush`` and ``_close``."""

    def __init__(self, runner: ViewRunner, busy_timeout_s: float) -> None:
        self.runner = runner
        self.busy_timeout_s = busy_timeout_s

    @property
    def checkpoint(self) -> int:
        """The views' checkpoint: seq of the last event folded."""
        return self.runner.checkpoint

    @property
    def flushed(self) -> int:
        """The seq up to which the views' tables are written."""
        return self.runner.flushed

    def _append(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        raise NotImplementedError

    def _flush(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def commit(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """Commit the requests in one transaction, the views folded in it; one outcome
        per request.

        Raises:
            StorageUnavailableError: nothing of the group was stored (retryable).
            StorageCorruptError: the log is in doubt.
        """
        flushed_before = self.runner.flushed
        started = time.perf_counter()
        outcomes = self._append(requests)
        took_ms = (time.perf_counter() - started) * 1000
        log_views_refusals(outcomes)
        if took_ms >= SLOW_MS:
            log.info("slow_commit", events=sum(len(r.events) for r in requests),
                     requests=len(requests), duration_ms=round(took_ms, 1),
                     views_written=self.runner.flushed != flushed_before,
                     snapshot_seq=self.runner.snapshot_seq)
        return outcomes

    def flush(self) -> None:
        """Write the views' rows held back (a no-op when the tables are current).

        Raises:
            StorageUnavailableError: not written now (they stay held back).
        """
        self._flush()

    def flush_quietly(self) -> None:
        """``flush``, logging (``views_not_written``) instead of raising when unavailable."""
        try:
            self.flush()
        except StorageUnavailableError as exc:
            log.warning("views_not_written", error=str(exc))

    def close(self) -> None:
        """Write the views (so a restart has nothing to fold again) and close the log."""
        try:
            self.flush_quietly()
        finally:
            self._close()


class WriterCore(CoreBase):
    """Group commits and the views' writes on one SQLite connection. ``open`` it, then
    ``commit``/``flush`` from one thread at a time, ``close`` at the end."""

    def __init__(self, conn: sqlite3.Connection, runner: ViewRunner,
                 busy_timeout_s: float) -> None:
        super().__init__(runner, busy_timeout_s)
        self.conn = conn

    @classmethod
    def open(cls, db: str | Path, *, busy_timeout_s: float = 5.0,
             defer_view_events: int = 0, max_page_count: int | None = None
             ) -> tuple[WriterCore, Ready]:
        """Open (create, migrate) ``db``, bring the views up to date (a rebuild if the
        projection version changed) and apply the page cap, if any.

        ``defer_view_events``: write the views' rows once per this many events (0: with
        every commit). Returns the core and what it found (``Ready``).

        Raises:
            DatabaseFileError: a foreign file, or one from a newer tradelog.
            StorageUnavailableError: the file cannot be opened, prepared, or stays locked.
        """
        conn = open_sqlite(db, readonly=False, busy_timeout_s=busy_timeout_s)
        try:
            runner, folded = retry_busy(lambda: lifecycle.open_on(conn), busy_timeout_s)
            log_left_out(runner)
            runner.defer(defer_view_events)
            cap = None
            if max_page_count is not None:
                cap = int(conn.execute(
                    f"PRAGMA max_page_count = {int(max_page_count):d}").fetchone()[0])
            last_seq = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events"
                                        ).fetchone()[0])
        except BaseException:
            conn.close()
            raise
        return cls(conn, runner, busy_timeout_s), Ready(runner.checkpoint, last_seq, folded, cap)

    def _append(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """``eventstore.writes.append_in_transaction``, retried while the file is busy."""
        return retry_busy(lambda: append_in_transaction(self.conn, requests, self.runner),
                          self.busy_timeout_s)

    def _flush(self) -> None:
        retry_busy(lambda: lifecycle.flush(self.conn, self.runner), self.busy_timeout_s)

    def _close(self) -> None:
        self.conn.close()
