"""``attrs`` and free JSON values: what a bot knows and tradelog has no field for. Pure.

EVENTS.md 1.1 ("Bounds on values"): ``attrs`` is a JSON object of at most 32 members,
each key ``[A-Za-z0-9_.-]{1,64}``, each value a string (at most 256 characters, no NUL),
a number (an exact decimal within the decimal bounds), ``true``, ``false`` or ``null``;
no nested objects or arrays. tradelog stores it as sent and never interprets it.

Numbers stay JSON numbers. The strict JSON reader gives integers as ``int`` and other
numbers as ``Decimal``; an integral one is kept as an ``int``, any other as the binary
float whose shortest text is exactly the decimal sent (``0.45`` stays ``0.45`` in the
stored JSON and in every view). A number whose digits a float cannot give back exactly
(more than 15 to 17 significant digits) is refused, saying to send it as a string:
nothing is ever rounded (docs/SCHEMA.md, "attrs").

``check_json`` does the same for a strategy's ``parameters``, where nesting is allowed.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from schemas.values import MAX_TEXT, check_decimal, format_decimal

__all__ = ["ATTRS_KEY", "MAX_ATTRS", "MAX_PARAMETERS_BYTES", "check_attrs", "check_json",
           "exact_number"]

MAX_ATTRS = 32
"""Members an ``attrs`` object may hold."""
ATTRS_KEY = r"^[A-Za-z0-9_.-]{1,64}$"
"""The pattern of an ``attrs`` key."""
MAX_PARAMETERS_BYTES = 16 * 1024
"""A strategy's ``parameters`` take at most this many bytes of canonical JSON."""
_KEY = re.compile(ATTRS_KEY)


def exact_number(value: int | Decimal) -> int | float:
    """A JSON number within the decimal bounds as the Python value that writes it back
    exactly: an ``int`` when integral, else a float whose shortest text is the decimal.

    Raises:
        ValueError: outside the bounds, or a decimal no float gives back exactly.
    """
    if isinstance(value, int):
        if abs(value) >= 10**15:
            raise ValueError("a number must be below 10^15 in absolute value")
        return value
    number = check_decimal(value)
    if number == number.to_integral_value():
        return int(number)
    as_float = float(number)
    if Decimal(repr(as_float)) != number:
        raise ValueError(
            f"{format_decimal(number)} has more digits than a JSON number keeps exactly; "
            "send it as a string to keep every digit")
    return as_float


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"{where}: a string value has at most {MAX_TEXT} characters "
                             f"(this one has {len(value)})")
        if "\x00" in value:
            raise ValueError(f"{where}: text must not contain the NUL character (\\u0000)")
        return value
    if isinstance(value, float):
        raise ValueError(f"{where}: binary floats are not accepted; send the number "
                         "exactly (a JSON number read as a decimal, or a string)")
    if isinstance(value, int | Decimal):
        try:
            return exact_number(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if isinstance(value, dict | list):
        raise ValueError(f"{where}: attrs values are strings, numbers, true, false or null; "
                         "no nested objects or arrays (flatten the key, e.g. greeks.delta)")
    raise ValueError(f"{where}: expected a string, number, true, false or null")


def check_attrs(value: Any) -> dict[str, Any]:
    """Validate an ``attrs`` object and return it with numbers as ``exact_number`` gives.

    Raises:
        ValueError: naming the key and the rule it breaks (members, key shape, value).
    """
    if not isinstance(value, dict):
        raise ValueError("attrs must be a JSON object of key -> string, number, true, "
                         "false or null")
    if len(value) > MAX_ATTRS:
        raise ValueError(f"attrs holds at most {MAX_ATTRS} members (this one has "
                         f"{len(value)})")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"attrs key {str(key)[:70]!r} must be 1-64 of letters, digits, "
                             "'.', '_' or '-'")
        out[key] = _scalar(item, f"attrs.{key}")
    return out


def _tree(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or "\x00" in key:
                raise ValueError(f"{where}: keys are strings without NUL")
            out[key] = _tree(item, f"{where}.{key[:64]}")
        return out
    if isinstance(value, list):
        return [_tree(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where}: text must not contain the NUL character (\\u0000)")
    if isinstance(value, str):
        return value
    return _scalar(value, where)


def check_json(value: Any, what: str = "parameters") -> dict[str, Any]:
    """Validate a free JSON object (a strategy's ``parameters``): nesting allowed (the
    reader bounds it at 64 levels), numbers as ``exact_number``, strings without NUL,
    at most ``MAX_PARAMETERS_BYTES`` of canonical JSON.

    Raises:
        ValueError: naming the place and the rule it breaks.
    """
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    out = _tree(value, what)
    size = len(json.dumps(out, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode())
    if size > MAX_PARAMETERS_BYTES:
        raise ValueError(f"{what} take at most {MAX_PARAMETERS_BYTES} bytes of canonical "
                         f"JSON (these take {size})")
    result: dict[str, Any] = out
    return result
