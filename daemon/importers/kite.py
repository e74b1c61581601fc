"""A position of a Kite Connect day file (``kite.positions()["day"]`` as a bot saves it).

Kite gives, per instrument and product, what was bought and sold that day
(``buy_quantity``/``buy_price``/``buy_value``, ``sell_quantity``/``sell_price``/
``sell_value``), the net ``quantity`` left (0: squared off within the day), the
``average_price`` of that net quantity, the ``last_price``, and ``realised``,
``unrealised`` and ``pnl`` (= realised + unrealised), all in rupees and already times
the ``multiplier`` (Kite Connect v3 docs, "Portfolio: positions").

Such a position becomes fills that EVENTS.md's average-cost accounting turns into the
same P&L: a buy fill of ``buy_quantity`` at ``buy_price`` and a sell fill of
``sell_quantity`` at ``sell_price`` (the sell first when the net position is short, so
the round trip opens on the side it is left on), keyed ``position_id``
``<date>:<exchange>:<tradingsymbol>:<product>`` (Kite's own key of a position, one per
day); a net quantity left open gets a ``mark`` at ``last_price``. ``exchange``,
``product`` and ``instrument_token`` go into the fills' ``attrs``. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from daemon.importers.rows import ImportRow, RowError, decimal_field, optional_decimal, wire_event

__all__ = ["KITE_FIELDS", "is_kite", "kite_position"]

KITE_FIELDS = frozenset({
    "tradingsymbol", "exchange", "instrument_token", "product", "quantity", "multiplier",
    "average_price", "last_price", "buy_quantity", "buy_price", "buy_value",
    "sell_quantity", "sell_price", "sell_value", "realised", "unrealised", "pnl",
})
"""The fields of a Kite position that have a place in the events (or in the check of
``pnl``); any other (``m2m``, ``close_price``, ``day_buy_quantity``...) is warned about."""
_ATTRS = ("exchange", "product", "instrument_token")


def is_kite(position: dict[str, Any]) -> bool:
    """Whether ``position`` has Kite's day fields (``buy_quantity`` or ``sell_quantity``)."""
    return "buy_quantity" in position or "sell_quantity" in position


def _text(position: dict[str, Any], name: str) -> dict[str, str]:
    value = position.get(name)
    return {name: "" if value is None else str(value)}


def _number(position: dict[str, Any], name: str) -> Decimal:
    """``position[name]`` as a decimal (``rows.decimal_field``'s bounds and errors)."""
    return decimal_field(_text(position, name), name)


def _optional(position: dict[str, Any], name: str, default: Decimal) -> Decimal:
    """``position[name]`` as a decimal, or ``default`` when missing or blank."""
    value = optional_decimal(_text(position, name), name)
    return default if value is None else value


def kite_position(position: dict[str, Any], date: str, time: str, account: str,
                  source: str) -> ImportRow:
    """The events of one Kite position of the day ``date`` (fills at ``time``, RFC 3339).

    The row's ``realized`` is Kite's ``realised`` (else the fills' own P&L), ``closed``
    is 1 when the net quantity is 0, ``unused`` names the fields outside ``KITE_FIELDS``.

    Raises:
        RowError: a missing or non-numeric field, a negative quantity, a price not > 0
            for a quantity bought or sold, or ``buy_quantity - sell_quantity`` that is not
            ``quantity``.
    """
    symbol = str(position.get("tradingsymbol") or "").strip()
    if not symbol:
        raise RowError("tradingsymbol is empty")
    net = _number(position, "quantity")
    bought = _optional(position, "buy_quantity", Decimal(0))
    sold = _optional(position, "sell_quantity", Decimal(0))
    multiplier = _optional(position, "multiplier", Decimal(1))
    if bought < 0 or sold < 0 or multiplier <= 0:
        raise RowError("buy_quantity and sell_quantity must be >= 0, multiplier > 0")
    if bought - sold != net:
        raise RowError(f"buy_quantity {bought} - sell_quantity {sold} is not quantity {net}")
    if not bought and not sold:
        raise RowError("nothing was bought or sold (buy_quantity and sell_quantity are 0)")
    key = ":".join(str(position.get(k) or "").strip() for k in ("exchange", "tradingsymbol",
                                                                 "product"))
    key = f"{date}:{key}"
    attrs = {k: position[k] for k in _ATTRS
             if isinstance(position.get(k), (str, int, Decimal)) and not isinstance(
                 position.get(k), bool) and str(position[k]).strip()}
    common: dict[str, Any] = {"symbol": symbol, "position_id": key}
    if multiplier != 1:
        common["multiplier"] = str(multiplier)
    if attrs:
        common["attrs"] = {k: str(v)[:256] if isinstance(v, str) else v
                           for k, v in attrs.items()}
    legs = []
    for side, quantity in (("buy", bought), ("sell", sold)):
        if quantity:
            price = _number(position, f"{side}_price")
            if price <= 0:
                raise RowError(f"{side}_price must be > 0")
            legs.append((side, quantity, price))
    if net < 0:
        legs.reverse()  # short at the end of the day: the sell opened it
    events = []
    for number, (side, quantity, price) in enumerate(legs):
        data = {**common, "side": side, "quantity": str(quantity), "price": str(price)}
        if number and not net:
            data["exit_reason"] = "other"
        events.append(wire_event("fill", f"{key}:{side}", source, time, account, data))
    if net:
        last = _number(position, "last_price")
        if last <= 0:
            raise RowError("last_price must be > 0 for a position left open")
        events.append(wire_event("mark", f"{key}:mark", source, time, account,
                                 {"prices": {symbol: str(last)}}))
    realized = optional_decimal(_text(position, "realised"), "realised")
    if realized is None and len(legs) == 2:
        realized = (legs[1][2] - legs[0][2]) * min(bought, sold) * multiplier * (
            1 if legs[0][0] == "buy" else -1)
    unused = tuple(sorted(k for k in position if k not in KITE_FIELDS))
    return ImportRow(0, events, realized, closed=int(not net), unused=unused)
