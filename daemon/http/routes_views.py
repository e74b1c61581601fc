"""The socket's reads over HTTP: every view (``query``), ``metrics``, the log (``read``),
``health``, the chain's status, and the live stream."""

from __future__ import annotations

import inspect
import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from daemon.http.auth import Reader, check_read
from daemon.http.common import (
    ERRORS,
    AccountParam,
    AsOfParam,
    RequiredAccount,
    api_of,
    as_of_value,
    given,
    json_answer,
    read_answer,
    reader_of,
)
from daemon.http.models import VIEW_ANSWERS, EventsPage, Health, Metrics, VerifyStatus
from daemon.http.stream import ClosingStreamingResponse, open_stream
from daemon.service.logread import check_types, read_bounded
from daemon.service.params import ReadParams, check_params
from eventstore.errors import ValidationError
from projections import tables as t
from projections.query_columns import filters_of, order_of
from projections.query_params import MAX_LIMIT, MAX_OFFSET

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=ERRORS)
ReaderDep = Annotated[Reader, Depends(reader_of)]
_TEXT = {"symbol": "the symbol", "symbol_prefix": "symbols starting with this",
         "strategy": "the strategy", "status": "the status", "venue": "the venue",
         "asset_class": "the asset class", "entity_id": "the signal or order id"}
_EVENTS_BYTES = 4 << 20
"""The most one ``events`` page takes encoded (the socket's answers may take more)."""


def _param(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=annotation)


def _view_params(view: str) -> list[inspect.Parameter]:
    """The query parameters of ``view``: its filters (and no other), paging, as_of."""
    has = set(filters_of(view))
    time = order_of(view).time
    out = [_param("account", AccountParam)]
    for name, what in _TEXT.items():
        if name in has:
            out.append(_param(name, Annotated[str | None, Query(
                min_length=1, max_length=256, description=f"rows of {what}")]))
    if "entity" in has:
        out.append(_param("entity", Annotated[Literal["signal", "order"] | None, Query()]))
    if "attrs" in has:
        out.append(_param("attrs", Annotated[str | None, Query(
            max_length=8192, description='a JSON object, e.g. {"tf":"1h"}: rows whose attrs '
            "hold every key with that value")]))
    if time is not None:
        for name, word in (("since", "first"), ("until", "last")):
            out.append(_param(name, Annotated[str | None, Query(
                max_length=64, description=f"the {word} date YYYY-MM-DD or RFC 3339 time "
                f"of {time}, inclusive")]))
    if "updated_since" in has:
        out.append(_param("updated_since", Annotated[str | None, Query(
            max_length=64, description="rows updated at or after this RFC 3339 time")]))
    out += [
        _param("order", Annotated[Literal["asc", "desc"] | None, Query()]),
        _param("offset", Annotated[int | None, Query(ge=0, le=MAX_OFFSET)]),
        _param("limit", Annotated[int | None, Query(ge=1, le=MAX_LIMIT,
                                                    description="default 1000")]),
        _param("as_of", AsOfParam),
        _param("as_of_time", Annotated[str | None, Query(
            max_length=64, description="fold only events whose event time <= this")]),
    ]
    return out


def _attrs(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ValidationError(f"attrs must be a JSON object: {exc}") from None


def _view_route(view: str) -> None:
    async def endpoint(request: Request, reader: ReaderDep, **params: Any) -> Response:
        values = given(**params)
        if "attrs" in values:
            values["attrs"] = _attrs(values["attrs"])
        if "as_of" in values:
            values["as_of"] = as_of_value(values["as_of"])
        return await read_answer(request,
                                 await api_of(request).query(reader, {"view": view, **values}))

    base = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=Request),
            inspect.Parameter("reader", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=ReaderDep)]
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*base, *_view_params(view)], return_annotation=Response)
    endpoint.__name__ = f"view_{view}"
    router.add_api_route(
        f"/views/{view}", endpoint, methods=["GET"], response_model=VIEW_ANSWERS[view],
        summary=f"the {view} view", tags=["views"],
        description=f"The socket's `query` of view `{view}` (PROTOCOL.md): the filters it "
        "has, paging, and `as_of` / `as_of_time` for the view as it was.")


for _view in t.VIEWS:
    _view_route(_view)


@router.get("/accounts", response_model=VIEW_ANSWERS["accounts"], tags=["views"],
            summary="the accounts this caller may read")
