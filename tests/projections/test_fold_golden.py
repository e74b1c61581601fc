"""Golden tests of the views' fold, with every figure worked by hand in the docstring.

All amounts are compared as the canonical decimal strings ``query`` returns.
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

from typing import Any

from projections.fold import fold
from projections.state import State
from tests.fold_support import ev, fold_rows, rows_of, stored


def fill(side: str, quantity: str, price: str, *, symbol: str = "XYZ",
         time: str = "2024-03-01T12:00:00Z", account: str = "acct-1",
         event_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A ``fill`` wire event."""
    return ev("fill", {"symbol": symbol, "side": side, "quantity": quantity, "price": price,
                       **data}, time=time, account=account, event_id=event_id)


def only(rows: list[dict[str, Any]]) -> dict[str, Any]:
    assert 1 == len(rows), rows
    return rows[0]


def test_freqtrade_partial_exits_average_and_realized() -> None:
    """freqtrade's partial-exit example: average price after each step and 950 realized.

    buy 100 @ 8            -> avg 8
    buy 100 @ 9            -> avg (100*8 + 100*9) / 200 = 8.5
    sell 100 @ 10          -> realized 100 * (10 - 8.5) = 150; avg stays 8.5
    buy 150 @ 11           -> avg (100*8.5 + 150*11) / 250 = 2500 / 250 = 10
    sell 100 @ 12          -> realized += 100 * (12 - 10) = 200 (350); avg stays 10
    sell 150 @ 14          -> realized += 150 * (14 - 10) = 600 (950); flat
    """
    events = stored([
        fill("buy", "100", "8", event_id="open"),
        fill("buy", "100", "9"),
        fill("sell", "100", "10"),
        fill("buy", "150", "11"),
        fill("sell", "100", "12"),
        fill("sell", "150", "14"),
    ])
    averages = []
    for step in range(1, 6):
        averages.append(only(fold_rows(events[:step])["positions"])["avg_price"])
    assert ["8", "8.5", "8.5", "10", "10"] == averages
    partial = only(fold_rows(events[:5])["positions"])
    assert ("150", "350") == (partial["quantity"], partial["realized_pnl"])

    rows = fold_rows(events)
    assert [] == rows["positions"]
    trade = only(rows["trades"])
    # entry (1.1): the running average just before the closing fill, 10 (freqtrade's
    # open_rate; the average of all opening fills would be 3350 / 350 = 9.5714...);
    # exit: (100*10 + 100*12 + 150*14) / 350 = 4300 / 350 = 12.285714...;
    # return: 100 * 950 / (10 * 250 * 1) = 38
    assert {
        "trade_id": "open", "side": "long", "quantity": "250", "gross_pnl": "950",
        "fees": "0", "net_pnl": "950", "entry_price": "10",
        "exit_price": "12.28571428571428571429", "return_pct": "38",
    } == {k: trade[k] for k in ("trade_id", "side", "quantity", "gross_pnl", "fees",
                                "net_pnl", "entry_price", "exit_price", "return_pct")}
    balance = only(rows["balances"])
    assert ("950", "950", "0", "950") == (
        balance["realized_pnl"], balance["balance"], balance["unrealized_pnl"],
        balance["equity"])
    assert "950" == only(rows["daily"])["realized_pnl"]


def test_flip_splits_the_fee_between_close_and_open() -> None:
    """A sell larger than a long closes it and opens a short; its fee is split by quantity.

    long 10 @ 100 (no fee); sell 15 @ 110 fee 3:
    close part 10: gross 10 * (110 - 100) = +100, fee share 3 * 10/15 = 2 -> trade net 98;
    open short 5 @ 110 with fee 3 * 5/15 = 1 -> position realized -1;
    balances realized 98 - 1 = 97; daily realized 97, fees 3 (the fills' fees), 2 fills.
    """
    rows = fold_rows(stored([
        fill("buy", "10", "100"),
        fill("sell", "15", "110", fee="3", event_id="flip"),
    ]))
    trade = only(rows["trades"])
    assert ("long", "10", "100", "2", "98") == (
        trade["side"], trade["quantity"], trade["gross_pnl"], trade["fees"], trade["net_pnl"])
    position = only(rows["positions"])
    assert ("short", "5", "110", "-1", "1") == (
        position["side"], position["quantity"], position["avg_price"],
        position["realized_pnl"], position["fees"])
    assert "97" == only(rows["balances"])["realized_pnl"]
    day = only(rows["daily"])
    assert ("97", "3", 2, 1, 1, "98") == (
        day["realized_pnl"], day["fees"], day["fills"], day["trades_closed"], day["wins"],
        day["gross_profit"])


