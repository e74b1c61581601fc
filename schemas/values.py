"""Values shared by every event: exact decimals and RFC 3339 times, read and written.

Pure and free of pydantic (the writer process and the views import it without the
schemas): no I/O. ``parse_*`` and ``check_*`` turn wire input into a Python value or
raise ``ValueError`` with a message that says what to send instead; ``format_*`` give
the canonical text. The pydantic field types built on them are in ``schemas.types``.

Bounds (EVENTS.md 1.1, "Bounds on values"), each checked on the text's length and
shape before any costly conversion, and never met by rounding or clamping:

- a decimal: absolute value below 10^15 (``MAX_MAGNITUDE``) and at most 18 digits after
  the point (``MAX_PLACES``), after reading any exponent (``"1e3"`` is 1000);
- a time: RFC 3339 with an offset, 1900-01-01T00:00:00Z..2199-12-31T23:59:59Z in UTC;
  a date: 1900-01-01..2199-12-31;
- a text: no NUL character; its length is the type's (256 unless the type says else);
- a time zone: an IANA name that the system's zone database knows.
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, date, datetime, timedelta
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
from zoneinfo import ZoneInfo

__all__ = [
    "ACCOUNT_PATTERN",
    "DECIMAL_CONTEXT",
    "EARLIEST",
    "LATEST",
    "MAX_DECIMAL_TEXT",
    "MAX_MAGNITUDE",
    "MAX_MULTIPLIER",
    "MAX_PLACES",
    "MAX_TEXT",
    "WIDE_CONTEXT",
    "check_decimal",
    "check_multiplier",
    "check_text",
    "check_timezone",
    "format_decimal",
    "format_time",
    "format_utc",
    "parse_date",
    "parse_decimal",
    "parse_time",
]

ACCOUNT_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_MAGNITUDE_DIGITS = 15
MAX_MAGNITUDE = Decimal(10) ** MAX_MAGNITUDE_DIGITS
"""Every decimal's absolute value is below this (10^15)."""
MAX_PLACES = 18
"""Every decimal has at most this many digits after the point (its value's, so 1.50 has 1)."""
MAX_MULTIPLIER = Decimal(10) ** 6
"""A ``multiplier`` is at most this (10^6)."""
MAX_DECIMAL_TEXT = 40
"""A decimal sent as a string has at most this many characters (the longest value in
bounds, ``-999999999999999.999999999999999999``, has 35)."""
MAX_TEXT = 256
"""A text field's length unless its type says otherwise."""
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)
"""Every time lies in EARLIEST..LATEST once converted to UTC (both included)."""
MAX_TIMEZONE = 64
"""An IANA time-zone name has at most this many characters (the longest has 32)."""

