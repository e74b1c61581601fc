"""The wire event: a CloudEvents 1.0 structured-mode envelope around one ``data`` model.

``WireEvent`` is one discriminated union on ``type``; ``parse_event`` and
``parse_events`` validate plain JSON values (as read by a strict JSON reader) and
report every problem as an ``EventProblem`` with the field path and what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from schemas.data import (
    AccountData,
    CashData,
    FillData,
    InstrumentData,
    JournalData,
    LimitsData,
    MarkData,
    OrderData,
    SignalData,
    StatusData,
    StrategyData,
    VoidData,
)
from schemas.types import NO_NUL, Account, AwareTime, Ident, Text
from schemas.versions import EVENT_TYPES, SCHEMA_VERSIONS

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSIONS",
    "AccountEvent",
    "CashEvent",
    "EventProblem",
    "FillEvent",
    "InstrumentEvent",
    "JournalEvent",
    "LimitsEvent",
    "MarkEvent",
    "OrderEvent",
    "SignalEvent",
    "StatusEvent",
    "StrategyEvent",
    "VoidEvent",
    "WireEvent",
    "EventValidationError",
    "parse_event",
    "parse_events",
    "wire_event_json_schema",
]


class _Envelope(BaseModel):
    """CloudEvents attributes shared by every event (PROTOCOL.md, "Events on the wire")."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    specversion: Literal["1.0"] = "1.0"
    id: Ident
    source: Text
    time: AwareTime
    account: Account
    datacontenttype: Literal["application/json"] | None = None


class SignalEvent(_Envelope):
    """A ``signal`` event: the envelope around ``SignalData`` (a strategy's trade idea)."""

    type: Literal["signal"]
    data: SignalData


class OrderEvent(_Envelope):
    """An ``order`` event: the envelope around ``OrderData`` (an order sent to a venue)."""

    type: Literal["order"]
    data: OrderData


class FillEvent(_Envelope):
    """A ``fill`` event: the envelope around ``FillData``; ``id`` is the venue's fill id if any."""

    type: Literal["fill"]
    data: FillData


class StatusEvent(_Envelope):
    """A ``status`` event: the envelope around ``StatusData`` (a signal or order status change)."""

    type: Literal["status"]
    data: StatusData


class JournalEvent(_Envelope):
    """A ``journal`` event: the envelope around ``JournalData`` (a trading-journal entry)."""

    type: Literal["journal"]
    data: JournalData


class CashEvent(_Envelope):
    """A ``cash`` event: the envelope around ``CashData`` (signed money in the account currency)."""

    type: Literal["cash"]
    data: CashData


class MarkEvent(_Envelope):
    """A ``mark`` event: the envelope around ``MarkData`` (mark prices per unit, by symbol)."""

    type: Literal["mark"]
    data: MarkData


class LimitsEvent(_Envelope):
    """A ``limits`` event: the envelope around ``LimitsData`` (risk settings, trading-day zone)."""

    type: Literal["limits"]
    data: LimitsData


class InstrumentEvent(_Envelope):
    """An ``instrument`` event: the envelope around ``InstrumentData`` (what a symbol is)."""

    type: Literal["instrument"]
    data: InstrumentData


class AccountEvent(_Envelope):
    """An ``account`` event: the envelope around ``AccountData`` (what the account is)."""

    type: Literal["account"]
    data: AccountData


class StrategyEvent(_Envelope):
    """A ``strategy`` event: the envelope around ``StrategyData`` (what a strategy is)."""

    type: Literal["strategy"]
    data: StrategyData


class VoidEvent(_Envelope):
    """A ``void`` event: the envelope around ``VoidData`` (takes a wrong event out of every
    view; whether its target may be voided is checked against the log when appended)."""

    type: Literal["void"]
    data: VoidData


_BY_TYPE: dict[str, type[_Envelope]] = {
    "signal": SignalEvent,
    "order": OrderEvent,
    "fill": FillEvent,
    "status": StatusEvent,
    "journal": JournalEvent,
    "cash": CashEvent,
    "mark": MarkEvent,
    "limits": LimitsEvent,
    "instrument": InstrumentEvent,
    "account": AccountEvent,
    "strategy": StrategyEvent,
    "void": VoidEvent,
}
if tuple(_BY_TYPE) != EVENT_TYPES:  # pragma: no cover - a mistake in this module
    raise RuntimeError("schemas.events models and schemas.versions.EVENT_TYPES differ")

