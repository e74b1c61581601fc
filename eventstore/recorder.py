"""The recorder: the one module that opens the SQLite file (through aiosqlite).

One writer connection, so one global order of appends. Every write transaction runs as
one function on aiosqlite's worker thread (``BEGIN IMMEDIATE`` ... ``COMMIT``): one
await per group of batches, never one per event. A second, read-only connection serves
reads so that a query never waits behind a commit.
"""

from __future__ import annotations

import asyncio
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
    StorageBusyError,
    StorageUnavailableError,
    map_sqlite_error,
)
from eventstore.record import AppendOutcome, AppendRequest, NewEvent, StoredEvent
from eventstore.sqlitefile import open_sqlite
from eventstore.verify import VerifyReport, stored_canonical, verify_chain
from eventstore.writes import (
    Statement,
    ViewUpdater,
    append_in_transaction,
    catch_up,
    in_transaction,
    run_statements,
)

__all__ = ["Recorder", "Statement", "VerifyReport", "ViewUpdater", "open_sqlite",
           "run_statements", "stored_canonical"]

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
        """
        sql, params = _read_sql(from_seq, limit, account, types)

        def work(conn: sqlite3.Connection) -> list[StoredEvent]:
            return [StoredEvent.from_row(row) for row in conn.execute(sql, params)]

        return await self._retrying(work, on_writer=False)

    async def read_page(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
                        types: Sequence[str] | None = None) -> tuple[list[StoredEvent], int]:
        """Like ``read``, and the log's last seq from the same snapshot: ``(events, last_seq)``."""
        sql, params = _read_sql(from_seq, limit, account, types)

        def work(conn: sqlite3.Connection) -> tuple[list[StoredEvent], int]:
            last = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            return [StoredEvent.from_row(row) for row in conn.execute(sql, params)], int(last)

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
                    return fn(conn)
                finally:
                    conn.execute("COMMIT")
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


def _read_sql(from_seq: int, limit: int, account: str | None,
              types: Sequence[str] | None) -> tuple[str, list[Any]]:
    where = ["seq >= ?"]
    params: list[Any] = [from_seq]
    if account is not None:
        where.append("account = ?")
        params.append(account)
    if types:
        where.append(f"type IN ({','.join('?' * len(types))})")
        params.extend(types)
    params.append(limit)
    return (f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} "
            "ORDER BY seq LIMIT ?", params)

