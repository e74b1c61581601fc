"""``PgRecorder``: the PostgreSQL log's async face, with the surface and outcomes of the
SQLite ``eventstore.Recorder`` (append, append_groups, read, read_page, last_seq,
verify, verify_tail, close).

Like the SQLite recorder it holds two connections, each on a thread of its own (psycopg's
synchronous connection; the same code serves the writer process, which is synchronous):
one appends, one reads, so a read never waits behind a commit. A connection found
broken (the server restarted, a failover) is replaced, and the call that found it so
runs once more on the new one (nothing of it was committed); it answers
``StorageUnavailableError`` (retryable, nothing stored) when no server can be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from eventstore.busy import retry_busy_async
from eventstore.errors import StorageUnavailableError
from eventstore.logtx import LogTx
from eventstore.postgres import reads, verify
from eventstore.postgres.connect import Connection, connect, prepare, session_lost
from eventstore.postgres.dialect import SqliteSpelling
from eventstore.postgres.logtx import replay_on
from eventstore.postgres.notify import Waker
from eventstore.postgres.tail import Tail
from eventstore.postgres.writes import append_group
from eventstore.record import AppendOutcome, AppendRequest, NewEvent, StoredEvent
from eventstore.verify import VerifyReport

__all__ = ["TAIL_CHECK_EVENTS", "PgRecorder"]

TAIL_CHECK_EVENTS = 256
T = TypeVar("T")


class _Session:
    """One psycopg connection, the one thread that uses it, and how to open it again."""

    def __init__(self, opener: Callable[[], tuple[Connection, int]]) -> None:
        self.opener = opener
        self.conn: Connection | None = None
        self.key = 0
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradelog-pg")

    def _ensure(self) -> Connection:
        if self.conn is not None and (self.conn.broken or self.conn.closed):
            self.conn.close()
            self.conn = None
        if self.conn is None:
            self.conn, self.key = self.opener()
        return self.conn

    async def run(self, fn: Callable[[Connection, int], T]) -> T:
        """``fn(conn, lock_key)`` on the session's thread, (re)connecting first if needed."""
        def work() -> T:
            conn = self._ensure()
            try:
                return fn(conn, self.key)
            except StorageUnavailableError as exc:
                if not session_lost(conn, exc):
                    raise
                conn.close()
            # The connection was found dead (a server restart, a failover), its server
            # no longer takes writes (demoted), or psycopg's statement cache is wrong
            # (``session_lost``), before anything was committed (a cut during COMMIT is
            # CommitInDoubtError, never retried): the call runs once more on a new
            # connection, to whichever host the URI finds now.
            return fn(self._ensure(), self.key)

        return await asyncio.get_running_loop().run_in_executor(self.pool, work)

    async def close(self) -> None:
        def work() -> None:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

        try:
            await asyncio.get_running_loop().run_in_executor(self.pool, work)
        finally:
            self.pool.shutdown(wait=False)


