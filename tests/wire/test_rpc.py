"""JSON-RPC framing helpers (daemon/wire/rpc.py): ids under PROTOCOL.md 1.1."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.wire.jsonread import dumps, loads
from daemon.wire.rpc import (
    INVALID_REQUEST,
    RpcError,
    answer_id,
    error_answer,
    parse_request,
    result_answer,
)


@pytest.mark.parametrize("raw", [b'"abc"', b"7", b"-7", b"null", b'"' + b"x" * 128 + b'"',
                                 b"9" * 19, b"-" + b"9" * 19, b'""'])
def test_valid_ids_are_echoed_as_sent(raw: bytes) -> None:
    """Strings up to 128 characters, integers up to 19 digits and null come back as the
    same JSON text, in results and in errors."""
    message = loads(b'{"jsonrpc":"2.0","method":"health","id":' + raw + b"}")
    request = parse_request(message)
    assert raw == dumps(result_answer(request.id, True)).split(b'"id":')[1].split(b',"result"')[0]
    assert raw == dumps(error_answer(request.id, -32601, "no")).split(b'"id":')[1].split(
        b',"error"')[0]


@pytest.mark.parametrize(("raw", "why"), [
    (b"1.5", "fraction or an exponent"),
    (b"1e3", "fraction or an exponent"),
    (b"7.0", "fraction or an exponent"),
    (b"9" * 20, "this one has 20"),
    (b'"' + b"x" * 129 + b'"', "this one has 129"),
    (b"true", "not a boolean"),
    (b"{}", "not an object"),
    (b"[7]", "not an array"),
])
def test_invalid_ids_are_refused_and_answered_with_null(raw: bytes, why: str) -> None:
    """An id that is not a string <= 128 characters, an integer <= 19 digits or null is
    -32600 naming the rule, and the answer carries id null (answer_id gives None)."""
    message = loads(b'{"jsonrpc":"2.0","method":"health","id":' + raw + b"}")
    with pytest.raises(RpcError) as refused:
        parse_request(message)
    assert INVALID_REQUEST == refused.value.code
    assert "at most 128 characters" in refused.value.message
    assert why in refused.value.message
    assert answer_id(message) is None


@pytest.mark.parametrize("message", [[1], "x", 5, None])
def test_answer_id_of_a_non_object_is_none(message: Any) -> None:
    """A message that is not an object has no id to answer with."""
    assert answer_id(message) is None