WireEvent = Annotated[
    Annotated[SignalEvent, Tag("signal")]
    | Annotated[OrderEvent, Tag("order")]
    | Annotated[FillEvent, Tag("fill")]
    | Annotated[StatusEvent, Tag("status")]
    | Annotated[JournalEvent, Tag("journal")]
    | Annotated[CashEvent, Tag("cash")]
    | Annotated[MarkEvent, Tag("mark")]
    | Annotated[LimitsEvent, Tag("limits")]
    | Annotated[InstrumentEvent, Tag("instrument")]
    | Annotated[AccountEvent, Tag("account")]
    | Annotated[StrategyEvent, Tag("strategy")]
    | Annotated[VoidEvent, Tag("void")],
    Discriminator("type"),
]
_ADAPTER: TypeAdapter[WireEvent] = TypeAdapter(WireEvent)


@dataclass(frozen=True, slots=True)
class EventProblem:
    """One reason an event was refused: ``index`` in its batch, dotted ``path``, ``message``."""

    index: int
    path: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The problem as the JSON object of ``error.data.errors`` (PROTOCOL.md, Errors)."""
        return {"index": self.index, "path": self.path, "message": self.message}


class EventValidationError(ValueError):
    """Raised by ``parse_events`` with every problem found in a batch (``problems``)."""

    def __init__(self, problems: Sequence[EventProblem]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"event {first.index}: {first.path}: {first.message}{more}")


def _message(error: Any, value: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field; remove it (a typo is never silently kept)"
    if kind == "literal_error":
        return f"{str(value)[:40]!r} is not allowed: {error['msg'].lower()}"
    if kind == "greater_than":
        return f"must be greater than {error['ctx']['gt']}"
    if kind == "greater_than_equal":
        return f"must be at least {error['ctx']['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {error['ctx']['le']}"
    if kind == "less_than":
        return f"must be below {error['ctx']['lt']}"
    if kind == "string_pattern_mismatch":
        if error.get("ctx", {}).get("pattern") == NO_NUL:
            return "text must not contain the NUL character (\\u0000)"
        return "must be 1-64 of letters, digits, '.', '_' or '-'"
    if kind in ("string_too_short", "string_too_long"):
        return str(error["msg"]).replace("String should", "must")
    if kind == "string_type":
        return "expected a string"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "expected a JSON object"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _problems(index: int, raw: Any, exc: PydanticValidationError) -> list[EventProblem]:
    found: list[EventProblem] = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        if loc and isinstance(raw, dict) and loc[0] == raw.get("type") and loc[0] in _BY_TYPE:
            loc = loc[1:]
        path = ".".join(str(part) for part in loc)
        if error["type"] == "union_tag_invalid":
            got = raw.get("type") if isinstance(raw, dict) else None
            found.append(
                EventProblem(
                    index, "type", f"unknown event type {str(got)[:40]!r}; use one of "
                    + ", ".join(EVENT_TYPES)
                )
            )
            continue
        if error["type"] == "union_tag_not_found":
            found.append(
                EventProblem(index, "type", "required field is missing; use one of "
                             + ", ".join(EVENT_TYPES))
            )
            continue
        found.append(EventProblem(index, path, _message(error, error.get("input"))))
    return found


def parse_event(raw: Any, index: int = 0) -> _Envelope:
    """Validate one wire event (a JSON object as a ``dict``) into its typed model.

    Raises:
        EventValidationError: every problem, each with the path and what to fix.
    """
    if not isinstance(raw, dict):
        raise EventValidationError([EventProblem(index, "", "an event must be a JSON object")])
    try:
        return _ADAPTER.validate_python(raw)
    except PydanticValidationError as exc:
        raise EventValidationError(_problems(index, raw, exc)) from None


def parse_events(raws: Sequence[Any]) -> list[_Envelope]:
    """Validate a batch; raises ``EventValidationError`` listing problems of all events."""
    parsed: list[_Envelope] = []
    problems: list[EventProblem] = []
    for index, raw in enumerate(raws):
        try:
            parsed.append(parse_event(raw, index))
        except EventValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise EventValidationError(problems)
    return parsed


def wire_event_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one wire event, for bots in any language."""
    schema = _ADAPTER.json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tradelog wire event (CloudEvents 1.0, structured mode)"
    schema["description"] = (
        "tradelog contract 1.1. Decimals: below 10^15 in absolute value, at most 18 digits "
        "after the point, never rounded; multiplier at most 10^6. Times: RFC 3339 with an "
        "offset, 1900-01-01T00:00:00Z..2199-12-31T23:59:59Z; dates 1900-01-01..2199-12-31. "
        "Texts: at most 256 characters unless stated, no NUL. attrs: at most 32 members, "
        "keys [A-Za-z0-9_.-]{1,64}, values string (<= 256 characters), number, true, false "
        "or null, no nesting. Unknown fields are refused.")
    schema["x-tradelog-contract"] = "1.1"
    return schema


Event = _Envelope