def test_short_round_trip() -> None:
    """A short round trip: sell 4 @ 50 fee 1, buy 4 @ 45 fee 1.

    gross = 4 * (45 - 50) * sign(-4) = +20; fees 2; net 18; side short; holding 90 s.
    """
    rows = fold_rows(stored([
        fill("sell", "4", "50", fee="1", time="2024-03-01T12:00:00Z"),
        fill("buy", "4", "45", fee="1", time="2024-03-01T12:01:30Z",
             exit_reason="take_profit"),
    ]))
    trade = only(rows["trades"])
    assert {"side": "short", "quantity": "4", "entry_price": "50", "exit_price": "45",
            "gross_pnl": "20", "fees": "2", "net_pnl": "18", "holding_seconds": 90,
            "exit_reason": "take_profit", "opened_at": "2024-03-01T12:00:00Z",
            "closed_at": "2024-03-01T12:01:30Z"} == {
        k: trade[k] for k in ("side", "quantity", "entry_price", "exit_price", "gross_pnl",
                              "fees", "net_pnl", "holding_seconds", "exit_reason",
                              "opened_at", "closed_at")}
    assert [] == rows["positions"]
    assert ("18", 0) == (only(rows["balances"])["realized_pnl"],
                         only(rows["balances"])["open_positions"])


def test_option_multiplier_scales_realized_and_unrealized() -> None:
    """An option with multiplier 100: buy 2 @ 3.5, mark 4, sell 1 @ 4.2.

    unrealized after the mark: (4 - 3.5) * 2 * 100 = 100;
    sell 1: realized 1 * (4.2 - 3.5) * 100 = 70; unrealized (4 - 3.5) * 1 * 100 = 50
    (the mark wins over the later fill price); equity = 0 + 70 + 50 = 120.
    """
    events = stored([
        fill("buy", "2", "3.5", symbol="OPT", multiplier="100"),
        ev("mark", {"prices": {"OPT": "4"}}),
        fill("sell", "1", "4.2", symbol="OPT", multiplier="100"),
    ])
    after_mark = only(fold_rows(events[:2])["positions"])
    assert ("100", "4", "100") == (after_mark["multiplier"], after_mark["mark_price"],
                                   after_mark["unrealized_pnl"])
    rows = fold_rows(events)
    position = only(rows["positions"])
    assert ("70", "50") == (position["realized_pnl"], position["unrealized_pnl"])
    balance = only(rows["balances"])
    assert ("70", "50", "120") == (balance["realized_pnl"], balance["unrealized_pnl"],
                                   balance["equity"])


def test_unrealized_from_last_fill_price_without_a_mark() -> None:
    """Without a mark, unrealized uses the symbol's latest fill price in the account.

    buy 3 @ 10 on position p1, buy 1 @ 12 on position p2 (same symbol, hedging):
    p1 unrealized (12 - 10) * 3 = 6, p2 (12 - 12) * 1 = 0; balances unrealized 6.
    A fill of the same symbol in another account does not count.
    """
    rows = fold_rows(stored([
        fill("buy", "3", "10", position_id="p1"),
        fill("buy", "1", "12", position_id="p2"),
        fill("buy", "1", "99", account="other"),
    ]))
    mine = {p["position_key"]: p for p in rows["positions"] if p["account"] == "acct-1"}
    assert {"p1": ("12", "6"), "p2": ("12", "0")} == {
        k: (p["mark_price"], p["unrealized_pnl"]) for k, p in mine.items()}
    balances = {b["account"]: b for b in rows["balances"]}
    assert "6" == balances["acct-1"]["unrealized_pnl"]
    assert "6" == balances["acct-1"]["equity"]


