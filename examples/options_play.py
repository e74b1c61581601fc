"""An options "plays" bot: one bracketed call play, recorded through tradelog.

What such a bot records, in the order it happens:

- the ``account`` (a paper account in USD) and the ``strategy`` with its parameters;
- the option contract as an ``instrument``: underlying, strike, expiry, call/put and the
  contract multiplier of 100, so that no fill has to repeat it;
- the play as a bracket of ``signal`` events: the entry, and its take-profit and stop
  legs linked to it by ``parent_signal_id``; the greeks at entry go in ``attrs``;
- the entry ``order`` and its ``fill`` (3 contracts), with ``status`` changes;
- a wrong fill: the broker reported the same execution again under a new id. The
  position shows 6 contracts until the bot sends a ``void`` for it; then every view is
  as if it had never come, while ``read`` still returns both events;
- the take-profit leg fills: the play is closed, the stop leg cancelled (OCO).

    python -m examples.options_play [--socket PATH | --dir PATH]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from daemon.client import Client
from examples.common import Events, daemon_socket, parse_args, show

__all__ = ["ACCOUNT", "CONTRACT", "WRONG_FILL_ID", "record", "run"]

ACCOUNT = "plays-paper"
SOURCE = "bot/options-plays"
STRATEGY = "momentum-calls"
CONTRACT = "SPY240621C00520000"
WRONG_FILL_ID = "exec-7731-dup"
PLAY = "play-0603-spy"
FEE = "1.95"   # 0.65 per contract, 3 contracts


def _events() -> Events:
    return Events(SOURCE, ACCOUNT)


def setup_events() -> list[dict[str, Any]]:
    """The account, the strategy and the contract."""
    ev = _events()
    at = "2024-06-03T09:00:00-04:00"
    return [
        ev.make("account", "account", at, {
            "name": "Options plays (paper)", "kind": "paper", "broker": "paper",
            "currency": "USD", "benchmark": "SPY"}),
        ev.make("strategy", f"strategy-{STRATEGY}", at, {
            "strategy": STRATEGY, "description": "Buy calls on a breakout, bracket exits",
            "parameters": {"dte_min": 14, "dte_max": 30, "delta_target": "0.45",
                           "take_profit_pct": 55, "stop_loss_pct": 30, "contracts": 3},
            "attrs": {"play_class": "OTO"}}),
        ev.make("instrument", f"instrument-{CONTRACT}", at, {
            "symbol": CONTRACT, "venue": "CBOE", "asset_class": "option", "currency": "USD",
            "multiplier": "100", "tick_size": "0.01", "underlying": "SPY",
            "expiry": "2024-06-21", "strike": "520", "option_type": "call",
            "description": "SPY 21 Jun 2024 520 call"}),
    ]


def bracket_events() -> list[dict[str, Any]]:
    """The play: an entry signal and its two exit legs, then the entry order and fill."""
    ev = _events()
    at = "2024-06-03T10:15:00-04:00"
    greeks = {"delta": "0.46", "gamma": "0.031", "theta": "-0.21", "vega": "0.38",
              "iv": "0.142", "underlying_price": "527.80"}
    leg = {"strategy": STRATEGY, "symbol": CONTRACT, "side": "long",
           "parent_signal_id": PLAY, "timeframe": "1d"}
    return [
        ev.make("signal", PLAY, at, {
            "signal_id": PLAY, "strategy": STRATEGY, "symbol": CONTRACT, "side": "long",
            "entry_price": "4.20", "stop_loss": "2.90", "take_profit": "6.50",
            "confidence": "0.7", "timeframe": "1d", "expires_at": "2024-06-03T16:00:00-04:00",
            "note": "SPY broke the 526 range high on volume",
            "attrs": {"play_class": "OTO", **greeks}}),
        ev.make("signal", f"{PLAY}-tp", at, {
            **leg, "signal_id": f"{PLAY}-tp", "entry_price": "6.50",
            "attrs": {"leg": "take_profit", "oco_group": PLAY}}),
        ev.make("signal", f"{PLAY}-sl", at, {
            **leg, "signal_id": f"{PLAY}-sl", "entry_price": "2.90",
            "attrs": {"leg": "stop_loss", "oco_group": PLAY}}),
        ev.make("order", "ord-entry", at, {
            "order_id": "ord-entry", "symbol": CONTRACT, "side": "buy", "quantity": "3",
            "order_type": "limit", "limit_price": "4.20", "signal_id": PLAY}),
        ev.make("fill", "exec-7731", at, {
            "symbol": CONTRACT, "side": "buy", "quantity": "3", "price": "4.20", "fee": FEE,
            "order_id": "ord-entry", "signal_id": PLAY, "attrs": greeks}),
        ev.make("status", "ord-entry-filled", at, {
            "entity": "order", "entity_id": "ord-entry", "status": "filled",
            "price": "4.20"}),
        ev.make("status", f"{PLAY}-triggered", at, {
            "entity": "signal", "entity_id": PLAY, "status": "triggered", "price": "4.20",
            "attrs": {"underlying_price": "527.80"}}),
    ]


def wrong_fill() -> dict[str, Any]:
    """The same execution, reported again by the broker under another id."""
    return _events().make("fill", WRONG_FILL_ID, "2024-06-03T10:15:02-04:00", {
        "symbol": CONTRACT, "side": "buy", "quantity": "3", "price": "4.20", "fee": FEE,
        "order_id": "ord-entry", "signal_id": PLAY})


def void_event() -> dict[str, Any]:
    """Take the wrong fill out of every view; the log keeps both."""
    return _events().make("void", f"void-{WRONG_FILL_ID}", "2024-06-03T10:20:00-04:00", {
        "target_source": SOURCE, "target_id": WRONG_FILL_ID,
        "reason": "broker re-sent execution exec-7731 under a new id"})


def exit_events() -> list[dict[str, Any]]:
    """The take-profit leg fills; the stop leg is cancelled and the play closed."""
    ev = _events()
    at = "2024-06-05T14:40:00-04:00"
    return [
        ev.make("order", "ord-tp", at, {
            "order_id": "ord-tp", "symbol": CONTRACT, "side": "sell", "quantity": "3",
            "order_type": "limit", "limit_price": "6.50", "signal_id": f"{PLAY}-tp"}),
        ev.make("fill", "exec-8120", at, {
            "symbol": CONTRACT, "side": "sell", "quantity": "3", "price": "6.50", "fee": FEE,
            "order_id": "ord-tp", "signal_id": f"{PLAY}-tp", "exit_reason": "take_profit",
            "attrs": {"delta_at_exit": "0.71", "underlying_price_at_exit": "531.10"}}),
        ev.make("status", "ord-tp-filled", at, {
            "entity": "order", "entity_id": "ord-tp", "status": "filled", "price": "6.50"}),
        ev.make("status", f"{PLAY}-tp-triggered", at, {
            "entity": "signal", "entity_id": f"{PLAY}-tp", "status": "triggered",
            "price": "6.50"}),
        ev.make("status", f"{PLAY}-sl-cancelled", at, {
            "entity": "signal", "entity_id": f"{PLAY}-sl", "status": "cancelled",
            "reason": "oco: take-profit leg filled"}),
        ev.make("status", f"{PLAY}-closed", at, {
            "entity": "signal", "entity_id": PLAY, "status": "closed",
            "reason": "take_profit", "price": "6.50"}),
    ]


POSITION_COLUMNS = ["symbol", "side", "quantity", "avg_price", "multiplier", "fees",
                    "asset_class"]


def record(client: Client, console: Console) -> None:
    """Send the whole play to the daemon behind ``client``, printing what changes."""
    client.append(setup_events())
    client.append(bracket_events())
    client.append([wrong_fill()])
    show(console, "with the wrong fill", client.query("positions", account=ACCOUNT),
         POSITION_COLUMNS)
    client.append([void_event()])
    show(console, "after the void", client.query("positions", account=ACCOUNT),
         POSITION_COLUMNS)
    client.append(exit_events())


def summary(client: Client, console: Console) -> None:
    """Print the play as the views show it."""
    show(console, "the contract", client.query("instruments", account=ACCOUNT),
         ["symbol", "underlying", "strike", "expiry", "option_type", "multiplier"])
    show(console, "the bracket", client.query("signals", account=ACCOUNT),
         ["signal_id", "parent_signal_id", "status", "entry_price", "reason", "attrs"])
    show(console, "the play's status history",
         client.query("history", account=ACCOUNT, entity="signal"),
         ["time", "entity_id", "previous_status", "status", "reason", "price"])
    show(console, "the closed play", client.query("trades", account=ACCOUNT),
         ["symbol", "quantity", "entry_price", "exit_price", "fees", "net_pnl", "return_pct",
          "exit_reason"])
    logged = client.read(account=ACCOUNT, types=["fill", "void"])["events"]
    console.print("the log keeps every fill and the void: "
                  + ", ".join(f"{e['type']} {e['id']}" for e in logged))


def run(socket_path: Path, console: Console) -> None:
    """Record the play through the daemon at ``socket_path`` and print its summary."""
    with Client(socket_path) as client:
        record(client, console)
        summary(client, console)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    with daemon_socket(args.socket, args.dir) as sock:
        run(sock, Console(width=120))


if __name__ == "__main__":
    main()
