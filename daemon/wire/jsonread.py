"""Strict JSON reading for the wire (PROTOCOL.md, "Transport").

Non-integer numbers become ``Decimal`` (never a binary float); NaN and infinities,
duplicate keys, invalid UTF-8 and nesting deeper than 64 are refused. So is a number of
more than ``MAX_NUMBER_CHARS`` characters or with an exponent beyond
``MAX_NUMBER_EXPONENT``, before it is converted: no number costs work out of proportion to
its length (``int()`` of a long digit string is quadratic, and ``1e1000000`` is cheap to
read but not to use).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "MAX_NUMBER_EXPONENT", "JSONReadError", "dumps",
           "encode", "loads"]

MAX_DEPTH = 64
MAX_NUMBER_CHARS = 40
"""Longest JSON number read, sign, point and exponent included (PROTOCOL.md, "Transport")."""
MAX_NUMBER_EXPONENT = 40
"""Largest exponent, either sign, a JSON number may carry as written (``1e40``, ``1e-40``)."""


class JSONReadError(ValueError):
    """The bytes are not strict JSON; the message says why (answered as -32700)."""


def _constant(name: str) -> Any:
    raise JSONReadError(f"{name} is not a JSON number; send finite numbers only")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONReadError(f"duplicate key {key[:40]!r} in one object")
            seen.add(key)
    return result


def _depth_ok(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return True


def _has_lone_surrogate(value: Any) -> bool:
    """True if a string (or key) holds a ``\\uD800``-``\\uDFFF`` escape not in a pair: such
    text has no UTF-8 form, so it could be neither stored nor echoed back."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _shown(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}...{text[-8:]} ({len(text)} characters)"


def _check_length(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONReadError(f"a number of more than {MAX_NUMBER_CHARS} characters "
                            f"({_shown(text)}); no price, quantity or id needs that many")


def _integer(text: str) -> int:
    """``parse_int`` hook: called with the number's text, before any conversion."""
    _check_length(text)
    return int(text)


def _decimal(text: str) -> Decimal:
    """``parse_float`` hook: the text is checked for length and exponent, then read exactly."""
    _check_length(text)
    mark = max(text.find("e"), text.find("E"))
    if mark >= 0 and abs(int(text[mark + 1:])) > MAX_NUMBER_EXPONENT:
        raise JSONReadError(f"a number with an exponent beyond +-{MAX_NUMBER_EXPONENT} "
                            f"({_shown(text)}); write it with an exponent of at most "
                            f"{MAX_NUMBER_EXPONENT} either way")
    return Decimal(text)


_decoder = json.JSONDecoder(
    parse_float=_decimal, parse_int=_integer, parse_constant=_constant,
    object_pairs_hook=_pairs, strict=True
)
_plain_ints = json.JSONDecoder(
    parse_float=_decimal, parse_constant=_constant, object_pairs_hook=_pairs, strict=True
)
"""The same, with integers read by the C scanner itself: for text without 40 digits in a
row, where no integer can be over ``MAX_NUMBER_CHARS`` (a hook call per integer costs
5x the decode of a line of bare numbers, and other clients wait for it)."""
_FORTY_DIGITS = re.compile(rb"[0-9]{40}")


def loads(raw: bytes) -> Any:
    """Decode one JSON value from UTF-8 bytes, strictly.

    Raises:
        JSONReadError: invalid UTF-8 (including a ``\\u`` escape of a lone surrogate),
            invalid JSON, NaN/Infinity, duplicate keys, a number of more than 40
            characters or with an exponent beyond +-40, or nesting deeper than 64.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONReadError(f"invalid UTF-8 at byte {exc.start}") from None
    decoder = _decoder if _FORTY_DIGITS.search(raw) else _plain_ints
    try:
        value = decoder.decode(text)
    except JSONReadError:
        raise
    except RecursionError:
        raise JSONReadError(f"nesting deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise JSONReadError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                            ) from None
    except ValueError as exc:
        raise JSONReadError(f"invalid JSON: {exc}") from None
    # Nesting needs an opening bracket per level: fewer than MAX_DEPTH in all is safe.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and not _depth_ok(value):
        raise JSONReadError(f"nesting deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise JSONReadError("invalid UTF-8: a \\u escape names a lone UTF-16 surrogate")
    return value


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
"""The C encoder ``JSONEncoder`` uses (None on an interpreter without ``_json``)."""

_encoder = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
)


def encode(value: Any) -> bytes:
    """``value`` as compact JSON in UTF-8, without a line end (the same text as
    ``_encoder.encode``: one answer per request, so the C encoder is called directly,
    without ``JSONEncoder.encode``'s Python layers; docs/BENCHMARKS.md, section 13).

    Raises:
        TypeError, ValueError: the value holds something JSON cannot carry.
    """
    if _c_make_encoder is None or value.__class__ is str:
        return _encoder.encode(value).encode()
    # Arguments as ``JSONEncoder.iterencode`` passes them for ``_encoder``'s settings: a
    # fresh dict of markers (check_circular), no indent, sort_keys and skipkeys False,
    # allow_nan False.
    return "".join(_c_make_encoder({}, _default, encode_basestring, None, ":", ",",
                                   False, False, False)(value, 0)).encode()


def dumps(value: Any) -> bytes:
    """One JSON line (UTF-8, ``\\n``-terminated) for the wire."""
    return (_encoder.encode(value) + "\n").encode()