DECIMAL_CONTEXT = Context(
    prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
"""Arithmetic context for money: 60 significant digits. A sum or product is exact while
its result fits 60 digits (a price times a quantity within the bounds has at most 66,
realistic ones far fewer); past that it rounds once, half-even, and never raises below
10^999999 (docs/ACCOUNTING.md, "Why a fold cannot overflow")."""
WIDE_CONTEXT = Context(
    prec=200, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
"""The context the views quantize in: wide enough that no amount a fold can reach
(below 10^80, docs/ACCOUNTING.md) makes ``quantize`` fail."""
_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_RFC3339 = re.compile(
    r"^(\d{4})-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?$"
)
_PLAIN_IN_BOUNDS = re.compile(r"[+-]?0*[0-9]{1,15}(?:\.[0-9]{0,18})?").fullmatch
"""Plain decimal text that is certainly within the bounds (read without further checks)."""
_UTC_IN_RANGE = re.compile(
    r"(?:19\d\d|20\d\d|21[0-8]\d|219[0-8])-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z").fullmatch
"""The usual time: UTC (``Z``), at most microseconds, a year 1900-2198 (certainly within
EARLIEST..LATEST): read without further checks."""
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")


def check_decimal(number: Decimal) -> Decimal:
    """``number`` when it lies within the decimal bounds; a zero comes back as ``0``.

    Cheap whatever the number: it looks at the exponent and digits, never formats or
    rounds. Raises ``ValueError`` for NaN, the infinities, an absolute value of 10^15
    or more, or more than 18 digits after the point (trailing zeros do not count).
    """
    if not number.is_finite():
        raise ValueError("NaN and infinities are not numbers a price or amount can take")
    if not number:
        return Decimal(0)
    if number.adjusted() >= MAX_MAGNITUDE_DIGITS:
        raise ValueError(
            f"must be below 10^{MAX_MAGNITUDE_DIGITS} in absolute value (this one is about "
            f"10^{min(number.adjusted(), 10**9)}); nothing is rounded or clamped")
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    if exponent < -MAX_PLACES:
        trailing = _trailing_zeros(digits)
        if exponent + trailing < -MAX_PLACES:
            raise ValueError(
                f"at most {MAX_PLACES} digits after the point are accepted; round it "
                "yourself the way you mean it (nothing is rounded here)")
    return number


def _trailing_zeros(digits: tuple[int, ...]) -> int:
    count = 0
    for digit in reversed(digits):
        if digit:
            break
        count += 1
    return count


def parse_decimal(value: Any) -> Decimal:
    """Read an exact decimal from a JSON string, integer or ``Decimal``, within the bounds.

    Floats are refused: a binary float has already lost the exact value. A string
    longer than ``MAX_DECIMAL_TEXT`` characters is refused before it is converted;
    then the bounds of ``check_decimal`` apply.

    Raises:
        ValueError: with a message naming the bound and what to send instead.
    """
    if isinstance(value, bool):
        raise ValueError("expected a decimal number (as a string or JSON number), got a boolean")
    if isinstance(value, float):
        raise ValueError(
            "binary floats are not accepted; send the number as a JSON number read "
            "exactly or as a string such as \"1.2345\""
        )
    if isinstance(value, int):
        if abs(value) >= 10**MAX_MAGNITUDE_DIGITS:
            raise ValueError(f"must be below 10^{MAX_MAGNITUDE_DIGITS} in absolute value; "
                             "nothing is rounded or clamped")
        return Decimal(value)
    if isinstance(value, Decimal):
        return check_decimal(value)
    if isinstance(value, str):
        if len(value) > MAX_DECIMAL_TEXT:
            raise ValueError(
                f"a decimal sent as text has at most {MAX_DECIMAL_TEXT} characters (this one "
                f"has {len(value)}); send e.g. \"1.2345\", below 10^{MAX_MAGNITUDE_DIGITS} "
                f"with at most {MAX_PLACES} digits after the point")
        text = value.strip()
        if _PLAIN_IN_BOUNDS(text):  # the usual case: no exponent, within the bounds
            number = Decimal(text)
            return number if number else Decimal(0)
        if not _DECIMAL_TEXT.match(text):
            raise ValueError(f"{value!r} is not a decimal number; send e.g. \"1.2345\"")
        try:
            number = Decimal(text)
        except InvalidOperation:  # an exponent beyond what a decimal can hold at all
            raise ValueError(
                f"{value!r} is not a decimal number within the bounds: below "
                f"10^{MAX_MAGNITUDE_DIGITS} with at most {MAX_PLACES} digits after the point"
            ) from None
        return check_decimal(number)
    raise ValueError(
        f"expected a decimal number (as a string or JSON number), got {type(value).__name__}"
    )


def check_multiplier(number: Decimal) -> Decimal:
    """``number`` when it is at most ``MAX_MULTIPLIER`` (10^6); else ``ValueError``."""
    if number > MAX_MULTIPLIER:
        raise ValueError("a multiplier is at most 1000000 (10^6)")
    return number


@lru_cache(maxsize=4096)
def format_decimal(value: Decimal) -> str:
    """The canonical text of a decimal: plain notation, no exponent, no trailing zeros.

    ``Decimal("1.500")`` -> ``"1.5"``, ``Decimal("1E+2")`` -> ``"100"``, ``-0`` -> ``"0"``.
    Never rounds a value of up to 200 digits (``WIDE_CONTEXT``): what the views store is
    what they computed. Cached: equal decimals have the same canonical text, and view
    rows repeat prices, quantities and multipliers.
    """
    if not value:
        return "0"
    return format(value.normalize(WIDE_CONTEXT), "f")


def _range_error(value: str) -> ValueError:
    return ValueError(
        f"{value!r} is outside the accepted times: from 1900-01-01T00:00:00Z to "
        "2199-12-31T23:59:59Z once converted to UTC")


def _in_range(parsed: datetime, text: str) -> datetime:
    """``parsed`` if within EARLIEST..LATEST; its year is checked first, so that the
    conversion to UTC can never overflow."""
    if 1901 <= parsed.year <= 2198:  # a day's offset from either end: certainly in range
        return parsed
    if not 1899 <= parsed.year <= 2200 or not EARLIEST <= parsed.astimezone(UTC) <= LATEST:
        raise _range_error(text)
    return parsed


def parse_time(value: Any) -> datetime:
    """Read an RFC 3339 timestamp that carries a UTC offset (``Z`` or ``+hh:mm``), from
    1900-01-01T00:00:00Z to 2199-12-31T23:59:59Z once converted to UTC.

    Fractions beyond microseconds are cut to microseconds.

    Raises:
        ValueError: for a non-string, a malformed timestamp, one without an offset, or
            one outside the range (checked on its year before any conversion).
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("time must carry a UTC offset, e.g. 2024-05-01T09:30:00Z")
        return _in_range(value, value.isoformat())
    if not isinstance(value, str):
        raise ValueError(
            "expected an RFC 3339 timestamp string such as 2024-05-01T09:30:00Z, "
            f"got {type(value).__name__}"
        )
    if _UTC_IN_RANGE(value):
        with contextlib.suppress(ValueError):  # an impossible date: told below
            return datetime.fromisoformat(value)
    match = _RFC3339.match(value)
    if not match:
        raise ValueError(
            f"{value[:40]!r} is not an RFC 3339 timestamp; send e.g. 2024-05-01T09:30:00Z"
        )
    if match.group(3) is None:
        raise ValueError(
            f"{value!r} has no UTC offset; add Z or +hh:mm, e.g. 2024-05-01T09:30:00Z"
        )
    zone = match.group(3)
    if len(zone) == 6 and (int(zone[1:3]) > 23 or int(zone[4:6]) > 59):
        raise ValueError(f"{value[:40]!r}: the UTC offset {zone} is not +hh:mm with hours "
                         "00-23 and minutes 00-59 (RFC 3339)")
    if not 1899 <= int(match.group(1)) <= 2200:
        raise _range_error(value)
    text = value
    fraction = match.group(2)
    if fraction and len(fraction) > 7:
        text = value.replace(fraction, fraction[:7], 1)
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date and time: {exc}") from None
    offset = parsed.utcoffset()
    if offset is None or abs(offset) >= timedelta(hours=24):
        raise ValueError("the UTC offset must be between -23:59 and +23:59")
    return _in_range(parsed, value)


def parse_date(value: Any) -> date:
    """Read a date ``YYYY-MM-DD`` from 1900-01-01 to 2199-12-31.

    Raises:
        ValueError: for a non-string, a malformed or impossible date, or one outside
            the range.
    """
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError(f"{str(value)[:40]!r} is not a date; send YYYY-MM-DD, e.g. 2024-05-01")
    try:
        parsed = date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date: {exc}") from None
    if not 1900 <= parsed.year <= 2199:
        raise ValueError(f"{value!r} is outside the accepted dates, 1900-01-01 to 2199-12-31")
    return parsed


def check_text(value: str) -> str:
    """``value`` when it holds no NUL character; else ``ValueError`` (lengths are the
    field type's own, checked before this)."""
    if "\x00" in value:
        raise ValueError("text must not contain the NUL character (\\u0000)")
    return value


def check_timezone(value: Any) -> str:
    """``value`` when it is an IANA time-zone name the system's zone database knows.

    The name is checked on its length and shape (letters, digits, ``_``, ``+``, ``-``
    in ``/``-separated parts: no ``.``, no leading ``/``, so it can never name a path
    outside the database) before the database is asked.

    Raises:
        ValueError: saying what to send instead.
    """
    hint = ("send an IANA time-zone name such as UTC, Europe/London, America/New_York "
            "or Asia/Kolkata")
    if not isinstance(value, str):
        raise ValueError(f"expected a string; {hint}")
    if len(value) > MAX_TIMEZONE:
        raise ValueError(f"a time-zone name has at most {MAX_TIMEZONE} characters; {hint}")
    if not _ZONE_NAME.match(value) or not _known_zone(value):
        raise ValueError(f"{value!r} is not an IANA time zone; {hint}")
    return value


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:  # not found, a directory, not a zone file, unreadable
        return False
    return True


def format_utc(value: datetime) -> str:
    """An aware time re-expressed in UTC, in the canonical text (``...Z``)."""
    return format_time(value.astimezone(UTC))


def format_time(value: datetime) -> str:
    """The canonical text of a time: ISO 8601 with its own offset, ``Z`` for UTC."""
    text = value.isoformat()
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text
