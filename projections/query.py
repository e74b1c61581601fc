"""Reading the views: ``query`` of PROTOCOL.md, now, ``as_of`` a past seq or recorded
time, or ``as_of_time`` an event time.

The params are checked by ``projections.query_params`` and turned into SQL by
``projections.query_sql``. The same SQL serves every case: now it runs on the
database's reader connection; for ``as_of`` it runs on a scratch copy of the view
folded from events 1..N: restored from the nearest snapshot at or before N
(``projections.snapshots``), then folded up to N; for ``as_of_time`` on a scratch copy
folded from the log (``projections.query_time``).
``trades`` and ``journal`` rows never change once written, so ``as_of`` N reads them
from their tables (rows of seq <= N) when the views are at N or past it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from eventstore import ddl as event_ddl
from eventstore.record import StoredEvent
from eventstore.recorder import Recorder, open_sqlite
from eventstore.writes import Statement, run_statements
from projections import tables as t
from projections.fold import PROJECTION_VERSION, fold
from projections.query_params import ViewQuery
from projections.query_sql import SEQ_COLUMN, build_sql, count_sql
from projections.query_time import state_at_time
from projections.rowcache import RowCache
from projections.runner import ViewRunner, clear_marks, drain
from projections.snapshots import FORMAT, decode, latest_keyed_sql
from projections.state import State
from schemas.values import parse_time

__all__ = ["ViewQuery", "as_of_seq", "build_sql", "count_sql", "query_view", "state_at"]

async def as_of_seq(recorder: Recorder, as_of: int | str) -> int:
    """The seq an ``as_of`` names: the int itself (capped at the log's end), or the last
    event recorded at or before the time.

    ``recorded_at`` is stored as fixed-width UTC text with microseconds
    (``2024-03-01T12:00:00.123456Z``), so the time is put in the same form and compared
    as text: exact to the microsecond (SQLite's ``julianday`` keeps only milliseconds).
    """
    if isinstance(as_of, int):
        return min(as_of, await recorder.last_seq())
    moment = parse_time(as_of).astimezone(UTC)
    text = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    rows = await recorder.fetch(
        "SELECT coalesce(max(seq), 0) FROM events WHERE recorded_at <= ?", (text,))
    return int(rows[0][0])


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


def _from_snapshot(conn: sqlite3.Connection, seq: int, view: str | None) -> State | None:
    """The state at the nearest snapshot at or before ``seq`` (None: there is none).

    Signals and orders are loaded by key as the fold asks for them, unless ``view`` is
    one of them (then all of them, to list them)."""
    if not _has_table(conn, "view_snapshots"):
        return None
    found = conn.execute(
        "SELECT seq, format, rows FROM view_snapshots WHERE seq <= ? ORDER BY seq DESC "
        "LIMIT 1", (seq,)).fetchone()
    if found is None or found[1] != FORMAT:
        return None
    at, _, blob = found
    rows = decode(blob)
    runner = ViewRunner()
    runner.restore([[(at, PROJECTION_VERSION)], rows["balances"], rows["prices"],
                    rows["positions"], rows["daily"], [], [], [(at,)], rows["accounts"],
                    rows["instruments"], rows["strategies"]])
    state = runner.state
    assert state is not None
    if view == "signals":
        signals = [t.signal_from(r) for r in conn.execute(latest_keyed_sql("signals", False),
                                                           (at,))]
        state.signals = {(r.account, r.signal_id): r for r in signals}
    else:
        state.signals = RowCache(_keyed_loader(conn, "signals", at, t.signal_from, state), 1 << 62)
    if view == "orders":
        orders = [t.order_from(r) for r in conn.execute(latest_keyed_sql("orders", False),
                                                         (at,))]
        state.orders = {(r.account, r.order_id): r for r in orders}
    else:
        state.orders = RowCache(_keyed_loader(conn, "orders", at, t.order_from, state), 1 << 62)
    return state


def _keyed_loader(conn: sqlite3.Connection, name: str, at: int, convert: Any,
                  state: State) -> Any:
    sql = latest_keyed_sql(name, True)

    def load(key: tuple[str, str]) -> Any:
        if key[0] in state.refolded:
            return None  # a void folded the account again: all its rows are in memory
        found = conn.execute(sql, (key[0], key[1], at)).fetchone()
        return None if found is None else convert(found)

    return load


class _LogHistory:
    """A void's account history (``projections.voids.History``) read on ``conn``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __call__(self, account: str, before: int,
                 types: Sequence[str] | None) -> Iterator[StoredEvent]:
        sql = (f"SELECT {event_ddl.EVENT_COLUMNS} FROM events WHERE account = ? AND seq < ?"
               + (f" AND type IN ({', '.join('?' * len(types))})" if types else "")
               + " ORDER BY seq")
        cursor = self.conn.execute(sql, [account, before, *(types or ())])
        while rows := cursor.fetchmany(4096):
            yield from (StoredEvent.from_row(row) for row in rows)


def _before_first_void(conn: sqlite3.Connection) -> int:
    """The last seq before the first void the views folded (no limit without one): a
    snapshot taken after a void may hold versions of signals and orders it removed."""
    if not _has_table(conn, t.VOIDS.name):
        return 1 << 62
    found = conn.execute(f"SELECT min(seq) FROM {t.VOIDS.name}").fetchone()
    return (1 << 62) if found is None or found[0] is None else int(found[0]) - 1


async def _voided_after(recorder: Recorder, seq: int) -> bool:
    """True when the views folded a void after ``seq``: their append-only rows (trades,
    journal, history) may then differ from what they were at ``seq``."""
    found = await recorder.fetch(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (t.VOIDS.name,))
    if not found:
        return False
    return bool(await recorder.fetch(
        f"SELECT 1 FROM {t.VOIDS.name} WHERE seq > ? LIMIT 1", (seq,)))


def _fold_at(path: Path, seq: int, view: str | None) -> State:
    """The fold state after events 1..seq (see ``state_at``), on its own read-only
    connection, in one read transaction."""
    conn = open_sqlite(path, readonly=True, busy_timeout_s=5.0)
    try:
        conn.execute("BEGIN")
        start = min(seq, _before_first_void(conn))
        state = (_from_snapshot(conn, start, view) if view is not None else None) or State()
        cursor = conn.execute(
            f"SELECT {event_ddl.EVENT_COLUMNS} FROM events WHERE seq > ? AND seq <= ? "
            "ORDER BY seq", (state.folded_seq, seq))
        history = _LogHistory(conn)
        while rows := cursor.fetchmany(4096):
            state = fold([StoredEvent.from_row(row) for row in rows], state, history)
        conn.execute("COMMIT")
        return state
    finally:
        conn.close()


async def state_at(recorder: Recorder, seq: int, view: str | None = None) -> State:
    """The fold state after events 1..seq, folded from the log into a scratch state, on
    a worker thread.

    With a ``view`` it starts from the nearest snapshot: the keyed views are then exact,
    while ``trades`` and ``journal`` hold only the rows of the events folded after it.
    """
    return await asyncio.to_thread(_fold_at, recorder.path, seq, view)


async def _views_at(recorder: Recorder) -> int:
    """The views' checkpoint (0 when the file has no views yet)."""
    found = await recorder.fetch(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'projection_checkpoint'")
    if not found:
        return 0
    rows = await recorder.fetch("SELECT coalesce(max(last_seq), 0) FROM projection_checkpoint")
    return int(rows[0][0])


def _mark_view(state: State, view: str) -> None:
    """Mark every row of one view for writing into the scratch tables (and no other)."""
    clear_marks(state)
    if view == "positions":
        state.dirty_positions.update(
            (a, k) for a, keys in state.positions.items() for k in keys)
    elif view == "balances":
        state.dirty_accounts.update(state.accounts)
    elif view == "daily":
        state.dirty_daily.update(state.daily)
    elif view == "signals":
        state.dirty_signals.update(state.signals)
    elif view == "orders":
        state.dirty_orders.update(state.orders)
    elif view == "accounts":
        state.dirty_accounts.update(state.accounts)
    elif view == "instruments":
        state.dirty_instruments.update(state.instruments)
    elif view == "strategies":
        state.dirty_strategies.update(state.strategies)
    state.refolded.clear()
    state.voids.clear()
    if view != "trades":
        state.trades.clear()
    if view != "journal":
        state.journal.clear()
    if view != "history":
        state.history.clear()


async def query_view(recorder: Recorder, q: ViewQuery) -> dict[str, Any]:
    """Answer a ``query``: ``{"view", "as_of_seq", "total", "rows"}``, rows as EVENTS.md
    fields, ``total`` the rows matching before ``offset``/``limit``.

    Only the page is fetched; ``total`` is counted by SQLite. With ``as_of_time`` the
    view is folded from the log (``projections.query_time``) and ``as_of_seq`` is the
    last seq of the log that was read.

    Raises:
        ValidationError: a parameter to fix.
    """
    q.check()
    table = t.VIEWS[q.view]
    sql, params = build_sql(q)
    counting = count_sql(q)
    if q.as_of_time is not None:
        seq, state = await state_at_time(recorder, parse_time(q.as_of_time), q.account,
                                         q.view)
        _mark_view(state, q.view)
        total, rows = await _scratch(_ALL_DDL, drain(state), [counting, (sql, params)])
    elif q.as_of is None:
        checkpoint, total, rows = await recorder.fetch_snapshot([
            ("SELECT coalesce(max(last_seq), 0) FROM projection_checkpoint", ()),
            counting,
            (sql, params),
        ])
        seq = int(checkpoint[0][0])
    else:
        seq = await as_of_seq(recorder, q.as_of)
        if (q.view in SEQ_COLUMN and await _views_at(recorder) >= seq
                and not await _voided_after(recorder, seq)):
            total, rows = await recorder.fetch_snapshot(
                [count_sql(q, max_seq=seq), build_sql(q, max_seq=seq)])
        else:
            state = await state_at(recorder, seq,
                                   None if q.view in SEQ_COLUMN else q.view)
            _mark_view(state, q.view)
            total, rows = await _scratch(_ALL_DDL, drain(state), [counting, (sql, params)])
    return {"view": q.view, "as_of_seq": seq, "total": int(total[0][0]),
            "rows": [table.to_wire(row) for row in rows]}


_ALL_DDL = [statement for table in t.TABLES for statement in table.ddl()]
"""Every view table: a drain may write rows to tables beside the one queried (a void's
refold clears an account's rows everywhere)."""


def _scratch_run(ddl: list[str], statements: list[Statement],
                 queries: list[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
    conn = sqlite3.connect(":memory:")
    try:
        for statement in ddl:
            conn.execute(statement)
        run_statements(conn, statements)
        return [list(conn.execute(sql, params)) for sql, params in queries]
    finally:
        conn.close()


async def _scratch(ddl: list[str], statements: list[Statement],
                   queries: list[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
    """A throw-away in-memory database with the view tables (``ddl``) and the rows
    ``statements`` write: the rows of each of ``queries``, on a worker thread."""
    return await asyncio.to_thread(_scratch_run, ddl, statements, queries)
