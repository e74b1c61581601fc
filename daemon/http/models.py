"""The shapes of the HTTP answers, for the OpenAPI document (``/api/v1/openapi.json``).

Answers are written by the daemon's own JSON encoder (the socket's), never re-shaped
by these models: they describe what is sent, and the schemathesis run checks every
answer against them. Money and every other decimal is a string; times are RFC 3339 UTC.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from projections import tables as t

__all__ = ["ROW_MODELS", "Problem", "VIEW_ANSWERS", "list_of", "literal", "optional"]

Dec = str
"""A decimal as an exact string, e.g. ``"1234.50"``."""


def list_of(item: Any) -> Any:
    """``list[item]`` for a model made at run time."""
    return list.__class_getitem__(item)


def optional(item: Any) -> Any:
    """``item | None`` for a model made at run time."""
    return item | None


def literal(value: str) -> Any:
    """``Literal[value]`` for a value known at run time."""
    return Literal.__getitem__(value)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ProblemBody(BaseModel):
    """An error: the JSON-RPC ``code`` the socket would give, what to fix, and details."""

    code: int = Field(description="-32602 bad params, -32004 not permitted, -32001 "
                      "unavailable (retry), -32603 damaged storage, -32000 no token")
    message: str
    data: Any = None


class Problem(BaseModel):
    """Every error answer (4xx/5xx): ``{"error": {"code", "message", "data"}}``."""

    error: ProblemBody


_KINDS: dict[str, Any] = {"dec": Dec | None, "int": int | None, "bool": bool | None,
                          "json": Any, "text": str | None}


def _row_model(view: str) -> type[BaseModel]:
    table = t.VIEWS[view]
    fields: dict[str, Any] = {
        name: (_KINDS[kind], Field(default=None)) for name, kind in table.columns[:table.public]
    }
    model: type[BaseModel] = create_model(
        f"{view.title()}Row", __config__=ConfigDict(extra="forbid"), **fields)
    return model


ROW_MODELS: dict[str, type[BaseModel]] = {view: _row_model(view) for view in t.VIEWS}
"""One row of each view, its EVENTS.md fields (every one may be null)."""


def _answer_model(view: str) -> type[BaseModel]:
    model: type[BaseModel] = create_model(
        f"{view.title()}Answer",
        view=(literal(view), ...),
        as_of_seq=(int, Field(description="the views' seq the rows are as of")),
        total=(int, Field(description="rows matching before offset/limit")),
        rows=(list_of(ROW_MODELS[view]), ...),
    )
    return model


VIEW_ANSWERS: dict[str, type[BaseModel]] = {view: _answer_model(view) for view in t.VIEWS}
"""The ``query`` answer of each view."""


class Health(BaseModel):
    """The socket's ``health`` (PROTOCOL.md)."""

    status: str
    version: str
    last_seq: int
    projection_seq: int
    uptime_s: float
    connections: int


class VerifyStatus(BaseModel):
    """The hash chain's last background check (``daemon.http.verify``)."""

    status: Literal["intact", "damaged", "pending", "unavailable"]
    verified_seq: int = Field(description="events 1..N re-hashed and chained")
    last_seq: int
    checked_at: str | None
    bad_seq: int | None
    reason: str | None


class Ping(BaseModel):
    status: Literal["pong"]


class EventsPage(BaseModel):
    """The socket's ``read``: stored events from ``from_seq`` and the seq to read next."""

    events: list[dict[str, Any]]
    next_seq: int


class Metrics(_Open):
    """The socket's ``metrics`` answer (docs/METRICS.md has every field)."""

    account: str
    as_of_seq: int
    now: str
    today: str
    timezone: str
    pnl: dict[str, Dec | None]
    calendar: dict[str, Any]
    trades: dict[str, Any]
    by_symbol: list[dict[str, Any]]
    by_strategy: list[dict[str, Any]]
    equity: dict[str, Any]
    drawdown: dict[str, Any]
    ratios: dict[str, Any]
    daily_loss: dict[str, Any]
