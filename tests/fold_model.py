"""An independent model of the views for the property tests, written from EVENTS.md 1.1
alone (not from the folds): average-cost positions, round trips, balances, and the new
views' counts, per account.

A ``void`` is modelled by its definition (invariant 5): the model folds the events that
remain once every voided event and every void are taken out; nothing is refolded.
Amounts are rounded as docs/ACCOUNTING.md says: average prices, each reduce's gross
P&L and a flip's fee share to 20 places, ``return_pct`` to 10, half-even.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any

__all__ = ["Model", "remaining"]

_WIDE = Context(prec=300, rounding=ROUND_HALF_EVEN)
Q20 = Decimal("1e-20")
Q10 = Decimal("1e-10")


def _q(value: Decimal, quantum: Decimal = Q20) -> Decimal:
    return value.quantize(quantum, context=_WIDE)


def remaining(wires: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(seq, event) of the events a void leaves: all but the voided ones and the voids."""
    voided = {(w["data"]["target_source"], w["data"]["target_id"])
              for w in wires if w["type"] == "void"}
    return [(seq, w) for seq, w in enumerate(wires, 1)
            if w["type"] != "void" and (w["source"], w["id"]) not in voided]


@dataclass
class _Position:
    symbol: str
    quantity: Decimal
    avg: Decimal
    multiplier: Decimal
    trade_id: str
    strategy: str | None
    venue: str | None
    asset_class: str | None
    attrs: dict[str, Any] | None
    fees: Decimal = Decimal(0)
    gross: Decimal = Decimal(0)
    largest: Decimal = Decimal(0)
    exit_reason: str | None = None
    exit_detail: str | None = None


@dataclass
class _Account:
    cash: Decimal = Decimal(0)
    realized: Decimal = Decimal(0)
    events: int = 0
    instruments: dict[str, dict[str, Any]] = field(default_factory=dict)
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_status: dict[tuple[str, str], str] = field(default_factory=dict)
    positions: dict[str, _Position] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    strategy_signals: dict[str, int] = field(default_factory=dict)
    strategies: set[str] = field(default_factory=set)


def _merge(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    if not new:
        return old
    return {**(old or {}), **new}


class Model:
    """The expected rows of the views for a list of wire events (the ``id`` and
    ``source`` of each set), in seq order from 1."""

    def __init__(self, wires: list[dict[str, Any]]) -> None:
        self.accounts: dict[str, _Account] = {}
        with localcontext(_WIDE):
            for seq, wire in remaining(wires):
                self._one(seq, wire)

    def _one(self, seq: int, wire: dict[str, Any]) -> None:
        account = self.accounts.setdefault(wire["account"], _Account())
        account.events += 1
        data = wire["data"]
        kind = wire["type"]
        if kind == "cash":
            account.cash += Decimal(data["amount"])
        elif kind == "instrument":
            account.instruments[data["symbol"]] = data
        elif kind == "strategy":
            account.strategies.add(data["strategy"])
        elif kind == "signal":
            account.signals[data["signal_id"]] = data
            name = data["strategy"]
            account.strategy_signals[name] = account.strategy_signals.get(name, 0) + 1
        elif kind == "order":
            account.orders[data["order_id"]] = data
        elif kind == "status":
            known = account.signals if data["entity"] == "signal" else account.orders
            if data["entity_id"] in known:
                key = (data["entity"], data["entity_id"])
                account.history.append({
                    "seq": seq, "entity": data["entity"], "entity_id": data["entity_id"],
                    "status": data["status"], "previous_status": account.last_status.get(key)})
                account.last_status[key] = data["status"]
        elif kind == "fill":
            self._fill(account, wire)

    def _open(self, account: _Account, wire: dict[str, Any], quantity: Decimal,
              price: Decimal, fee: Decimal) -> _Position:
        data = wire["data"]
        signal_id = data.get("signal_id")
        if signal_id is None and data.get("order_id") in account.orders:
            signal_id = account.orders[data["order_id"]].get("signal_id")
        signal = account.signals.get(signal_id) if signal_id else None
        instrument = account.instruments.get(data["symbol"], {})
        multiplier = Decimal(data.get("multiplier", instrument.get("multiplier", "1")))
        signed = quantity if data["side"] == "buy" else -quantity
        return _Position(data["symbol"], signed, price, multiplier, wire["id"],
                         signal["strategy"] if signal else None, instrument.get("venue"),
                         instrument.get("asset_class"), _merge(None, data.get("attrs")),
                         fees=fee, largest=quantity)

    def _fill(self, account: _Account, wire: dict[str, Any]) -> None:
        data = wire["data"]
        key = data.get("position_id") or data["symbol"]
        quantity, price = Decimal(data["quantity"]), Decimal(data["price"])
        fee = Decimal(data.get("fee", "0"))
        buy = data["side"] == "buy"
        position = account.positions.get(key)
        if position is None:
            account.positions[key] = self._open(account, wire, quantity, price, fee)
            account.realized -= fee
            return
        position.attrs = _merge(position.attrs, data.get("attrs"))
        size = abs(position.quantity)
        if (position.quantity > 0) == buy:
            position.avg = _q((size * position.avg + quantity * price) / (size + quantity))
            position.quantity += quantity if buy else -quantity
            position.largest = max(position.largest, abs(position.quantity))
            position.fees += fee
            account.realized -= fee
            return
        closed = min(quantity, size)
        gross = _q(closed * (price - position.avg) * position.multiplier)
        if position.quantity < 0:
            gross = -gross
        close_fee = fee if quantity <= size else _q(fee * closed / quantity)
        position.gross += gross
        position.fees += close_fee
        position.quantity += closed if position.quantity < 0 else -closed
        position.exit_reason = data.get("exit_reason") or position.exit_reason
        position.exit_detail = data.get("exit_detail") or position.exit_detail
        account.realized += gross - close_fee
        if position.quantity:
            return
        net = position.gross - position.fees
        basis = position.avg * position.largest * position.multiplier
        account.trades.append({
            "trade_id": position.trade_id, "position_key": key, "symbol": position.symbol,
            "quantity": position.largest, "entry_price": position.avg, "net_pnl": net,
            "fees": position.fees, "return_pct": _q(100 * net / basis, Q10),
            "exit_reason": position.exit_reason, "exit_detail": position.exit_detail,
            "strategy": position.strategy, "venue": position.venue,
            "asset_class": position.asset_class, "attrs": position.attrs})
        del account.positions[key]
        if quantity > size:
            rest = self._open(account, wire, quantity - size, price, fee - close_fee)
            account.positions[key] = rest
            account.realized -= fee - close_fee
