"""The example bots of examples/, run through the real daemon; every expected value is
worked out by hand from the events the example sends."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from daemon.client import Client
from examples import backtest_run, kite_strangle, options_play
from tests.support import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]


def quiet() -> Console:
    """A console that prints into a buffer (read with ``.file.getvalue()``)."""
    return Console(file=io.StringIO(), width=200)


def by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {row[key]: row for row in rows}


def dec(rows: list[dict[str, Any]], field: str) -> list[Decimal]:
    return [Decimal(row[field]) for row in rows]


# ------------------------------------------------------------------ options plays bot


def test_options_play_void_takes_the_wrong_fill_out_of_every_view(daemon: DaemonProcess
                                                                 ) -> None:
    """The re-sent fill shows as 6 contracts until voided; after the void the position
    is 3 contracts, the order filled 3 and the closed play made (6.50 - 4.20) * 3 * 100
    less 2 * 1.95 of fees; ``read`` still returns the wrong fill and the void."""
    options_play.run(daemon.socket, quiet())
    with Client(daemon.socket) as client:
        logged = client.read(account=options_play.ACCOUNT, types=["fill", "void"])["events"]
        seq = {event["id"]: event["seq"] for event in logged}
        with_wrong = client.query("positions", account=options_play.ACCOUNT,
                                  as_of=seq[options_play.WRONG_FILL_ID])["rows"]
        after_void = client.query("positions", account=options_play.ACCOUNT,
                                  as_of=seq[f"void-{options_play.WRONG_FILL_ID}"])["rows"]
        positions = client.query("positions", account=options_play.ACCOUNT)["rows"]
        trades = client.query("trades", account=options_play.ACCOUNT)["rows"]
        orders = by(client.query("orders", account=options_play.ACCOUNT)["rows"], "order_id")
    assert ["exec-7731", options_play.WRONG_FILL_ID, f"void-{options_play.WRONG_FILL_ID}",
            "exec-8120"] == [event["id"] for event in logged]
    assert [(Decimal(6), Decimal("4.20"), Decimal("3.90"))] == [
        (Decimal(p["quantity"]), Decimal(p["avg_price"]), Decimal(p["fees"]))
        for p in with_wrong]
    assert [(Decimal(3), Decimal("4.20"), Decimal("1.95"), Decimal(100))] == [
        (Decimal(p["quantity"]), Decimal(p["avg_price"]), Decimal(p["fees"]),
         Decimal(p["multiplier"])) for p in after_void]
    assert [] == positions
    assert Decimal(3) == Decimal(orders["ord-entry"]["filled_quantity"])
    [trade] = trades
    assert (Decimal(3), Decimal("4.20"), Decimal("6.50")) == (
        Decimal(trade["quantity"]), Decimal(trade["entry_price"]), Decimal(trade["exit_price"]))
    assert (Decimal("690"), Decimal("3.90"), Decimal("686.10")) == (
        Decimal(trade["gross_pnl"]), Decimal(trade["fees"]), Decimal(trade["net_pnl"]))
    # 100 * 686.10 / (4.20 * 3 * 100) = 54.45238095238..., to 10 places
    assert Decimal("54.4523809524") == Decimal(trade["return_pct"])
    assert ("take_profit", "exec-7731", "option", "CBOE") == (
        trade["exit_reason"], trade["trade_id"], trade["asset_class"], trade["venue"])


def test_options_play_bracket_greeks_and_history(daemon: DaemonProcess) -> None:
    """The contract's strike, expiry and type are fields of the instrument; the legs
    point to the entry signal; the greeks at entry are in the signal's and the trade's
    ``attrs``; the history has the play triggered then closed, the stop leg cancelled."""
    options_play.run(daemon.socket, quiet())
    account = options_play.ACCOUNT
    with Client(daemon.socket) as client:
        [instrument] = client.query("instruments", account=account)["rows"]
        signals = by(client.query("signals", account=account)["rows"], "signal_id")
        history = client.query("history", account=account, entity="signal")["rows"]
        [trade] = client.query("trades", account=account)["rows"]
        [strategy] = client.query("strategies", account=account)["rows"]
    assert ("SPY", Decimal(520), "2024-06-21", "call", Decimal(100)) == (
        instrument["underlying"], Decimal(instrument["strike"]), instrument["expiry"],
        instrument["option_type"], Decimal(instrument["multiplier"]))
    play = options_play.PLAY
    assert {play: None, f"{play}-tp": play, f"{play}-sl": play} == {
        key: row["parent_signal_id"] for key, row in signals.items()}
    assert {play: "closed", f"{play}-tp": "triggered", f"{play}-sl": "cancelled"} == {
        key: row["status"] for key, row in signals.items()}
    assert ("0.46", "OTO") == (signals[play]["attrs"]["delta"],
                               signals[play]["attrs"]["play_class"])
    assert ("0.46", "0.142", "0.71") == (trade["attrs"]["delta"], trade["attrs"]["iv"],
                                         trade["attrs"]["delta_at_exit"])
    assert [
        (play, None, "triggered", None, Decimal("4.20")),
        (f"{play}-tp", None, "triggered", None, Decimal("6.50")),
        (f"{play}-sl", None, "cancelled", "oco: take-profit leg filled", None),
        (play, "triggered", "closed", "take_profit", Decimal("6.50")),
    ] == [(row["entity_id"], row["previous_status"], row["status"], row["reason"],
           None if row["price"] is None else Decimal(row["price"])) for row in history]
    assert ("momentum-calls", 3, 30) == (strategy["strategy"], strategy["signals"],
                                         strategy["parameters"]["dte_max"])


# ------------------------------------------------------------------ Kite strangle bot


def test_kite_strangle_trailing_stop_exit(daemon: DaemonProcess) -> None:
    """Both legs close on the trailing stop with ``auto_trailing_sl``; the call made
    (120 - 70) * 50 and the put (95 - 60) * 50, each less two fills of 23.60; the trades
    carry the token, trailing stop and protected profit of their fills' ``attrs``."""
    kite_strangle.run(daemon.socket, quiet())
    account = kite_strangle.ACCOUNT
    with Client(daemon.socket) as client:
        trades = by(client.query("trades", account=account)["rows"], "symbol")
        nfo = client.query("trades", account=account, attrs={"exchange": "NFO"})["total"]
        [balance] = client.query("balances", account=account)["rows"]
    call, put = trades[kite_strangle.CALL], trades[kite_strangle.PUT]
    assert [("short", Decimal(50), Decimal(120), Decimal(70), Decimal("2500"),
             Decimal("47.20"), Decimal("2452.80")),
            ("short", Decimal(50), Decimal(95), Decimal(60), Decimal("1750"),
             Decimal("47.20"), Decimal("1702.80"))] == [
        (t["side"], Decimal(t["quantity"]), Decimal(t["entry_price"]),
         Decimal(t["exit_price"]), Decimal(t["gross_pnl"]), Decimal(t["fees"]),
         Decimal(t["net_pnl"])) for t in (call, put)]
    assert {("trailing_stop", "auto_trailing_sl")} == {
        (t["exit_reason"], t["exit_detail"]) for t in (call, put)}
    assert [("130", "4250", 2), ("130", "4250", 2)] == [
        (t["attrs"]["trailing_sl"], t["attrs"]["protected_profit"], t["attrs"]["lots"])
        for t in (call, put)]
    assert Decimal(10283522) == Decimal(call["attrs"]["instrument_token"])
    assert ("NFO", "option", "nifty-short-strangle") == (call["venue"], call["asset_class"],
                                                         call["strategy"])
    assert 2 == nfo
    # 2452.80 + 1702.80
    assert (Decimal("4155.60"), Decimal(0)) == (Decimal(balance["realized_pnl"]),
                                               Decimal(balance["cash"]))


