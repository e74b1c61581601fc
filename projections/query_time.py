"""``as_of_time``: a view folded from exactly the events whose event ``time`` <= T.

Event times need not follow ``seq`` (a bot may send yesterday's fill today), so no
snapshot of the views is a state "at time T": the fold reads the log from seq 1, in seq
order, and applies the events whose ``time`` is at or before T. With an ``account`` only
that account's events are read (through the ``events (account, seq)`` index): every
view row belongs to one account and is folded from that account's events alone.

Cost: one pass over the account's events (or the whole log without ``account``) on a
worker thread, on its own read-only connection and read transaction; memory is the fold
state of the accounts read (open positions, signals, orders, days), and the closed
trades and journal entries only when the query asks for that view.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from eventstore import ddl as event_ddl
from eventstore.record import StoredEvent
from eventstore.recorder import Recorder, open_sqlite
from projections.fold import apply
from projections.state import State

__all__ = ["state_at_time"]

_BATCH = 4096


def _fold_until(path: Path, moment: datetime, account: str | None,
                view: str) -> tuple[int, State]:
    conn = open_sqlite(path, readonly=True, busy_timeout_s=5.0)
    try:
        conn.execute("BEGIN")
        last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
        if account is None:
            cursor = conn.execute(
                f"SELECT {event_ddl.EVENT_COLUMNS} FROM events WHERE seq <= ? ORDER BY seq",
                (last,))
        else:
            cursor = conn.execute(
                f"SELECT {event_ddl.EVENT_COLUMNS} FROM events WHERE account = ? "
                "AND seq <= ? ORDER BY seq", (account, last))
        state = State()
        while rows := cursor.fetchmany(_BATCH):
            for row in rows:
                event = StoredEvent.from_row(row)
                if datetime.fromisoformat(event.time) <= moment:
                    state = apply(state, event)
            # Rows of the append-only views the query does not ask for are not kept.
            if view != "trades":
                state.trades.clear()
            if view != "journal":
                state.journal.clear()
        conn.execute("COMMIT")
        return last, state
    finally:
        conn.close()


async def state_at_time(recorder: Recorder, moment: datetime, account: str | None,
                        view: str) -> tuple[int, State]:
    """``(last_seq, state)``: the fold of the events of the log (of ``account`` only,
    unless None) whose event ``time`` is at or before ``moment`` (aware), in seq order;
    ``last_seq`` is the log's last seq when it was read. Only the rows of ``view``'s
    append-only kind (trades, journal) are kept of those."""
    return await asyncio.to_thread(_fold_until, recorder.path, moment, account, view)