def test_hedging_keeps_two_positions_on_one_symbol() -> None:
    """Two position_ids on one symbol are separate positions; a netting fill is a third.

    long p-long 2 @ 100; short p-short 1 @ 101; buy 1 @ 102 with no id (netting key XYZ);
    closing p-short: buy 1 @ 99 -> net 1 * (99 - 101) * -1 = +2; p-long stays 2 long.
    """
    rows = fold_rows(stored([
        fill("buy", "2", "100", position_id="p-long"),
        fill("sell", "1", "101", position_id="p-short"),
        fill("buy", "1", "102"),
        fill("buy", "1", "99", position_id="p-short"),
    ]))
    assert {("p-long", "long", "2"), ("XYZ", "long", "1")} == {
        (p["position_key"], p["side"], p["quantity"]) for p in rows["positions"]}
    trade = only(rows["trades"])
    assert ("p-short", "short", "2") == (trade["position_key"], trade["side"],
                                         trade["net_pnl"])
    assert 2 == only(rows["balances"])["open_positions"]


def test_trading_day_boundary_in_asia_kolkata() -> None:
    """In Asia/Kolkata (UTC+05:30) 18:29Z is 23:59 on the 1st and 18:31Z is 00:01 on the 2nd.

    Fills at those times fall on trading days 2024-03-01 and 2024-03-02; the round trip
    (buy 1 @ 10 then sell 1 @ 7) closes on the 2nd with net -3.
    """
    rows = fold_rows(stored([
        ev("limits", {"timezone": "Asia/Kolkata"}, time="2024-03-01T00:00:00Z"),
        fill("buy", "1", "10", time="2024-03-01T18:29:00Z"),
        fill("sell", "1", "7", time="2024-03-01T18:31:00Z"),
    ]))
    days = {d["date"]: d for d in rows["daily"]}
    assert ["2024-03-01", "2024-03-02"] == sorted(days)
    assert (1, 0, "0") == (days["2024-03-01"]["fills"], days["2024-03-01"]["trades_closed"],
                           days["2024-03-01"]["realized_pnl"])
    assert (1, 1, 1, "-3", "-3") == (
        days["2024-03-02"]["fills"], days["2024-03-02"]["trades_closed"],
        days["2024-03-02"]["losses"], days["2024-03-02"]["realized_pnl"],
        days["2024-03-02"]["gross_loss"])


def test_trading_day_in_new_york_follows_daylight_saving() -> None:
    """America/New_York is UTC-5 before 2024-03-10 and UTC-4 after: 04:30Z is the previous
    day on 2024-03-08 (23:30 EST) and 2024-03-12 (00:30 EDT is the 12th; 03:30Z is the 11th).
    """
    rows = fold_rows(stored([
        ev("limits", {"timezone": "America/New_York"}, time="2024-03-01T00:00:00Z"),
        ev("cash", {"amount": "1", "kind": "deposit"}, time="2024-03-09T04:30:00Z"),
        ev("cash", {"amount": "2", "kind": "deposit"}, time="2024-03-12T03:30:00Z"),
        ev("cash", {"amount": "4", "kind": "deposit"}, time="2024-03-12T04:30:00Z"),
    ]))
    assert [("2024-03-08", "1"), ("2024-03-11", "2"), ("2024-03-12", "4")] == [
        (d["date"], d["cash_flow"]) for d in rows["daily"]]


