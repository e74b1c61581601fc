"""Values shared by every event: exact decimals and RFC 3339 times, read and written.

Pure and free of pydantic (the writer process and the views import it without the
schemas): no I/O. ``parse_*`` turn wire input into a Python value or raise
``ValueError`` with a message that says what to send instead; ``format_*`` give the
canonical text. The pydantic field types built on them are in ``schemas.types``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from functools import lru_cache
from typing import Any

__all__ = [
    "ACCOUNT_PATTERN",
    "DECIMAL_CONTEXT",
    "format_decimal",
    "format_time",
    "format_utc",
    "parse_decimal",
    "parse_time",
]

ACCOUNT_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_MAGNITUDE = Decimal(10) ** 24
MAX_PLACES = 20
DECIMAL_CONTEXT = Context(
    prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
"""Arithmetic context for money: 60 significant digits, so sums of values below 1e24
with up to 20 decimal places are exact."""
_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?$"
)


def parse_decimal(value: Any) -> Decimal:
    """Read an exact decimal from a JSON string, integer or ``Decimal``.

    Floats are refused: a binary float has already lost the exact value. NaN and the
    infinities are refused, and so are magnitudes of 1e24 or more and more than 20
    decimal places (no account currency or quantity needs them).

    Raises:
        ValueError: with a message naming what to send instead.
    """
    if isinstance(value, bool):
        raise ValueError("expected a decimal number (as a string or JSON number), got a boolean")
    if isinstance(value, float):
        raise ValueError(
            "binary floats are not accepted; send the number as a JSON number read "
            "exactly or as a string such as \"1.2345\""
        )
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        if not _DECIMAL_TEXT.match(value.strip()):
            raise ValueError(f"{value[:40]!r} is not a decimal number; send e.g. \"1.2345\"")
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value[:40]!r} is not a decimal number") from None
    else:
        raise ValueError(
            f"expected a decimal number (as a string or JSON number), got {type(value).__name__}"
        )
    if not number.is_finite():
        raise ValueError("NaN and infinities are not numbers a price or amount can take")
    if abs(number) >= MAX_MAGNITUDE:
        raise ValueError("magnitude must be below 1e24")
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise ValueError(f"at most {MAX_PLACES} decimal places are accepted")
    return number


@lru_cache(maxsize=4096)
def format_decimal(value: Decimal) -> str:
    """The canonical text of a decimal: plain notation, no exponent, no trailing zeros.

    ``Decimal("1.500")`` -> ``"1.5"``, ``Decimal("1E+2")`` -> ``"100"``, ``-0`` -> ``"0"``.
    Cached: equal decimals have the same canonical text, and view rows repeat prices,
    quantities and multipliers.
    """
    if not value:
        return "0"
    return format(value.normalize(DECIMAL_CONTEXT), "f")


def parse_time(value: Any) -> datetime:
    """Read an RFC 3339 timestamp that carries a UTC offset (``Z`` or ``+hh:mm``).

    Fractions beyond microseconds are cut to microseconds.

    Raises:
        ValueError: for a non-string, a malformed timestamp, or one without an offset.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("time must carry a UTC offset, e.g. 2024-05-01T09:30:00Z")
        return value
    if not isinstance(value, str):
        raise ValueError(
            "expected an RFC 3339 timestamp string such as 2024-05-01T09:30:00Z, "
            f"got {type(value).__name__}"
        )
    match = _RFC3339.match(value)
    if not match:
        raise ValueError(
            f"{value[:40]!r} is not an RFC 3339 timestamp; send e.g. 2024-05-01T09:30:00Z"
        )
    if match.group(2) is None:
        raise ValueError(
            f"{value[:40]!r} has no UTC offset; add Z or +hh:mm, e.g. 2024-05-01T09:30:00Z"
        )
    text = value
    fraction = match.group(1)
    if fraction and len(fraction) > 7:
        text = value.replace(fraction, fraction[:7], 1)
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise ValueError(f"{value[:40]!r} is not a valid date and time: {exc}") from None
    offset = parsed.utcoffset()
    if offset is None or abs(offset) >= timedelta(hours=24):
        raise ValueError("the UTC offset must be between -23:59 and +23:59")
    return parsed


def format_utc(value: datetime) -> str:
    """An aware time re-expressed in UTC, in the canonical text (``...Z``)."""
    return format_time(value.astimezone(UTC))


def format_time(value: datetime) -> str:
    """The canonical text of a time: ISO 8601 with its own offset, ``Z`` for UTC."""
    text = value.isoformat()
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text
