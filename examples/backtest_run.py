"""A backtest run recorded as its own account, and its result read back from the views.

A prediction/backtest bot runs its strategy over history and keeps each run apart from
live trading: one account per run, of ``kind`` ``backtest``. What it records:

- the ``account`` (kind ``backtest``, the run's id and data set in ``attrs``), the
  ``instrument`` (BTCUSDT on Binance, crypto) and a ``cash`` deposit of the run's capital;
- the ``strategy`` with every parameter of the run (moving averages, timeframe, stop and
  target, fee model), so that the run can be reproduced;
- the trades the engine produced, with the bar times as event ``time``: a ``signal`` and
  the entry and exit ``fill`` of each (fee 0.1% of notional), the model's prediction in
  the signal's ``attrs``.

Then it reads the result back: the trades, the daily P&L, the balance and the strategy.

    python -m examples.backtest_run [--socket PATH | --dir PATH]
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console

from daemon.client import Client
from examples.common import Events, daemon_socket, parse_args, show

__all__ = ["ACCOUNT", "TRADES", "BacktestTrade", "events", "run"]

RUN_ID = "bt-2024-01-sma-4h-001"
ACCOUNT = RUN_ID
SOURCE = "bot/predictor"
STRATEGY = "sma-cross-4h"
SYMBOL = "BTCUSDT"
QUANTITY = Decimal("0.1")
FEE_RATE = Decimal("0.001")
CAPITAL = "10000"
PARAMETERS = {"fast": 12, "slow": 26, "timeframe": "4h", "stop_pct": "2.0",
              "target_pct": "3.0", "quantity": str(QUANTITY), "fee_rate": str(FEE_RATE),
              "data": {"symbol": SYMBOL, "from": "2024-01-02", "to": "2024-01-06"}}


@dataclass(frozen=True)
class BacktestTrade:
    """One round trip as the engine reports it; times are bar closes (UTC)."""

    side: str            # "long" or "short"
    opened_at: str
    entry: Decimal
    closed_at: str
    exit: Decimal
    exit_reason: str
    predicted_return: str


TRADES = [
    BacktestTrade("long", "2024-01-02T04:00:00Z", Decimal("42000"), "2024-01-02T20:00:00Z",
                  Decimal("43260"), "take_profit", "0.031"),
    BacktestTrade("short", "2024-01-03T08:00:00Z", Decimal("43500"), "2024-01-03T16:00:00Z",
                  Decimal("44370"), "stop_loss", "-0.024"),
    BacktestTrade("long", "2024-01-04T12:00:00Z", Decimal("44000"), "2024-01-05T08:00:00Z",
                  Decimal("45100"), "signal", "0.018"),
]


def _fee(price: Decimal) -> str:
    return str(QUANTITY * price * FEE_RATE)


def events() -> list[dict[str, Any]]:
    """Every event of the run, in order."""
    ev = Events(SOURCE, ACCOUNT)
    start = "2024-01-02T00:00:00Z"
    out = [
        ev.make("account", "account", start, {
            "name": f"Backtest {RUN_ID}", "kind": "backtest", "broker": "simulated",
            "currency": "USDT", "benchmark": SYMBOL,
            "attrs": {"run_id": RUN_ID, "engine": "vectorised", "data_set": "binance-4h"}}),
        ev.make("instrument", f"instrument-{SYMBOL}", start, {
            "symbol": SYMBOL, "venue": "binance", "asset_class": "crypto",
            "currency": "USDT", "tick_size": "0.01", "lot_size": "0.00001"}),
        ev.make("strategy", f"strategy-{STRATEGY}", start, {
            "strategy": STRATEGY, "description": "SMA 12/26 crossover on 4h bars",
            "parameters": PARAMETERS, "attrs": {"run_id": RUN_ID}}),
        ev.make("cash", "capital", start, {"amount": CAPITAL, "kind": "deposit",
                                           "note": "backtest capital"}),
    ]
    for number, trade in enumerate(TRADES, start=1):
        signal_id = f"{RUN_ID}-sig-{number}"
        buy, sell = "buy", "sell"
        opening, closing = (buy, sell) if trade.side == "long" else (sell, buy)
        sign = 1 if trade.side == "long" else -1
        stop = trade.entry * (1 - sign * Decimal("0.02"))
        target = trade.entry * (1 + sign * Decimal("0.03"))
        out += [
            ev.make("signal", signal_id, trade.opened_at, {
                "signal_id": signal_id, "strategy": STRATEGY, "symbol": SYMBOL,
                "side": trade.side, "entry_price": str(trade.entry), "stop_loss": str(stop),
                "take_profit": str(target), "timeframe": "4h",
                "attrs": {"predicted_return": trade.predicted_return}}),
            ev.make("fill", f"{RUN_ID}-fill-{number}-open", trade.opened_at, {
                "symbol": SYMBOL, "side": opening, "quantity": str(QUANTITY),
                "price": str(trade.entry), "fee": _fee(trade.entry), "signal_id": signal_id,
                "attrs": {"bar": trade.opened_at}}),
            ev.make("fill", f"{RUN_ID}-fill-{number}-close", trade.closed_at, {
                "symbol": SYMBOL, "side": closing, "quantity": str(QUANTITY),
                "price": str(trade.exit), "fee": _fee(trade.exit), "signal_id": signal_id,
                "exit_reason": trade.exit_reason}),
        ]
    return out


def run(socket_path: Path, console: Console) -> None:
    """Record the run through the daemon at ``socket_path`` and print its result."""
    with Client(socket_path) as client:
        client.append(events())
        show(console, "the run", client.query("accounts", account=ACCOUNT),
             ["account", "kind", "currency", "events", "attrs"])
        show(console, "its strategy", client.query("strategies", account=ACCOUNT),
             ["strategy", "signals", "parameters"])
        show(console, "its trades", client.query("trades", account=ACCOUNT),
             ["side", "entry_price", "exit_price", "closed_at", "net_pnl", "return_pct",
              "exit_reason"])
        show(console, "by day", client.query("daily", account=ACCOUNT),
             ["date", "realized_pnl", "trades_closed", "wins", "losses", "fees"])
        show(console, "the result", client.query("balances", account=ACCOUNT),
             ["cash", "realized_pnl", "balance"])


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    with daemon_socket(args.socket, args.dir) as sock:
        run(sock, Console(width=120))


if __name__ == "__main__":
    main()
