"""``as_of_time``: a view folded from exactly the events whose event ``time`` <= T.

Event times need not follow ``seq`` (a bot may send yesterday's fill today), so the
fold reads the log in seq order and applies the events whose ``time`` is at or before T.
Two things keep that from always meaning "the whole log":

- The events before the first one whose time is after T (of the account, when one is
  given) are all in: their fold is the view ``as_of`` that seq (for that account), so
  a keyed view (not ``trades``/``journal``, which snapshots do not hold) starts from
  the nearest snapshot at or before it, as ``as_of`` does. Finding that seq is one pass
  of the database over the events' ``time`` (no fold).
- After it, the database passes on only the events whose time may be <= T (``julianday``
  with a 2 ms margin for its millisecond rounding); each is then checked exactly in
  Python before it is folded. With an ``account``, only that account's events are read
  (every view row belongs to one account and is folded from its events alone).

Cost: when events arrive in time order, about what ``as_of`` costs at the same point;
an event sent late (with a time earlier than events before it) pulls the start back to
before the first event later than T; ``trades`` and ``journal`` always fold the log (or
the account's events) from seq 1. It runs on a worker thread, on its own read-only
connection and read transaction; memory is the fold state of the accounts read, and
the closed trades and journal entries only when the query asks for that view.
On PostgreSQL the same SQL runs rewritten (``julianday`` of a ``timestamptz``:
``eventstore.postgres.dialect``), in one snapshot (``ViewReader.replay``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from eventstore import ddl as event_ddl
from eventstore.logtx import LogTx
from eventstore.record import StoredEvent
from eventstore.store import ViewReader
from projections.fold import fold
from projections.query_sql import SEQ_COLUMN
from projections.replay import LogHistory, before_first_void, from_snapshot
from projections.state import State
from projections.voids import History as _LogHistoryLike

__all__ = ["keep_appended_rows_of", "state_at_time"]


def keep_appended_rows_of(state: State, view: str) -> None:
    """Forget the folded rows of the append-only views (trades, journal, history) other
    than ``view``'s: a past state is built for one view's query."""
    if view != "trades":
        state.trades.clear()
    if view != "journal":
        state.journal.clear()
    if view != "history":
        state.history.clear()


_MARGIN_DAYS = 0.002 / 86_400
"""2 ms in days: SQLite's ``julianday`` keeps milliseconds, so an SQL pre-filter on it
is widened by this much and the exact test is made in Python."""


def _julian_text(moment: datetime) -> str:
    """The moment as UTC text with a ``Z``, which SQLite's ``julianday`` and a PostgreSQL
    ``timestamptz`` (``eventstore.postgres.dialect``) both read as UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%fZ")


def _all_before(conn: LogTx, moment: datetime, last: int,
                account: str | None) -> int:
    """The last seq S such that every event 1..S (of ``account`` unless None) surely
    has a time <= ``moment``. The state at S is then exact for that account's rows."""
    where = "julianday(time) > julianday(?) - ? AND seq <= ?"
    params: list[Any] = [_julian_text(moment), _MARGIN_DAYS, last]
    if account is not None:
        where = "account = ? AND " + where
        params.insert(0, account)
    found = conn.execute(f"SELECT seq FROM events WHERE {where} ORDER BY seq LIMIT 1",
                         params).fetchone()
    return last if found is None else int(found[0]) - 1


class _TimedHistory:
    """A void's account history (``projections.voids.History``) of only the events whose
    time is at or before ``moment``: the refold sees the same events as the fold."""

    def __init__(self, history: _LogHistoryLike, moment: datetime) -> None:
        self.history = history
        self.moment = moment

    def __call__(self, account: str, before: int,
                 types: Sequence[str] | None) -> Iterator[StoredEvent]:
        return (event for event in self.history(account, before, types)
                if datetime.fromisoformat(event.time) <= self.moment)


def _fold_until(conn: LogTx, moment: datetime, account: str | None,
                view: str) -> tuple[int, State]:
    last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    state = None
    if view not in SEQ_COLUMN:
        start = min(_all_before(conn, moment, last, account), before_first_void(conn))
        state = from_snapshot(conn, start, view)
    if state is None:
        state = State()
    where = "seq > ? AND seq <= ? AND julianday(time) <= julianday(?) + ?"
    params: list[Any] = [state.folded_seq, last, _julian_text(moment), _MARGIN_DAYS]
    if account is not None:
        where = "account = ? AND " + where
        params.insert(0, account)
    history = _TimedHistory(LogHistory(conn), moment)
    for rows in conn.chunks(
            f"SELECT {event_ddl.EVENT_COLUMNS} FROM events WHERE {where} ORDER BY seq", params):
        events = [StoredEvent.from_row(row) for row in rows]
        state = fold([e for e in events if datetime.fromisoformat(e.time) <= moment],
                     state, history)
        # Rows of the append-only views the query does not ask for are not kept.
        keep_appended_rows_of(state, view)
    return last, state


async def state_at_time(recorder: ViewReader, moment: datetime, account: str | None,
                        view: str) -> tuple[int, State]:
    """``(last_seq, state)``: the fold of the events of the log (of ``account`` only,
    unless None) whose event ``time`` is at or before ``moment`` (aware), in seq order;
    ``last_seq`` is the log's last seq when it was read. Only the rows of ``view``'s
    append-only kind (trades, journal, history) are kept of those."""
    return await recorder.replay(lambda conn: _fold_until(conn, moment, account, view))
