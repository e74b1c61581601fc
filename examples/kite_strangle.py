"""A Kite-style NIFTY short strangle with a trailing stop, recorded through tradelog.

What a Zerodha Kite strangle bot records on one expiry-week day (times in IST):

- the ``account`` (INR), the ``strategy`` with its parameters, and the ``limits``: a daily
  loss limit of 5,000 and the trading day in ``Asia/Kolkata``;
- both option contracts as ``instrument`` events: exchange NFO, strike, expiry, lot size,
  with Kite's segment, instrument token and trading symbol in ``attrs``;
- 09:20, the entry: a ``signal``, ``order`` and ``fill`` per leg (sell 2 lots of 25 of the
  23500 call and of the 22500 put); each fill's ``attrs`` carry the token, the lots, the
  trailing stop-loss level (on the combined premium) and the profit it protects;
- 11:30, premiums have decayed: a ``mark``, and a ``journal`` entry with the trailing
  stop moved down to 130, protecting 4,250;
- 13:05, the combined premium climbs back to 130: both legs are bought back with
  ``exit_reason`` ``trailing_stop`` and ``exit_detail`` ``auto_trailing_sl``; the bot
  blocks trading for the rest of the day (``limits`` with ``trading_blocked``).

    python -m examples.kite_strangle [--socket PATH | --dir PATH]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from daemon.client import Client
from examples.common import Events, daemon_socket, parse_args, show

__all__ = ["ACCOUNT", "CALL", "PUT", "run"]

ACCOUNT = "kite-strangle"
SOURCE = "bot/kite-strangle"
STRATEGY = "nifty-short-strangle"
CALL, PUT = "NIFTY24JUN23500CE", "NIFTY24JUN22500PE"
TOKENS = {CALL: 10283522, PUT: 10281474}
QUANTITY = "50"        # 2 lots of 25
FEE = "23.60"          # brokerage 20 + 18% GST, per executed order
LIMITS = {"daily_loss_limit": "5000", "timezone": "Asia/Kolkata"}


def _ev() -> Events:
    return Events(SOURCE, ACCOUNT)


def _at(clock: str) -> str:
    return f"2024-06-20T{clock}:00+05:30"


def setup_events() -> list[dict[str, Any]]:
    """The account, the strategy, the risk limits and both contracts."""
    ev = _ev()
    at = _at("09:15")
    events = [
        ev.make("account", "account", at, {
            "name": "Zerodha F&O", "kind": "live", "broker": "zerodha", "currency": "INR",
            "benchmark": "NIFTY 50", "attrs": {"client_id": "AB1234"}}),
        ev.make("strategy", f"strategy-{STRATEGY}", at, {
            "strategy": STRATEGY,
            "description": "Sell OTM call and put, trail a stop on the combined premium",
            "parameters": {"entry_time": "09:20", "call_offset_points": 400,
                           "put_offset_points": 600, "lots": 2,
                           "initial_sl_pct": 30, "trail_step_points": 10}}),
        ev.make("limits", "limits-0620", at, {**LIMITS, "attrs": {"max_lots": 4}}),
    ]
    for symbol, strike, kind in ((CALL, "23500", "call"), (PUT, "22500", "put")):
        events.append(ev.make("instrument", f"instrument-{symbol}", at, {
            "symbol": symbol, "venue": "NFO", "asset_class": "option", "currency": "INR",
            "multiplier": "1", "tick_size": "0.05", "lot_size": "25", "underlying": "NIFTY",
            "expiry": "2024-06-27", "strike": strike, "option_type": kind,
            "attrs": {"exchange": "NFO", "segment": "NFO-OPT", "tradingsymbol": symbol,
                      "instrument_token": TOKENS[symbol]}}))
    return events


def _leg(symbol: str, side: str, price: str, key: str, clock: str,
         attrs: dict[str, Any], exit_: bool) -> list[dict[str, Any]]:
    """One leg: its signal (when it opens), order, fill, and the order's and the
    signal's status."""
    ev = _ev()
    at = _at(clock)
    signal_id = f"strangle-0620-{symbol[-2:].lower()}"
    order_id = f"2406200{TOKENS[symbol]}{key}"
    fill: dict[str, Any] = {
        "symbol": symbol, "side": side, "quantity": QUANTITY, "price": price, "fee": FEE,
        "order_id": order_id, "signal_id": signal_id,
        "attrs": {"exchange": "NFO", "instrument_token": TOKENS[symbol], "lots": 2, **attrs}}
    events: list[dict[str, Any]] = []
    if not exit_:
        events.append(ev.make("signal", signal_id, at, {
            "signal_id": signal_id, "strategy": STRATEGY, "symbol": symbol, "side": "short",
            "entry_price": price, "timeframe": "1d", "attrs": {"leg": symbol[-2:]}}))
    else:
        fill.update(exit_reason="trailing_stop", exit_detail="auto_trailing_sl")
    events += [
        ev.make("order", order_id, at, {
            "order_id": order_id, "symbol": symbol, "side": side, "quantity": QUANTITY,
            "order_type": "market", "signal_id": signal_id,
            "attrs": {"product": "NRML", "variety": "regular", "tag": "strangle"}}),
        ev.make("fill", f"trade-{order_id}", at, fill),
        ev.make("status", f"{order_id}-filled", at, {
            "entity": "order", "entity_id": order_id, "status": "filled", "price": price,
            "attrs": {"kite_status": "COMPLETE"}}),
    ]
    status: dict[str, Any] = {"entity": "signal", "entity_id": signal_id,
                              "status": "closed" if exit_ else "triggered", "price": price}
    if exit_:
        status["reason"] = "trailing_stop"
    events.append(ev.make("status", f"{signal_id}-{status['status']}", at, status))
    return events


