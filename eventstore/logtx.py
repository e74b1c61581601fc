"""One read transaction on the log, apart from the recorder's connections, for the
folds that replay the log into a scratch state (``as_of``, ``as_of_time``).

The fold code reads through ``LogTx`` and is the same on both stores: SQL in SQLite's
spelling (rewritten on PostgreSQL by ``eventstore.postgres.dialect``), the log streamed
in chunks, the view tables looked for by name. ``SqliteTx`` is a read-only sqlite3
connection inside ``BEGIN``; ``eventstore.postgres.logtx.PgTx`` a psycopg connection
inside a ``REPEATABLE READ READ ONLY`` transaction. Each recorder's ``replay`` opens
one, runs the fold on a worker thread and closes it, so a long fold never holds up the
recorder's own reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

__all__ = ["CHUNK", "LogTx", "SqliteTx"]

CHUNK = 4096
"""Rows per chunk when the log is streamed."""


class LogTx(Protocol):
    """A read transaction in SQLite's spelling (every call sees the same snapshot)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one query; returns a cursor (``fetchone``, ``fetchall``, iteration)."""
        ...

    def chunks(self, sql: str, params: Sequence[Any] = ()) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of one query as lists of at most ``CHUNK`` rows, read as they are
        consumed (the whole result is never held at once)."""
        ...

    def has_table(self, name: str) -> bool:
        """True when the log's database (its schema, on PostgreSQL) has table ``name``."""
        ...


class SqliteTx:
    """``LogTx`` on a sqlite3 connection the caller has begun a transaction on."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """``conn.execute``."""
        return self.conn.execute(sql, params)

    def chunks(self, sql: str, params: Sequence[Any] = ()) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``sql`` by ``fetchmany(CHUNK)``."""
        cursor = self.conn.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            yield rows

    def has_table(self, name: str) -> bool:
        """Looked up in ``sqlite_master``."""
        return self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (name,)).fetchone() is not None
