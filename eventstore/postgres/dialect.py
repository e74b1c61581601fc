"""SQL written for SQLite, run on PostgreSQL: what lets the views (their tables, row
writes and queries, written once in SQLite's spelling) live in a PostgreSQL log.

``SqliteSpelling`` wraps one psycopg connection with SQLite's ``execute``/``executemany``
surface and rewrites each statement once (cached):

- ``?`` parameters become ``%s`` (a literal ``%`` becomes ``%%``);
- ``INSERT OR REPLACE INTO t (...) ...`` becomes ``INSERT ... ON CONFLICT (primary key)
  DO UPDATE SET`` every other column (the key read from the catalog, ``pg_index``);
- ``CREATE TABLE``: ``INTEGER`` is ``bigint``, ``TEXT`` ``text``, ``BLOB`` ``bytea``,
  ``WITHOUT ROWID`` dropped; an expression in ``CREATE INDEX`` is put in parentheses;
- ``ALTER TABLE a RENAME TO b`` also renames ``a``'s primary-key index to ``b_pkey``
  (PostgreSQL names it after the table that made it);
- ``c < CAST(? AS TEXT)`` of a bound of bytes (a prefix's end, which may not be
  UTF-8) compares ``c``'s UTF-8 bytes, as SQLite's BINARY collation does;
- SQLite's ``julianday(x)`` is the same day number from ``x`` read as a
  ``timestamptz`` (RFC 3339 text with its offset; the microseconds kept);
- the test for a table, ``SELECT 1 FROM sqlite_master WHERE type = 'table' AND
  name = ...``, looks in ``pg_tables`` in the log's schema (``current_schema()``);
- ``WHERE 0`` is ``WHERE false``; SQLite's ``json_type``, ``json_extract`` and ``->``
  with a ``$."key"`` path become the same tests on the JSON text (``json_typeof``,
  ``->>``, ``->``), ``json_type``'s answers named as SQLite names them.

Anything else is passed as it is: the statements are the views' own, not arbitrary SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from eventstore.postgres.connect import Connection

__all__ = ["SqliteSpelling", "split_top", "translate"]

_REPLACE = re.compile(
    r"^INSERT OR REPLACE INTO (?P<table>\w+) \((?P<columns>[^)]*)\) (?P<rest>.*)$", re.S)
_CREATE_TABLE = re.compile(r"^CREATE TABLE", re.I)
_CREATE_INDEX = re.compile(
    r"^(?P<head>CREATE (?:UNIQUE )?INDEX .* ON \w+ )\((?P<terms>.*)\)$", re.S)
_RENAME = re.compile(r"^ALTER TABLE (?P<old>\w+) RENAME TO (?P<new>\w+)$")
_TYPES = {"INTEGER": "bigint", "TEXT": 'text COLLATE "C"', "BLOB": "bytea",
          "REAL": "double precision"}
"""SQLite's column types as PostgreSQL's; text compares and sorts by code point (the
"C" collation), as SQLite's does, whatever the database's default collation."""
_KEY = "substring(? from '^[$][.]\"(.*)\"$')"
"""The key of a JSON path ``$."key"`` (``projections.query_columns.attrs_path``)."""
_JSON_TYPE = (
    "(SELECT CASE json_typeof(j.v) WHEN 'string' THEN 'text' WHEN 'boolean' THEN j.v::text "
    "WHEN 'number' THEN CASE WHEN j.v::text ~ '^-?[0-9]+$' THEN 'integer' ELSE 'real' END "
    "ELSE json_typeof(j.v) END FROM (SELECT {c}::json -> " + _KEY + " AS v) AS j)")
"""SQLite's ``json_type(column, path)``: the value's type by SQLite's names (text,
integer, real, true, false, null, array, object; NULL when the key is missing)."""
_TYPE_WORD = re.compile(r"\b(INTEGER|TEXT|BLOB|REAL)\b")
_JULIANDAY = re.compile(r"\bjulianday\((\w+|\?)\)")
_JULIAN = r"(extract(epoch FROM CAST(\1 AS timestamptz)) / 86400 + 2440587.5)"
"""Days since noon UTC, 24 November 4714 BC, as SQLite's ``julianday`` counts them."""
_HAS_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
_PG_HAS_TABLE = ("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND "
                 "tablename = ")


