"""The ``daily`` view: per trading day and account, P&L, counts and the loss limit. Pure fold.

A trading day is the date of the event's ``time`` in the account's ``timezone``. Every
amount counts on the day of the event that caused it; a round trip's close counts on
the day of its closing fill (EVENTS.md). Only ``fill``, ``signal`` and ``cash`` events
make a day's row; every later event of the account on a day that has a row (in seq
order) sets that row's ``daily_loss_limit``, ``trading_blocked``, ``unrealized_pnl`` and
``equity`` to what they are after it: the row ends as the day's last event left them.
"""

from __future__ import annotations

from decimal import Decimal

from eventstore.record import StoredEvent
from projections.calendar import trading_day
from projections.state import DailyRow, State

__all__ = ["apply"]

ZERO = Decimal(0)
_MAKES_ROW = frozenset(("fill", "signal", "cash"))


def apply(state: State, event: StoredEvent) -> State:
    """Fold ``fill``, ``signal`` and ``cash`` into their day's row (made if missing); any
    other event refreshes its day's row only when that row exists (a day with no such
    event has no row)."""
    kind = event.event_type
    account = state.account(event.account)
    key = (event.account, trading_day(event.time, account.timezone))
    row = state.daily.get(key)
    if row is None:
        if kind not in _MAKES_ROW:
            return state
        row = state.daily[key] = DailyRow(event.account, key[1])
    if kind == "fill":
        effect = state.effect
        row.fills += 1
        row.fees += effect.fee
        row.realized_pnl += effect.realized
        trade = effect.closed
        if trade is not None:
            row.trades_closed += 1
            if trade.net_pnl > 0:
                row.wins += 1
                row.gross_profit += trade.net_pnl
            elif trade.net_pnl < 0:
                row.losses += 1
                row.gross_loss += trade.net_pnl
    elif kind == "signal":
        row.signals += 1
    elif kind == "cash":
        row.cash_flow += Decimal(event.data["amount"])
    row.daily_loss_limit = account.daily_loss_limit
    row.trading_blocked = account.trading_blocked
    row.unrealized_pnl = account.unrealized_pnl
    row.equity = account.equity
    state.dirty_daily.add(key)
    return state
