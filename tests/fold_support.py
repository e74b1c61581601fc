"""Helpers for the projection tests: wire events, stored events, row dumps of the views.

Events are validated through ``schemas.parse_event`` (so defaults such as ``fee`` and
``multiplier`` are filled in as the recorder would store them) and either numbered by
hand into ``StoredEvent`` for pure folds, or appended to a real ``Recorder``.
"""

from __future__ import annotations

import itertools
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest

from eventstore.record import NewEvent, StoredEvent
from eventstore.recorder import Recorder
from projections import tables as t
from projections.drain import drain, mark_all_dirty
from projections.fold import fold
from projections.query import ViewQuery, build_sql, query_view
from projections.query_params import MAX_LIMIT
from projections.state import State
from schemas import parse_event
from schemas.values import DECIMAL_CONTEXT

__all__ = [
    "VIEW_NAMES",
    "dump_tables",
    "ev",
    "fold_rows",
    "new_event",
    "rows_of",
    "stored",
    "sum_dec",
    "view_rows",
]

VIEW_NAMES = tuple(t.VIEWS)
_ids = itertools.count(1)


def ev(event_type: str, data: dict[str, Any], *, account: str = "acct-1",
       time: str = "2024-03-01T12:00:00Z", event_id: str | None = None,
       source: str = "test/fold") -> dict[str, Any]:
    """A wire event (PROTOCOL.md) of ``event_type`` with ``data``."""
    return {"id": event_id or f"f-{next(_ids)}", "source": source, "type": event_type,
            "time": time, "account": account, "data": data}


def new_event(wire: dict[str, Any]) -> NewEvent:
    """A validated wire event as the recorder takes it."""
    return NewEvent.from_model(parse_event(wire))


def stored(wires: Iterable[dict[str, Any]], first_seq: int = 1) -> list[StoredEvent]:
    """Wire events validated and numbered from ``first_seq``, as the log would return them."""
    out = []
    for seq, wire in enumerate(wires, first_seq):
        new = new_event(wire)
        out.append(StoredEvent(
            seq, new.event_id, new.source, new.event_type, new.time, new.account,
            new.specversion, new.datacontenttype, new.data, "2024-03-01T00:00:00Z",
            new.schema_version, "hash"))
    return out


def rows_of(state: State) -> dict[str, list[dict[str, Any]]]:
    """Every view's rows (EVENTS.md fields, as ``query`` answers them) of a fold state.

    The state's rows are written into an in-memory database with the views' tables and
    read with the same SQL ``query`` uses. ``state`` is marked dirty and drained.
    """
    mark_all_dirty(state)
    conn = sqlite3.connect(":memory:")
    try:
        for table in t.TABLES:
            for statement in table.ddl():
                conn.execute(statement)
        for sql, rows in drain(state):
            if rows is None:
                conn.execute(sql)
            else:
                conn.executemany(sql, rows)
        answer = {}
        for name, table in t.VIEWS.items():
            sql, params = build_sql(ViewQuery(name, limit=MAX_LIMIT))
            answer[name] = [table.to_wire(row) for row in conn.execute(sql, params)]
        return answer
    finally:
        conn.close()


def fold_rows(events: Sequence[StoredEvent]) -> dict[str, list[dict[str, Any]]]:
    """Every view's rows after a pure fold of ``events`` from an empty state."""
    return rows_of(fold(events))


async def view_rows(recorder: Recorder, as_of: int | str | None = None,
                    ) -> dict[str, list[dict[str, Any]]]:
    """Every view's rows as ``query`` answers them from a recorder (now, or ``as_of``)."""
    answer = {}
    for name in VIEW_NAMES:
        result = await query_view(recorder, ViewQuery(name, as_of=as_of, limit=MAX_LIMIT))
        answer[name] = result["rows"]
    return answer


def dump_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of every view table (and ``prices``), sorted, read with plain sqlite3."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {table.name: sorted(conn.execute(f"SELECT * FROM {table.name}"), key=repr)
                for table in t.TABLES}
    finally:
        conn.close()


def sum_dec(values: Iterable[str | Decimal]) -> Decimal:
    """An exact sum of decimal strings (in the money context: no rounding)."""
    with localcontext(DECIMAL_CONTEXT):
        total = Decimal(0)
        for value in values:
            total += Decimal(value)
        return total


def boom_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the fold raise on any event of symbol BOOM (a stand-in for a fold bug)."""
    fold_module = sys.modules["projections.fold"]
    original = fold_module._STEPS

    def boom(state: State, event: StoredEvent) -> State:
        if event.data.get("symbol") == "BOOM":
            raise RuntimeError("a fold bug")
        return state

    monkeypatch.setattr(fold_module, "_STEPS", (boom, *original))
