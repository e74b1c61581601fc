"""Periodic snapshots of the fold state, so that ``as_of`` folds from the nearest one.

Every ``SNAPSHOT_EVERY`` events the runner writes, in the append's transaction:

- one row of ``view_snapshots``: every row of the small keyed views (balances, prices,
  open positions, daily) as zlib-compressed JSON in the views' own row form
  (``projections.tables``);
- into ``view_snapshot_signals``/``view_snapshot_orders`` (the view's columns plus
  ``seq``), the signals and orders that changed since the previous snapshot. The row of
  a signal at snapshot S is its row with the highest ``seq`` <= S: these views grow
  without bound and are looked up by key, so each version is kept once, not copied
  into every snapshot.

``trades`` and ``journal`` are append-only and not in snapshots: ``as_of`` reads them
from their tables by seq. Snapshots are a cache: dropping the tables only makes
``as_of`` fold from seq 1 again.

Where the live view tables are current (after a flush's row writes, in its
transaction), the database makes the rows from them: the versions copied by key
(``version_by_key_sql``, both stores) and, on SQLite, the payload too (``snapshot_sql``,
with the ``zlib`` function ``use_table_snapshots`` registers). A rebuild, whose keyed
tables are written only at its end, and the PostgreSQL payload are made from the state
(``snapshot_payload``). Both ways give the same rows in the same column order.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from projections import rows
from projections import tables as t
from projections.state import State

if TYPE_CHECKING:
    import sqlite3

    from eventstore.follow import Statement

__all__ = [
    "FORMAT",
    "GAP_SQL",
    "SNAPSHOT_EVERY",
    "Pending",
    "add_gap",
    "decode",
    "keyed_rows_sql",
    "latest_keyed_sql",
    "named_keys",
    "payload_statement",
    "snapshot_ddl",
    "snapshot_payload",
    "snapshot_sql",
    "use_table_snapshots",
    "version_by_key_sql",
    "version_statements",
]

SNAPSHOT_EVERY = 10_000
"""Events between two snapshots: an ``as_of`` folds at most about this many."""

FORMAT = 3
"""3: the payload also holds the accounts, instruments and strategies rows."""

KEYED = {"signals": (t.SIGNALS, "signal_id"), "orders": (t.ORDERS, "order_id")}
"""The views kept as versions by key: name -> (table, id column)."""


def snapshot_ddl(suffix: str = "") -> list[str]:
    """CREATE statements for ``view_snapshots`` and the keyed version tables (+ ``suffix``)."""
    statements = [
        f"CREATE TABLE IF NOT EXISTS view_snapshots{suffix} (seq INTEGER PRIMARY KEY, "
        "base INTEGER NOT NULL, format INTEGER NOT NULL, rows BLOB NOT NULL)"]
    for name, (table, column) in KEYED.items():
        kinds = {"dec": "TEXT", "text": "TEXT", "int": "INTEGER", "bool": "INTEGER",
                 "json": "TEXT"}
        columns = ", ".join(f"{c} {kinds[k]}" for c, k in table.columns)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS view_snapshot_{name}{suffix} (seq INTEGER NOT NULL, "
            f"{columns}, PRIMARY KEY (account, {column}, seq)) WITHOUT ROWID")
    return statements


def snapshot_tables() -> list[str]:
    """The names of the snapshot tables, without suffix."""
    return ["view_snapshots", *(f"view_snapshot_{name}" for name in KEYED)]


def keyed_rows_sql(name: str, suffix: str = "") -> str:
    """INSERT of one version row: params ``(seq, *row)``."""
    table, _ = KEYED[name]
    marks = ", ".join("?" * (len(table.columns) + 1))
    return (f"INSERT OR REPLACE INTO view_snapshot_{name}{suffix} "
            f"(seq, {', '.join(table.column_names)}) VALUES ({marks})")


def copy_all_sql(name: str) -> str:
    """Copy every row of the live view table as versions at seq ``?``."""
    table, _ = KEYED[name]
    columns = ", ".join(table.column_names)
    return (f"INSERT OR REPLACE INTO view_snapshot_{name} (seq, {columns}) "
            f"SELECT ?, {columns} FROM {table.name}")


def latest_keyed_sql(name: str, one: bool) -> str:
    """The rows of a keyed view at a snapshot: params ``(account, id, seq)`` for ``one``
    key, else ``(seq,)`` for every key."""
    table, column = KEYED[name]
    columns = ", ".join(table.column_names)
    if one:
        return (f"SELECT {columns} FROM view_snapshot_{name} WHERE account = ? AND "
                f"{column} = ? AND seq <= ? ORDER BY seq DESC LIMIT 1")
    return (f"SELECT {columns} FROM (SELECT *, row_number() OVER (PARTITION BY account, "
            f"{column} ORDER BY seq DESC) AS n FROM view_snapshot_{name} WHERE seq <= ?) "
            "AS versions WHERE n = 1")


class Pending:
    """The signals and orders whose rows changed since the last snapshot."""

    def __init__(self) -> None:
        self.signals: set[tuple[str, str]] = set()
        self.orders: set[tuple[str, str]] = set()

    def add(self, state: State) -> None:
        """Take the state's dirty marks (call before they are drained)."""
        self.signals |= state.dirty_signals
        self.orders |= state.dirty_orders


def snapshot_payload(state: State) -> bytes:
    """Every row of the small keyed views, compressed. Call in the money context."""
    payload = {
        "balances": [rows.balance_row(a) for a in state.accounts.values()],
        "prices": [rows.price_row(a, s) for a in state.accounts.values()
                   for s in {*a.marks, *a.last_fills}],
        "positions": [rows.position_row(p) for keys in state.positions.values()
                      for p in keys.values()],
        "daily": [rows.daily_row(d) for d in state.daily.values()],
        "accounts": [rows.account_row(a) for a in state.accounts.values()],
        "instruments": [rows.instrument_row(i) for i in state.instruments.values()],
        "strategies": [rows.strategy_row(s) for s in state.strategies.values()],
    }
    return _compress(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))


