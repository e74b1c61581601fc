"""Reading the views: ``query`` of PROTOCOL.md, now or ``as_of`` a past seq or time.

The same SQL serves both: now it runs on the database's reader connection; for
``as_of`` it runs on a scratch copy of the view folded from events 1..N: restored from
the nearest snapshot at or before N (``projections.snapshots``), then folded up to N.
``trades`` and ``journal`` rows never change once written, so ``as_of`` N reads them
from their tables (rows of seq <= N) when the views are at N or past it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventstore import ddl as event_ddl
from eventstore.errors import ValidationError
from eventstore.record import StoredEvent
from eventstore.recorder import Recorder, open_sqlite
from eventstore.scratch import query_scratch
from projections import tables as t
from projections.fold import PROJECTION_VERSION, fold
from projections.rowcache import RowCache
from projections.runner import ViewRunner, clear_marks, drain
from projections.snapshots import FORMAT, decode, latest_keyed_sql
from projections.state import State
from schemas.values import parse_date, parse_time

__all__ = ["ViewQuery", "as_of_seq", "query_view", "state_at"]

_TIME_COLUMN = {
    "positions": "opened_at",
    "trades": "closed_at",
    "daily": "date",
    "signals": "created_at",
    "orders": "created_at",
    "journal": "time",
}
_ORDER = {
    "positions": "account, position_key",
    "trades": "closed_seq",
    "balances": "account",
    "daily": "date, account",
    # julianday: view times are RFC 3339 text whose fraction is left out when zero, so
    # "12:00:00.5Z" sorts before "12:00:00Z" as text.
    "signals": "julianday(created_at), account, signal_id",
    "orders": "julianday(created_at), account, order_id",
    "journal": "seq",
}
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class ViewQuery:
    """``query`` params (PROTOCOL.md). ``since``/``until`` bound the view's time column
    (inclusive; a date ``YYYY-MM-DD`` or RFC 3339 time); ``limit`` keeps the most recent
    N rows, returned oldest first; ``as_of`` is a seq (int) or a time (RFC 3339)."""

    view: str
    account: str | None = None
    symbol: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int | None = None
    as_of: int | str | None = None

    def check(self) -> None:
        """Raises ``ValidationError`` naming the parameter to fix."""
        if self.view not in t.VIEWS:
            raise ValidationError(
                f"unknown view {self.view!r}; use one of {', '.join(t.VIEWS)}")
        if self.symbol is not None and "symbol" not in t.VIEWS[self.view].fields:
            raise ValidationError(f"view {self.view!r} has no symbol; leave out 'symbol'")
        if self.limit is not None and not 1 <= self.limit <= MAX_LIMIT:
            raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                _bound(value, name)
        if isinstance(self.as_of, int) and self.as_of < 0:
            raise ValidationError("as_of must be a seq >= 0 or an RFC 3339 time")
        if isinstance(self.as_of, str):
            _time_param(self.as_of, "as_of")


def _time_param(value: str, name: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ValidationError(f"{name}: {exc}") from None


def _bound(value: str, name: str) -> str:
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            parse_date(value)
        except ValueError as exc:
            raise ValidationError(f"{name}: {exc}") from None
        return value
    _time_param(value, name)
    return value


_SEQ_COLUMN = {"trades": "closed_seq", "journal": "seq"}


def build_sql(q: ViewQuery, max_seq: int | None = None) -> tuple[str, list[Any]]:
    """The SELECT for a view query over the view tables; ``max_seq`` keeps only the rows
    of ``trades``/``journal`` written by events up to that seq."""
    table = t.VIEWS[q.view]
    where: list[str] = []
    params: list[Any] = []
    if max_seq is not None:
        where.append(f"{_SEQ_COLUMN[q.view]} <= ?")
        params.append(max_seq)
    if q.account is not None:
        where.append("account = ?")
        params.append(q.account)
    if q.symbol is not None:
        where.append("symbol = ?")
        params.append(q.symbol)
    column = _TIME_COLUMN.get(q.view)
    for value, op in ((q.since, ">="), (q.until, "<=")):
        if value is None or column is None:
            continue
        if column == "date":
            where.append(f"date {op} ?")
            params.append(value[:10])
        else:
            where.append(f"julianday({column}) {op} julianday(?)")
            params.append(value)
    sql = f"{table.select_sql()}{' WHERE ' + ' AND '.join(where) if where else ''}"
    order = _ORDER[q.view]
    if q.limit is not None:
        descending = ", ".join(f"{part.strip()} DESC" for part in order.split(","))
        sql = (f"SELECT * FROM ({sql} ORDER BY {descending} LIMIT ?) ORDER BY {order}")
        params.append(q.limit)
    else:
        sql += f" ORDER BY {order}"
    return sql, params


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
                    rows["positions"], rows["daily"], [], [], [(at,)]])
    state = runner.state
    assert state is not None
    if view == "signals":
        signals = [t.signal_from(r) for r in conn.execute(latest_keyed_sql("signals", False),
                                                           (at,))]
        state.signals = {(r.account, r.signal_id): r for r in signals}
    else:
        state.signals = RowCache(_keyed_loader(conn, "signals", at, t.signal_from), 1 << 62)
    if view == "orders":
        orders = [t.order_from(r) for r in conn.execute(latest_keyed_sql("orders", False),
                                                         (at,))]
        state.orders = {(r.account, r.order_id): r for r in orders}
    else:
        state.orders = RowCache(_keyed_loader(conn, "orders", at, t.order_from), 1 << 62)
    return state


def _keyed_loader(conn: sqlite3.Connection, name: str, at: int, convert: Any) -> Any:
    sql = latest_keyed_sql(name, True)

    def load(key: tuple[str, str]) -> Any:
        found = conn.execute(sql, (key[0], key[1], at)).fetchone()
        return None if found is None else convert(found)

    return load


def _fold_at(path: Path, seq: int, view: str | None) -> State:
    """The fold state after events 1..seq (see ``state_at``), on its own read-only
    connection, in one read transaction."""
    conn = open_sqlite(path, readonly=True, busy_timeout_s=5.0)
    try:
        conn.execute("BEGIN")
        state = (_from_snapshot(conn, seq, view) if view is not None else None) or State()
        cursor = conn.execute(
            f"SELECT {event_ddl.EVENT_COLUMNS} FROM events WHERE seq > ? AND seq <= ? "
            "ORDER BY seq", (state.folded_seq, seq))
        while rows := cursor.fetchmany(4096):
            state = fold([StoredEvent.from_row(row) for row in rows], state)
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
    if view != "trades":
        state.trades.clear()
    if view != "journal":
        state.journal.clear()


async def query_view(recorder: Recorder, q: ViewQuery) -> dict[str, Any]:
    """Answer a ``query``: ``{"view", "as_of_seq", "rows"}`` with rows as EVENTS.md fields.

    Raises:
        ValidationError: a parameter to fix.
    """
    q.check()
    table = t.VIEWS[q.view]
    sql, params = build_sql(q)
    if q.as_of is None:
        checkpoint, rows = await recorder.fetch_snapshot([
            ("SELECT coalesce(max(last_seq), 0) FROM projection_checkpoint", ()),
            (sql, params),
        ])
        seq = int(checkpoint[0][0])
    else:
        seq = await as_of_seq(recorder, q.as_of)
        if q.view in _SEQ_COLUMN and await _views_at(recorder) >= seq:
            sql, params = build_sql(q, max_seq=seq)
            rows = await recorder.fetch(sql, params)
        else:
            state = await state_at(recorder, seq,
                                   None if q.view in _SEQ_COLUMN else q.view)
            _mark_view(state, q.view)
            rows = await query_scratch(table.ddl(), drain(state), sql, params)
    return {"view": q.view, "as_of_seq": seq, "rows": [table.to_wire(row) for row in rows]}