def test_daily_loss_used_against_the_limit() -> None:
    """loss_used = max(0, -realized); limit_hit once loss_used >= daily_loss_limit (50).

    buy 10 @ 20, sell 5 @ 16 fee 1 -> realized 5 * (16 - 20) - 1 = -21: used 21, not hit;
    sell 5 @ 14 fee 1 -> realized -21 + 5 * (14 - 20) - 1 = -52: used 52 >= 50, hit.
    The next day starts fresh: a deposit there has loss_used 0 and the same limit.
    """
    events = stored([
        ev("limits", {"daily_loss_limit": "50"}, time="2024-03-01T08:00:00Z"),
        fill("buy", "10", "20", time="2024-03-01T09:00:00Z"),
        fill("sell", "5", "16", fee="1", time="2024-03-01T10:00:00Z"),
        fill("sell", "5", "14", fee="1", time="2024-03-01T11:00:00Z"),
        ev("cash", {"amount": "100", "kind": "deposit"}, time="2024-03-02T09:00:00Z"),
    ])
    day = only(fold_rows(events[:3])["daily"])
    assert ("-21", "21", "50", False) == (day["realized_pnl"], day["loss_used"],
                                          day["daily_loss_limit"], day["limit_hit"])
    first, second = fold_rows(events)["daily"]
    assert ("-52", "52", True, "-52") == (first["realized_pnl"], first["loss_used"],
                                          first["limit_hit"], first["gross_loss"])
    assert ("0", "0", "50", False, "100") == (
        second["realized_pnl"], second["loss_used"], second["daily_loss_limit"],
        second["limit_hit"], second["cash_flow"])


def test_daily_without_a_limit_is_never_hit() -> None:
    """With no limit set, ``daily_loss_limit`` is null and ``limit_hit`` false."""
    day = only(fold_rows(stored([fill("buy", "1", "10", fee="5")]))["daily"])
    assert ("-5", "5", None, False) == (day["realized_pnl"], day["loss_used"],
                                        day["daily_loss_limit"], day["limit_hit"])


def test_cash_balance_and_equity() -> None:
    """cash sums deposits and withdrawals; balance = cash + realized; equity adds unrealized.

    deposit 1000, withdrawal -250.5 -> cash 749.5; buy 2 @ 10 fee 0.5 -> realized -0.5;
    mark 11 -> unrealized 2; balance 749; equity 751.
    """
    rows = fold_rows(stored([
        ev("cash", {"amount": "1000", "kind": "deposit"}),
        ev("cash", {"amount": "-250.5", "kind": "withdrawal"}),
        fill("buy", "2", "10", fee="0.5"),
        ev("mark", {"prices": {"XYZ": "11"}}),
    ]))
    balance = only(rows["balances"])
    assert {"cash": "749.5", "realized_pnl": "-0.5", "balance": "749",
            "unrealized_pnl": "2", "equity": "751", "open_positions": 1} == {
        k: balance[k] for k in ("cash", "realized_pnl", "balance", "unrealized_pnl", "equity",
                                "open_positions")}
    assert "749.5" == only(rows["daily"])["cash_flow"]


def test_signal_status_updates() -> None:
    """A signal starts active; a status event sets status, reason and updated_at."""
    rows = fold_rows(stored([
        ev("signal", {"signal_id": "s1", "strategy": "sma", "symbol": "XYZ", "side": "long",
                      "entry_price": "10", "stop_loss": "9", "take_profit": "12",
                      "confidence": "0.75"}, time="2024-03-01T10:00:00+01:00"),
        ev("status", {"entity": "signal", "entity_id": "s1", "status": "triggered",
                      "reason": "crossed"}, time="2024-03-01T10:05:00Z"),
        ev("status", {"entity": "signal", "entity_id": "unknown", "status": "closed"}),
    ]))
    assert [{
        "account": "acct-1", "signal_id": "s1", "strategy": "sma", "symbol": "XYZ",
        "side": "long", "status": "triggered", "entry_price": "10", "stop_loss": "9",
        "take_profit": "12", "confidence": "0.75", "timeframe": None, "expires_at": None,
        "note": None, "parent_signal_id": None, "created_at": "2024-03-01T09:00:00Z",
        "updated_at": "2024-03-01T10:05:00Z", "reason": "crossed", "attrs": None,
    }] == rows["signals"]
    assert 1 == only(rows["daily"])["signals"]


