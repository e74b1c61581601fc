"""The ``data`` of each event type in EVENTS.md, version 1.

Pure pydantic v2 models: frozen, unknown fields rejected, strict types (a string is
never coerced from a number, nor a number from a string except exact decimals).
Money, prices and quantities are ``Decimal`` in the account currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from schemas.types import (
    AwareTime,
    Ident,
    LongText,
    Money,
    Multiplier,
    Name,
    NonNegative,
    Note,
    Positive,
    Ratio,
    Symbol,
    Text,
    Timeframe,
    TimeZone,
    at_most,
)

__all__ = [
    "CashData",
    "ExitReason",
    "FillData",
    "JournalData",
    "LimitsData",
    "MarkData",
    "OrderData",
    "SIGNAL_STATUSES",
    "ORDER_STATUSES",
    "SignalData",
    "StatusData",
]

ExitReason = Literal[
    "take_profit",
    "stop_loss",
    "trailing_stop",
    "signal",
    "manual",
    "daily_loss_limit",
    "expiry",
    "liquidation",
    "other",
]
SIGNAL_STATUSES = ("active", "triggered", "cancelled", "expired", "closed")
ORDER_STATUSES = (
    "submitted",
    "accepted",
    "partially_filled",
    "filled",
    "amended",
    "cancelled",
    "rejected",
    "expired",
)
CASH_SIGN = {"deposit": 1, "withdrawal": -1}


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SignalData(_Data):
    """A strategy's trade idea; its status starts ``active``."""

    signal_id: Ident
    strategy: Name
    symbol: Symbol
    side: Literal["long", "short"]
    entry_price: Positive | None = None
    stop_loss: Positive | None = None
    take_profit: Positive | None = None
    confidence: Ratio | None = None
    timeframe: Timeframe | None = None
    expires_at: AwareTime | None = None
    note: Note | None = None


class OrderData(_Data):
    """An order sent to a venue; its status starts ``submitted``."""

    order_id: Ident
    symbol: Symbol
    side: Literal["buy", "sell"]
    quantity: Positive
    order_type: Literal["market", "limit", "stop", "stop_limit"]
    limit_price: Positive | None = None
    stop_price: Positive | None = None
    signal_id: Ident | None = None
    position_id: Ident | None = None


class FillData(_Data):
    """An execution. ``fee`` is in the account currency; ``multiplier`` scales P&L."""

    symbol: Symbol
    side: Literal["buy", "sell"]
    quantity: Positive
    price: Positive
    fee: NonNegative = Decimal(0)
    order_id: Ident | None = None
    position_id: Ident | None = None
    signal_id: Ident | None = None
    exit_reason: ExitReason | None = None
    multiplier: Multiplier = Decimal(1)


class StatusData(_Data):
    """A status change of a signal or an order."""

    entity: Literal["signal", "order"]
    entity_id: Ident
    status: Text
    reason: Text | None = None
    price: Positive | None = None

    @field_validator("status")
    @classmethod
    def _status_fits_entity(cls, value: str, info: ValidationInfo) -> str:
        entity = info.data.get("entity")
        if entity is None:  # the entity itself is wrong and reported on its own
            return value
        allowed = SIGNAL_STATUSES if entity == "signal" else ORDER_STATUSES
        if value not in allowed:
            raise ValueError(
                f"{value[:40]!r} is not a valid {entity} status; use one of {', '.join(allowed)}"
            )
        return value


class JournalData(_Data):
    """A trading-journal entry."""

    text: LongText
    tags: Annotated[list[Text], at_most(32, "tags")] | None = None
    symbol: Symbol | None = None
    position_id: Ident | None = None
    signal_id: Ident | None = None


class CashData(_Data):
    """Money in (+) or out (-) of the account, in the account currency."""

    # ``kind`` comes first so that ``amount``'s check can see it (and name data.amount).
    kind: Literal["deposit", "withdrawal", "fee", "funding", "interest", "dividend", "adjustment"]
    amount: Money
    note: Text | None = None

    @field_validator("amount")
    @classmethod
    def _sign_fits_kind(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        if value == 0:
            raise ValueError("amount must not be 0")
        sign = CASH_SIGN.get(info.data.get("kind", ""))
        if sign == 1 and value < 0:
            raise ValueError("a deposit's amount must be > 0")
        if sign == -1 and value > 0:
            raise ValueError("a withdrawal's amount must be < 0")
        return value


class MarkData(_Data):
    """Mark-to-market prices: symbol -> price (> 0)."""

    prices: Annotated[dict[Symbol, Positive], at_most(10_000, "symbols")]

    @field_validator("prices")
    @classmethod
    def _not_empty(cls, value: dict[str, object]) -> dict[str, object]:
        if not value:
            raise ValueError("prices must hold at least one symbol")
        return value


class LimitsData(_Data):
    """Risk settings; ``timezone`` (IANA) sets where the account's trading day starts."""

    daily_loss_limit: NonNegative | None = None
    max_open_positions: Annotated[int, Field(ge=0, lt=10**15)] | None = None
    timezone: TimeZone = "UTC"

