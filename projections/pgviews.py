"""The views in a PostgreSQL log: their tables beside ``events``, one set for every
daemon appending to it, with their checkpoint in ``projection_checkpoint``.

The views' statements are written once, in SQLite's spelling (``projections.tables``,
``drain``, ``snapshots``); on PostgreSQL they run through
``eventstore.postgres.dialect.SqliteSpelling``. Opening them takes the log's append
lock (``pg_advisory_xact_lock``), so that daemons starting together create the tables
once and a catch-up never interleaves with an append.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg

from eventstore.postgres import reads
from eventstore.postgres.connect import Connection, map_pg_error
from eventstore.postgres.dialect import SqliteSpelling
from projections import lifecycle
from projections.runner import ViewRunner

__all__ = ["PgTransact", "open_views", "rebuild_views", "stored_version"]

T = TypeVar("T")


class PgTransact:
    """``lifecycle.Transact`` on a PostgreSQL connection: ``BEGIN``, the log's lock
    ``key``, the body, ``COMMIT``; on any error the runner's state is discarded and a
    driver error raised as ``map_pg_error`` makes it (``StorageUnavailableError``...)."""

    def __init__(self, conn: Connection, key: int) -> None:
        self.conn = conn
        self.key = key

    def __call__(self, runner: ViewRunner, doing: str, body: Callable[[], T]) -> T:
        """``body()``'s result, committed under the lock."""
        try:
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.key,))
                return body()
        except psycopg.Error as exc:
            runner.discard()
            raise map_pg_error(exc, doing) from exc
        except BaseException:
            runner.discard()
            raise


def stored_version(conn: Connection) -> int | None:
    """The projection version the views' tables were written with (None: no views yet)."""
    found = conn.execute("SELECT to_regclass('projection_checkpoint')").fetchone()
    if found is None or found[0] is None:
        return None
    row = conn.execute("SELECT version FROM projection_checkpoint WHERE name = 'views'"
                       ).fetchone()
    return int(row[0]) if row else None


def open_views(conn: Connection, key: int, progress: Callable[[int], None] | None = None
               ) -> tuple[ViewRunner, int, SqliteSpelling]:
    """Create (first use), rebuild (a new projection version) or catch up the views of
    the log on ``conn`` (lock ``key``): ``lifecycle.open_on``. Returns the runner, the
    events folded and the connection in SQLite's spelling that the runner reads with.

    Raises:
        StorageUnavailableError: the server cannot be reached or refuses.
    """
    spelling = SqliteSpelling(conn)

    def rows(after: int, before: int | None) -> Iterator[tuple[Any, ...]]:
        return reads.rows_after(conn, after, before)

    try:
        version = stored_version(conn)
    except psycopg.Error as exc:
        raise map_pg_error(exc, "opening the views") from exc
    runner, folded = lifecycle.open_on(spelling, progress, PgTransact(conn, key), rows,
                                       version)
    return runner, folded, spelling


def rebuild_views(conn: Connection, key: int, progress: Callable[[int], None] | None = None
                  ) -> int:
    """Rebuild every view of the log on ``conn`` (lock ``key``) from the whole log, into
    new tables swapped in when complete (``lifecycle.rebuild``), in one transaction
    under the log's append lock: no daemon commits meanwhile (each waits for the lock,
    up to its ``busy_timeout_s``), and on any error nothing changes. ``progress(n)`` is
    called after each n events. Returns the number of events folded.

    It ends with a snapshot at the last seq: a running daemon's next snapshot holds only
    the signals and orders it changed since its own previous one, which the rebuilt
    version tables no longer hold.

    Raises:
        StorageUnavailableError: the server cannot be reached or refuses.
        StorageBusyError: the lock was not had within the connection's ``lock_timeout``.
    """
    spelling = SqliteSpelling(conn)

    def rows(after: int, before: int | None) -> Iterator[tuple[Any, ...]]:
        return reads.rows_after(conn, after, before)

    runner = ViewRunner()
    runner.progress = progress
    return lifecycle.rebuild(spelling, runner, PgTransact(conn, key), rows, end_snapshot=True)
