"""Golden tests of the views and fields of contract 1.1, every figure worked by hand in
the docstring: instruments, accounts, strategies, history, attrs, the new fields of
positions, trades, daily, signals and orders, and voids."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

from typing import Any

from projections.fold import fold
from tests.fold_support import ev, fold_rows, rows_of, stored

OPTION = "NIFTY24JUN22500CE"


def fill(side: str, quantity: str, price: str, *, symbol: str = OPTION,
         time: str = "2024-03-01T12:00:00Z", event_id: str | None = None,
         **data: Any) -> dict[str, Any]:
    """A ``fill`` wire event of account acct-1."""
    return ev("fill", {"symbol": symbol, "side": side, "quantity": quantity, "price": price,
                       **data}, time=time, event_id=event_id)


def only(rows: list[dict[str, Any]]) -> dict[str, Any]:
    assert 1 == len(rows), rows
    return rows[0]


INSTRUMENT = {"symbol": OPTION, "venue": "NSE", "asset_class": "option", "currency": "INR",
              "multiplier": "50", "tick_size": "0.05", "lot_size": "50",
              "underlying": "NIFTY", "expiry": "2024-06-27", "strike": "22500",
              "option_type": "call", "description": "NIFTY 27 Jun 22500 CE",
              "attrs": {"exchange": "NFO", "instrument_token": 10667522}}


def test_instrument_row_and_the_multiplier_a_fill_takes() -> None:
    """The instruments view shows the latest instrument event's fields; a fill without a
    multiplier takes the instrument's (50), one with its own keeps it.

    short 2 @ 100, buy 2 @ 90 (multiplier 50): gross = 2 * (100 - 90) * 50 = 1000;
    return_pct = 100 * 1000 / (100 * 2 * 50) = 10.
    """
    rows = fold_rows(stored([
        ev("instrument", INSTRUMENT, time="2024-03-01T09:00:00+05:30"),
        fill("sell", "2", "100", event_id="open", exit_detail="ignored on an open"),
        fill("buy", "2", "90", exit_reason="trailing_stop", exit_detail="auto_trailing_sl"),
        fill("buy", "1", "10", symbol="OTHER", multiplier="7"),
    ]))
    assert [{
        "account": "acct-1", "symbol": OPTION, "venue": "NSE", "asset_class": "option",
        "currency": "INR", "multiplier": "50", "tick_size": "0.05", "lot_size": "50",
        "underlying": "NIFTY", "expiry": "2024-06-27", "strike": "22500",
        "option_type": "call", "description": "NIFTY 27 Jun 22500 CE",
        "attrs": {"exchange": "NFO", "instrument_token": 10667522},
        "updated_at": "2024-03-01T03:30:00Z",
    }] == rows["instruments"]
    trade = only(rows["trades"])
    assert ("1000", "10", "trailing_stop", "auto_trailing_sl", "NSE", "option") == (
        trade["net_pnl"], trade["return_pct"], trade["exit_reason"], trade["exit_detail"],
        trade["venue"], trade["asset_class"])
    assert "7" == only(rows["positions"])["multiplier"]


def test_a_later_instrument_event_applies_from_its_seq_on() -> None:
    """A fill before an instrument event keeps multiplier 1; the position opened after
    the instrument's new definition takes its multiplier, venue and asset class."""
    rows = fold_rows(stored([
        fill("buy", "1", "10", symbol="A", position_id="p1"),
        ev("instrument", {"symbol": "A", "multiplier": "100", "venue": "CBOE",
                          "asset_class": "option"}),
        fill("buy", "1", "10", symbol="A", position_id="p2"),
    ]))
    found = {p["position_key"]: (p["multiplier"], p["venue"], p["asset_class"])
             for p in rows["positions"]}
    assert {"p1": ("1", None, None), "p2": ("100", "CBOE", "option")} == found


