"""Reading stored events by seq and filters, naming the seq of any row that cannot be read."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from eventstore import ddl
from eventstore.errors import StorageDamagedError
from eventstore.record import StoredEvent
from eventstore.verify import unreadable_reason

__all__ = ["read_events", "read_sql"]


def read_events(conn: sqlite3.Connection, from_seq: int, limit: int, account: str | None,
                 types: Sequence[str] | None, before_seq: int | None = None
                 ) -> list[StoredEvent]:
    """The rows of ``read_sql`` as stored events. A row that cannot be read (a damaged
    page) or decoded raises ``StorageDamagedError`` naming its seq: found by reading the
    matching rows one at a time, then the seq column alone."""
    sql, params = read_sql(from_seq, limit, account, types, before_seq=before_seq)
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
        sql, params = read_sql(after + 1, 1, account, types)
        try:
            row = conn.execute(sql, params).fetchone()
        except sqlite3.Error:
            break
        if row is None:
            break
        after = row[0]
    sql, params = read_sql(after + 1, 1, account, types, columns="seq")
    try:
        found = conn.execute(sql, params).fetchone()
    except sqlite3.Error:
        return after + 1
    return int(found[0]) if found and isinstance(found[0], int) else after + 1


def read_sql(from_seq: int, limit: int, account: str | None,
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

