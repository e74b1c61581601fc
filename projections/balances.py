"""The ``balances`` view: cash, realized and unrealized P&L per account. Pure fold.

balance = cash + realized_pnl; equity = balance + unrealized_pnl (EVENTS.md).
Realized and unrealized amounts are booked by the positions fold; this fold adds cash,
the fill's realized P&L, and the account's risk settings from ``limits``.
"""

from __future__ import annotations

from decimal import Decimal

from eventstore.record import StoredEvent
from projections.state import State

__all__ = ["apply"]


def apply(state: State, event: StoredEvent) -> State:
    """Fold ``cash`` (cash += amount), ``fill`` (realized += its effect) and ``limits``.

    Each ``limits`` event states the whole risk settings: a field it leaves out is unset.
    """
    account = state.account(event.account)
    kind = event.event_type
    if kind == "cash":
        account.cash += Decimal(event.data["amount"])
    elif kind == "fill":
        account.realized_pnl += state.effect.realized
    elif kind == "limits":
        data = event.data
        limit = data.get("daily_loss_limit")
        account.daily_loss_limit = None if limit is None else Decimal(limit)
        account.max_open_positions = data.get("max_open_positions")
        account.timezone = data.get("timezone", "UTC")
        account.trading_blocked = bool(data.get("trading_blocked", False))
        account.limits_attrs = data.get("attrs")
    return state
