"""Reading stored events from PostgreSQL by seq and filters, and the read snapshot."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import psycopg

from eventstore.errors import StorageDamagedError
from eventstore.postgres import ddl
from eventstore.postgres.connect import Connection, map_pg_error
from eventstore.record import StoredEvent
from eventstore.verify import unreadable_reason

__all__ = ["last_seq", "read_events", "rows_after", "snapshot"]

T = TypeVar("T")


def snapshot(conn: Connection, fn: Callable[[Connection], T]) -> T:
    """``fn(conn)`` inside one ``REPEATABLE READ READ ONLY`` transaction: every query it
    runs sees the same committed state.

    Raises:
        StorageUnavailableError: the server cannot be reached (mapped psycopg errors).
    """
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return fn(conn)
    except psycopg.Error as exc:
        raise map_pg_error(exc, "reading") from exc


def last_seq(conn: Connection) -> int:
    """The highest stored seq (0 for an empty log)."""
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    return int(row[0]) if row else 0


def read_events(conn: Connection, from_seq: int, limit: int, account: str | None,
                types: Sequence[str] | None, before_seq: int | None = None
                ) -> list[StoredEvent]:
    """Stored events with ``seq >= from_seq`` (and ``< before_seq``), of ``account`` and
    ``types`` when given (None: all), in seq order, at most ``limit``.

    Raises:
        StorageDamagedError: a stored payload is not JSON (its seq named).
    """
    where = ["seq >= %s"]
    params: list[Any] = [from_seq]
    if before_seq is not None:
        where.append("seq < %s")
        params.append(before_seq)
    if account is not None:
        where.append("account = %s")
        params.append(account)
    if types:
        where.append("type = ANY(%s::text[])")
        params.append(list(types))
    params.append(max(0, limit))
    sql = (f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} "
           "ORDER BY seq LIMIT %s")
    return [_stored(row) for row in conn.execute(sql, params)]


def _stored(row: tuple[Any, ...]) -> StoredEvent:
    try:
        return StoredEvent.from_row(row)
    except (TypeError, ValueError) as exc:
        raise StorageDamagedError(row[0], unreadable_reason(exc)) from exc


SMALL = 1024
"""A range of at most this many seqs is read in one query, not through a cursor."""


def rows_after(conn: Connection, after: int, before: int | None = None
               ) -> Generator[tuple[Any, ...], None, None]:
    """Every stored row (``ddl.EVENT_COLUMNS``) with ``after < seq`` (and ``< before``), in
    seq order, streamed from a server-side cursor 4096 rows at a time (a range bounded to
    ``SMALL`` seqs or fewer in one query). Must run inside a transaction (``snapshot``)."""
    bound = "" if before is None else " AND seq < %s"
    params: tuple[int, ...] = (after,) if before is None else (after, before)
    if before is not None and before - after <= SMALL:  # one round trip, no cursor
        yield from conn.execute(f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE seq > %s"
                                f"{bound} ORDER BY seq", params).fetchall()
        return
    with conn.cursor(name="tradelog_rows_after") as cursor:
        cursor.itersize = 4096
        cursor.execute(f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE seq > %s{bound} "
                       "ORDER BY seq", params)
        yield from cursor
