"""The ``data`` of each event type in EVENTS.md, contract version 1.1.

Each model is the current ``schema_version`` of its type (``schemas.versions``); an
older stored payload is upcast to it first (``schemas.upcasters``). Version 1.1 added
optional fields only, except ``fill.multiplier``: left out, it now means the
instrument's (fill version 2; a version 1 fill without it meant 1).

Pure pydantic v2 models: frozen, unknown fields rejected, strict types (a string is
never coerced from a number, nor a number from a string except exact decimals).
Money, prices and quantities are ``Decimal`` in the account currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from schemas.types import (
    Attrs,
    AwareTime,
    Day,
    Ident,
    LongText,
    Money,
    Multiplier,
    Name,
    NonNegative,
    Note,
    Parameters,
    Positive,
    Ratio,
    Reason,
    Symbol,
    Text,
    Timeframe,
    TimeZone,
    at_most,
)

__all__ = [
    "ASSET_CLASSES",
    "AccountData",
    "CashData",
    "InstrumentData",
    "StrategyData",
    "VoidData",
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
ASSET_CLASSES = ("equity", "etf", "fx", "crypto", "future", "option", "cfd", "bond", "index",
                 "other")
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
    parent_signal_id: Ident | None = None
    attrs: Attrs | None = None


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
    attrs: Attrs | None = None


class FillData(_Data):
    """An execution (version 2). ``fee`` is in the account currency; ``multiplier`` scales
    P&L: None takes the instrument's (``instrument`` events), else 1."""

    symbol: Symbol
    side: Literal["buy", "sell"]
    quantity: Positive
    price: Positive
    fee: NonNegative = Decimal(0)
    order_id: Ident | None = None
    position_id: Ident | None = None
    signal_id: Ident | None = None
    exit_reason: ExitReason | None = None
    exit_detail: Text | None = None
    multiplier: Multiplier | None = None
    attrs: Attrs | None = None


class StatusData(_Data):
    """A status change of a signal or an order."""

    entity: Literal["signal", "order"]
    entity_id: Ident
    status: Text
    reason: Text | None = None
    price: Positive | None = None
    attrs: Attrs | None = None

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
    attrs: Attrs | None = None


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
    trading_blocked: bool | None = None
    """True blocks trading; None (left out) is false. Left out, it is not stored, so a
    limits event sent again as version 1 wrote it has the same canonical bytes."""
    attrs: Attrs | None = None


class InstrumentData(_Data):
    """What a symbol is in this account; a later one for the symbol replaces it whole.

    ``multiplier`` (default 1) is what a fill of the symbol without its own takes;
    prices and sizes are per unit; ``expiry`` is a date.
    """

    symbol: Symbol
    venue: Text | None = None
    asset_class: Literal["equity", "etf", "fx", "crypto", "future", "option", "cfd", "bond",
                         "index", "other"] | None = None
    currency: Text | None = None
    multiplier: Multiplier = Decimal(1)
    tick_size: Positive | None = None
    lot_size: Positive | None = None
    underlying: Symbol | None = None
    expiry: Day | None = None
    strike: Positive | None = None
    option_type: Literal["call", "put"] | None = None
    description: Text | None = None
    attrs: Attrs | None = None


class AccountData(_Data):
    """What the account is; a later one replaces it whole. ``benchmark`` is a symbol."""

    name: Text | None = None
    kind: Literal["live", "paper", "backtest"] = "live"
    broker: Text | None = None
    currency: Text | None = None
    benchmark: Symbol | None = None
    description: Text | None = None
    attrs: Attrs | None = None


class StrategyData(_Data):
    """What a strategy is; a later one for the same name replaces it whole."""

    strategy: Name
    description: Text | None = None
    parameters: Parameters | None = None
    active: bool = True
    attrs: Attrs | None = None


class VoidData(_Data):
    """Takes the stored event ``target_source`` + ``target_id`` (same account, not a void,
    not voided already) out of every view; the log keeps both."""

    target_source: Text
    target_id: Ident
    reason: Reason

