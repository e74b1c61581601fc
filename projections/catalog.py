"""The ``instruments``, ``accounts`` and ``strategies`` views: what a bot says its
symbols, account and strategies are. Pure fold.

- ``instrument``: the latest event of a symbol replaces its whole definition, from its
  seq on (a fill after it without ``multiplier`` takes the instrument's);
- ``account``: the latest event replaces the account's definition; every folded event
  of the account counts in ``events`` and moves ``first_event_at``/``last_event_at``
  (the earliest and latest event ``time``, in UTC);
- ``strategy``: the latest event of a name replaces its definition; a ``signal`` naming
  a strategy makes its row (definition fields None until a ``strategy`` event) and
  counts in its ``signals``; ``updated_at`` is the time of the latest of those events.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from eventstore.record import StoredEvent
from projections.calendar import to_utc_text, utc_datetime
from projections.state import InstrumentRow, State, StrategyRow

__all__ = ["ACCOUNT_FIELDS", "apply"]

ACCOUNT_FIELDS = ("name", "kind", "broker", "currency", "benchmark", "description", "attrs")
"""The fields of an ``account`` event, in the ``accounts`` view's order."""


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _count(state: State, event: StoredEvent) -> None:
    account = state.account(event.account)
    at = to_utc_text(event.time)
    moment = utc_datetime(at)
    account.events += 1
    if account.first_event_at is None or moment < utc_datetime(account.first_event_at):
        account.first_event_at = at
    if account.last_event_at is None or moment > utc_datetime(account.last_event_at):
        account.last_event_at = at


def _instrument(state: State, event: StoredEvent, data: dict[str, Any]) -> None:
    key = (event.account, data["symbol"])
    state.instruments[key] = InstrumentRow(
        account=event.account, symbol=data["symbol"], venue=data.get("venue"),
        asset_class=data.get("asset_class"), currency=data.get("currency"),
        multiplier=Decimal(data.get("multiplier", "1")),
        tick_size=_dec(data.get("tick_size")), lot_size=_dec(data.get("lot_size")),
        underlying=data.get("underlying"), expiry=data.get("expiry"),
        strike=_dec(data.get("strike")), option_type=data.get("option_type"),
        description=data.get("description"), attrs=data.get("attrs"),
        updated_at=to_utc_text(event.time))
    state.dirty_instruments.add(key)


def _strategy(state: State, event: StoredEvent, name: str) -> StrategyRow:
    key = (event.account, name)
    row = state.strategies.get(key)
    if row is None:
        row = state.strategies[key] = StrategyRow(event.account, name)
    row.updated_at = to_utc_text(event.time)
    state.dirty_strategies.add(key)
    return row


def apply(state: State, event: StoredEvent) -> State:
    """Fold ``instrument``, ``account``, ``strategy`` and ``signal`` events, and count
    every event in its account's row."""
    _count(state, event)
    kind = event.event_type
    data = event.data
    if kind == "instrument":
        _instrument(state, event, data)
    elif kind == "account":
        state.account(event.account).definition = {
            name: data.get(name) for name in ACCOUNT_FIELDS} | {
            "kind": data.get("kind", "live")}
    elif kind == "strategy":
        row = _strategy(state, event, data["strategy"])
        row.description = data.get("description")
        row.parameters = data.get("parameters")
        row.active = data.get("active", True)
        row.attrs = data.get("attrs")
    elif kind == "signal":
        _strategy(state, event, data["strategy"]).signals += 1
    return state
