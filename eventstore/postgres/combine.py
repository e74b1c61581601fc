"""The views' row writes of one commit as few PostgreSQL statements as is safe: what
spares a small commit a statement (and its driver's work) per view table.

A commit writes each view table's rows with a statement of its own (``INSERT ... ON
CONFLICT`` for each row, ``DELETE`` or ``UPDATE`` by key). Statements on different tables
do not touch each other's rows (the view tables have no foreign keys or triggers), so
consecutive ones go as one statement: the last one, with the others as its
data-modifying ``WITH`` parts (each part runs once). A table already written by an
earlier part starts a new statement (two parts of one statement that touch the same row
would see neither the other's change). An insert of several rows is one ``VALUES`` list
when their conflict keys differ; anything else (a ``DELETE`` or ``UPDATE`` for several
rows, rows sharing a key, a statement that is not a plain insert, delete or update, too
many parameters) runs as it is, once per row (``executemany``).

A combined statement is written with PostgreSQL's own ``$n`` parameters, for a
``psycopg.RawCursor``: psycopg parses a ``%s`` statement again at each execution once it
is over 4,096 characters or 50 parameters, which costs more than the statements saved.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["MAX_PARAMS", "Part", "combine", "numbered"]

MAX_PARAMS = 2000
"""Parameters of one combined statement at most (PostgreSQL allows 65,535; a large
write goes row by row in the pipeline, where its size no longer matters)."""

_INSERT = re.compile(
    r"^INSERT INTO (?P<table>\w+) \((?P<columns>[^)]*)\) VALUES (?P<row>\([^()]*\))"
    r"(?P<tail>.*)$", re.S)
_KEYED = re.compile(r"^(?:DELETE FROM|UPDATE) (?P<table>\w+) ", re.S)

Part = tuple[str, list[Any] | None, list[Sequence[Any]] | None]
"""A statement to run: its SQL, then either its parameters (run once, the SQL with ``$n``
marks) or its rows (run once per row, ``executemany``, the SQL with ``%s`` marks)."""


@functools.lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """``sql``'s ``%s`` marks as ``$1``, ``$2``, ... and ``%%`` as ``%`` (cached: a
    commit's combined statements take a few shapes)."""
    count = itertools.count(1)
    return re.sub(r"%%|%s", lambda m: "%" if m[0] == "%%" else f"${next(count)}", sql)


def _insert(sql: str, rows: Sequence[Sequence[Any]], key_of: Callable[[str], Sequence[str]]
            ) -> tuple[str, str, list[Any]] | None:
    """``(table, one statement for all rows, parameters)`` of an insert, or None."""
    if sum(len(row) for row in rows) > MAX_PARAMS:
        return None
    found = _INSERT.match(sql)
    if found is None:
        return None
    table = found["table"]
    if len(rows) > 1 and "ON CONFLICT" in found["tail"]:
        columns = [c.strip() for c in found["columns"].split(",")]
        at = [columns.index(k) for k in key_of(table) if k in columns]
        if len({tuple(row[i] for i in at) for row in rows}) != len(rows):
            return None
    text = (f"INSERT INTO {table} ({found['columns']}) VALUES "
            + ", ".join([found["row"]] * len(rows)) + found["tail"])
    return table, text, [value for row in rows for value in row]


def combine(statements: Sequence[tuple[str, list[Sequence[Any]]]],
            key_of: Callable[[str], Sequence[str]]) -> list[Part]:
    """``statements`` (PostgreSQL SQL with ``%s`` marks, and its rows) as the parts to
    run in their order; ``key_of(table)`` gives a table's conflict-key columns."""
    parts: list[Part] = []
    withs: list[str] = []
    params: list[Any] = []
    tables: set[str] = set()

    def close() -> None:
        if withs:
            body = "".join(f"w{i} AS ({w}), " for i, w in enumerate(withs[:-1]))
            text = f"WITH {body[:-2]} {withs[-1]}" if body else withs[-1]
            parts.append((numbered(text), list(params), None))
        withs.clear()
        params.clear()
        tables.clear()

    for sql, rows in statements:
        if not rows:
            continue
        found = _insert(sql, rows, key_of)
        if found is None and len(rows) == 1 and (keyed := _KEYED.match(sql)) is not None:
            found = keyed["table"], sql, list(rows[0])
        if found is None:
            close()
            parts.append((sql, None, list(rows)))
            continue
        table, text, values = found
        if table in tables or len(params) + len(values) > MAX_PARAMS:
            close()
        withs.append(text)
        params.extend(values)
        tables.add(table)
    close()
    return parts
