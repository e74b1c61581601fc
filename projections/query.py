"""Reading the views: ``query`` of PROTOCOL.md, now or ``as_of`` a past seq or time.

The same SQL serves both: now it runs on the database's reader connection; for
``as_of`` it runs on a scratch copy of the views folded from events 1..N (starting from
seq 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventstore.errors import ValidationError
from eventstore.recorder import Recorder
from eventstore.scratch import query_scratch
from projections import tables as t
from projections.fold import fold
from projections.runner import drain, mark_all_dirty
from projections.state import State
from schemas.values import parse_time

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
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise ValidationError(f"{name}: {value!r} is not a date YYYY-MM-DD") from None
        return value
    _time_param(value, name)
    return value


def build_sql(q: ViewQuery) -> tuple[str, list[Any]]:
    """The SELECT for a view query over the view tables."""
    table = t.VIEWS[q.view]
    where: list[str] = []
    params: list[Any] = []
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


async def state_at(recorder: Recorder, seq: int) -> State:
    """The fold state after events 1..seq, folded from the log into a scratch state."""
    state = State()
    position = 0
    while position < seq:
        events = await recorder.read(position + 1, min(4096, seq - position))
        if not events:
            break
        state = fold(events, state)
        position = events[-1].seq
    return state


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
        state = await state_at(recorder, seq)
        mark_all_dirty(state)
        ddl = [statement for each in t.TABLES for statement in each.ddl()]
        rows = await query_scratch(ddl, drain(state), sql, params)
    return {"view": q.view, "as_of_seq": seq, "rows": [table.to_wire(row) for row in rows]}
