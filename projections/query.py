"""Reading the views: ``query`` of PROTOCOL.md, now, ``as_of`` a past seq or recorded
time, or ``as_of_time`` an event time.

The params are checked by ``projections.query_params`` and turned into SQL by
``projections.query_sql``. The same SQL serves every case: now it runs on the
database's reader connection; for ``as_of`` it runs on a scratch copy of the view (an
in-memory SQLite database, whichever store holds the log) folded from events 1..N:
restored from the nearest snapshot at or before N (``projections.snapshots``), then
folded up to N; for ``as_of_time`` on a scratch copy folded from the log
(``projections.query_time``). The folds read the log through ``ViewReader.replay``
(``eventstore.logtx``): the same code on SQLite and PostgreSQL.
``trades`` and ``journal`` rows never change once written, so ``as_of`` N reads them
from their tables (rows of seq <= N) when the views are at N or past it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC
from operator import itemgetter
from typing import Any

from eventstore import ddl as event_ddl
from eventstore.logtx import LogTx
from eventstore.record import StoredEvent
from eventstore.scratch import query_scratch
from eventstore.store import ViewReader
from projections import tables as t
from projections.drain import clear_marks, drain
from projections.fold import fold
from projections.query_params import ViewQuery
from projections.query_sql import SEQ_COLUMN, build_sql, count_sql
from projections.query_time import keep_appended_rows_of, state_at_time
from projections.replay import LogHistory, before_first_void, from_snapshot
from projections.state import State
from schemas.values import parse_time

__all__ = ["ViewQuery", "as_of_seq", "build_sql", "count_sql", "query_view", "state_at"]

async def as_of_seq(recorder: ViewReader, as_of: int | str) -> int:
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


async def _voided_after(recorder: ViewReader, seq: int) -> bool:
    """True when the views folded a void after ``seq``: their append-only rows (trades,
    journal, history) may then differ from what they were at ``seq``."""
    found = await recorder.fetch(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (t.VOIDS.name,))
    if not found:
        return False
    return bool(await recorder.fetch(
        f"SELECT 1 FROM {t.VOIDS.name} WHERE seq > ? LIMIT 1", (seq,)))


def _fold_at(conn: LogTx, seq: int, view: str | None) -> State:
    """The fold state after events 1..seq (see ``state_at``), read in ``conn``."""
    start = min(seq, before_first_void(conn))
    state = (from_snapshot(conn, start, view) if view is not None else None) or State()
    history = LogHistory(conn)
    for rows in conn.chunks(f"SELECT {event_ddl.EVENT_COLUMNS} FROM events "
                            "WHERE seq > ? AND seq <= ? ORDER BY seq",
                            (state.folded_seq, seq)):
        state = fold([StoredEvent.from_row(row) for row in rows], state, history)
    return state


async def state_at(recorder: ViewReader, seq: int, view: str | None = None) -> State:
    """The fold state after events 1..seq, folded from the log into a scratch state, on
    a worker thread, in one read transaction on a connection of its own
    (``ViewReader.replay``).

    With a ``view`` it starts from the nearest snapshot: the keyed views are then exact,
    while ``trades`` and ``journal`` hold only the rows of the events folded after it.
    """
    return await recorder.replay(lambda conn: _fold_at(conn, seq, view))


async def _views_at(recorder: ViewReader) -> int:
    """The views' checkpoint (0 when the file has no views yet)."""
    found = await recorder.fetch(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'projection_checkpoint'")
    if not found:
        return 0
    rows = await recorder.fetch("SELECT coalesce(max(last_seq), 0) FROM projection_checkpoint")
    return int(rows[0][0])


def _mark_view(state: State, view: str, account: str | None = None) -> None:
    """Mark every row of one view for writing into the scratch tables (and no other);
    with ``account`` (the query's filter: ``account = ?``) only that account's rows, the
    only ones the query can return."""
    clear_marks(state)

    def mine(keys: Iterable[Any], of: Callable[[Any], str]) -> list[Any]:
        return [key for key in keys if account is None or of(key) == account]

    if view == "positions":
        state.dirty_positions.update(
            (a, k) for a, keys in state.positions.items() if account in (None, a)
            for k in keys)
    elif view in ("balances", "accounts"):
        state.dirty_accounts.update(mine(state.accounts, str))
    elif view == "daily":
        state.dirty_daily.update(mine(state.daily, itemgetter(0)))
    elif view == "signals":
        state.dirty_signals.update(mine(state.signals, itemgetter(0)))
    elif view == "orders":
        state.dirty_orders.update(mine(state.orders, itemgetter(0)))
    elif view == "instruments":
        state.dirty_instruments.update(mine(state.instruments, itemgetter(0)))
    elif view == "strategies":
        state.dirty_strategies.update(mine(state.strategies, itemgetter(0)))
    state.refolded.clear()
    state.voids.clear()
    keep_appended_rows_of(state, view)


async def query_view(recorder: ViewReader, q: ViewQuery) -> dict[str, Any]:
    """Answer a ``query``: ``{"view", "as_of_seq", "total", "rows"}``, rows as EVENTS.md
    fields, ``total`` the rows matching before ``offset``/``limit``.

    Only the page is fetched; ``total`` is counted by the database. With ``as_of_time`` the
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
        _mark_view(state, q.view, q.account)
        total, rows = await query_scratch(_ALL_DDL, drain(state), [counting, (sql, params)])
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
            _mark_view(state, q.view, q.account)
            total, rows = await query_scratch(_ALL_DDL, drain(state), [counting, (sql, params)])
    return {"view": q.view, "as_of_seq": seq, "total": int(total[0][0]),
            "rows": [table.to_wire(row) for row in rows]}


_ALL_DDL = [statement for table in t.TABLES for statement in table.ddl()]
"""Every view table: a drain may write rows to tables beside the one queried (a void's
refold clears an account's rows everywhere)."""


