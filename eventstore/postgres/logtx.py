"""``LogTx`` (``eventstore.logtx``) on PostgreSQL: a read-only connection of its own in one
``REPEATABLE READ`` snapshot, the SQL rewritten from SQLite's spelling
(``eventstore.postgres.dialect``), the log streamed from server-side cursors."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from eventstore.logtx import CHUNK, LogTx
from eventstore.postgres import reads
from eventstore.postgres.connect import Connection, connect
from eventstore.postgres.dialect import SqliteSpelling

__all__ = ["PgTx", "replay_on"]

T = TypeVar("T")
_names = itertools.count(1)


class PgTx:
    """``LogTx`` on a psycopg connection inside a transaction (``reads.snapshot``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.spelling = SqliteSpelling(conn)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """``SqliteSpelling.execute``: a client-side cursor."""
        return self.spelling.execute(sql, params)

    def chunks(self, sql: str, params: Sequence[Any] = ()) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of one SELECT from a server-side cursor of its own (so a fold may
        run other queries while it streams), ``CHUNK`` rows per fetch."""
        *_, statement = self.spelling.statements(sql)
        with self.conn.cursor(name=f"tradelog_replay_{next(_names)}") as cursor:
            cursor.execute(statement, tuple(params))
            while rows := cursor.fetchmany(CHUNK):
                yield rows

    def has_table(self, name: str) -> bool:
        """Looked up in ``pg_tables`` in the log's schema (``current_schema()``)."""
        return self.conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s",
            (name,)).fetchone() is not None


def replay_on(conninfo: str, lock_timeout_s: float, fn: Callable[[LogTx], T]) -> T:
    """``fn(tx)`` on a new read-only connection to ``conninfo``, in one snapshot; the
    connection is closed after. Synchronous (the caller puts it on a worker thread).

    Raises:
        StorageUnavailableError: no server could be reached (psycopg's errors mapped).
    """
    conn = connect(conninfo, readonly=True, lock_timeout_s=lock_timeout_s)
    try:
        return reads.snapshot(conn, lambda c: fn(PgTx(c)))
    finally:
        conn.close()
