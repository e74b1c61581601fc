"""The demo bot through the real daemon, checked against an independent calculation."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from daemon.client import Client
from examples.sma_bot import ACCOUNT, DATA, read_bars, run
from tests.support import DaemonProcess

BARS = 2000


def independent_backtest(path: Path, limit: int) -> tuple[int, Decimal, Decimal]:
    """Closed round trips, realized P&L net of fees, and cash, computed from the CSV alone.

    Written apart from the bot: SMA(10)/SMA(30) of closes over whole windows, crossover
    when the sign of fast - slow flips (ignoring bars where they are equal), a 50-pip stop
    and a 100-pip target checked on each later bar's low/high before the crossover, one
    lot of 100,000, a fee of 0.2 bp of notional per fill rounded to the cent.
    """
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))[1: limit + 1]
    highs = [Decimal(r[2]) for r in rows]
    lows = [Decimal(r[3]) for r in rows]
    closes = [Decimal(r[4]) for r in rows]
    lot = Decimal(100000)

    def fee(price: Decimal) -> Decimal:
        return (lot * price * Decimal("0.00002")).quantize(Decimal("0.01"))

    signs: list[int] = []
    for i in range(len(closes)):
        if i < 29:
            signs.append(0)
            continue
        fast = sum(closes[i - 9: i + 1], Decimal(0)) / 10
        diff = fast - sum(closes[i - 29: i + 1], Decimal(0)) / 30
        signs.append((diff > 0) - (diff < 0))
    realized = Decimal(0)
    trades = 0
    held: tuple[int, Decimal] | None = None   # (direction, entry)
    last_sign = 0
    for i, close in enumerate(closes):
        if held is not None:
            direction, entry = held
            stop = entry - direction * Decimal("0.0050")
            target = entry + direction * Decimal("0.0100")
            hit_stop = lows[i] <= stop if direction > 0 else highs[i] >= stop
            hit_target = highs[i] >= target if direction > 0 else lows[i] <= target
            if hit_stop or hit_target:
                exit_price = stop if hit_stop else target
                realized += (exit_price - entry) * direction * lot - fee(exit_price)
                trades += 1
                held = None
        sign = signs[i]
        if sign and last_sign and sign != last_sign:
            if held is not None:
                realized += (close - held[1]) * held[0] * lot - fee(close)
                trades += 1
            held = (sign, close)
            realized -= fee(close)
        if sign:
            last_sign = sign
    return trades, realized, Decimal(100000)


def test_demo_matches_independent_backtest(tmp_path: Path) -> None:
    """The bot's closed-trade count and final balance, as the daemon's views show them,
    equal an independent calculation over the same real EUR/USD bars."""
    trades, realized, cash = independent_backtest(DATA, BARS)
    with DaemonProcess(tmp_path) as daemon:
        run(daemon.socket, read_bars(DATA, BARS))
        with Client(daemon.socket) as client:
            closed = client.query("trades", account=ACCOUNT)["rows"]
            [balance] = client.query("balances", account=ACCOUNT)["rows"]
            positions = client.query("positions", account=ACCOUNT)["rows"]
    open_realized = sum((Decimal(p["realized_pnl"]) for p in positions), Decimal(0))
    assert trades == len(closed)
    assert realized == Decimal(balance["realized_pnl"])
    assert cash + realized == Decimal(balance["balance"])
    assert realized == sum((Decimal(t["net_pnl"]) for t in closed), Decimal(0)) + open_realized
    assert trades > 20


def test_demo_rerun_stores_nothing_twice(tmp_path: Path) -> None:
    """Running the bot again over the same bars stores no event twice (ids come from bars)."""
    bars = read_bars(DATA, 300)
    with DaemonProcess(tmp_path) as daemon:
        run(daemon.socket, bars)
        with Client(daemon.socket) as client:
            first = client.health()["last_seq"]
            run(daemon.socket, bars)
            assert first == client.health()["last_seq"]


def test_demo_bot_says_what_it_trades_and_what_it_knew(tmp_path: Path) -> None:
    """The bot sends its account (paper, USD), EURUSD as an fx instrument and its strategy
    with the moving-average lengths and stop/target; each signal's ``attrs`` hold SMA(10)
    and SMA(30) of the closes up to its bar (to 6 places) and risk:reward 2, and each
    trade's the pips it made, (exit - entry) * direction * 10,000."""
    bars = 600
    with DATA.open(newline="") as handle:
        closes = [Decimal(r[4]) for r in list(csv.reader(handle))[1: bars + 1]]
    with DaemonProcess(tmp_path) as daemon:
        run(daemon.socket, read_bars(DATA, bars))
        with Client(daemon.socket) as client:
            [account] = client.query("accounts", account=ACCOUNT)["rows"]
            [instrument] = client.query("instruments", account=ACCOUNT)["rows"]
            [strategy] = client.query("strategies", account=ACCOUNT)["rows"]
            signals = client.query("signals", account=ACCOUNT)["rows"]
            trades = client.query("trades", account=ACCOUNT)["rows"]
    assert ("paper", "USD") == (account["kind"], account["currency"])
    assert ("EURUSD", "fx", "OTC", Decimal("0.00001"), Decimal(100000)) == (
        instrument["symbol"], instrument["asset_class"], instrument["venue"],
        Decimal(instrument["tick_size"]), Decimal(instrument["lot_size"]))
    assert ("sma-10-30", 10, 30, 50, 100, len(signals)) == (
        strategy["strategy"], strategy["parameters"]["fast"], strategy["parameters"]["slow"],
        strategy["parameters"]["stop_pips"], strategy["parameters"]["target_pips"],
        strategy["signals"])
    six = Decimal("0.000001")
    expected = []
    for row in signals:
        i = int(row["signal_id"].removeprefix("sig-"))
        fast = sum(closes[i - 9: i + 1], Decimal(0)) / 10
        slow = sum(closes[i - 29: i + 1], Decimal(0)) / 30
        expected.append({"sma_10": str(fast.quantize(six)), "sma_30": str(slow.quantize(six)),
                         "risk_reward": "2"})
    assert expected == [row["attrs"] for row in signals]
    pips = [(Decimal(t["exit_price"]) - Decimal(t["entry_price"]))
            * (1 if t["side"] == "long" else -1) * 10000 for t in trades]
    assert [f"{p:+.1f}" for p in pips] == [t["attrs"]["exit_pips"] for t in trades]
    assert len(trades) > 5


def test_demo_prints_account_instrument_strategy_and_trade_attrs(tmp_path: Path) -> None:
    """``python -m examples.demo`` shows the accounts, instruments and strategies views
    and the last trades' ``attrs``, and ends with the state identical across the restart
    and the chain verified (exit 0)."""
    done = subprocess.run([sys.executable, "-m", "examples.demo", "--bars", "400",
                           "--dir", str(tmp_path / "demo")],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    assert 0 == done.returncode, done.stdout[-2000:] + done.stderr[-2000:]
    for expected in ("accounts (as of seq", "instruments (as of seq", "strategies (as of seq",
                     "what the bot put in the last trades' attrs", "sma_10=", "exit_pips=",
                     "state after restart identical"):
        assert expected in done.stdout
