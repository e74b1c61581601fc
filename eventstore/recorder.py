"""The recorder: the one module that opens the SQLite file (through aiosqlite).

One writer connection, so one global order of appends. Every write transaction runs as
one function on aiosqlite's worker thread (``BEGIN IMMEDIATE`` ... ``COMMIT``): one
await per group of batches, never one per event. A second, read-only connection serves
reads so that a query never waits behind a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from eventstore import ddl
from eventstore.errors import (
    DatabaseFileError,
    StorageBusyError,
    StorageDamagedError,
    StorageUnavailableError,
    map_sqlite_error,
)
from eventstore.record import AppendOutcome, AppendRequest, NewEvent, StoredEvent
from eventstore.sqlitefile import open_sqlite
from eventstore.verify import (
    VerifyReport,
    stored_canonical,
    unreadable_reason,
    verify_chain,
    verify_tail,
)
from eventstore.writes import (
    Statement,
    ViewUpdater,
    append_in_transaction,
    catch_up,
    in_transaction,
    run_statements,
)

__all__ = ["TAIL_CHECK_EVENTS", "Recorder", "Statement", "VerifyReport", "ViewUpdater",
           "check_tail", "open_sqlite", "run_statements", "stored_canonical"]

TAIL_CHECK_EVENTS = 256
"""Events at the end of the log that ``check_tail`` re-hashes (``serve`` at start)."""

T = TypeVar("T")


async def _connect(connector: Callable[[], sqlite3.Connection]) -> aiosqlite.Connection:
    """Start an aiosqlite connection; on failure, wait for its worker thread to end.

    aiosqlite stops the thread of a failed connect without waiting for it; waiting here
    keeps the thread from reporting to an event loop that has since closed.
    """
    conn = aiosqlite.Connection(connector, iter_chunk_size=64)
    try:
        await conn
    except BaseException:
        await asyncio.to_thread(conn._thread.join)
        raise
    return conn


class Recorder:
    """An open tradelog event log: append, read, verify; views kept in the same transaction.

    Create with ``await Recorder.open(path)``; close with ``await recorder.close()``.
    """

    def __init__(self, writer: aiosqlite.Connection | None, reader: aiosqlite.Connection,
                 path: Path, busy_timeout_s: float) -> None:
        self._writer = writer
        self._reader = reader
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.views: ViewUpdater | None = None

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
        writer = None
        if not readonly:
            writer = await _connect(
                lambda: open_sqlite(target, readonly=False, busy_timeout_s=busy_timeout_s))
        try:
            reader = await _connect(
                lambda: open_sqlite(target, readonly=True, busy_timeout_s=busy_timeout_s))
        except BaseException:
            if writer is not None:
                await writer.close()
            raise
        return cls(writer, reader, target, busy_timeout_s)

    async def close(self) -> None:
        """Close both connections (idempotent).

        The reader goes first, so that the writer, the last connection, checkpoints the
        write-ahead log into the file and removes it.
        """
        try:
            await self._reader.close()
        finally:
            if self._writer is not None:
                await self._writer.close()
                self._writer = None

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None:
            raise StorageUnavailableError("this recorder was opened read-only")
        conn: sqlite3.Connection = self._writer._conn
        result: T = await self._writer._execute(fn, conn)  # type: ignore[no-untyped-call]
        return result

    async def _on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection = self._reader._conn
        result: T = await self._reader._execute(fn, conn)  # type: ignore[no-untyped-call]
        return result

    async def _retrying(self, fn: Callable[[sqlite3.Connection], T], on_writer: bool) -> T:
        run = self._on_writer if on_writer else self._on_reader
        started = time.monotonic()
        try:
            # The first attempt runs without the retry machinery: building it costs as
            # much as a small group's whole commit, and the file is rarely locked.
            return await run(fn)
        except StorageBusyError:
            pass
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(StorageBusyError),
                stop=stop_after_delay(
                    max(0.0, self.busy_timeout_s * 2 - (time.monotonic() - started))),
                wait=wait_random_exponential(multiplier=0.01, max=0.5),
                reraise=True,
            ):
                with attempt:
                    return await run(fn)
        except StorageBusyError as exc:
            raise StorageUnavailableError(
                f"{exc}; still locked after retrying, nothing was stored"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

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
        outcome and stores nothing, while the others are stored. Views registered in
        ``self.views`` are updated in the same transaction.

        Raises:
            StorageUnavailableError, StorageCorruptError: the whole group stored nothing.
        """
        views = self.views

        def work(conn: sqlite3.Connection) -> list[AppendOutcome]:
            return append_in_transaction(conn, requests, views)

        return await self._retrying(work, on_writer=True)

    async def prepare_views(self, views: ViewUpdater) -> int:
        """Create the views' tables if missing, load their state and catch up from the log.

        Returns the number of events folded to catch up.
        """
        self.views = views

        def work(conn: sqlite3.Connection) -> int:
            def body() -> int:
                for statement in views.ddl():
                    conn.execute(statement)
                return catch_up(conn, views)

            return in_transaction(conn, views, "preparing views", body)

        return await self._retrying(work, on_writer=True)

    async def cap_pages(self, pages: int) -> int:
        """Cap the file at ``pages`` pages on the writer connection (SQLite
        ``max_page_count``); appends past it fail with ``StorageUnavailableError`` like a
        full disk. Returns the cap SQLite applied (never below the file's current size).
        """

        def cap(conn: sqlite3.Connection) -> int:
            return int(conn.execute(f"PRAGMA max_page_count = {int(pages):d}").fetchone()[0])

        return await self._on_writer(cap)

    async def flush_views(self) -> None:
        """Write what the views hold back (``ViewUpdater.flush``) in a transaction of its
        own; a no-op without views or when their tables are current."""
        views = self.views
        if views is None:
            return

        def work(conn: sqlite3.Connection) -> None:
            def body() -> None:
                if views.needs_load():
                    catch_up(conn, views)
                run_statements(conn, views.flush())

            in_transaction(conn, views, "writing views", body)

        await self._retrying(work, on_writer=True)

    async def rebuild_views(self, views: ViewUpdater) -> int:
        """Rebuild every view from the whole log into new tables, swapped in when complete.

        One write transaction: appends wait until it commits; on any error nothing
        changes. The log is only read. Returns the number of events folded.
        """
        self.views = views

        def work(conn: sqlite3.Connection) -> int:
            def body() -> int:
                for statement in views.rebuild_begin():
                    conn.execute(statement)
                folded = catch_up(conn, views)
                run_statements(conn, views.rebuild_end())
                return folded

            return in_transaction(conn, views, "rebuilding views", body)

        return await self._retrying(work, on_writer=True)

    # ---------------------------------------------------------------- reading

    async def read(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
                   types: Sequence[str] | None = None) -> list[StoredEvent]:
        """Stored events with ``seq >= from_seq``, in seq order, at most ``limit``.

        ``account``/``types`` filter; ``None`` means all.

        Raises:
            StorageDamagedError: a stored row cannot be read or decoded (its seq named).
        """

        def work(conn: sqlite3.Connection) -> list[StoredEvent]:
            return _read_events(conn, from_seq, limit, account, types)

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
            return (_read_events(conn, from_seq, limit, account, types, before_seq),
                    int(last))

        return await self._read_with(work)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on the reader connection (for the views' queries)."""

        def work(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            try:
                return list(conn.execute(sql, params))
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, "reading") from exc

        return await self._retrying(work, on_writer=False)

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

        return await self._retrying(work, on_writer=False)

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
    as is: the writer reports those when it opens the file).

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