def test_kite_strangle_instruments_marks_and_daily_limits(daemon: DaemonProcess) -> None:
    """The contracts keep exchange, segment, token and lot size; at 11:30 IST the marks
    68 and 52 give (68 - 120) * -50 = 2600 and (52 - 95) * -50 = 2150 unrealized; the day
    (in Asia/Kolkata) shows the 5,000 loss limit, not hit, and trading blocked."""
    kite_strangle.run(daemon.socket, quiet())
    account = kite_strangle.ACCOUNT
    with Client(daemon.socket) as client:
        instruments = by(client.query("instruments", account=account)["rows"], "symbol")
        at_1130 = by(client.query("positions", account=account,
                                  as_of_time="2024-06-20T11:30:00+05:30")["rows"], "symbol")
        [day] = client.query("daily", account=account)["rows"]
        [account_row] = client.query("accounts", account=account)["rows"]
    call = instruments[kite_strangle.CALL]
    assert ("NFO", "NFO-OPT", Decimal(10283522), Decimal(25), Decimal(23500), "call") == (
        call["attrs"]["exchange"], call["attrs"]["segment"],
        Decimal(call["attrs"]["instrument_token"]), Decimal(call["lot_size"]),
        Decimal(call["strike"]), call["option_type"])
    assert "put" == instruments[kite_strangle.PUT]["option_type"]
    assert {kite_strangle.CALL: Decimal(2600), kite_strangle.PUT: Decimal(2150)} == {
        symbol: Decimal(row["unrealized_pnl"]) for symbol, row in at_1130.items()}
    assert ("2024-06-20", Decimal("4155.60"), 2, 2, Decimal("94.40"), Decimal(5000),
            Decimal(0), False, True) == (
        day["date"], Decimal(day["realized_pnl"]), day["trades_closed"], day["wins"],
        Decimal(day["fees"]), Decimal(day["daily_loss_limit"]), Decimal(day["loss_used"]),
        day["limit_hit"], day["trading_blocked"])
    assert ("live", "zerodha", "INR") == (account_row["kind"], account_row["broker"],
                                          account_row["currency"])


