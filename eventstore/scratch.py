"""A throw-away in-memory SQLite database, for querying a view as it stood at a past seq.

The audit replay folds events into a scratch state, loads its rows here with the same
tables as the real views, and runs the same query: one query path for now and then.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

from eventstore.follow import Statement, run_statements

__all__ = ["query_scratch"]


def _run(ddl: Sequence[str], statements: Sequence[Statement], sql: str,
         params: Sequence[Any]) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(":memory:")
    try:
        for statement in ddl:
            conn.execute(statement)
        run_statements(conn, statements)
        return list(conn.execute(sql, params))
    finally:
        conn.close()


async def query_scratch(ddl: Sequence[str], statements: Sequence[Statement], sql: str,
                        params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Create tables from ``ddl``, run ``statements``, and return the rows of ``sql``."""
    return await asyncio.to_thread(_run, ddl, statements, sql, params)
