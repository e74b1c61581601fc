"""A throw-away in-memory SQLite database, for querying a view as it stood at a past point.

The audit replay (``as_of``, ``as_of_time``) folds events into a scratch state, loads
its rows into an in-memory database with the same tables as the real views, and runs
the same query there: one query path for now and then, whichever store holds the log.

Creating the view tables and their indexes takes about 1.2 ms per query; each scratch
database is instead a copy (``sqlite3.Connection.backup``) of an empty one built once
per process and table set, about 0.03 ms.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from eventstore.writes import Statement, run_statements

__all__ = ["query_scratch", "scratch_rows"]

_templates: dict[tuple[int, tuple[str, ...]], sqlite3.Connection] = {}
"""The empty databases to copy, by (process id, DDL): one made before a fork is not
used after it."""
_lock = threading.Lock()


def _empty(ddl: tuple[str, ...]) -> sqlite3.Connection:
    """A new in-memory database holding the tables of ``ddl``, empty."""
    conn = sqlite3.connect(":memory:")
    key = (os.getpid(), ddl)
    with _lock:
        template = _templates.get(key)
        if template is None:
            for stale in [k for k in _templates if k[0] != key[0]]:
                del _templates[stale]
            template = sqlite3.connect(":memory:", check_same_thread=False)
            for statement in ddl:
                template.execute(statement)
            _templates[key] = template
        template.backup(conn)
    return conn


def scratch_rows(ddl: Sequence[str], statements: Sequence[Statement],
                 queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[tuple[Any, ...]]]:
    """The rows of each of ``queries`` in a new in-memory database with the tables of
    ``ddl`` and the rows ``statements`` write; the database is gone after."""
    conn = _empty(tuple(ddl))
    try:
        run_statements(conn, list(statements))
        return [list(conn.execute(sql, params)) for sql, params in queries]
    finally:
        conn.close()


async def query_scratch(ddl: Sequence[str], statements: Sequence[Statement],
                        queries: Sequence[tuple[str, Sequence[Any]]]
                        ) -> list[list[tuple[Any, ...]]]:
    """``scratch_rows`` on a worker thread."""
    return await asyncio.to_thread(scratch_rows, ddl, statements, queries)