def entry_events() -> list[dict[str, Any]]:
    """Sell both legs: 215 of combined premium, the stop at 215 * 1.3 = 279.50."""
    trail = {"trailing_sl": "279.50", "protected_profit": "0"}
    return (_leg(CALL, "sell", "120.00", "01", "09:20", trail, exit_=False)
            + _leg(PUT, "sell", "95.00", "02", "09:20", trail, exit_=False))


def trail_events() -> list[dict[str, Any]]:
    """The premiums at 68 + 52 = 120: the stop trails to 130, protecting (215-130)*50."""
    ev = _ev()
    at = _at("11:30")
    return [
        ev.make("mark", "mark-1130", at, {"prices": {CALL: "68.00", PUT: "52.00"}}),
        ev.make("journal", "trail-1130", at, {
            "text": "Combined premium 120: trailing SL moved from 279.50 to 130, "
                    "protecting 4250.",
            "tags": ["trailing_sl"], "signal_id": "strangle-0620-ce",
            "attrs": {"trailing_sl": "130", "protected_profit": "4250",
                      "combined_premium": "120"}}),
    ]


def exit_events() -> list[dict[str, Any]]:
    """The combined premium back at 70 + 60 = 130: both legs bought back, trading
    blocked for the day."""
    trail = {"trailing_sl": "130", "protected_profit": "4250"}
    events = (_leg(CALL, "buy", "70.00", "03", "13:05", trail, exit_=True)
              + _leg(PUT, "buy", "60.00", "04", "13:05", trail, exit_=True))
    events.append(_ev().make("limits", "limits-0620-blocked", _at("13:05"), {
        **LIMITS, "trading_blocked": True,
        "attrs": {"max_lots": 4, "blocked_reason": "strangle exited for the day"}}))
    return events


def run(socket_path: Path, console: Console) -> None:
    """Record the day through the daemon at ``socket_path`` and print its summary."""
    with Client(socket_path) as client:
        client.append(setup_events())
        client.append(entry_events())
        client.append(trail_events())
        show(console, "11:30, both legs open", client.query("positions", account=ACCOUNT),
             ["symbol", "side", "quantity", "avg_price", "mark_price", "unrealized_pnl"])
        client.append(exit_events())
        show(console, "the contracts", client.query("instruments", account=ACCOUNT),
             ["symbol", "venue", "strike", "option_type", "lot_size", "attrs"])
        show(console, "the legs, closed by the trailing stop",
             client.query("trades", account=ACCOUNT),
             ["symbol", "side", "entry_price", "exit_price", "net_pnl", "exit_reason",
              "exit_detail", "attrs"])
        show(console, "the day", client.query("daily", account=ACCOUNT),
             ["date", "realized_pnl", "trades_closed", "wins", "fees", "daily_loss_limit",
              "limit_hit", "trading_blocked"])


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    with daemon_socket(args.socket, args.dir) as sock:
        run(sock, Console(width=120))


if __name__ == "__main__":
    main()