def test_order_status_and_filled_quantity() -> None:
    """An order starts submitted; fills naming it add to filled_quantity; status events set
    its status (a fill does not); the fill's position takes the order's signal and levels."""
    rows = fold_rows(stored([
        ev("signal", {"signal_id": "s1", "strategy": "sma", "symbol": "XYZ", "side": "long",
                      "stop_loss": "9", "take_profit": "12"}),
        ev("order", {"order_id": "o1", "symbol": "XYZ", "side": "buy", "quantity": "5",
                     "order_type": "limit", "limit_price": "10", "signal_id": "s1"},
           time="2024-03-01T12:00:00Z"),
        ev("status", {"entity": "order", "entity_id": "o1", "status": "accepted"},
           time="2024-03-01T12:00:01Z"),
        fill("buy", "2", "10", order_id="o1", time="2024-03-01T12:00:02Z"),
        fill("buy", "1.5", "10", order_id="o1", time="2024-03-01T12:00:03Z"),
        ev("status", {"entity": "order", "entity_id": "o1", "status": "partially_filled"},
           time="2024-03-01T12:00:04Z"),
    ]))
    order = only(rows["orders"])
    assert {"order_id": "o1", "side": "buy", "order_type": "limit", "quantity": "5",
            "filled_quantity": "3.5", "limit_price": "10", "stop_price": None,
            "status": "partially_filled", "created_at": "2024-03-01T12:00:00Z",
            "updated_at": "2024-03-01T12:00:04Z"} == {
        k: order[k] for k in ("order_id", "side", "order_type", "quantity", "filled_quantity",
                              "limit_price", "stop_price", "status", "created_at",
                              "updated_at")}
    position = only(rows["positions"])
    assert ("s1", "9", "12", "3.5") == (position["signal_id"], position["stop_loss"],
                                        position["take_profit"], position["quantity"])


def test_journal_rows() -> None:
    """Each journal event is a row in seq order, with its time in UTC and its tags."""
    rows = fold_rows(stored([
        ev("journal", {"text": "entered on the breakout", "tags": ["breakout", "eu"],
                       "symbol": "XYZ", "signal_id": "s1"}, time="2024-03-01T14:00:00+02:00"),
        ev("journal", {"text": "note"}, account="other"),
    ]))
    assert [
        {"account": "acct-1", "seq": 1, "time": "2024-03-01T12:00:00Z",
         "text": "entered on the breakout", "tags": ["breakout", "eu"], "symbol": "XYZ",
         "position_id": None, "signal_id": "s1", "attrs": None},
        {"account": "other", "seq": 2, "time": "2024-03-01T12:00:00Z", "text": "note",
         "tags": None, "symbol": None, "position_id": None, "signal_id": None,
         "attrs": None},
    ] == rows["journal"]


def test_balance_is_exact_beyond_28_digits() -> None:
    """balance = cash + realized to the last digit even past Python's default 28 digits.

    buy 1 @ 1, buy 2 @ 2 -> avg 5/3 = 1.66666666666666666667 (20 places);
    sell 3 @ 2 -> realized 3 * (2 - 1.66666666666666666667) = 0.99999999999999999999;
    with cash 1000000000000 the balance has 33 significant digits.
    """
    rows = fold_rows(stored([
        ev("cash", {"amount": "1000000000000", "kind": "deposit"}),
        fill("buy", "1", "1"),
        fill("buy", "2", "2"),
        fill("sell", "3", "2"),
    ]))
    balance = only(rows["balances"])
    assert ("0.99999999999999999999", "1000000000000.99999999999999999999") == (
        balance["realized_pnl"], balance["balance"])


def test_fold_accepts_a_fill_without_fee_or_multiplier() -> None:
    """A stored fill whose data leaves out the defaulted ``fee`` and ``multiplier`` (as an
    old or hand-written payload may) folds with fee 0 and multiplier 1."""
    [event] = stored([fill("buy", "1", "10")])
    data = {k: v for k, v in event.data.items() if k not in {"fee", "multiplier"}}
    bare = type(event)(event.seq, event.event_id, event.source, event.event_type, event.time,
                       event.account, event.specversion, event.datacontenttype, data,
                       event.recorded_at, event.schema_version, event.hash)
    position = only(rows_of(fold([bare], State()))["positions"])
    assert ("1", "0") == (position["multiplier"], position["fees"])
