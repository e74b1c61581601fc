"""Marks write two columns of a position: drained step by step into tables, the rows
equal a whole fold written at once, and a marked row is updated, not replaced."""

from __future__ import annotations

import re
import sqlite3

from eventstore.record import StoredEvent
from projections import tables as t
from projections.drain import drain, mark_all_dirty
from projections.fold import apply
from projections.state import State
from tests.fold_support import ev, fold_rows, stored

_POSITIONS = re.compile(r"^(?:INSERT OR REPLACE INTO|DELETE FROM|UPDATE) positions ")


def _fill(side: str, symbol: str, quantity: str, price: str, key: str | None = None
          ) -> dict[str, object]:
    data: dict[str, object] = {"side": side, "symbol": symbol, "quantity": quantity,
                               "price": price}
    if key is not None:
        data["position_id"] = key
    return ev("fill", data)


def _mark(**prices: str) -> dict[str, object]:
    return ev("mark", {"prices": prices})


def _tables() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    for table in t.TABLES:
        for statement in table.ddl():
            conn.execute(statement)
    return conn


def _write(conn: sqlite3.Connection, state: State) -> list[str]:
    """Drain ``state`` into ``conn``; the statements' SQL, in order."""
    done = []
    for sql, rows in drain(state):
        done.append(sql)
        if rows is None:
            conn.execute(sql)
        else:
            conn.executemany(sql, rows)
    return done


def test_positions_moved_by_marks_between_drains_equal_a_whole_fold() -> None:
    """Fills, marks, a close and a reopen of a position key, drained after every event:
    the tables then hold what a fold of the whole history writes at once; a drain after
    a mark alone updates rows (no REPLACE of positions)."""
    history = stored([
        _fill("buy", "EURUSD", "2", "1.10"), _fill("sell", "GBPUSD", "1", "1.30"),
        _fill("buy", "EURUSD", "1", "1.20", key="eu-2"), _mark(EURUSD="1.15"),
        _mark(EURUSD="1.17", GBPUSD="1.25"), _fill("sell", "EURUSD", "2", "1.18"),
        _mark(EURUSD="1.19"), _fill("buy", "EURUSD", "3", "1.19"), _mark(GBPUSD="1.2")])
    conn = _tables()
    state = State()
    mark_only = []
    for event in history:
        state = apply(state, event, True)
        statements = _write(conn, state)
        if event.event_type == "mark":
            mark_only.append([s for s in statements if _POSITIONS.search(s)])
    assert [["UPDATE"]] * 4 == [[x.split()[0] for x in s] for s in mark_only]
    whole = fold_rows(history)
    conn2 = _tables()
    _write(conn2, _state_of(history))
    sql = "SELECT * FROM positions ORDER BY account, position_key"
    assert conn2.execute(sql).fetchall() == conn.execute(sql).fetchall()
    assert {"EURUSD": "1.19", "GBPUSD": "1.2"} == {
        r["symbol"]: r["mark_price"] for r in whole["positions"]}


def _state_of(history: list[StoredEvent]) -> State:
    state = State()
    for event in history:
        state = apply(state, event, True)
    mark_all_dirty(state)
    return state
