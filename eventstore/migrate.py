"""Copying a log from one store to another with its seqs, times and hashes: ``tradelog
migrate --from URL --to URL`` (SQLite to PostgreSQL, and back, or between databases).

Every row is re-hashed on its way (the previous hash and its canonical bytes must give
its stored hash), so a damaged or altered source is refused at its first bad seq and
nothing past it is copied. Rows go in transactions of ``batch`` rows, each under the
target's own write lock (PostgreSQL's advisory lock, SQLite's ``BEGIN IMMEDIATE``) and
through its append-only triggers. A copy cut short is resumed by running it again: the
target's events must then be the source's first ones (same hash at its last seq), and
the copy goes on after them. ``to_seq`` stops the copy after that seq (point-in-time
copies: ``tradelog restore --to-seq``). Views are not copied: they are folded from the
log by the daemon that opens the target.

``copy_into_postgresql`` is the same copy into a PostgreSQL log on a connection the
caller holds, inside the caller's transaction when one is open (``tradelog restore
--store``: the copy, the views' rebuild and the verify commit together or not at all).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventstore.canonical import GENESIS_HASH, chain_hash
from eventstore.errors import (
    DatabaseFileError,
    EventStoreError,
    StorageDamagedError,
    ValidationError,
    map_sqlite_error,
)
from eventstore.sqlitefile import open_sqlite
from eventstore.store import StoreURL, parse_store
from eventstore.verify import rows_after, stored_canonical

if TYPE_CHECKING:
    from eventstore.postgres.connect import Connection

__all__ = ["MigrateReport", "copy_into_postgresql", "migrate", "stores"]

Row = tuple[Any, ...]

MAX_SEQ = 2**63 - 1
"""The largest seq a log can hold (a ``bigint`` on PostgreSQL, an INTEGER on SQLite)."""
"""A stored row in ``eventstore.ddl.EVENT_COLUMNS`` order."""


@dataclass(frozen=True, slots=True)
class MigrateReport:
    """What ``migrate`` did: ``copied`` rows, ``kept`` rows the target already held (a
    resumed copy), and the log's ``last_seq`` and ``last_hash`` on both stores now."""

    copied: int
    kept: int
    last_seq: int
    last_hash: str


@contextlib.contextmanager
def _source_rows(url: StoreURL, after: int, to_seq: int | None = None
                 ) -> Iterator[Iterator[Row]]:
    """The source's rows past seq ``after`` (up to ``to_seq``; None: to the end), from
    one read snapshot."""
    before = None if to_seq is None else to_seq + 1
    if url.kind == "sqlite":
        assert url.path is not None
        conn = open_sqlite(url.path, readonly=True, busy_timeout_s=5.0)
        try:
            conn.execute("BEGIN")
            rows = rows_after(conn, after, before)
            try:
                yield rows
            finally:
                rows.close()  # before its connection: a generator left open ends later
        finally:
            conn.close()
        return
    from eventstore.postgres import reads
    from eventstore.postgres.connect import connect, prepare

    assert url.conninfo is not None
    pg = connect(url.conninfo, readonly=True)
    try:
        prepare(pg, create=False)
        with pg.transaction():
            pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            pg_rows = reads.rows_after(pg, after, before)
            try:
                yield pg_rows
            finally:
                pg_rows.close()
    finally:
        pg.close()