PAYLOAD_TABLES = {"balances": t.BALANCES, "prices": t.PRICES, "positions": t.POSITIONS,
                  "daily": t.DAILY, "accounts": t.ACCOUNTS, "instruments": t.INSTRUMENTS,
                  "strategies": t.STRATEGIES}
"""The views ``snapshot_payload`` holds, by payload key."""

COMPRESS_FUNCTION = "tradelog_zlib"
"""The SQL function ``use_table_snapshots`` gives a connection: text -> zlib bytes."""


def _compress(text: str) -> bytes:
    return zlib.compress(text.encode(), 1)


def use_table_snapshots(conn: sqlite3.Connection) -> None:
    """Give ``conn`` the SQL function ``snapshot_sql`` needs (``tradelog_zlib``)."""
    conn.create_function(COMPRESS_FUNCTION, 1, _compress, deterministic=True)


@cache
def snapshot_sql() -> str:
    """``INSERT`` of the snapshot row made by SQLite from the view tables (params
    ``(seq, FORMAT)``): the same payload as ``snapshot_payload``, each row in its
    table's column order, built and compressed in C rather than row by row in Python.
    Valid only when the tables are current (right after the drain of a flush, in its
    transaction) and on a connection given ``use_table_snapshots``."""
    parts = ", ".join(
        f"'{key}', (SELECT json_group_array(json_array({', '.join(table.column_names)})) "
        f"FROM {table.name})" for key, table in PAYLOAD_TABLES.items())
    return ("INSERT OR REPLACE INTO view_snapshots (seq, base, format, rows) "
            f"SELECT ?, 1, ?, {COMPRESS_FUNCTION}(json_object({parts}))")


def version_by_key_sql(name: str) -> str:
    """Copy one row of the live view table as its version at a seq: params
    ``(seq, account, id)``; nothing when the table has no such row."""
    table, column = KEYED[name]
    columns = ", ".join(table.column_names)
    return (f"INSERT OR REPLACE INTO view_snapshot_{name} (seq, {columns}) "
            f"SELECT ?, {columns} FROM {table.name} WHERE account = ? AND {column} = ?")


def payload_statement(state: State, seq: int, suffix: str, from_tables: bool) -> Statement:
    """The ``view_snapshots`` row at ``seq``: made by SQLite from the live tables
    (``from_tables``: ``snapshot_sql``), else ``snapshot_payload`` of ``state`` into the
    tables of ``suffix``. Call in the money context."""
    if from_tables:
        return (snapshot_sql(), [(seq, FORMAT)])
    return (f"INSERT OR REPLACE INTO view_snapshots{suffix} (seq, base, format, rows) "
            "VALUES (?, 1, ?, ?)", [(seq, FORMAT, snapshot_payload(state))])


def version_statements(pending: Pending, state: State, seq: int, suffix: str,
                       from_tables: bool) -> list[Statement]:
    """The version rows at ``seq`` of the signals and orders in ``pending`` (changed
    since the last snapshot): copied by key from the live tables (``from_tables``: they
    are current; a key without a row copies nothing), else made from ``state`` into the
    tables of ``suffix``."""
    if from_tables:
        return [(version_by_key_sql(name), [(seq, *key) for key in keys])
                for name, keys in (("signals", pending.signals), ("orders", pending.orders))]
    return [(keyed_rows_sql("signals", suffix),
             [(seq, *rows.signal_row(state.signals[k])) for k in pending.signals]),
            (keyed_rows_sql("orders", suffix),
             [(seq, *rows.order_row(state.orders[k])) for k in pending.orders])]


def decode(blob: bytes) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of ``snapshot_payload``, per view, as tuples."""
    found: dict[str, list[list[Any]]] = json.loads(zlib.decompress(blob))
    return {kind: [tuple(row) for row in items] for kind, items in found.items()}


GAP_SQL = ("SELECT account, type, data FROM events WHERE seq > ? AND type IN "
           "('signal', 'order', 'status', 'fill')")
"""The events after a seq (the parameter) that can name a signal or an order."""


def named_keys(chunks: Iterable[Sequence[tuple[str, str, str]]]
               ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """The (account, signal_id) and (account, order_id) keys named by the rows of
    ``GAP_SQL``: the signals and orders those events may have changed."""
    signals: set[tuple[str, str]] = set()
    orders: set[tuple[str, str]] = set()
    for chunk in chunks:
        for account, kind, text in chunk:
            data = json.loads(text)
            if kind == "signal":
                signals.add((account, data["signal_id"]))
            elif kind == "order":
                orders.add((account, data["order_id"]))
            elif kind == "status":
                target = signals if data["entity"] == "signal" else orders
                target.add((account, data["entity_id"]))
            elif "order_id" in data:
                orders.add((account, data["order_id"]))
    return signals, orders


def add_gap(pending: Pending, state: State,
            chunks: Iterable[Sequence[tuple[str, str, str]]], by_key: bool) -> None:
    """Add to ``pending`` the signals and orders named by the rows of ``GAP_SQL`` (events
    after the last snapshot a runner that just started did not fold); unless their
    versions are copied ``by_key`` from the live tables (which copy only rows that
    exist), only those that exist in ``state`` (each one looked up)."""
    signals, orders = named_keys(chunks)
    if by_key:
        pending.signals |= signals
        pending.orders |= orders
        return
    pending.signals = {k for k in pending.signals | signals if k in state.signals}
    pending.orders = {k for k in pending.orders | orders if k in state.orders}
