"""The ``daily`` view: per trading day and account, P&L, counts and the loss limit. Pure fold.

A trading day is the date of the event's ``time`` in the account's ``timezone``. Every
amount counts on the day of the event that caused it; a round trip's close counts on
the day of its closing fill (EVENTS.md).
"""

from __future__ import annotations

from decimal import Decimal

from eventstore.record import StoredEvent
from projections.calendar import trading_day
from projections.state import DailyRow, State

__all__ = ["apply"]

ZERO = Decimal(0)


def _row(state: State, event: StoredEvent) -> DailyRow:
    account = state.account(event.account)
    key = (event.account, trading_day(event.time, account.timezone))
    row = state.daily.get(key)
    if row is None:
        row = state.daily[key] = DailyRow(event.account, key[1])
    row.daily_loss_limit = account.daily_loss_limit
    state.dirty_daily.add(key)
    return row


def apply(state: State, event: StoredEvent) -> State:
    """Fold ``fill``, ``signal`` and ``cash`` into their day's row; ``limits`` updates the
    limit of its day's row when that row exists (a day with no such event has no row).
    """
    kind = event.event_type
    if kind == "fill":
        row = _row(state, event)
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
        _row(state, event).signals += 1
    elif kind == "cash":
        _row(state, event).cash_flow += Decimal(event.data["amount"])
    elif kind == "limits":
        account = state.account(event.account)
        key = (event.account, trading_day(event.time, account.timezone))
        if key in state.daily:
            state.daily[key].daily_loss_limit = account.daily_loss_limit
            state.dirty_daily.add(key)
    return state