class _Target:
    """The log being written: its last seq and hash, the hash at a seq, and batches."""

    def last(self) -> tuple[int, str]:
        raise NotImplementedError

    def hash_at(self, seq: int) -> str | None:
        raise NotImplementedError

    def write(self, rows: Sequence[Row], after: tuple[int, str]) -> None:
        """Append ``rows`` (already checked to chain on ``after``), refusing if the target
        moved on meanwhile."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SqliteTarget(_Target):
    def __init__(self, url: StoreURL) -> None:
        assert url.path is not None
        self.conn = open_sqlite(url.path, readonly=False, busy_timeout_s=5.0)

    def last(self) -> tuple[int, str]:
        row = self.conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
                                ).fetchone()
        return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))

    def hash_at(self, seq: int) -> str | None:
        row = self.conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row[0])

    def write(self, rows: Sequence[Row], after: tuple[int, str]) -> None:
        counts = _counts(rows)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                _same_place(self.last(), after)
                self.conn.executemany(
                    f"INSERT INTO events VALUES ({', '.join('?' * 13)})", rows)
                self.conn.executemany(
                    "INSERT INTO accounts (account, version) VALUES (?, ?) ON CONFLICT "
                    "(account) DO UPDATE SET version = version + excluded.version",
                    list(counts.items()))
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise map_sqlite_error(exc, "copying into the SQLite log") from exc

    def close(self) -> None:
        self.conn.close()


class _PgTarget(_Target):
    def __init__(self, conn: Connection, key: int, owned: bool) -> None:
        self.conn = conn
        self.key = key
        self.owned = owned

    @classmethod
    def connect(cls, url: StoreURL) -> _PgTarget:
        """A connection of its own to the log ``url`` names (created on first use)."""
        from eventstore.postgres.connect import connect, prepare

        assert url.conninfo is not None
        conn = connect(url.conninfo)
        try:
            return cls(conn, prepare(conn, create=True), owned=True)
        except BaseException:
            conn.close()
            raise

    def last(self) -> tuple[int, str]:
        row = self.conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
                                ).fetchone()
        return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))

    def hash_at(self, seq: int) -> str | None:
        row = self.conn.execute("SELECT hash FROM events WHERE seq = %s", (seq,)).fetchone()
        return None if row is None else str(row[0])

    def write(self, rows: Sequence[Row], after: tuple[int, str]) -> None:
        import psycopg

        from eventstore.postgres.connect import map_pg_error
        from eventstore.postgres.writes import INSERT, UPSERT

        columns: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)]
        previous = [after[1], *columns[12][:-1]]
        counts = _counts(rows)
        try:
            # Inside a transaction the caller holds this is a savepoint (the lock is
            # taken again by the same session: it is the caller's until its commit).
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.key,))
                _same_place(self.last(), after)
                self.conn.execute(INSERT, [*columns, previous])
                self.conn.execute(UPSERT, (list(counts), list(counts.values())))
        except psycopg.Error as exc:
            raise map_pg_error(exc, "copying into the PostgreSQL log") from exc

    def close(self) -> None:
        if self.owned:
            self.conn.close()


def _same_place(last: tuple[int, str], after: tuple[int, str]) -> None:
    """Refuse to go on when the target's last event is no longer where the copy left it."""
    if last != after:
        raise EventStoreError(f"the target log was appended to during the copy (its last "
                              f"seq is {last[0]}, not {after[0]}); stop its daemons and "
                              "run migrate again")


def _counts(rows: Sequence[Row]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[5]] = counts.get(row[5], 0) + 1
    return counts


def _bad_row(row: Row, state: tuple[int, str]) -> StorageDamagedError | None:
    """Why ``row`` does not follow ``state`` (last seq and hash) in the chain, or None."""
    expected = state[0] + 1
    if row[0] != expected:
        return StorageDamagedError(expected, f"seq {expected} is missing in the source")
    try:
        digest = chain_hash(state[1], stored_canonical(row))
    except (TypeError, ValueError) as exc:
        return StorageDamagedError(row[0], f"the row cannot be decoded ({exc})")
    if digest != row[12]:
        return StorageDamagedError(row[0], "hash does not match: the source event was "
                                   "altered; run `tradelog verify` on it")
    return None


def stores(source: str, target: str) -> tuple[StoreURL, StoreURL]:
    """Both URLs parsed, checked to name two logs.

    Raises:
        ValidationError: a bad URL, or the same log on both sides.
    """
    from_url, to_url = parse_store(source), parse_store(target)
    if from_url == to_url or (from_url.path is not None and to_url.path is not None
                              and from_url.path.resolve() == to_url.path.resolve()):
        raise ValidationError("--from and --to name the same log; give two stores")
    return from_url, to_url