# ------------------------------------------------------------------ backtest run


def test_backtest_run_recorded_as_a_backtest_account(daemon: DaemonProcess) -> None:
    """The run is an account of kind ``backtest`` whose strategy row holds the run's
    parameters; its three trades, its days and its balance are those worked out from
    the engine's fills at 0.1% fee of 0.1 BTC notional."""
    backtest_run.run(daemon.socket, quiet())
    account = backtest_run.ACCOUNT
    with Client(daemon.socket) as client:
        [account_row] = client.query("accounts", account=account)["rows"]
        [strategy] = client.query("strategies", account=account)["rows"]
        trades = client.query("trades", account=account)["rows"]
        daily = client.query("daily", account=account)["rows"]
        [balance] = client.query("balances", account=account)["rows"]
    assert ("backtest", "USDT", backtest_run.RUN_ID, 13) == (
        account_row["kind"], account_row["currency"], account_row["attrs"]["run_id"],
        account_row["events"])
    assert ("sma-cross-4h", backtest_run.PARAMETERS, 3) == (
        strategy["strategy"], strategy["parameters"], strategy["signals"])
    # long 42000 -> 43260: 126 - 4.2 - 4.326; short 43500 -> 44370: -87 - 4.35 - 4.437;
    # long 44000 -> 45100: 110 - 4.4 - 4.51
    assert [Decimal("117.474"), Decimal("-95.787"), Decimal("101.09")] == dec(trades,
                                                                              "net_pnl")
    # 100 * net / (entry * 0.1)
    assert [Decimal("2.797"), Decimal("-2.202"), Decimal("2.2975")] == dec(trades,
                                                                          "return_pct")
    assert ["take_profit", "stop_loss", "signal"] == [t["exit_reason"] for t in trades]
    # the third trade's opening fee counts on the 4th, its close on the 5th
    assert [("2024-01-02", Decimal("117.474"), 1), ("2024-01-03", Decimal("-95.787"), 1),
            ("2024-01-04", Decimal("-4.4"), 0), ("2024-01-05", Decimal("105.49"), 1)] == [
        (d["date"], Decimal(d["realized_pnl"]), d["trades_closed"]) for d in daily]
    assert (Decimal(10000), Decimal("122.777"), Decimal("10122.777")) == (
        Decimal(balance["cash"]), Decimal(balance["realized_pnl"]),
        Decimal(balance["balance"]))


@pytest.mark.parametrize("example", [options_play, kite_strangle, backtest_run],
                         ids=lambda module: module.__name__)
def test_example_run_again_stores_nothing_twice(daemon: DaemonProcess, example: Any) -> None:
    """Running an example again on the same daemon (a bot restarted mid-upload) stores no
    event twice, the void included: every event id is chosen by the bot."""
    example.run(daemon.socket, quiet())
    with Client(daemon.socket) as client:
        first = client.health()["last_seq"]
        example.run(daemon.socket, quiet())
        assert first == client.health()["last_seq"]


# ------------------------------------------------------------------ as scripts


@pytest.mark.parametrize(("module", "expected"), [
    ("options_play", "fill exec-7731-dup, void void-exec-7731-dup"),
    ("kite_strangle", "auto_trailing_sl"),
    ("backtest_run", "10122.78"),  # equity, shown to 2 decimals
])
def test_example_runs_as_a_script(tmp_path: Path, module: str, expected: str) -> None:
    """``python -m examples.<name>`` starts its own daemon, records, prints its summary
    and stops the daemon (exit 0, its database left in ``--dir``)."""
    done = subprocess.run([sys.executable, "-m", f"examples.{module}", "--dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    assert (0, "") == (done.returncode, done.stderr)
    assert expected in done.stdout
    assert (tmp_path / "tradelog.db").is_file()
