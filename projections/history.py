"""The ``history`` view: every status change of a known signal or order. Pure fold.

One row per ``status`` event whose signal or order was announced before it (a repeated
status included), at the event's seq; ``previous_status`` is the status the entity's
previous ``status`` event set, None for its first (EVENTS.md). Runs before the signals
and orders folds, which then record the new status.
"""

from __future__ import annotations

from decimal import Decimal

from eventstore.record import StoredEvent
from projections.calendar import to_utc_text
from projections.state import HistoryRow, OrderRow, SignalRow, State

__all__ = ["apply"]


def apply(state: State, event: StoredEvent) -> State:
    """Append a ``history`` row for a ``status`` event of a known signal or order."""
    if event.event_type != "status":
        return state
    data = event.data
    key = (event.account, data["entity_id"])
    row: SignalRow | OrderRow | None = (
        state.signals.get(key) if data["entity"] == "signal" else state.orders.get(key))
    if row is None:
        return state
    price = data.get("price")
    state.history.append(HistoryRow(
        account=event.account,
        seq=event.seq,
        time=to_utc_text(event.time),
        entity=data["entity"],
        entity_id=data["entity_id"],
        status=data["status"],
        previous_status=row.last_status,
        reason=data.get("reason"),
        price=None if price is None else Decimal(price),
        attrs=data.get("attrs"),
    ))
    return state
