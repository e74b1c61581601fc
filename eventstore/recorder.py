"""The recorder: the one module that opens the SQLite file (through aiosqlite).

One writer connection, so one global order of appends. Every write transaction runs as
one function on aiosqlite's worker thread (``BEGIN IMMEDIATE`` ... ``COMMIT``): one
await per group of batches, never one per event. A second, read-only connection serves
reads so that a query never waits behind a commit.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from eventstore import ddl
from eventstore.canonical import GENESIS_HASH, canonical_event, chain_hash
from eventstore.errors import (
    DatabaseFileError,
    EventStoreError,
    IdempotencyConflictError,
    StorageBusyError,
    StorageCorruptError,
    StorageUnavailableError,
    ValidationError,
    VersionConflictError,
    map_sqlite_error,
)
from eventstore.record import AppendOutcome, AppendRequest, EventResult, NewEvent, StoredEvent

__all__ = ["Recorder", "Statement", "VerifyReport", "ViewUpdater", "open_sqlite"]

T = TypeVar("T")
Statement = tuple[str, Sequence[Sequence[Any]] | None]
"""An SQL statement and the parameter rows to ``executemany`` it with (None: run once)."""


def run_statements(conn: sqlite3.Connection, statements: Sequence[Statement]) -> None:
    """Execute statements in order: ``executemany`` with their rows, or once when None."""
    for sql, rows in statements:
        if rows is None:
            conn.execute(sql)
        else:
            conn.executemany(sql, rows)


class ViewUpdater(Protocol):
    """What the recorder needs from the projections to keep views in the append's transaction.

    The recorder calls, inside the write transaction: ``load_queries``/``restore`` when
    ``needs_load`` is true, then ``fold`` with every event past ``position`` (including
    any another process appended), executes the statements it returns, and commits.
    On rollback it calls ``discard`` so that the in-memory state is reloaded next time.
    """

    @property
    def position(self) -> int: ...

    def needs_load(self) -> bool: ...

    def ddl(self) -> list[str]: ...

    def load_queries(self) -> list[str]: ...

    def restore(self, results: list[list[tuple[Any, ...]]]) -> None: ...

    def fold(self, events: Sequence[StoredEvent]) -> list[Statement]: ...

    def discard(self) -> None: ...

    def rebuild_begin(self) -> list[str]: ...

    def rebuild_end(self) -> list[Statement]: ...


class VerifyReport:
    """The result of ``Recorder.verify``: ``ok``, events checked, first bad seq and why."""

    def __init__(self, checked: int, last_hash: str, bad_seq: int | None, reason: str) -> None:
        self.checked = checked
        self.last_hash = last_hash
        self.bad_seq = bad_seq
        self.reason = reason

    @property
    def ok(self) -> bool:
        return self.bad_seq is None and not self.reason


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def open_sqlite(path: str | Path, *, readonly: bool, busy_timeout_s: float) -> sqlite3.Connection:
    """Open and check a tradelog file with the plain sqlite3 driver (used on the worker thread).

    A file another process is creating or migrating at the same moment is waited for
    (retried with backoff for up to twice ``busy_timeout_s``).

    Raises:
        DatabaseFileError: not a SQLite file, a foreign SQLite file, or a newer tradelog's;
            such a file is not written to.
        StorageUnavailableError: the file cannot be opened, or stays locked.
    """
    deadline = time.monotonic() + busy_timeout_s * 2
    delay_s = 0.01
    while True:
        try:
            return _open_once(Path(path), readonly=readonly, busy_timeout_s=busy_timeout_s)
        except StorageBusyError as exc:
            if time.monotonic() >= deadline:
                raise StorageUnavailableError(
                    f"{exc}; still locked after retrying") from exc
        time.sleep(random.uniform(0, delay_s))
        delay_s = min(delay_s * 2, 0.5)


def _open_once(target: Path, *, readonly: bool, busy_timeout_s: float) -> sqlite3.Connection:
    try:
        if readonly:
            if not target.exists():
                raise DatabaseFileError(f"{target}: no such database file")
            conn = sqlite3.connect(
                f"{target.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                check_same_thread=False, timeout=busy_timeout_s,
            )
        else:
            conn = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, f"opening {target}") from exc
    try:
        _check_and_migrate(conn, target, readonly=readonly, busy_timeout_s=busy_timeout_s)
    except BaseException:
        conn.close()
        raise
    return conn


# One statement, so the three values come from one snapshot even while another process
# is creating the file.
_IDENTITY_SQL = (
    "SELECT a.application_id, v.user_version, (SELECT count(*) FROM sqlite_master) "
    "FROM pragma_application_id() AS a, pragma_user_version() AS v"
)


def _file_version(conn: sqlite3.Connection, target: Path) -> int:
    """Check the file is (or may become) a tradelog file of a known format; its version."""
    try:
        app_id, version, tables = conn.execute(_IDENTITY_SQL).fetchone()
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith("SQLITE_NOTADB") or "not a database" in str(exc):
            raise DatabaseFileError(
                f"{target} is not a SQLite database file ({exc}); refusing to touch it. "
                "Point --db at a tradelog file or a new path."
            ) from exc
        raise map_sqlite_error(exc, f"reading {target}") from exc
    if app_id != ddl.APPLICATION_ID and (app_id != 0 or tables):
        raise DatabaseFileError(
            f"{target} is a SQLite file but not a tradelog database (application_id "
            f"{app_id:#x}); refusing to touch it. Point --db at a tradelog file or a new path."
        )
    if version > ddl.SCHEMA_VERSION:
        raise DatabaseFileError(
            f"{target} was written by a newer tradelog (file format {version}, this tradelog "
            f"knows up to {ddl.SCHEMA_VERSION}); upgrade tradelog to open it."
        )
    return int(version)


def _check_and_migrate(
    conn: sqlite3.Connection, target: Path, *, readonly: bool, busy_timeout_s: float
) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, f"opening {target}") from exc
    version = _file_version(conn, target)
    if readonly:
        if version < ddl.SCHEMA_VERSION:
            raise DatabaseFileError(
                f"{target} needs a format upgrade ({version} -> {ddl.SCHEMA_VERSION}); "
                "open it once with the daemon or `tradelog rebuild` to migrate it."
            )
        conn.execute("PRAGMA query_only = ON")
        return
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        if version < ddl.SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have created or migrated the file since we looked.
                version = _file_version(conn, target)
                for step in range(version, ddl.SCHEMA_VERSION):
                    for statement in ddl.MIGRATIONS[step]:
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {ddl.APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {ddl.SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, f"preparing {target}") from exc


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


class _Batch:
    """Working state of one group commit inside the transaction."""

    def __init__(self, last_seq: int, last_hash: str, last_recorded: str) -> None:
        self.last_seq = last_seq
        self.last_hash = last_hash
        self.recorded_at = max(_utc_now(), last_recorded)
        self.rows: list[tuple[Any, ...]] = []
        self.stored: list[StoredEvent] = []
        self.seen: dict[tuple[str, str], tuple[bytes, int]] = {}
        self.stored_counts: dict[str, int] = {}
        self.pending_counts: dict[str, int] = {}

    def version(self, conn: sqlite3.Connection, account: str) -> int:
        """The account's event count as this group would leave it so far."""
        if account not in self.stored_counts:
            row = conn.execute("SELECT version FROM accounts WHERE account = ?",
                               (account,)).fetchone()
            self.stored_counts[account] = int(row[0]) if row else 0
        return self.stored_counts[account] + self.pending_counts.get(account, 0)


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
            return _append_in_transaction(conn, requests, views)

        return await self._retrying(work, on_writer=True)

    async def prepare_views(self, views: ViewUpdater) -> int:
        """Create the views' tables if missing, load their state and catch up from the log.

        Returns the number of events folded to catch up.
        """
        self.views = views

        def work(conn: sqlite3.Connection) -> int:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in views.ddl():
                        conn.execute(statement)
                    folded = _catch_up(conn, views)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn, views)
                    raise
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, "preparing views") from exc
            return folded

        return await self._retrying(work, on_writer=True)

    async def rebuild_views(self, views: ViewUpdater) -> int:
        """Rebuild every view from the whole log into new tables, swapped in when complete.

        One write transaction: appends wait until it commits; on any error nothing
        changes. The log is only read. Returns the number of events folded.
        """
        self.views = views

        def work(conn: sqlite3.Connection) -> int:
            folded = 0
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in views.rebuild_begin():
                        conn.execute(statement)
                    cursor = conn.execute(
                        f"SELECT {ddl.EVENT_COLUMNS} FROM events ORDER BY seq")
                    while rows := cursor.fetchmany(4096):
                        run_statements(conn, views.fold([StoredEvent.from_row(r) for r in rows]))
                        folded += len(rows)
                    run_statements(conn, views.rebuild_end())
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn, views)
                    raise
            except sqlite3.Error as exc:
                raise map_sqlite_error(exc, "rebuilding views") from exc
            return folded

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