def _read_events(conn: sqlite3.Connection, from_seq: int, limit: int, account: str | None,
                 types: Sequence[str] | None, before_seq: int | None = None
                 ) -> list[StoredEvent]:
    """The rows of ``_read_sql`` as stored events. A row that cannot be read (a damaged
    page) or decoded raises ``StorageDamagedError`` naming its seq: found by reading the
    matching rows one at a time, then the seq column alone."""
    sql, params = _read_sql(from_seq, limit, account, types, before_seq=before_seq)
    events: list[StoredEvent] = []
    cursor = conn.cursor()
    try:
        for row in cursor.execute(sql, params):
            try:
                events.append(StoredEvent.from_row(row))
            except (TypeError, ValueError) as exc:
                raise StorageDamagedError(row[0], unreadable_reason(exc)) from exc
    except sqlite3.Error as exc:
        cursor.close()
        after = events[-1].seq if events else from_seq - 1
        raise StorageDamagedError(_damaged_seq(conn, after, account, types),
                                  unreadable_reason(exc)) from exc
    return events


def _damaged_seq(conn: sqlite3.Connection, after: int, account: str | None,
                 types: Sequence[str] | None) -> int:
    """The seq of the first row past ``after`` (matching the filters) that cannot be read:
    each matching row read alone until one fails, then its seq from the seq column alone
    (``after + 1`` when even that fails). Bounded: 1000 rows, the most one page holds."""
    for _ in range(1000):
        sql, params = _read_sql(after + 1, 1, account, types)
        try:
            row = conn.execute(sql, params).fetchone()
        except sqlite3.Error:
            break
        if row is None:
            break
        after = row[0]
    sql, params = _read_sql(after + 1, 1, account, types, columns="seq")
    try:
        found = conn.execute(sql, params).fetchone()
    except sqlite3.Error:
        return after + 1
    return int(found[0]) if found and isinstance(found[0], int) else after + 1


def _read_sql(from_seq: int, limit: int, account: str | None,
              types: Sequence[str] | None, columns: str = ddl.EVENT_COLUMNS,
              before_seq: int | None = None) -> tuple[str, list[Any]]:
    where = ["seq >= ?"]
    params: list[Any] = [from_seq]
    if before_seq is not None:
        where.append("seq < ?")
        params.append(before_seq)
    if account is not None:
        where.append("account = ?")
        params.append(account)
    if types:
        where.append(f"type IN ({','.join('?' * len(types))})")
        params.extend(types)
    params.append(limit)
    return (f"SELECT {columns} FROM events WHERE {' AND '.join(where)} "
            "ORDER BY seq LIMIT ?", params)

