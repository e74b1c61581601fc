"""The ``orders`` view: each order, its filled quantity and latest status. Pure fold."""

from __future__ import annotations

from decimal import Decimal

from eventstore.record import StoredEvent
from projections.calendar import to_utc_text
from projections.state import OrderRow, State, merge_attrs

__all__ = ["apply"]

ZERO = Decimal(0)


def apply(state: State, event: StoredEvent) -> State:
    """Fold ``order`` events (status ``submitted``), order ``status`` events, and fills
    that name an ``order_id`` (their quantity adds to ``filled_quantity``).

    Status comes only from ``status`` events, as EVENTS.md defines it; a fill does not
    change it. Events for an order id never announced are ignored. ``attrs`` merge key by
    key over the order's and its status events' attrs, in seq order.
    """
    data = event.data
    kind = event.event_type
    if kind == "order":
        key = (event.account, data["order_id"])
        at = to_utc_text(event.time)
        previous = state.orders.get(key)
        limit_price = data.get("limit_price")
        stop_price = data.get("stop_price")
        state.orders[key] = OrderRow(
            account=event.account,
            order_id=data["order_id"],
            symbol=data["symbol"],
            side=data["side"],
            order_type=data["order_type"],
            quantity=Decimal(data["quantity"]),
            filled_quantity=previous.filled_quantity if previous else ZERO,
            limit_price=None if limit_price is None else Decimal(limit_price),
            stop_price=None if stop_price is None else Decimal(stop_price),
            status=previous.status if previous else "submitted",
            created_at=previous.created_at if previous else at,
            updated_at=at,
            signal_id=data.get("signal_id"),
            position_id=data.get("position_id"),
            attrs=merge_attrs(previous.attrs if previous else None, data.get("attrs")),
            last_status=previous.last_status if previous else None,
        )
        state.dirty_orders.add(key)
    elif kind == "status" and data["entity"] == "order":
        key = (event.account, data["entity_id"])
        row = state.orders.get(key)
        if row is not None:
            row.status = data["status"]
            row.last_status = data["status"]
            row.attrs = merge_attrs(row.attrs, data.get("attrs"))
            row.updated_at = to_utc_text(event.time)
            state.dirty_orders.add(key)
    elif kind == "fill" and "order_id" in data:
        key = (event.account, data["order_id"])
        row = state.orders.get(key)
        if row is not None:
            row.filled_quantity += Decimal(data["quantity"])
            row.updated_at = to_utc_text(event.time)
            state.dirty_orders.add(key)
    return state
