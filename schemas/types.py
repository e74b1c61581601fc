"""The field types of the event schemas: ``Annotated`` aliases over ``schemas.values``.

Each validator turns wire input into a Python value or raises ``ValueError`` with a
message that says what to send instead; pydantic puts the field path in front of it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from schemas.values import (
    ACCOUNT_PATTERN,
    format_decimal,
    format_time,
    parse_decimal,
    parse_time,
)

__all__ = ["Account", "AwareTime", "Ident", "Money", "NonNegative", "Positive", "Ratio",
           "Symbol"]


_DECIMAL_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "pattern": r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"},
            {"type": "number"},
        ],
        "description": "exact decimal; a string is safest (JSON numbers are read exactly)",
    }
)
_decimal_out = PlainSerializer(format_decimal, return_type=str)
_time_out = PlainSerializer(format_time, return_type=str)

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
AwareTime = Annotated[
    datetime,
    BeforeValidator(parse_time),
    _time_out,
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Account = Annotated[str, Field(pattern=ACCOUNT_PATTERN)]
Symbol = Annotated[str, Field(min_length=1, max_length=64)]
Ident = Annotated[str, Field(min_length=1, max_length=128)]
