"""Which stored events the views leave out: those whose values 1.1 refuses. Pure.

An older tradelog stored some values that version 1.1 refuses (EVENTS.md, "Bounds on
values"): decimals of 10^15 or more or with more than 18 places (stored as ``"0"`` when
they had a million), multipliers above 10^6, zero or negative quantities and prices,
times before 1900 or after 2199 in UTC, time zones the zone database does not know.
Folding them could overflow the views' arithmetic or the calendar. Such an event is
kept in the log (its hash chain is untouched and ``read`` returns it) but left out of
every view, as if it were not there: a pure function of the event alone, so a rebuild,
the incremental fold and ``as_of`` all leave out the same events (docs/ACCOUNTING.md).

Texts are not checked here: a long or NUL-holding text is shown as stored, since no
view computes with it.

Events appended by this version passed the same bounds, so for them the answer is
always None; the checks take a fast path over canonical text (plain notation) and only
parse what looks unusual.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from eventstore.record import StoredEvent
from schemas.values import (
    MAX_MULTIPLIER,
    check_timezone,
    parse_decimal,
    parse_time,
)

__all__ = ["left_out_reason"]

_MAX_INT = 10**15
_PLAIN = r"[0-9]{1,15}(?:\.[0-9]{1,18})?"
_ZERO = r"0*(?:\.0*)?$"
_FAST: dict[str, Callable[[str], object]] = {
    "pos": re.compile(rf"(?!{_ZERO}){_PLAIN}").fullmatch,
    "nonneg": re.compile(_PLAIN).fullmatch,
    "nonzero": re.compile(rf"(?!-?{_ZERO})-?{_PLAIN}").fullmatch,
    "ratio": re.compile(r"0(?:\.[0-9]{1,18})?|1(?:\.0{1,18})?").fullmatch,
    "mult": re.compile(rf"(?!{_ZERO})(?:[0-9]{{1,6}}(?:\.[0-9]{{1,18}})?|1000000(?:\.0{{1,18}})?)"
                       ).fullmatch,
}
"""rule -> a match of plain text that certainly keeps the rule (no match: look closer)."""
# (field, rule) per event type: "pos" > 0, "nonneg" >= 0, "nonzero" != 0, "ratio" 0..1,
# "mult" 0 < x <= 10^6, "time" a timestamp, "count" an integer 0 <= n < 10^15.
_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "fill": (("quantity", "pos"), ("price", "pos"), ("fee", "nonneg"), ("multiplier", "mult")),
    "order": (("quantity", "pos"), ("limit_price", "pos"), ("stop_price", "pos")),
    "signal": (("entry_price", "pos"), ("stop_loss", "pos"), ("take_profit", "pos"),
               ("confidence", "ratio"), ("expires_at", "time")),
    "status": (("price", "pos"),),
    "cash": (("amount", "nonzero"),),
    "limits": (("daily_loss_limit", "nonneg"), ("max_open_positions", "count")),
    "instrument": (("multiplier", "mult"), ("tick_size", "pos"), ("lot_size", "pos"),
                   ("strike", "pos")),
}


def _plain(text: str) -> bool:
    """True for plain text within the bounds: ``[-]D[.F]`` in ASCII digits with at most
    15 digits before the point and 18 after (False: look closer)."""
    return _FAST["nonzero"](text) is not None or text in ("0", "-0")


def _decimal(value: Any) -> Decimal:
    """The stored value as a decimal within the bounds; ``ValueError`` if it is not."""
    if isinstance(value, str) and _plain(value):
        return Decimal(value)
    return parse_decimal(value)


def _check(rule: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` keeps ``rule`` (the slow, exact path)."""
    if rule == "time":
        parse_time(value)
        return
    if rule == "count":
        if type(value) is not int or not 0 <= value < _MAX_INT:
            raise ValueError("must be an integer from 0 to 10^15 - 1")
        return
    number = _decimal(value)
    if rule == "pos" and not number > 0:
        raise ValueError("must be greater than 0")
    if rule == "nonneg" and number < 0:
        raise ValueError("must be at least 0")
    if rule == "nonzero" and not number:
        raise ValueError("must not be 0")
    if rule == "ratio" and not 0 <= number <= 1:
        raise ValueError("must be from 0 to 1")
    if rule == "mult" and not 0 < number <= MAX_MULTIPLIER:
        raise ValueError("must be greater than 0 and at most 10^6")


def _time_ok(time: Any) -> bool:
    """True when a stored event time certainly lies in 1900..2199 UTC (its year is at
    least a day's offset from either edge); False: parse it."""
    return (isinstance(time, str) and len(time) >= 20 and time[:4].isdigit()
            and 1901 <= int(time[:4]) <= 2198)


def _prices(prices: Any) -> dict[str, Any]:
    if not isinstance(prices, dict):
        raise TypeError("must be an object of symbol -> price")
    return prices


def left_out_reason(event: StoredEvent) -> str | None:
    """Why the views leave ``event`` out (``"data.price: must be ..."``), or None to fold it.

    Never raises: anything unreadable is itself a reason.
    """
    try:
        if not _time_ok(event.time):
            parse_time(event.time)
    except ValueError as exc:
        return f"time: {exc}"
    data = event.data
    if not isinstance(data, dict):
        return "data: not a JSON object"
    kind = event.event_type
    name = ""
    try:
        for name, rule in _RULES.get(kind, ()):
            value = data.get(name)
            fast = _FAST.get(rule)  # none for "time" and "count": always checked
            if value is not None and (type(value) is not str or fast is None
                                      or fast(value) is None):
                _check(rule, value)
        if kind == "mark":
            name = "prices"
            prices = data.get("prices")
            fast = _FAST["pos"]
            for symbol, price in _prices(prices).items():
                if type(price) is not str or fast(price) is None:
                    name = f"prices.{symbol}"
                    _check("pos", price)
        elif kind == "limits":
            name = "timezone"
            check_timezone(data.get("timezone", "UTC"))
    except (ValueError, TypeError, ArithmeticError) as exc:
        return f"data.{name}: {exc}"
    return None
