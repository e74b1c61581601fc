"""``eventstore.postgres.combine``: a commit's view writes as few statements as is safe,
checked on the statements it makes, then run on PostgreSQL against the same writes one
by one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import RawCursor

from eventstore.postgres.combine import MAX_PARAMS, combine, numbered
from tests.eventstore.test_store_contract import PgLog

UPSERT_A = ("INSERT INTO a (k, v) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET "
            "v = EXCLUDED.v")
UPSERT_B = ("INSERT INTO b (k, n, v) VALUES (%s, %s, %s) ON CONFLICT (k, n) DO UPDATE "
            "SET v = EXCLUDED.v")
DELETE_A = "DELETE FROM a WHERE k = %s"
UPDATE_B = "UPDATE b SET v = v || '%%' WHERE k = %s"
KEYS = {"a": ["k"], "b": ["k", "n"]}


def _key(table: str) -> list[str]:
    return KEYS[table]


def test_writes_to_different_tables_go_as_one_statement() -> None:
    """Upserts of a and b, a delete of a second key of a: a and b in one statement (a's
    rows one VALUES list), the delete of a (already written) in the next."""
    parts = combine([(UPSERT_A, [("x", "1"), ("y", "2")]), (UPSERT_B, [("x", 1, "3")]),
                     (DELETE_A, [("z",)])], _key)
    assert [(sql.startswith("WITH w0 AS (INSERT INTO a"), params, rows)
            for sql, params, rows in parts] == [
        (True, ["x", "1", "y", "2", "x", 1, "3"], None), (False, ["z"], None)]
    assert ("VALUES ($1, $2), ($3, $4) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v) "
            "INSERT INTO b") in parts[0][0]
    assert "$5, $6, $7" in parts[0][0]
    assert "DELETE FROM a WHERE k = $1" == parts[1][0]


def test_what_cannot_be_combined_safely_runs_row_by_row() -> None:
    """Rows sharing a conflict key, a delete of several rows and a statement over the
    parameter cap run as they are (``executemany``), in their place."""
    big: list[Sequence[Any]] = [(str(n), "v") for n in range(MAX_PARAMS // 2 + 1)]
    parts = combine([(UPSERT_A, [("x", "1"), ("x", "2")]), (UPSERT_B, [("x", 1, "3")]),
                     (DELETE_A, [("y",), ("z",)]), (UPSERT_A, big)], _key)
    assert [(sql, rows) for sql, _, rows in parts] == [
        (UPSERT_A, [("x", "1"), ("x", "2")]),
        (numbered(UPSERT_B), None),
        (DELETE_A, [("y",), ("z",)]),
        (UPSERT_A, big)]


def test_numbered_marks_and_percent_signs() -> None:
    assert "UPDATE b SET v = v || '%' WHERE k = $1" == numbered(UPDATE_B)


def _rows(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return [*conn.execute("SELECT 'a', k, 0, v FROM a"),
            *conn.execute("SELECT 'b', k, n, v FROM b")]


def test_combined_statements_leave_the_rows_of_the_writes_one_by_one(pg: PgLog) -> None:
    """The same writes run combined and one at a time, each on tables of its own, leave
    the same rows."""
    writes: list[tuple[str, list[Sequence[Any]]]] = [
        (UPSERT_A, [("x", "1"), ("y", "2")]), (UPSERT_B, [("x", 1, "3"), ("x", 2, "4")]),
        (DELETE_A, [("y",)]), (UPSERT_A, [("y", "5"), ("x", "6"), ("x", "7")]),
        (UPDATE_B, [("x",)]), (UPSERT_B, [("x", 1, "8")])]
    results = []
    with psycopg.connect(pg.url, autocommit=True) as conn:
        for combined in (False, True):
            conn.execute("DROP TABLE IF EXISTS a, b")
            conn.execute("CREATE TABLE a (k text PRIMARY KEY, v text)")
            conn.execute("CREATE TABLE b (k text, n bigint, v text, PRIMARY KEY (k, n))")
            if combined:
                for sql, params, rows in combine(writes, _key):
                    if rows is None:
                        RawCursor(conn).execute(sql, params)
                    else:
                        conn.cursor().executemany(sql, rows)
            else:
                for sql, rows in writes:
                    conn.cursor().executemany(sql, rows)
            results.append(sorted(_rows(conn)))
    assert results[0] == results[1]
    assert ("b", "x", 1, "8") in results[1]
