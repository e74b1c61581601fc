"""Stored events of an older schema_version are upcast before the views fold them."""

from __future__ import annotations

from typing import Any

import pytest

from eventstore.record import StoredEvent
from projections.fold import fold
from schemas import events as schema_events
from schemas import upcasters


def test_old_payload_is_upcast_before_folding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cash event stored as version 1 with a field since renamed folds through the
    registered upcaster: the balance counts it, and the stored event is not changed."""

    def rename_amount(data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        out["amount"] = out.pop("value")
        return out

    monkeypatch.setitem(schema_events.SCHEMA_VERSIONS, "cash", 2)
    monkeypatch.setitem(upcasters.UPCASTERS, ("cash", 1), rename_amount)
    stored = StoredEvent(1, "c1", "bot", "cash", "2024-01-01T00:00:00Z", "acct", "1.0", None,
                         {"value": "250", "kind": "deposit"}, "2024-01-01T00:00:00Z", 1, "h")
    state = fold([stored])
    assert "250" == str(state.accounts["acct"].cash)
    assert {"value": "250", "kind": "deposit"} == stored.data


def test_current_version_events_are_folded_as_they_are() -> None:
    """An event already at the current version is folded without any upcaster."""
    stored = StoredEvent(1, "c1", "bot", "cash", "2024-01-01T00:00:00Z", "acct", "1.0", None,
                         {"amount": "5", "kind": "deposit"}, "2024-01-01T00:00:00Z", 1, "h")
    assert "5" == str(fold([stored]).accounts["acct"].cash)


def test_a_version_1_fill_without_multiplier_keeps_multiplier_1() -> None:
    """fill 1 -> 2: a version 1 fill stored without ``multiplier`` meant 1; it is read
    with 1 even where an instrument of the symbol has another, while a version 2 fill
    without one takes the instrument's (50). The stored payloads are not changed."""
    instrument = StoredEvent(1, "i1", "bot", "instrument", "2024-01-01T00:00:00Z", "acct",
                             "1.0", None, {"symbol": "ES", "multiplier": "50"},
                             "2024-01-01T00:00:00Z", 1, "h")
    old = StoredEvent(2, "f1", "bot", "fill", "2024-01-01T00:00:00Z", "acct", "1.0", None,
                      {"symbol": "ES", "side": "buy", "quantity": "1", "price": "10",
                       "position_id": "old"}, "2024-01-01T00:00:00Z", 1, "h")
    new = StoredEvent(3, "f2", "bot", "fill", "2024-01-01T00:00:00Z", "acct", "1.0", None,
                      {"symbol": "ES", "side": "buy", "quantity": "1", "price": "10",
                       "position_id": "new"}, "2024-01-01T00:00:00Z", 2, "h")
    positions = fold([instrument, old, new]).positions["acct"]
    assert {"old": "1", "new": "50"} == {k: str(p.multiplier) for k, p in positions.items()}
    assert "multiplier" not in old.data
    assert {"symbol": "ES", "side": "buy", "quantity": "1", "price": "10", "multiplier": "1",
            "position_id": "old"} == upcasters.fill_1_to_2(old.data)