def migrate(source: str, target: str, *, batch: int = 5000,
            progress: Callable[[int], None] | None = None,
            to_seq: int | None = None) -> MigrateReport:
    """Copy the log at ``source`` into ``target`` (store URLs, ``eventstore.store``), up
    to seq ``to_seq`` (None: the whole log; past its end: the whole log);
    ``progress(n)`` is called after each batch of ``n`` rows.

    Raises:
        ValidationError: a bad URL, the same store on both sides, or ``to_seq`` < 0.
        StorageDamagedError: a source row fails its hash or is missing (its seq named);
            the rows before it are copied.
        DatabaseFileError: the target holds another log (its last event is not the
            source's at that seq) or more events than ``to_seq``, or either side is not
            a tradelog log.
        StorageUnavailableError: a store cannot be reached or written.
    """
    from_url, to_url = stores(source, target)
    to_seq = _last_to_copy(to_seq)  # before the target is opened (and maybe created)
    out: _Target = (_SqliteTarget(to_url) if to_url.kind == "sqlite"
                    else _PgTarget.connect(to_url))
    try:
        return _copy(from_url, out, batch, progress, to_seq)
    finally:
        out.close()


def copy_into_postgresql(source: str | StoreURL, conn: Connection, key: int, *,
                         to_seq: int | None = None, batch: int = 5000,
                         progress: Callable[[int], None] | None = None) -> MigrateReport:
    """``migrate`` into the PostgreSQL log on ``conn`` (``prepare``d; ``key`` its lock
    key), which stays open. Each batch is a transaction of its own, or a savepoint of
    the caller's transaction when one is open on ``conn``: then nothing is committed
    until the caller commits, and the caller, holding the log's lock from before the
    copy, keeps every other writer out until then.

    Raises:
        As ``migrate``.
    """
    from_url = parse_store(source) if isinstance(source, str) else source
    return _copy(from_url, _PgTarget(conn, key, owned=False), batch, progress,
                 _last_to_copy(to_seq))


def _last_to_copy(to_seq: int | None) -> int | None:
    """``to_seq`` checked: None (the whole log) for a seq past any a log can hold (a
    ``bigint``), so that no store is asked for one.

    Raises:
        ValidationError: ``to_seq`` < 0.
    """
    if to_seq is not None and to_seq < 0:
        raise ValidationError(f"copy up to seq {to_seq}: give 0 or more")
    return None if to_seq is None or to_seq >= MAX_SEQ else to_seq


def _copy(from_url: StoreURL, out: _Target, batch: int,
          progress: Callable[[int], None] | None, to_seq: int | None) -> MigrateReport:
    """The copy of ``migrate`` into ``out`` (left open)."""
    kept, last_hash = out.last()
    if to_seq is not None and kept > to_seq:
        raise DatabaseFileError(
            f"the target already holds {kept} events, more than the {to_seq} to copy; "
            "copy into an empty log")
    if kept:
        with _source_rows(from_url, kept - 1) as rows:
            first = next(rows, None)
        if first is None or first[0] != kept or first[12] != last_hash:
            raise DatabaseFileError(
                f"the target already holds {kept} events that are not the source's "
                "first ones; migrate into an empty log")
    state = (kept, last_hash)
    copied = 0
    pending: list[Row] = []
    start = state

    def flush() -> None:
        nonlocal copied, pending, start
        if pending:
            out.write(pending, start)
            copied += len(pending)
            if progress is not None:
                progress(len(pending))
        pending, start = [], state

    with _source_rows(from_url, kept, to_seq) as rows:
        for row in rows:
            bad = _bad_row(row, state)
            if bad is not None:
                flush()
                raise bad
            pending.append(tuple(row))
            state = (row[0], row[12])
            if len(pending) >= batch:
                flush()
        flush()
    return MigrateReport(copied, kept, state[0], state[1])