async def accounts(request: Request, reader: ReaderDep) -> Response:
    """The ``accounts`` view, only the rows of the accounts the token may read (all of
    them without tokens): what the dashboard offers to choose from."""
    api = api_of(request)
    found = await api.query(Reader("accounts", None), {"view": "accounts"})
    if reader.accounts is not None:
        found["rows"] = [r for r in found["rows"] if r["account"] in reader.accounts]
        found["total"] = len(found["rows"])
    return await read_answer(request, found)


@router.get("/views", tags=["views"], summary="the views and their filters")
async def views() -> dict[str, Any]:
    """Each view's filters and time column (what ``since``/``until`` bound)."""
    return {"views": [{"view": v, "filters": list(filters_of(v)), "time": order_of(v).time}
                      for v in t.VIEWS]}


@router.get("/metrics", response_model=Metrics, tags=["views"],
            summary="performance figures of one account")
async def metrics(request: Request, reader: ReaderDep, account: RequiredAccount,
                  since: Annotated[str | None, Query(max_length=64)] = None,
                  until: Annotated[str | None, Query(max_length=64)] = None,
                  symbol: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
                  strategy: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
                  as_of: AsOfParam = None,
                  annualization: Annotated[int | None, Query(ge=1, le=366)] = None,
                  now: Annotated[str | None, Query(max_length=64)] = None,
                  period: Annotated[Literal["day", "week", "month"], Query()] = "month",
                  ) -> Response:
    """The socket's ``metrics`` (docs/METRICS.md): "today" and the period starts come
    from ``now`` (RFC 3339) or, without it, the daemon's clock in the account's time
    zone; ``period`` picks the period table (trading days, ISO weeks or months)."""
    params = given(account=account, since=since, until=until, symbol=symbol,
                   strategy=strategy, as_of=as_of_value(as_of), annualization=annualization,
                   now=now, period=period)
    return await read_answer(request, await api_of(request).metrics(reader, params))


@router.get("/events", response_model=EventsPage, tags=["log"],
            summary="the event log, a page at a time")
async def events(request: Request, reader: ReaderDep,
                 from_seq: Annotated[int, Query(ge=1, le=2**62)] = 1,
                 limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
                 account: AccountParam = None,
                 types: Annotated[str | None, Query(
                     max_length=1024, description="comma-separated event types")] = None,
                 ) -> Response:
    """The socket's ``read``: up to ``limit`` stored events from ``from_seq`` (at most 4
    MiB encoded) and ``next_seq``, the seq to ask for next."""
    api = api_of(request)
    checked = check_params(ReadParams, given(
        from_seq=from_seq, limit=limit, account=account,
        types=types.split(",") if types else None))
    check_read(reader, checked.account)
    check_types(checked.types)
    async with api.service.reads_running:
        found, next_seq = await read_bounded(api.service.recorder, checked.from_seq,
                                             checked.limit, checked.account, checked.types,
                                             _EVENTS_BYTES)
    return json_answer({"events": found, "next_seq": next_seq})


@router.get("/health", response_model=Health, tags=["status"], summary="the daemon's health")
async def health(request: Request, reader: ReaderDep) -> Response:
    """The socket's ``health``."""
    return json_answer(api_of(request).service.health())


@router.get("/verify", response_model=VerifyStatus, tags=["status"],
            summary="the hash chain: intact up to which seq, checked when")
async def verify(request: Request, reader: ReaderDep) -> Response:
    """The last background walk of the hash chain (``daemon.http.verify``); when it is
    behind the log, the walker is woken, so a later request sees the newer events."""
    api = api_of(request)
    status = api.verifier.status(api.service.last_seq)
    if status["verified_seq"] < status["last_seq"]:
        api.verifier.wake.set()
    return json_answer(status)


@router.get("/stream", tags=["log"], summary="committed events, live (Server-Sent Events)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "an endless text/event-stream"}})
async def stream(request: Request, reader: ReaderDep,
                 account: AccountParam = None,
                 types: Annotated[str | None, Query(max_length=1024)] = None,
                 from_seq: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                 last_event_id: Annotated[str | None, Header(max_length=24)] = None,
                 ) -> StreamingResponse:
    """Events from ``Last-Event-ID`` + 1 (a reconnecting ``EventSource``), else
    ``from_seq``, else the next one committed (``daemon.http.stream``)."""
    check_read(reader, account)
    start = from_seq
    if last_event_id is not None and last_event_id.strip().isdigit():
        start = int(last_event_id.strip()) + 1
    body = open_stream(api_of(request), start, account, types.split(",") if types else None)
    return ClosingStreamingResponse(body, media_type="text/event-stream", headers={
        "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
