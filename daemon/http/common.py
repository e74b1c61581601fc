"""What the routes share: the reader of a request, JSON answers, errors, and params."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from daemon.errormap import error_from_exception
from daemon.http.auth import NotAuthenticatedError, Reader
from daemon.http.context import Api
from daemon.http.models import Problem
from daemon.wire.jsonread import encode
from daemon.wire.rpc import INVALID_PARAMS, NOT_PERMITTED, STORAGE_UNAVAILABLE, RpcError
from schemas.values import ACCOUNT_PATTERN

__all__ = ["ERRORS", "AccountParam", "AsOfParam", "RequiredAccount", "api_of", "error_answer",
           "json_answer", "as_of_value", "read_answer", "reader_of", "given"]

_bearer = HTTPBearer(auto_error=False, description="a token of http_tokens_file "
                     "(required unless the API listens on loopback without one)")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "a parameter to fix"},
    401: {"model": Problem, "description": "no token, or an unknown one"},
    403: {"model": Problem, "description": "the token may not read that account"},
    503: {"model": Problem, "description": "the daemon is busy or stopping: retry"},
}
"""The error answers every API route may give (besides FastAPI's 422)."""

AccountParam = Annotated[str | None, Query(pattern=ACCOUNT_PATTERN,
                                           description="the account (None: every account)")]
RequiredAccount = Annotated[str, Query(pattern=ACCOUNT_PATTERN, description="the account")]
AsOfParam = Annotated[str | None, Query(
    max_length=64, pattern=r"^([0-9]{1,18}|[0-9]{4}-.*)$",
    description="a seq (digits) or an RFC 3339 recorded time: the answer as it was then")]


def api_of(request: Request) -> Api:
    """The ``Api`` of the app serving ``request``."""
    api: Api = request.app.state.api
    return api


async def reader_of(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None,
                                           Depends(_bearer)] = None) -> Reader:
    """The reader a request comes from (its bearer token, or the loopback reader).

    Raises:
        NotAuthenticatedError: a token is required and none of the file's was sent.
    """
    header = f"Bearer {credentials.credentials}" if credentials is not None else None
    return api_of(request).tokens.reader(header)


def json_answer(value: Any, status: int = 200, headers: dict[str, str] | None = None
                ) -> Response:
    """``value`` as JSON with the socket's encoder (decimals as strings)."""
    return Response(encode(value), status, headers, media_type="application/json")


async def read_answer(request: Request, value: Any) -> Response:
    """A read's answer as JSON, encoded off the event loop and held to the socket's
    ``limits.max_answer_bytes`` (past it: 400, -32602, as the socket says it)."""
    data = await asyncio.to_thread(encode, value)
    limit = api_of(request).service.config.limits.max_answer_bytes
    if len(data) > limit:
        return error_answer(RpcError(
            INVALID_PARAMS, f"the answer would take {len(data)} bytes, more than "
            f"limits.max_answer_bytes ({limit}); ask for fewer rows (limit, offset)"))
    return Response(data, 200, media_type="application/json")


def error_answer(exc: BaseException) -> Response:
    """The HTTP answer of an error the socket would give as ``error_from_exception``."""
    if isinstance(exc, NotAuthenticatedError):
        return json_answer({"error": {"code": -32000, "message": str(exc), "data": None}},
                           401, {"WWW-Authenticate": "Bearer"})
    error = error_from_exception(exc)
    status = {INVALID_PARAMS: 400, NOT_PERMITTED: 403, STORAGE_UNAVAILABLE: 503}.get(
        error.code, 500)
    return json_answer({"error": {"code": error.code, "message": error.message,
                                  "data": error.data}}, status)


def as_of_value(text: str | None) -> int | str | None:
    """``as_of`` from a query string: digits are a seq, anything else a time."""
    if text is not None and text.isdigit():
        return int(text)
    return text


def given(**params: Any) -> dict[str, Any]:
    """The params that were given (not None)."""
    return {k: v for k, v in params.items() if v is not None}