def stored_canonical(row: Sequence[Any]) -> bytes:
    """Canonical bytes of a stored row in ``ddl.EVENT_COLUMNS`` order."""
    return canonical_event(
        account=row[5], data_json=row[8], datacontenttype=row[7], event_id=row[2],
        source=row[1], specversion=row[6], time=row[4], event_type=row[3],
    )


def _squeezed(sql: str) -> str:
    return " ".join(sql.split())


def verify_chain(conn: sqlite3.Connection) -> VerifyReport:
    """Check the chain on an open connection (see ``Recorder.verify``)."""
    present: dict[str, str] = dict(conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"))
    missing = sorted(
        name for name, sql in ddl.EVENT_TRIGGERS.items()
        if _squeezed(present.get(name) or "") != _squeezed(sql)
    )
    previous = GENESIS_HASH
    expected_seq = 1
    checked = 0
    cursor = conn.execute(f"SELECT {ddl.EVENT_COLUMNS} FROM events ORDER BY seq")
    while rows := cursor.fetchmany(4096):
        for row in rows:
            seq = row[0]
            if seq != expected_seq:
                return VerifyReport(checked, previous, expected_seq,
                                    f"seq {expected_seq} is missing (next stored is {seq})")
            digest = chain_hash(previous, stored_canonical(row))
            if digest != row[12]:
                return VerifyReport(checked, previous, seq,
                                    "hash does not match: the event was altered, removed "
                                    "or reordered")
            previous = digest
            expected_seq += 1
            checked += 1
    if missing:
        return VerifyReport(checked, previous, None,
                            f"append-only triggers removed or altered: {', '.join(missing)}")
    return VerifyReport(checked, previous, None, "")


def _rollback(conn: sqlite3.Connection, views: ViewUpdater | None) -> None:
    if views is not None:
        views.discard()
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StorageCorruptError(f"rollback failed, the database is in doubt: {exc}") from exc


def _catch_up(conn: sqlite3.Connection, views: ViewUpdater) -> int:
    """Load the views' state if needed and fold every stored event past their checkpoint."""
    if views.needs_load():
        views.restore([list(conn.execute(q)) for q in views.load_queries()])
    folded = 0
    cursor = conn.execute(
        f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq", (views.position,)
    )
    while rows := cursor.fetchmany(2048):
        events = [StoredEvent.from_row(row) for row in rows]
        run_statements(conn, views.fold(events))
        folded += len(events)
    return folded


def _check_request(conn: sqlite3.Connection, request: AppendRequest,
                   batch: _Batch) -> tuple[list[EventResult], list[NewEvent]] | Exception:
    """Decide one request: results for each event and the new ones, or its error."""
    if request.expected_account is not None and request.expected_version is not None:
        account = request.expected_account
        current = batch.version(conn, account)
        if current != request.expected_version:
            return VersionConflictError(account, request.expected_version, current)
    results: list[EventResult] = []
    fresh: list[NewEvent] = []
    local: dict[tuple[str, str], tuple[bytes, int]] = {}
    first_index: dict[tuple[str, str], int] = {}
    next_seq = batch.last_seq + 1
    for index, event in enumerate(request.events):
        key = (event.source, event.event_id)
        if key in local and local[key][0] != event.canonical:
            # Nothing is stored under this key: the batch contradicts itself.
            return ValidationError(
                f"event {index}: source+id appears twice in the batch with different "
                f"content (first at event {first_index[key]}); send one of them",
                [{"index": index, "path": "id",
                  "message": f"source+id already used by event {first_index[key]} of this "
                             "batch with different content"}],
            )
        first_index.setdefault(key, index)
        known = local.get(key) or batch.seen.get(key)
        if known is None:
            row = conn.execute(
                f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE source = ? AND id = ?", key
            ).fetchone()
            if row is not None:
                known = (stored_canonical(row), row[0])
        if known is not None:
            if known[0] != event.canonical:
                return IdempotencyConflictError(event.source, event.event_id, known[1])
            results.append(EventResult(event.event_id, event.source, known[1], True))
            continue
        local[key] = (event.canonical, next_seq)
        results.append(EventResult(event.event_id, event.source, next_seq, False))
        fresh.append(event)
        next_seq += 1
    batch.seen.update(local)
    return results, fresh


def _append_in_transaction(conn: sqlite3.Connection, requests: Sequence[AppendRequest],
                           views: ViewUpdater | None) -> list[AppendOutcome]:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, "starting a write") from exc
    try:
        last = conn.execute(
            "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        batch = _Batch(*(last if last else (0, GENESIS_HASH, "")))
        decided: list[tuple[list[EventResult], list[NewEvent]] | Exception] = []
        for request in requests:
            verdict = _check_request(conn, request, batch)
            decided.append(verdict)
            if isinstance(verdict, Exception):
                continue
            for event in verdict[1]:
                batch.last_seq += 1
                batch.last_hash = chain_hash(batch.last_hash, event.canonical)
                metadata = json.dumps(event.metadata, sort_keys=True, separators=(",", ":"))
                batch.rows.append((
                    batch.last_seq, event.source, event.event_id, event.event_type, event.time,
                    event.account, event.specversion, event.datacontenttype, event.data_json,
                    batch.recorded_at, event.schema_version, metadata, batch.last_hash,
                ))
                batch.stored.append(StoredEvent(
                    batch.last_seq, event.event_id, event.source, event.event_type,
                    event.time, event.account, event.specversion, event.datacontenttype,
                    event.data, batch.recorded_at, event.schema_version, batch.last_hash,
                    event.metadata,
                ))
                batch.pending_counts[event.account] = (
                    batch.pending_counts.get(event.account, 0) + 1)
        if batch.rows:
            conn.executemany(
                f"INSERT INTO events ({ddl.EVENT_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch.rows)
            conn.executemany(
                "INSERT INTO accounts (account, version) VALUES (?, ?) "
                "ON CONFLICT (account) DO UPDATE SET version = version + excluded.version",
                list(batch.pending_counts.items()))
        if views is not None:
            _catch_up_before(conn, views, batch)
            run_statements(conn, views.fold(batch.stored))
        conn.execute("COMMIT")
    except EventStoreError:
        _rollback(conn, views)
        raise
    except sqlite3.Error as exc:
        _rollback(conn, views)
        raise map_sqlite_error(exc, "appending") from exc
    except BaseException:
        _rollback(conn, views)
        raise
    outcomes: list[AppendOutcome] = []
    for verdict in decided:
        if isinstance(verdict, Exception):
            outcomes.append(AppendOutcome([], batch.last_seq, verdict))
        else:
            outcomes.append(AppendOutcome(verdict[0], batch.last_seq))
    return outcomes


def _catch_up_before(conn: sqlite3.Connection, views: ViewUpdater, batch: _Batch) -> None:
    """Fold what another process appended before this group, so views never skip events."""
    first_new = batch.stored[0].seq if batch.stored else batch.last_seq + 1
    if views.needs_load() or views.position < first_new - 1:
        if views.needs_load():
            views.restore([list(conn.execute(q)) for q in views.load_queries()])
        cursor = conn.execute(
            f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE seq > ? AND seq < ? ORDER BY seq",
            (views.position, first_new),
        )
        while rows := cursor.fetchmany(2048):
            run_statements(conn, views.fold([StoredEvent.from_row(row) for row in rows]))