def test_accounts_row_defaults_then_the_latest_account_event() -> None:
    """An account with events but no account event has a row of defaults (kind live);
    the latest account event replaces the whole definition; events counts every event
    and first/last_event_at are the earliest and latest event times in UTC."""
    defaults = fold_rows(stored([
        ev("cash", {"amount": "10", "kind": "deposit"}, time="2024-03-02T00:00:00Z")]))
    assert [{
        "account": "acct-1", "name": None, "kind": "live", "broker": None, "currency": None,
        "benchmark": None, "description": None, "attrs": None,
        "first_event_at": "2024-03-02T00:00:00Z", "last_event_at": "2024-03-02T00:00:00Z",
        "events": 1,
    }] == defaults["accounts"]
    rows = fold_rows(stored([
        ev("account", {"name": "first", "broker": "kite", "attrs": {"a": 1}},
           time="2024-03-02T00:00:00Z"),
        ev("cash", {"amount": "10", "kind": "deposit"}, time="2024-03-01T00:00:00Z"),
        ev("account", {"name": "Backtest May", "kind": "backtest", "currency": "USD",
                       "benchmark": "SPY"}, time="2024-03-03T00:00:00+01:00"),
    ]))
    assert [{
        "account": "acct-1", "name": "Backtest May", "kind": "backtest", "broker": None,
        "currency": "USD", "benchmark": "SPY", "description": None, "attrs": None,
        "first_event_at": "2024-03-01T00:00:00Z", "last_event_at": "2024-03-02T23:00:00Z",
        "events": 3,
    }] == rows["accounts"]


def test_strategies_rows_from_strategy_events_and_signals() -> None:
    """A strategy event's fields make its row; a strategy only named by signals has a row
    with description, parameters, active and attrs null; signals counts signal events."""
    rows = fold_rows(stored([
        ev("strategy", {"strategy": "sma", "description": "fast/slow",
                        "parameters": {"fast": 10, "slow": 30, "grid": [1, 2]},
                        "active": False, "attrs": {"timeframe": "1h"}},
           time="2024-03-01T10:00:00Z"),
        ev("signal", {"signal_id": "s1", "strategy": "sma", "symbol": "X", "side": "long"},
           time="2024-03-01T11:00:00Z"),
        ev("signal", {"signal_id": "s2", "strategy": "orb", "symbol": "X", "side": "short"},
           time="2024-03-01T12:00:00Z"),
        ev("signal", {"signal_id": "s1", "strategy": "sma", "symbol": "X", "side": "long"},
           time="2024-03-01T13:00:00Z"),
    ]))
    assert [
        {"account": "acct-1", "strategy": "orb", "description": None, "parameters": None,
         "active": None, "attrs": None, "signals": 1, "updated_at": "2024-03-01T12:00:00Z"},
        {"account": "acct-1", "strategy": "sma", "description": "fast/slow",
         "parameters": {"fast": 10, "grid": [1, 2], "slow": 30}, "active": False,
         "attrs": {"timeframe": "1h"}, "signals": 2, "updated_at": "2024-03-01T13:00:00Z"},
    ] == rows["strategies"]


def test_history_rows_of_known_signals_and_orders() -> None:
    """Each status event of an announced signal or order is a history row (a repeated
    status included); previous_status is null for the first; a status of an unknown
    entity has no row. The signal row shows timeframe, expires_at (UTC), note, parent,
    reason and attrs merged from the signal and its status events."""
    rows = fold_rows(stored([
        ev("signal", {"signal_id": "s1", "strategy": "plays", "symbol": "SPY",
                      "side": "long", "timeframe": "1d", "note": "earnings play",
                      "expires_at": "2024-03-08T16:00:00-05:00", "parent_signal_id": "s0",
                      "attrs": {"play_class": "oto", "trail": "1.5"}}),
        ev("status", {"entity": "signal", "entity_id": "ghost", "status": "closed"}),
        ev("status", {"entity": "signal", "entity_id": "s1", "status": "triggered",
                      "price": "501.25", "attrs": {"trail": "2.0", "hit": None}},
           time="2024-03-01T13:00:00Z"),
        ev("status", {"entity": "signal", "entity_id": "s1", "status": "triggered",
                      "reason": "again"}, time="2024-03-01T14:00:00Z"),
        ev("order", {"order_id": "o1", "symbol": "SPY", "side": "buy", "quantity": "1",
                     "order_type": "market", "signal_id": "s1", "attrs": {"oco": "g1"}}),
        ev("status", {"entity": "order", "entity_id": "o1", "status": "filled"}),
    ]))
    assert [
        {"account": "acct-1", "seq": 3, "time": "2024-03-01T13:00:00Z", "entity": "signal",
         "entity_id": "s1", "status": "triggered", "previous_status": None, "reason": None,
         "price": "501.25", "attrs": {"hit": None, "trail": "2.0"}},
        {"account": "acct-1", "seq": 4, "time": "2024-03-01T14:00:00Z", "entity": "signal",
         "entity_id": "s1", "status": "triggered", "previous_status": "triggered",
         "reason": "again", "price": None, "attrs": None},
        {"account": "acct-1", "seq": 6, "time": "2024-03-01T12:00:00Z", "entity": "order",
         "entity_id": "o1", "status": "filled", "previous_status": None, "reason": None,
         "price": None, "attrs": None},
    ] == rows["history"]
    signal = only(rows["signals"])
    assert ("1d", "2024-03-08T21:00:00Z", "earnings play", "s0", "again",
            {"hit": None, "play_class": "oto", "trail": "2.0"}) == (
        signal["timeframe"], signal["expires_at"], signal["note"],
        signal["parent_signal_id"], signal["reason"], signal["attrs"])
    order = only(rows["orders"])
    assert ("s1", {"oco": "g1"}) == (order["signal_id"], order["attrs"])


