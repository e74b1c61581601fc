"""JSON-RPC 2.0 messages, pure: request shapes, answers and error codes (PROTOCOL.md).

No I/O here: the server feeds decoded values in and writes out what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "IDEMPOTENCY_CONFLICT",
    "MAX_ID_CHARS",
    "MAX_ID_DIGITS",
    "METHOD_NOT_FOUND",
    "NOT_PERMITTED",
    "PARSE_ERROR",
    "STORAGE_UNAVAILABLE",
    "VERSION_CONFLICT",
    "Request",
    "RpcError",
    "answer_id",
    "error_answer",
    "parse_request",
    "result_answer",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
STORAGE_UNAVAILABLE = -32001
IDEMPOTENCY_CONFLICT = -32002
VERSION_CONFLICT = -32003
NOT_PERMITTED = -32004

MAX_ID_CHARS = 128
"""Longest string ``id`` (PROTOCOL.md, "Transport"), in characters."""
MAX_ID_DIGITS = 19
"""Most digits of an integer ``id``, its sign not counted."""


class RpcError(Exception):
    """An error to answer with: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


@dataclass(slots=True)
class Request:
    """A well-formed request; ``id`` is absent (``has_id`` False) for a notification.

    Not frozen: one is made per request, and a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__`` (3x the cost); nothing changes one once made."""

    method: str
    params: dict[str, Any]
    id: Any
    has_id: bool


_MEMBERS = frozenset(("jsonrpc", "method", "params", "id"))
"""The members a request object may have."""

_ID_RULE = (f'"id" must be a string of at most {MAX_ID_CHARS} characters, an integer of at '
            f"most {MAX_ID_DIGITS} digits, or null")


def _id_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid JSON-RPC id under PROTOCOL.md 1.1; None when it is."""
    if value is None:
        return None
    if isinstance(value, bool):
        return f"{_ID_RULE}, not a boolean"
    if isinstance(value, str):
        return None if len(value) <= MAX_ID_CHARS else f"{_ID_RULE}; this one has {len(value)}"
    if isinstance(value, int):
        # Ints reach here only from JSON, at most 40 characters: str() is cheap.
        digits = len(str(abs(value)))
        return None if digits <= MAX_ID_DIGITS else f"{_ID_RULE}; this one has {digits}"
    if isinstance(value, dict | list):
        return f"{_ID_RULE}, not {'an object' if isinstance(value, dict) else 'an array'}"
    return f"{_ID_RULE}; a number with a fraction or an exponent is not an id"


def answer_id(message: Any) -> Any:
    """The id to answer ``message`` with: its ``id`` when that is valid, else None (also
    for a message that is not an object)."""
    if not isinstance(message, dict):
        return None
    value = message.get("id")
    return value if _id_problem(value) is None else None


def parse_request(message: Any) -> Request:
    """Check one JSON-RPC request object (jsonrpc.org/specification, section 4).

    Raises:
        RpcError: -32600 for a malformed request (an invalid ``id`` included: answer it
            with ``answer_id``, which gives None then), -32602 for params that are not an
            object.
    """
    if not isinstance(message, dict):
        raise RpcError(INVALID_REQUEST, "a request must be a JSON object")
    has_id = "id" in message
    problem = _id_problem(message["id"]) if has_id else None
    if problem is not None:
        raise RpcError(INVALID_REQUEST, problem)
    if message.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'a request must carry "jsonrpc": "2.0"')
    method = message.get("method")
    if not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, '"method" must be a string')
    if not _MEMBERS.issuperset(message):
        extra = set(message) - _MEMBERS
        raise RpcError(INVALID_REQUEST, f"unknown request members: {', '.join(sorted(extra))}")
    params = message.get("params", {})
    if isinstance(params, list):
        if params:
            raise RpcError(INVALID_PARAMS, "params must be an object (by name), not a list")
        params = {}
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "params must be an object")
    return Request(method, params, message.get("id"), has_id)


def result_answer(request_id: Any, result: Any) -> dict[str, Any]:
    """A JSON-RPC success response: ``{"jsonrpc": "2.0", "id", "result"}``, id echoed as sent."""
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_answer(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response; ``error.data`` is left out when ``data`` is None."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}
