"""The field types of the event schemas: ``Annotated`` aliases over ``schemas.values``.

Each validator turns wire input into a Python value or raises ``ValueError`` with a
message that says what to send instead; pydantic puts the field path in front of it.
The bounds are EVENTS.md 1.1's ("Bounds on values"): decimals below 10^15 with at most
18 places, multipliers at most 10^6, times 1900..2199 UTC, texts without NUL and at
most 256 characters unless the type says otherwise .
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, WithJsonSchema

from schemas.attrs import ATTRS_KEY, MAX_ATTRS, MAX_PARAMETERS_BYTES, check_attrs, check_json
from schemas.values import (
    ACCOUNT_PATTERN,
    MAX_TEXT,
    check_multiplier,
    check_timezone,
    format_decimal,
    format_time,
    parse_date,
    parse_decimal,
    parse_time,
)

__all__ = ["NO_NUL", "Account", "Attrs", "AwareTime", "Day", "Ident", "LongText", "Money",
           "Multiplier", "Name", "NonNegative", "Note", "Parameters", "Positive", "Ratio",
           "Reason", "Symbol", "Text", "TimeZone", "Timeframe", "at_most"]


_DECIMAL_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "pattern": r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$",
             "maxLength": 40},
            {"type": "number"},
        ],
        "description": "exact decimal below 10^15 in absolute value, at most 18 digits "
                       "after the point; a string is safest (JSON numbers are read exactly)",
    }
)
_decimal_out = PlainSerializer(format_decimal, return_type=str)
_time_out = PlainSerializer(format_time, return_type=str)
_date_out = PlainSerializer(lambda value: value.isoformat(), return_type=str)
NO_NUL = r"^[^\x00]*$"
"""The pattern of every text field: no NUL character (checked in pydantic's core)."""
_no_nul = Field(pattern=NO_NUL)

Money = Annotated[Decimal, BeforeValidator(parse_decimal), _decimal_out, _DECIMAL_SCHEMA]
Positive = Annotated[
    Decimal, BeforeValidator(parse_decimal), Field(gt=0), _decimal_out, _DECIMAL_SCHEMA
]
NonNegative = Annotated[
    Decimal, BeforeValidator(parse_decimal), Field(ge=0), _decimal_out, _DECIMAL_SCHEMA
]
Ratio = Annotated[
    Decimal, BeforeValidator(parse_decimal), Field(ge=0, le=1), _decimal_out, _DECIMAL_SCHEMA
]
Multiplier = Annotated[
    Decimal, BeforeValidator(parse_decimal), Field(gt=0), AfterValidator(check_multiplier),
    _decimal_out, _DECIMAL_SCHEMA,
]
"""A contract multiplier: > 0 and at most 10^6."""
AwareTime = Annotated[
    datetime,
    BeforeValidator(parse_time),
    _time_out,
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Day = Annotated[
    date, BeforeValidator(parse_date), _date_out,
    WithJsonSchema({"type": "string", "format": "date"}),
]
"""A date ``YYYY-MM-DD`` from 1900-01-01 to 2199-12-31 (e.g. an option's expiry)."""
TimeZone = Annotated[
    str, BeforeValidator(check_timezone),
    WithJsonSchema({"type": "string", "maxLength": 64,
                    "description": "IANA time-zone name, e.g. Europe/London"}),
]


def at_most(count: int, what: str) -> BeforeValidator:
    """A validator refusing a list or object of more than ``count`` members before any
    member is validated (so that a huge one costs no more than counting it)."""

    def check(value: Any) -> Any:
        if isinstance(value, list | dict) and len(value) > count:
            raise ValueError(f"at most {count} {what} (this one has {len(value)})")
        return value

    return BeforeValidator(check)


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), _no_nul]
"""A text of 1..256 characters with no NUL character (the default for text fields)."""
Note = Annotated[str, Field(min_length=1, max_length=2000), _no_nul]
"""A signal's ``note``: 1..2000 characters, no NUL."""
LongText = Annotated[str, Field(min_length=1, max_length=10000), _no_nul]
"""A journal entry's ``text``: 1..10000 characters, no NUL."""
Name = Annotated[str, Field(min_length=1, max_length=128), _no_nul]
"""A strategy name: 1..128 characters, no NUL."""
Timeframe = Annotated[str, Field(min_length=1, max_length=32), _no_nul]
Account = Annotated[str, Field(pattern=ACCOUNT_PATTERN)]
Symbol = Annotated[str, Field(min_length=1, max_length=64), _no_nul]
Ident = Annotated[str, Field(min_length=1, max_length=128), _no_nul]
"""An event, signal, order or position id: 1..128 characters, no NUL."""
Reason = Annotated[str, Field(min_length=1, max_length=1000), _no_nul]
"""A void's ``reason``: 1..1000 characters, no NUL."""

_ATTRS_SCHEMA = WithJsonSchema({
    "type": "object",
    "maxProperties": MAX_ATTRS,
    "propertyNames": {"pattern": ATTRS_KEY},
    "additionalProperties": {"anyOf": [
        {"type": "string", "maxLength": MAX_TEXT},
        {"type": "number", "description": "an exact decimal below 10^15 in absolute "
                                          "value, at most 18 digits after the point"},
        {"type": "boolean"},
        {"type": "null"},
    ]},
    "description": "what the bot knows and tradelog has no field for; at most "
                   f"{MAX_ATTRS} members, keys [A-Za-z0-9_.-]{{1,64}}, values a string of at "
                   f"most {MAX_TEXT} characters, a number, true, false or null; no nesting. "
                   "Stored as sent, shown in the views, never interpreted.",
})
Attrs = Annotated[dict[str, Any], BeforeValidator(check_attrs), _ATTRS_SCHEMA]
"""An ``attrs`` object (``schemas.attrs.check_attrs``)."""
Parameters = Annotated[
    dict[str, Any], BeforeValidator(check_json),
    WithJsonSchema({"type": "object", "description": "a strategy's parameters: any JSON "
                    f"object, nesting allowed, at most {MAX_PARAMETERS_BYTES} bytes of "
                    "canonical JSON"}),
]
"""A strategy's ``parameters`` (``schemas.attrs.check_json``)."""