def test_position_and_trade_take_strategy_and_merged_attrs() -> None:
    """A position takes its opening fill's signal's strategy; its attrs merge its fills'
    in seq order (later keys win, a null is kept); the trade's attrs include the closing
    fill's."""
    events = stored([
        ev("signal", {"signal_id": "s1", "strategy": "strangle", "symbol": OPTION,
                      "side": "short"}),
        fill("sell", "2", "100", signal_id="s1", attrs={"leg": "call", "sl": "130"}),
        fill("sell", "1", "110", attrs={"sl": "125", "note": None}),
    ])
    rows = fold_rows(events)
    position = only(rows["positions"])
    assert ("strangle", {"leg": "call", "note": None, "sl": "125"}) == (
        position["strategy"], position["attrs"])
    closed = fold_rows(stored([*[ev(e.event_type, e.data) for e in events],
                               fill("buy", "3", "90", attrs={"exit": "tsl"})]))
    trade = only(closed["trades"])
    assert ("strangle", {"exit": "tsl", "leg": "call", "note": None, "sl": "125"}) == (
        trade["strategy"], trade["attrs"])


def test_daily_limit_hit_needs_a_loss_and_shows_blocking_and_equity() -> None:
    """A limit of 0 on a day without a loss is not hit; trading_blocked is as the day's
    last limits event left it; unrealized_pnl and equity are after the day's last event.

    deposit 1000; buy 10 @ 10 (fee 0); mark 12: unrealized 20, equity 1020.
    """
    rows = fold_rows(stored([
        ev("limits", {"daily_loss_limit": "0", "trading_blocked": True}),
        ev("cash", {"amount": "1000", "kind": "deposit"}),
        fill("buy", "10", "10", symbol="X"),
        ev("mark", {"prices": {"X": "12"}}),
    ]))
    day = only(rows["daily"])
    assert (False, True, "0", "20", "1020") == (
        day["limit_hit"], day["trading_blocked"], day["loss_used"], day["unrealized_pnl"],
        day["equity"])


def test_journal_attrs_and_a_voided_journal_entry() -> None:
    """A journal row carries its attrs; a voided entry is gone from the journal and from
    the account's event count, and the void itself is not counted."""
    rows = fold_rows(stored([
        ev("journal", {"text": "kept", "attrs": {"mood": "calm"}}),
        ev("journal", {"text": "wrong account", "attrs": {"mood": "x"}}, event_id="j2"),
        ev("void", {"target_source": "test/fold", "target_id": "j2", "reason": "typo"}),
    ]))
    assert [("kept", {"mood": "calm"})] == [(j["text"], j["attrs"]) for j in rows["journal"]]
    assert 1 == only(rows["accounts"])["events"]


def test_voiding_the_only_events_of_an_account_removes_its_rows() -> None:
    """An account whose every event is voided has no row in any view."""
    rows = fold_rows(stored([
        fill("buy", "1", "10", symbol="X", event_id="f1"),
        ev("void", {"target_source": "test/fold", "target_id": "f1", "reason": "busted"}),
    ]))
    assert {view: [] for view in rows} == rows


def test_a_run_of_many_voids_folds_its_account_once() -> None:
    """Fifty voids in one run of events read and fold their account's history once (not
    once per void, which would cost the square of the account's size), and leave the
    same rows as a fold of the events that remain."""
    fills = [fill("buy", "1", str(10 + n), symbol="X", event_id=f"f{n}") for n in range(100)]
    voids = [ev("void", {"target_source": "test/fold", "target_id": f"f{n}",
                         "reason": "busted"}) for n in range(0, 100, 2)]
    events = stored([*fills, *voids])
    reads: list[tuple[str, Any]] = []

    def history(account: str, before: int, types: Any) -> list[Any]:
        reads.append((account, types))
        return [e for e in events if e.account == account and e.seq < before
                and (types is None or e.event_type in types)]

    state = fold(events, history=history)
    assert [("acct-1", None)] == [read for read in reads if read[1] is None]
    kept = fold_rows(stored(fills[1::2]))
    assert kept["positions"] == rows_of(state)["positions"]
