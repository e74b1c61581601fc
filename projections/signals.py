"""The ``signals`` view: each strategy signal and its latest status. Pure fold."""

from __future__ import annotations

from decimal import Decimal

from eventstore.record import StoredEvent
from projections.calendar import to_utc_text
from projections.state import SignalRow, State

__all__ = ["apply"]


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def apply(state: State, event: StoredEvent) -> State:
    """Fold ``signal`` events (a new signal, status ``active``) and signal ``status`` events.

    A status for an unknown signal id is ignored (no row appears from nothing).
    """
    data = event.data
    if event.event_type == "signal":
        key = (event.account, data["signal_id"])
        at = to_utc_text(event.time)
        previous = state.signals.get(key)
        state.signals[key] = SignalRow(
            account=event.account,
            signal_id=data["signal_id"],
            strategy=data["strategy"],
            symbol=data["symbol"],
            side=data["side"],
            status=previous.status if previous else "active",
            entry_price=_dec(data.get("entry_price")),
            stop_loss=_dec(data.get("stop_loss")),
            take_profit=_dec(data.get("take_profit")),
            confidence=_dec(data.get("confidence")),
            created_at=previous.created_at if previous else at,
            updated_at=at,
            reason=previous.reason if previous else None,
        )
        state.dirty_signals.add(key)
    elif event.event_type == "status" and data["entity"] == "signal":
        key = (event.account, data["entity_id"])
        row = state.signals.get(key)
        if row is not None:
            row.status = data["status"]
            row.reason = data.get("reason")
            row.updated_at = to_utc_text(event.time)
            state.dirty_signals.add(key)
    return state
