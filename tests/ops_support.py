"""Helpers for the backup, restore and export tests: a log of every event type, files."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from eventstore import ddl
from eventstore.record import NewEvent
from eventstore.recorder import Recorder
from projections.startup import open_views
from schemas import EVENT_TYPES, parse_event
from tests.fold_support import view_rows

__all__ = ["every_type_log", "make_log", "stored_rows", "views_of"]


def _ev(n: int, event_type: str, data: dict[str, Any], account: str = "acct-1",
        time: str = "2024-03-01T12:00:00Z") -> dict[str, Any]:
    return {"id": f"e-{n}", "source": "test/ops", "type": event_type, "time": time,
            "account": account, "data": data}


def every_type_log() -> list[dict[str, Any]]:
    """Wire events using every event type, over two accounts and two trading days: a
    deposit, limits, a signal, its order and fills (a round trip and an open position),
    status changes, marks and journal entries."""
    events = [
        _ev(1, "cash", {"amount": "100000", "kind": "deposit"}, time="2024-03-01T08:00:00Z"),
        _ev(2, "limits", {"daily_loss_limit": "2000", "max_open_positions": 2,
                          "timezone": "Europe/London"}, time="2024-03-01T08:00:00Z"),
        _ev(3, "signal", {"signal_id": "s1", "strategy": "sma", "symbol": "EURUSD",
                          "side": "long", "entry_price": "1.0712", "stop_loss": "1.0662",
                          "take_profit": "1.0812"}, time="2024-03-01T09:00:00Z"),
        _ev(4, "order", {"order_id": "o1", "symbol": "EURUSD", "side": "buy",
                         "quantity": "100000", "order_type": "market", "signal_id": "s1"},
            time="2024-03-01T09:00:01Z"),
        _ev(5, "fill", {"symbol": "EURUSD", "side": "buy", "quantity": "100000",
                        "price": "1.0713", "fee": "2.14", "order_id": "o1",
                        "signal_id": "s1"}, time="2024-03-01T09:00:02Z"),
        _ev(6, "status", {"entity": "order", "entity_id": "o1", "status": "filled"},
            time="2024-03-01T09:00:02Z"),
        _ev(7, "mark", {"prices": {"EURUSD": "1.0730"}}, time="2024-03-01T10:00:00Z"),
        _ev(8, "journal", {"text": "Holding.", "tags": ["hold"], "symbol": "EURUSD"},
            time="2024-03-01T11:00:00Z"),
        _ev(9, "fill", {"symbol": "EURUSD", "side": "sell", "quantity": "100000",
                        "price": "1.0790", "fee": "2.16", "exit_reason": "take_profit"},
            time="2024-03-01T15:00:00Z"),
        _ev(10, "cash", {"amount": "500", "kind": "deposit"}, account="acct-2",
            time="2024-03-02T08:00:00Z"),
        _ev(11, "fill", {"symbol": "BTCUSD", "side": "buy", "quantity": "0.5",
                         "price": "60000.5", "fee": "1"}, account="acct-2",
            time="2024-03-02T09:00:00Z"),
        _ev(12, "mark", {"prices": {"BTCUSD": "61000"}}, account="acct-2",
            time="2024-03-02T10:00:00Z"),
        _ev(13, "journal", {"text": "Opened BTC."}, account="acct-2",
            time="2024-03-02T10:00:01Z"),
        _ev(14, "fill", {"symbol": "EURUSD", "side": "sell", "quantity": "50000",
                         "price": "1.0800", "fee": "1.10"}, time="2024-03-02T11:00:00Z"),
        _ev(15, "fill", {"symbol": "EURUSD", "side": "buy", "quantity": "20000",
                         "price": "1.0750", "fee": "0.50"}, time="2024-03-02T12:00:00Z"),
        _ev(16, "instrument", {"symbol": "BTCUSD", "asset_class": "crypto",
                               "venue": "binance", "attrs": {"tick": "0.01"}},
            account="acct-2", time="2024-03-02T12:30:00Z"),
        _ev(17, "account", {"name": "crypto paper", "kind": "paper"}, account="acct-2",
            time="2024-03-02T12:31:00Z"),
        _ev(18, "strategy", {"strategy": "sma", "parameters": {"fast": 10, "slow": 30}},
            time="2024-03-02T12:32:00Z"),
        _ev(19, "void", {"target_source": "test/ops", "target_id": "e-15",
                         "reason": "the add was a duplicate"}, time="2024-03-02T12:33:00Z"),
    ]
    assert set(EVENT_TYPES) <= {e["type"] for e in events}
    return events


async def make_log(path: Path, batches: list[list[dict[str, Any]]]) -> None:
    """A tradelog file at ``path`` with ``batches`` appended in order (one commit
    each, so each batch has its own ``recorded_at``) and its views kept."""
    recorder = await Recorder.open(path)
    try:
        await open_views(recorder)
        for batch in batches:
            await recorder.append([NewEvent.from_model(parse_event(e)) for e in batch])
    finally:
        await recorder.close()


def stored_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every stored event row (``ddl.EVENT_COLUMNS``), read-only."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.execute(f"SELECT {ddl.EVENT_COLUMNS} FROM events ORDER BY seq"))
    finally:
        conn.close()


async def views_of(path: Path, as_of: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every view's rows of the file at ``path`` (now, or ``as_of`` a seq)."""
    recorder = await Recorder.open(path, readonly=True)
    try:
        return await view_rows(recorder, as_of)
    finally:
        await recorder.close()
