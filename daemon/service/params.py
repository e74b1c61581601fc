"""The params of each method (PROTOCOL.md, "Methods"), checked strictly by pydantic."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError

from eventstore.errors import ValidationError
from schemas.values import ACCOUNT_PATTERN

__all__ = [
    "AppendParams",
    "MetricsParams",
    "append_params",
    "QueryParams",
    "ReadParams",
    "SubscribeParams",
    "UnsubscribeParams",
    "check_params",
]

M = TypeVar("M", bound=BaseModel)
AccountName = Annotated[StrictStr, Field(pattern=ACCOUNT_PATTERN)]
Seq = Annotated[StrictInt, Field(ge=1)]
QueryText = Annotated[StrictStr, Field(min_length=1, max_length=256)]
QueryTime = Annotated[StrictStr, Field(max_length=64)]
AttrsKey = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
AttrsValue = StrictBool | Annotated[StrictStr, Field(max_length=256)] | StrictInt | Decimal | None


class _Params(BaseModel):
    # Each model's validator is built when a request first needs it, not when the daemon
    # starts (most daemons never see some of these methods; appends take the fast path).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class ExpectedVersion(_Params):
    """``expected_version``: ``account`` and the count of its stored events (``version`` >= 0)."""

    account: AccountName
    version: Annotated[StrictInt, Field(ge=0)]


class AppendParams(_Params):
    """``append`` params: ``events`` (one or more raw wire events), ``expected_version`` or None."""

    events: Annotated[list[Any], Field(min_length=1)]
    expected_version: ExpectedVersion | None = None


class QueryParams(_Params):
    """``query`` params (PROTOCOL.md): ``view`` and optional filters; None leaves one out.

    Types and lengths are checked here; what depends on the view (which filters it has,
    its time column) and the values' finer bounds are checked by ``ViewQuery.check``.
    ``since``/``until``/``updated_since`` are a date ``YYYY-MM-DD`` or an RFC 3339 time;
    ``order`` ``asc``/``desc``; ``offset`` 0..10^7; ``limit`` 1..100,000 (default 1000);
    ``as_of`` a seq (int >= 0) or an RFC 3339 recorded time; ``as_of_time`` an RFC 3339
    event time; ``attrs`` an object of at most 32 members (str, number, bool or null).
    """

    view: Annotated[StrictStr, Field(max_length=64)]
    account: AccountName | None = None
    symbol: QueryText | None = None
    symbol_prefix: QueryText | None = None
    strategy: QueryText | None = None
    status: QueryText | None = None
    venue: QueryText | None = None
    asset_class: QueryText | None = None
    entity: Literal["signal", "order"] | None = None
    entity_id: QueryText | None = None
    attrs: Annotated[dict[AttrsKey, AttrsValue], Field(min_length=1, max_length=32)] | None = None
    since: QueryTime | None = None
    until: QueryTime | None = None
    updated_since: QueryTime | None = None
    order: Literal["asc", "desc"] | None = None
    offset: Annotated[StrictInt, Field(ge=0, le=10_000_000)] | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None
    as_of: Annotated[StrictInt, Field(ge=0)] | QueryTime | None = None
    as_of_time: QueryTime | None = None


class MetricsParams(_Params):
    """``metrics`` params: ``account`` and optional filters; None leaves a filter out.

    ``since``/``until`` and ``as_of`` as in ``QueryParams``; ``annualization`` is periods
    per year (1..366), None for 365 or 252 as ``default_annualization`` picks.
    """

    account: AccountName
    since: StrictStr | None = None
    until: StrictStr | None = None
    symbol: StrictStr | None = None
    strategy: StrictStr | None = None
    as_of: Annotated[StrictInt, Field(ge=0)] | StrictStr | None = None
    annualization: Annotated[StrictInt, Field(ge=1, le=366)] | None = None
    now: StrictStr | None = None
    """RFC 3339 moment that sets "today" and the period starts; None: the daemon's clock."""
    period: Literal["day", "week", "month"] = "month"
    """The period table of the answer: trading days, ISO weeks or months."""


class ReadParams(_Params):
    """``read`` params: ``from_seq`` (>= 1), ``limit`` (1..10000), ``account``/``types`` or None."""

    from_seq: Seq = 1
    limit: Annotated[StrictInt, Field(ge=1, le=10_000)] = 1000
    account: AccountName | None = None
    types: list[StrictStr] | None = None


class SubscribeParams(_Params):
    """``subscribe`` params: ``from_seq`` (>= 1, default 1), optional ``account`` and ``types``."""

    from_seq: Seq = 1
    account: AccountName | None = None
    types: list[StrictStr] | None = None


class UnsubscribeParams(_Params):
    """``unsubscribe`` params: the ``subscription`` id that ``subscribe`` returned."""

    subscription: StrictStr


@dataclass(frozen=True, slots=True)
class CheckedAppend:
    """Checked ``append`` params: the raw events (validated next, by ``schemas``) and the
    optional expected version."""

    events: list[Any]
    expected_version: ExpectedVersion | None


def append_params(params: dict[str, Any]) -> CheckedAppend:
    """``check_params(AppendParams, params)``, with a fast path for the common shape.

    ``{"events": [...]}`` with a non-empty list and nothing else is what pydantic would
    accept unchanged, so it is taken as is, without running the validator over every
    event's contents. Anything else goes through pydantic and gets its error messages.
    """
    events = params.get("events")
    if len(params) == 1 and type(events) is list and events:
        return CheckedAppend(events, None)
    checked = check_params(AppendParams, params)
    return CheckedAppend(checked.events, checked.expected_version)


def check_params(model: type[M], params: dict[str, Any]) -> M:
    """Validate ``params``; raises ``ValidationError`` listing each path and what to fix."""
    try:
        return model.model_validate(params)
    except PydanticValidationError as exc:
        problems = [
            {"path": ".".join(str(p) for p in err["loc"]),
             "message": "unknown parameter" if err["type"] == "extra_forbidden"
             else str(err["msg"])}
            for err in exc.errors(include_url=False)
        ]
        first = problems[0]
        raise ValidationError(f"invalid params: {first['path']}: {first['message']}",
                              problems) from None
