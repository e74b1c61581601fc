"""The ``signals`` view: each strategy signal and its latest status. Pure fold."""

from __future__ import annotations

from decimal import Decimal

from eventstore.record import StoredEvent
from projections.calendar import to_utc_text
from projections.state import SignalRow, State, merge_attrs

__all__ = ["apply"]


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def apply(state: State, event: StoredEvent) -> State:
    """Fold ``signal`` events (a new signal, status ``active``) and signal ``status`` events.

    A signal event sent again for the same ``signal_id`` replaces the signal's fields but
    keeps its status, ``created_at`` and ``reason``; ``attrs`` merge key by key over the
    signal's and its status events' attrs, in seq order (a ``null`` value is kept). A
    status for an unknown signal id is ignored (no row appears from nothing).
    """
    data = event.data
    if event.event_type == "signal":
        key = (event.account, data["signal_id"])
        at = to_utc_text(event.time)
        previous = state.signals.get(key)
        expires_at = data.get("expires_at")
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
            timeframe=data.get("timeframe"),
            expires_at=None if expires_at is None else to_utc_text(expires_at),
            note=data.get("note"),
            parent_signal_id=data.get("parent_signal_id"),
            attrs=merge_attrs(previous.attrs if previous else None, data.get("attrs")),
            last_status=previous.last_status if previous else None,
        )
        state.dirty_signals.add(key)
    elif event.event_type == "status" and data["entity"] == "signal":
        key = (event.account, data["entity_id"])
        row = state.signals.get(key)
        if row is not None:
            row.status = data["status"]
            row.last_status = data["status"]
            row.reason = data.get("reason")
            row.attrs = merge_attrs(row.attrs, data.get("attrs"))
            row.updated_at = to_utc_text(event.time)
            state.dirty_signals.add(key)
    return state
