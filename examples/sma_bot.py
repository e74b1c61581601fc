"""A paper-trading bot: SMA crossover on EUR/USD hourly bars, persisted through tradelog.

Copy this file as the start of your own bot. It replays real bars from a CSV file and,
at the close of each bar, sends the daemon what a live bot would send:

- at the start: what the ``account`` is (paper, USD), what EURUSD is (an ``instrument``:
  fx, venue, pip size, lot size), the ``strategy`` with its parameters (moving-average
  lengths, stop and target), a ``cash`` deposit and the ``limits`` (daily loss limit,
  time zone);
- every bar: a ``mark`` with the close, so unrealized P&L and equity stay current;
- when the fast SMA crosses the slow one: a ``signal``, an ``order``, its ``fill`` with a
  fee, and ``status`` changes for the order (filled) and the signal (triggered); the
  moving averages at the crossover and the risk:reward go in ``attrs`` of the signal and
  the opening fill;
- on each exit (reversal, stop loss or take profit): the closing ``order`` and ``fill``
  with its ``exit_reason`` (and the pips won or lost in ``attrs``), ``status`` changes,
  and a ``journal`` entry saying why.

Each bar's events go in one ``append``: stored together or not at all. Event ids are
derived from the bar, so running the bot twice stores nothing twice.

    python -m examples.sma_bot --socket PATH [--csv FILE] [--bars N]
"""

from __future__ import annotations

import argparse
import csv
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from daemon.client import Client

__all__ = ["Bar", "SmaCrossoverBot", "read_bars"]

DATA = Path(__file__).parent / "data" / "eurusd_h1.csv"
ACCOUNT = "demo-eurusd"
SOURCE = "bot/sma-eurusd"
SYMBOL = "EURUSD"
FAST, SLOW = 10, 30
QUANTITY = Decimal(100_000)          # one standard lot, in EUR
FEE_RATE = Decimal("0.00002")        # 0.2 bp of notional per fill, charged in USD
STOP, TARGET = Decimal("0.0050"), Decimal("0.0100")  # 50 and 100 pips
DEPOSIT = Decimal(100_000)
DAILY_LOSS_LIMIT = Decimal(2_000)
CENT = Decimal("0.01")
STRATEGY = f"sma-{FAST}-{SLOW}"
MA_PLACES = Decimal("0.000001")     # moving averages in attrs: to 1/100 of a pip