def split_top(text: str) -> list[str]:
    """``text`` cut at the commas outside parentheses and quotes, each part stripped."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _marks(sql: str) -> str:
    """``?`` outside quotes as ``%s``, ``%`` as ``%%``."""
    out, quoted = [], False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "%":
            out.append("%%")
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


def translate(sql: str, key_of: Any) -> list[str]:
    """The PostgreSQL statements doing what SQLite's ``sql`` does (module docstring);
    ``key_of(table)`` gives a table's primary-key columns."""
    text = sql.strip()
    if _CREATE_TABLE.match(text):
        text = _TYPE_WORD.sub(lambda m: _TYPES[m.group(1)], text)
        return [text.replace(" WITHOUT ROWID", "")]
    found = _CREATE_INDEX.match(text)
    if found:
        terms = [t if "(" not in t else f"({t})" for t in split_top(found["terms"])]
        return [f"{found['head']}({', '.join(terms)})"]
    found = _RENAME.match(text)
    if found:
        return [text, f"ALTER INDEX IF EXISTS {found['old']}_pkey RENAME TO {found['new']}_pkey"]
    found = _REPLACE.match(text)
    if found:
        table = found["table"]
        columns = split_top(found["columns"])
        key = list(key_of(table))
        others = [c for c in columns if c not in key]
        action = ("DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
                  if others else "DO NOTHING")
        text = (f"INSERT INTO {table} ({', '.join(columns)}) {found['rest']} "
                f"ON CONFLICT ({', '.join(key)}) {action}")
    text = text.replace(_HAS_TABLE, _PG_HAS_TABLE)
    text = _JULIANDAY.sub(_JULIAN, text)
    text = re.sub(r"\bWHERE 0\b", "WHERE false", text)
    text = re.sub(r"\b(\w+) < CAST\(\? AS TEXT\)", r"convert_to(\1, 'UTF8') < ?", text)
    text = re.sub(r"json_type\((\w+), \?\)", lambda m: _JSON_TYPE.format(c=m[1]), text)
    text = re.sub(r"json_extract\((\w+), \?\)", r"(\1::json ->> " + _KEY + ")", text)
    text = re.sub(r"\b(\w+) -> \?", r"((\1::json -> " + _KEY + ")::text)", text)
    return [_marks(text)]


class SqliteSpelling:
    """A psycopg connection with SQLite's ``execute``/``executemany``: each statement
    rewritten by ``translate`` (once per text), the primary keys read from the catalog."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._keys: dict[str, tuple[str, ...]] = {}
        self._done: dict[str, list[str]] = {}

    def _key_of(self, table: str) -> tuple[str, ...]:
        if table not in self._keys:
            rows = self.conn.execute(
                "SELECT a.attname FROM pg_index AS i JOIN pg_attribute AS a ON "
                "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary "
                "AND i.indrelid = to_regclass(%s) "
                "ORDER BY array_position(i.indkey::int2[], a.attnum)", (table,)).fetchall()
            if not rows:
                raise ValueError(f"table {table!r} has no primary key to replace rows by")
            self._keys[table] = tuple(str(row[0]) for row in rows)
        return self._keys[table]

    def statements(self, sql: str) -> list[str]:
        """``translate(sql)``, cached."""
        done = self._done.get(sql)
        if done is None:
            done = self._done[sql] = translate(sql, self._key_of)
        return done

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run ``sql`` with ``params``; returns the cursor of its last statement."""
        *before, last = self.statements(sql)
        for statement in before:
            self.conn.execute(statement, ())
        return self.conn.execute(last, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` once per parameter row (psycopg pipelines them)."""
        statements = self.statements(sql)
        if len(statements) > 1:
            for row in rows:
                self.execute(sql, row)
            return
        rows = [tuple(row) for row in rows]
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(statements[0], rows)