class PgRecorder:
    """An open PostgreSQL log: append, read, verify.

    Create with ``await PgRecorder.open(conninfo)``; close with ``await recorder.close()``.
    ``conninfo`` is a libpq URI or key=value string (several hosts allowed).
    """

    def __init__(self, appending: _Session | None, reading: _Session,
                 busy_timeout_s: float, conninfo: str = "") -> None:
        self._appending = appending
        self._reading = reading
        self.busy_timeout_s = busy_timeout_s
        self.conninfo = conninfo
        self.path: Path | None = None
        """No file: the log is in the database ``conninfo`` names."""
        self._waker: Waker | None = None
        self._tail = Tail()
        """Where this recorder's last append left the log (``eventstore.postgres.tail``:
        a wrong one only costs a guess the server refuses)."""
        self.own_origin = ""
        """Notifications of this origin (the daemon's own writer) do not wake
        ``wait_past``: its owner learns of those commits otherwise. "" for none."""

    @classmethod
    async def open(cls, conninfo: str, *, readonly: bool = False,
                   busy_timeout_s: float = 5.0) -> PgRecorder:
        """Connect and check (unless ``readonly``, create on first use) the log.

        Raises:
            DatabaseFileError: the schema holds something else, or a newer tradelog's log
                (or, ``readonly``, no log).
            StorageUnavailableError: no server could be reached.
        """
        def opener(ro: bool) -> Callable[[], tuple[Connection, int]]:
            def open_one() -> tuple[Connection, int]:
                conn = connect(conninfo, readonly=ro, lock_timeout_s=busy_timeout_s)
                try:
                    return conn, prepare(conn, create=not ro)
                except BaseException:
                    conn.close()
                    raise
            return open_one

        appending = None if readonly else _Session(opener(False))
        reading = _Session(opener(True))
        try:
            if appending is not None:
                await appending.run(lambda conn, key: None)
            await reading.run(lambda conn, key: None)
        except BaseException:
            if appending is not None:
                await appending.close()
            await reading.close()
            raise
        return cls(appending, reading, busy_timeout_s, conninfo)

    async def close(self) -> None:
        """Close both connections, and the listening one if ``follow`` opened it
        (idempotent)."""
        try:
            if self._waker is not None:
                waker, self._waker = self._waker, None
                await waker.close()
            await self._reading.close()
        finally:
            if self._appending is not None:
                appending, self._appending = self._appending, None
                await appending.close()

    async def _retrying(self, session: _Session, fn: Callable[[Connection, int], T]) -> T:
        return await retry_busy_async(lambda: session.run(fn), self.busy_timeout_s)

    # ---------------------------------------------------------------- writing

    async def append(self, events: Sequence[NewEvent], expected_version: tuple[str, int]
                     | None = None) -> AppendOutcome:
        """Append one batch atomically (as ``eventstore.Recorder.append``).

        Raises:
            IdempotencyConflictError, ValidationError, VersionConflictError: nothing stored.
            StorageUnavailableError: the server is unreachable, read-only or full.
            StorageCorruptError: the outcome is in doubt (``CommitInDoubtError``).
        """
        account, version = expected_version if expected_version else (None, None)
        [outcome] = await self.append_groups(
            [AppendRequest(list(events), expected_account=account, expected_version=version)])
        if outcome.error is not None:
            raise outcome.error
        return outcome

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """Commit several callers' batches in one transaction (group commit); each request
        atomic on its own (``eventstore.postgres.writes.append_group``).

        Raises:
            StorageUnavailableError: this recorder is read-only, or nothing was stored.
            StorageCorruptError: the group's outcome is in doubt.
        """
        if self._appending is None:
            raise StorageUnavailableError("this recorder was opened read-only")
        tail = self._tail
        return await self._retrying(
            self._appending, lambda conn, key: append_group(conn, key, requests, tail=tail))

    # ---------------------------------------------------------------- reading

    async def _snapshot(self, fn: Callable[[Connection], T]) -> T:
        return await self._retrying(self._reading,
                                    lambda conn, key: reads.snapshot(conn, fn))

    async def read(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
                   types: Sequence[str] | None = None) -> list[StoredEvent]:
        """Stored events with ``seq >= from_seq``, in seq order, at most ``limit``;
        ``account``/``types`` filter (None: all).

        Raises:
            StorageDamagedError: a stored payload cannot be decoded (its seq named).
        """
        return await self._snapshot(
            lambda conn: reads.read_events(conn, from_seq, limit, account, types))

    async def read_page(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
                        types: Sequence[str] | None = None, before_seq: int | None = None
                        ) -> tuple[list[StoredEvent], int]:
        """Like ``read``, and the log's last seq from the same snapshot."""
        def work(conn: Connection) -> tuple[list[StoredEvent], int]:
            return (reads.read_events(conn, from_seq, limit, account, types, before_seq),
                    reads.last_seq(conn))

        return await self._snapshot(work)

    async def last_seq(self) -> int:
        """The highest stored ``seq`` (0 for an empty log)."""
        return await self._snapshot(reads.last_seq)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only query written in SQLite's spelling (the views'
        queries: ``eventstore.postgres.dialect``)."""
        [rows] = await self.fetch_snapshot([(sql, params)])
        return rows

    async def fetch_snapshot(self, queries: Sequence[tuple[str, Sequence[Any]]]
                             ) -> list[list[tuple[Any, ...]]]:
        """Rows of several read-only queries in SQLite's spelling, from one snapshot.

        Raises:
            StorageUnavailableError: no server could be reached.
        """
        def work(conn: Connection) -> list[list[tuple[Any, ...]]]:
            spelling = SqliteSpelling(conn)
            return [list(spelling.execute(sql, params).fetchall()) for sql, params in queries]

        return await self._snapshot(work)

    async def replay(self, fn: Callable[[LogTx], T]) -> T:
        """``fn(tx)`` on a read-only connection of its own, in one ``REPEATABLE READ``
        snapshot, on a worker thread (a long fold never holds up the reading session);
        the connection is closed after (``eventstore.postgres.logtx``).

        Raises:
            StorageUnavailableError: no server could be reached.
        """
        return await asyncio.to_thread(replay_on, self.conninfo, self.busy_timeout_s, fn)

    async def verify(self) -> VerifyReport:
        """Walk the chain from seq 1, then check the triggers and the accounts' versions
        (``eventstore.postgres.verify.verify_chain``)."""
        return await self._snapshot(verify.verify_chain)

    async def verify_tail(self, count: int = TAIL_CHECK_EVENTS) -> VerifyReport:
        """Re-hash the last ``count`` events against their stored hashes."""
        return await self._snapshot(lambda conn: verify.verify_tail(conn, count))

    # ---------------------------------------------------------------- following

    async def follow(self, from_seq: int = 1, *, account: str | None = None,
                     types: Sequence[str] | None = None, batch: int = 1000,
                     poll_s: float = 1.0) -> AsyncIterator[StoredEvent]:
        """Every stored event from ``from_seq`` on, in seq order, then each new one as it
        is committed by any daemon on the log (``account``/``types`` filter): each once,
        none missed. Woken by LISTEN/NOTIFY (``eventstore.postgres.notify``); reads by seq
        at least every ``poll_s`` seconds even without a notification. Runs until the
        caller stops iterating.

        Raises:
            StorageUnavailableError: a read found no server (the caller resumes from the
                seq after the last event it got).
        """
        position = from_seq
        while True:
            events, last = await self.read_page(position, batch, account, types)
            for event in events:
                yield event
            if len(events) == batch:
                position = events[-1].seq + 1  # more may match: read on at once
                continue
            # A short page holds every match up to ``last`` (same snapshot).
            position = max(position, last + 1)
            await self.wait_past(position - 1, poll_s)

    @property
    def notified(self) -> int:
        """The highest seq a notification has named so far (0: none yet, or not
        listening): committed, so visible to every read begun after it arrived."""
        return self._waker.notified if self._waker is not None else 0

    async def wait_past(self, after: int, timeout: float) -> None:
        """Return once a notification says the log may hold an event past seq ``after``
        (stored by any daemon; at once if one already said so), the listening session
        was made again, or ``timeout`` seconds passed. The first call opens the
        listening session (``eventstore.postgres.notify.Waker``), closed by ``close``."""
        if self._waker is None:
            self._waker = Waker(self.conninfo, self._reading.key, own_origin=self.own_origin)
            self._waker.start()
        await self._waker.wait(after, timeout)