@dataclass(frozen=True)
class Bar:
    """One hourly bar; ``time`` is its open (UTC), ``close_time`` one hour later."""

    time: datetime
    high: Decimal
    low: Decimal
    close: Decimal

    @property
    def close_time(self) -> str:
        return (self.time + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def read_bars(path: Path = DATA, limit: int | None = None) -> list[Bar]:
    """Bars from a CSV with columns time, Open, High, Low, Close, Volume (time in UTC)."""
    bars: list[Bar] = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            stamp = datetime.strptime(row[""] or row.get("time", ""), "%Y-%m-%d %H:%M:%S")
            bars.append(Bar(stamp.replace(tzinfo=UTC), Decimal(row["High"]),
                            Decimal(row["Low"]), Decimal(row["Close"])))
            if limit is not None and len(bars) >= limit:
                break
    return bars


@dataclass
class _Open:
    side: str           # "long" or "short"
    entry: Decimal
    stop: Decimal
    target: Decimal
    signal_id: str


class SmaCrossoverBot:
    """Always-flat-or-in SMA(10)/SMA(30) crossover with a 50-pip stop and 100-pip target."""

    def __init__(self, send: Callable[[list[dict[str, Any]]], Any]) -> None:
        self.send = send
        self.fast: deque[Decimal] = deque(maxlen=FAST)
        self.slow: deque[Decimal] = deque(maxlen=SLOW)
        self.previous: int = 0          # sign of (fast - slow) at the last bar
        self.position: _Open | None = None

    def event(self, kind: str, key: str, bar: Bar, data: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"{kind}-{key}", "source": SOURCE, "type": kind,
                "time": bar.close_time, "account": ACCOUNT, "data": data}

    def start(self, first: Bar) -> None:
        """Say what the account, the instrument and the strategy are; fund the account
        and set its risk limits."""
        self.send([
            self.event("account", "paper", first, {
                "name": "EUR/USD paper", "kind": "paper", "broker": "paper",
                "currency": "USD", "benchmark": SYMBOL,
                "description": "SMA crossover demo over real EUR/USD hourly bars"}),
            self.event("instrument", SYMBOL, first, {
                "symbol": SYMBOL, "venue": "OTC", "asset_class": "fx", "currency": "USD",
                "multiplier": "1", "tick_size": "0.00001", "lot_size": str(QUANTITY),
                "underlying": "EUR", "description": "Euro / US dollar spot",
                "attrs": {"pip": "0.0001", "base": "EUR", "quote": "USD"}}),
            self.event("strategy", STRATEGY, first, {
                "strategy": STRATEGY,
                "description": f"SMA({FAST}) / SMA({SLOW}) crossover, always flat or in",
                "parameters": {"fast": FAST, "slow": SLOW, "timeframe": "1h",
                               "stop_pips": int(STOP * 10_000),
                               "target_pips": int(TARGET * 10_000),
                               "quantity": str(QUANTITY), "fee_rate": str(FEE_RATE)},
                "attrs": {"risk_reward": str(TARGET / STOP)}}),
            self.event("cash", "deposit", first, {"amount": str(DEPOSIT), "kind": "deposit",
                                                  "note": "paper-trading capital"}),
            self.event("limits", "initial", first, {"daily_loss_limit": str(DAILY_LOSS_LIMIT),
                                                    "max_open_positions": 1,
                                                    "timezone": "UTC"}),
        ])

    def on_bar(self, index: int, bar: Bar) -> None:
        """Everything the bot does at one bar's close, sent as one append."""
        events = [self.event("mark", str(index), bar, {"prices": {SYMBOL: str(bar.close)}})]
        if self.position is not None:
            events += self._check_exit(index, bar)
        self.fast.append(bar.close)
        self.slow.append(bar.close)
        if len(self.slow) == SLOW:
            fast_ma = sum(self.fast, Decimal(0)) / FAST
            slow_ma = sum(self.slow, Decimal(0)) / SLOW
            diff = fast_ma - slow_ma
            now = (diff > 0) - (diff < 0)
            if now and self.previous and now != self.previous:
                averages = {f"sma_{FAST}": str(fast_ma.quantize(MA_PLACES)),
                            f"sma_{SLOW}": str(slow_ma.quantize(MA_PLACES))}
                events += self._reverse(index, bar, "long" if now > 0 else "short", averages)
            if now:
                self.previous = now
        self.send(events)

    def _check_exit(self, index: int, bar: Bar) -> list[dict[str, Any]]:
        held = self.position
        assert held is not None
        long = held.side == "long"
        if (bar.low <= held.stop) if long else (bar.high >= held.stop):
            return self._close(index, bar, held.stop, "stop_loss", "stop loss hit")
        if (bar.high >= held.target) if long else (bar.low <= held.target):
            return self._close(index, bar, held.target, "take_profit", "target reached")
        return []

    def _reverse(self, index: int, bar: Bar, side: str,
                 averages: dict[str, str]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self.position is not None:
            events += self._close(index, bar, bar.close, "signal",
                                  f"SMA{FAST} crossed SMA{SLOW} the other way")
        signal_id = f"sig-{index}"
        sign = 1 if side == "long" else -1
        stop = bar.close - sign * STOP
        target = bar.close + sign * TARGET
        attrs = {**averages, "risk_reward": str(TARGET / STOP)}
        events.append(self.event("signal", str(index), bar, {
            "signal_id": signal_id, "strategy": STRATEGY, "symbol": SYMBOL,
            "side": side, "entry_price": str(bar.close), "stop_loss": str(stop),
            "take_profit": str(target), "timeframe": "1h", "confidence": "0.5",
            "attrs": attrs}))
        events += self._trade(index, bar, "buy" if side == "long" else "sell", bar.close,
                              "open", signal_id, attrs=attrs)
        events.append(self.event("status", f"{signal_id}-triggered", bar, {
            "entity": "signal", "entity_id": signal_id, "status": "triggered",
            "price": str(bar.close)}))
        self.position = _Open(side, bar.close, stop, target, signal_id)
        return events

    def _trade(self, index: int, bar: Bar, side: str, price: Decimal, leg: str,
               signal_id: str, exit_reason: str | None = None,
               attrs: dict[str, str] | None = None) -> list[dict[str, Any]]:
        order_id = f"ord-{index}-{leg}"
        fee = (QUANTITY * price * FEE_RATE).quantize(CENT)
        fill: dict[str, Any] = {"symbol": SYMBOL, "side": side, "quantity": str(QUANTITY),
                                "price": str(price), "fee": str(fee), "order_id": order_id,
                                "signal_id": signal_id}
        if exit_reason is not None:
            fill["exit_reason"] = exit_reason
        if attrs:
            fill["attrs"] = attrs
        return [
            self.event("order", order_id, bar, {
                "order_id": order_id, "symbol": SYMBOL, "side": side,
                "quantity": str(QUANTITY), "order_type": "market", "signal_id": signal_id,
                "attrs": {"leg": leg}}),
            self.event("fill", order_id, bar, fill),
            self.event("status", f"{order_id}-filled", bar, {
                "entity": "order", "entity_id": order_id, "status": "filled",
                "price": str(price)}),
        ]

    def _close(self, index: int, bar: Bar, price: Decimal, reason: str,
               why: str) -> list[dict[str, Any]]:
        held = self.position
        assert held is not None
        self.position = None
        side = "sell" if held.side == "long" else "buy"
        sign = 1 if held.side == "long" else -1
        pips = (price - held.entry) * sign * 10_000
        events = self._trade(index, bar, side, price, "close", held.signal_id, reason,
                             attrs={"exit_pips": f"{pips:+.1f}"})
        events.append(self.event("status", f"{held.signal_id}-closed", bar, {
            "entity": "signal", "entity_id": held.signal_id, "status": "closed",
            "reason": reason}))
        events.append(self.event("journal", f"{index}-exit", bar, {
            "text": f"Closed {held.side} {QUANTITY} {SYMBOL} at {price} ({pips:+.1f} pips): "
                    f"{why}.",
            "tags": ["exit", reason], "symbol": SYMBOL, "signal_id": held.signal_id}))
        return events


def run(socket_path: Path, bars: list[Bar],
        on_progress: Callable[[int], None] | None = None) -> int:
    """Replay ``bars`` through the daemon at ``socket_path``; returns the events sent."""
    sent = 0
    with Client(socket_path) as client:

        def send(events: list[dict[str, Any]]) -> None:
            nonlocal sent
            client.append(events)
            sent += len(events)

        bot = SmaCrossoverBot(send)
        bot.start(bars[0])
        for index, bar in enumerate(bars):
            bot.on_bar(index, bar)
            if on_progress is not None:
                on_progress(index + 1)
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--csv", type=Path, default=DATA)
    parser.add_argument("--bars", type=int, help="use only the first N bars")
    args = parser.parse_args()
    bars = read_bars(args.csv, args.bars)
    print(f"sent {run(args.socket, bars)} events for {len(bars)} bars")


if __name__ == "__main__":
    main()
