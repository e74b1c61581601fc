"""How the report writes a figure: money with 2 decimals and thousands separators,
percents and ratios with 2 decimals, durations in days and hours, an absent figure as a
dash. The figures themselves are the ``metrics`` answer's exact decimal strings; only
their display is rounded here (half-even, as the answer rounds)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

__all__ = ["DASH", "days", "duration", "money", "number", "pct", "signed_class"]

DASH = "—"
_CENT = Decimal("0.01")


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))


def money(value: Any) -> str:
    """``1234567.891`` -> ``1,234,567.89``; None -> a dash."""
    amount = _dec(value)
    if amount is None:
        return DASH
    return f"{amount.quantize(_CENT, rounding=ROUND_HALF_EVEN):,.2f}"


def number(value: Any) -> str:
    """A ratio (Sharpe, beta...) to 2 decimals; None -> a dash."""
    return money(value)


def pct(value: Any) -> str:
    """A percent figure (already in percent) to 2 decimals with ``%``; None -> a dash."""
    amount = _dec(value)
    return DASH if amount is None else f"{money(amount)} %"


def duration(seconds: Any) -> str:
    """Seconds as days and hours (``2 d 5 h``), hours and minutes below a day
    (``3 h 20 min``), minutes below an hour; None -> a dash."""
    amount = _dec(seconds)
    if amount is None:
        return DASH
    total = int(amount.to_integral_value(rounding=ROUND_HALF_EVEN))
    day, rest = divmod(total, 86400)
    hour, rest = divmod(rest, 3600)
    minute = rest // 60
    if day:
        return f"{day} d {hour} h"
    if hour:
        return f"{hour} h {minute} min"
    return f"{minute} min" if minute else f"{total} s"


def days(value: Any) -> str:
    """A count of days (possibly fractional) as days and hours; None -> a dash."""
    amount = _dec(value)
    return DASH if amount is None else duration(amount * 86400)


def signed_class(value: Any) -> str:
    """``neg``/``pos`` for a negative/positive decimal text, else ""."""
    try:
        amount = _dec(value) if isinstance(value, str | int | Decimal) else None
    except ArithmeticError:
        return ""
    if amount is None:
        return ""
    return "neg" if amount < 0 else "pos" if amount > 0 else ""
