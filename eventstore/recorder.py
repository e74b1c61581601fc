"""The recorder: the log's async face (append, read, verify) on plain sqlite3 connections.

One appending connection, so one global order of appends, and a second, read-only
connection that serves reads so that a query never waits behind a commit. Each
connection lives on a thread of its own (a one-worker executor): every transaction runs
there as one function (``BEGIN`` ... ``COMMIT``), one await per group of batches,
never one per event. The recorder knows stored events only; whatever keeps derived
rows in the append's transaction is its ``follower`` (``eventstore.follow``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from eventstore.busy import retry_busy_async
from eventstore.errors import (
    DatabaseFileError,
    StorageDamagedError,
    StorageUnavailableError,
    map_sqlite_error,
)
from eventstore.follow import Follower, Statement, run_statements
from eventstore.logtx import LogTx, SqliteTx
from eventstore.reads import read_events
from eventstore.record import AppendOutcome, AppendRequest, NewEvent, StoredEvent
from eventstore.sqlitefile import open_sqlite
from eventstore.verify import VerifyReport, stored_canonical, verify_chain, verify_tail
from eventstore.writes import append_in_transaction

__all__ = ["TAIL_CHECK_EVENTS", "Follower", "Recorder", "Statement", "VerifyReport",
           "check_tail", "open_sqlite", "run_statements", "stored_canonical"]

TAIL_CHECK_EVENTS = 256
"""Events at the end of the log that ``check_tail`` re-hashes (``serve`` at start)."""

T = TypeVar("T")


class _Thread:
    """One sqlite3 connection and the one thread that uses it."""

    def __init__(self, conn: sqlite3.Connection, pool: ThreadPoolExecutor) -> None:
        self.conn = conn
        self.pool = pool

    @classmethod
    async def open(cls, connector: Callable[[], sqlite3.Connection]) -> _Thread:
        """Open the connection on a new thread of its own (``connector`` runs there)."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradelog-sqlite")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(pool, connector)
        except BaseException:
            pool.shutdown(wait=False)
            raise
        return cls(conn, pool)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` on the connection's thread."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, self.conn)

    async def close(self) -> None:
        """Close the connection on its thread, then end the thread."""
        try:
            await self.run(lambda conn: conn.close())
        finally:
            self.pool.shutdown(wait=False)


class Recorder:
    """An open tradelog event log: append, read, verify.

    Create with ``await Recorder.open(path)``; close with ``await recorder.close()``.
    ``follower`` (None: none) is handed each appended group inside its transaction.
    """

    def __init__(self, appending: _Thread | None, reading: _Thread, path: Path,
                 busy_timeout_s: float) -> None:
        self._appending = appending
        self._reading = reading
        self._reading_closed = False
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.follower: Follower | None = None

    @classmethod
    async def open(cls, path: str | Path, *, readonly: bool = False,
                   busy_timeout_s: float = 5.0) -> Recorder:
        """Open (and on first use create) the log at ``path``.

        ``readonly=True`` never writes the file (for ``show`` and ``verify``).

        Raises:
            DatabaseFileError: a foreign file, or one from a newer tradelog.
            StorageUnavailableError: the file cannot be opened or prepared.
        """
        target = Path(path)
        appending = None
        if not readonly:
            appending = await _Thread.open(
                lambda: open_sqlite(target, readonly=False, busy_timeout_s=busy_timeout_s))
        try:
            reading = await _Thread.open(
                lambda: open_sqlite(target, readonly=True, busy_timeout_s=busy_timeout_s))
        except BaseException:
            if appending is not None:
                await appending.close()
            raise
        return cls(appending, reading, target, busy_timeout_s)

    async def close(self) -> None:
        """Close both connections (idempotent).

        The reading one goes first, so that the appending one, the last connection,
        checkpoints the write-ahead log into the file and removes it.
        """
        try:
            if not self._reading_closed:
                self._reading_closed = True
                await self._reading.close()
        finally:
            if self._appending is not None:
                appending, self._appending = self._appending, None
                await appending.close()

    async def on_appender(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)`` on the appending connection, on its thread (for whoever keeps
        rows in the log's transactions, e.g. ``projections.startup``).

        Raises:
            StorageUnavailableError: the recorder was opened read-only.
        """
        if self._appending is None:
            raise StorageUnavailableError("this recorder was opened read-only")
        return await self._appending.run(fn)

    async def _on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._reading.run(fn)

    async def _retrying(self, fn: Callable[[sqlite3.Connection], T], appending: bool) -> T:
        run = self.on_appender if appending else self._on_reader
        return await retry_busy_async(lambda: run(fn), self.busy_timeout_s)

    # ---------------------------------------------------------------- writing

    async def append(self, events: Sequence[NewEvent], expected_version: tuple[str, int]
                     | None = None) -> AppendOutcome:
        """Append one batch atomically; duplicates (same source+id and content) are not stored.

        ``expected_version`` is ``(account, N)``: the account must hold N events now.
        Returns the outcome with one ``EventResult`` per event, in order.

        Raises:
            IdempotencyConflictError: a source+id is stored with other content (``seq``
                is where).
            ValidationError: the batch holds one source+id twice with different content.
            VersionConflictError: the account does not hold N events.
            StorageUnavailableError: full, read-only or locked too long; nothing stored.
            StorageCorruptError: the file is in doubt; stop and run verify.
        """
        account, version = expected_version if expected_version else (None, None)
        [outcome] = await self.append_groups(
            [AppendRequest(list(events), expected_account=account, expected_version=version)]
        )
        if outcome.error is not None:
            raise outcome.error
        return outcome

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """Commit several callers' batches in one transaction (group commit).

        Each request is atomic on its own: one with a conflict gets its error in its
        outcome and stores nothing, while the others are stored. The ``follower``, if
        any, folds the stored events in the same transaction.

        Raises:
            StorageUnavailableError, StorageCorruptError: the whole group stored nothing.
        """
        follower = self.follower

        def work(conn: sqlite3.Connection) -> list[AppendOutcome]:
            return append_in_transaction(conn, requests, follower)

        return await self._retrying(work, appending=True)

    # ---------------------------------------------------------------- reading

    async def read(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
                   types: Sequence[str] | None = None) -> list[StoredEvent]:
        """Stored events with ``seq >= from_seq``, in seq order, at most ``limit``.

        ``account``/``types`` filter; ``None`` means all.

        Raises:
            StorageDamagedError: a stored row cannot be read or decoded (its seq named).
        """

        def work(conn: sqlite3.Connection) -> list[StoredEvent]:
            return read_events(conn, from_seq, limit, account, types)

        return await self._read_with(work)

    async def read_page(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
                        types: Sequence[str] | None = None, before_seq: int | None = None
                        ) -> tuple[list[StoredEvent], int]:
        """Like ``read``, and the log's last seq from the same snapshot: ``(events, last_seq)``.

        ``before_seq``: only events with a lower seq (None: no bound).

        Raises:
            StorageDamagedError: a stored row cannot be read or decoded (its seq named).
        """

        def work(conn: sqlite3.Connection) -> tuple[list[StoredEvent], int]:
            last = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            return (read_events(conn, from_seq, limit, account, types, before_seq),
                    int(last))

        return await self._read_with(work)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the reader connection (for the views' queries)."""

        def work(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            try:
                return list(conn.execute(sql, params))
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, "reading") from exc

        return await self._retrying(work, appending=False)

    async def fetch_snapshot(
        self, queries: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[list[tuple[Any, ...]]]:
        """Rows of several read-only queries, all from one consistent snapshot."""

        def read_all(conn: sqlite3.Connection) -> list[list[tuple[Any, ...]]]:
            return [list(conn.execute(sql, params)) for sql, params in queries]

        return await self._read_with(read_all)

    async def _read_with(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the reader connection inside one read transaction (a snapshot)."""

        def work(conn: sqlite3.Connection) -> T:
            try:
                conn.execute("BEGIN")
                try:
                    result = fn(conn)
                except BaseException:
                    # What ``fn`` raised is the news (e.g. damage it found): ending the
                    # read may fail the same way and must not replace it.
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error:
                    # A read has nothing to commit: after a damaged page was met, SQLite
                    # fails the COMMIT with the same error but ends the transaction.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                return result
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, "reading") from exc

        return await self._retrying(work, appending=False)

    async def replay(self, fn: Callable[[LogTx], T]) -> T:
        """``fn(tx)`` on a read-only connection of its own, in one read transaction, on
        a worker thread (a long fold never holds up the reader); the connection is
        closed after.

        Raises:
            StorageUnavailableError: the file cannot be read (sqlite3's errors mapped).
        """
        def work() -> T:
            conn = open_sqlite(self.path, readonly=True, busy_timeout_s=self.busy_timeout_s)
            try:
                conn.execute("BEGIN")
                result = fn(SqliteTx(conn))
                conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, "reading") from exc
            finally:
                conn.close()

        return await asyncio.to_thread(work)

    async def last_seq(self) -> int:
        """The highest stored ``seq`` (0 for an empty log)."""
        rows = await self.fetch("SELECT coalesce(max(seq), 0) FROM events")
        return int(rows[0][0])

    async def verify(self) -> VerifyReport:
        """Walk the hash chain from seq 1 and check the append-only triggers are in place.

        Reports the first bad seq: altered content (hash mismatch), a missing or
        reordered event (seq gap or chain break), or append-only triggers removed or
        altered (``bad_seq`` None, ``reason`` set).
        """
        return await self._read_with(verify_chain)

    async def verify_tail(self, count: int = TAIL_CHECK_EVENTS) -> VerifyReport:
        """Re-hash the last ``count`` events against their stored hashes
        (``eventstore.verify.verify_tail``)."""

        def work(conn: sqlite3.Connection) -> VerifyReport:
            return verify_tail(conn, count)

        return await self._read_with(work)


async def check_tail(path: str | Path, count: int = TAIL_CHECK_EVENTS) -> int:
    """Re-hash the last ``count`` events of the log at ``path``, read-only; returns how
    many were checked (0 for a missing or empty file, or one this tradelog cannot read
    as is: the writer process reports those when it opens the file).

    Raises:
        StorageDamagedError: an event of the tail is unreadable or fails its hash (the
            message names its seq and says to run ``tradelog verify``).
    """
    target = Path(path)
    if not target.exists() or target.stat().st_size == 0:
        return 0
    try:
        recorder = await Recorder.open(target, readonly=True)
    except DatabaseFileError:
        return 0
    try:
        report = await recorder.verify_tail(count)
    finally:
        await recorder.close()
    if report.bad_seq is not None or report.reason:
        raise StorageDamagedError(report.bad_seq, report.reason)
    return report.checked
