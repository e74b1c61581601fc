"""Answer encoding (daemon/wire/jsonread.py ``encode``): the C encoder called directly
gives the same bytes, and the same errors, as ``json.JSONEncoder`` with the wire's
settings."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.wire.jsonread import _encoder, encode


def _reference(value: Any) -> bytes:
    return _encoder.encode(value).encode()


_leaves = (st.none() | st.booleans() | st.integers() | st.text()
           | st.decimals(allow_nan=False, allow_infinity=False)
           | st.floats(allow_nan=False, allow_infinity=False))
_values = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@given(_values)
def test_encode_matches_the_json_encoder(value: Any) -> None:
    """Any JSON value (Decimals as plain numbers, non-ASCII text as is) encodes to the
    bytes ``JSONEncoder`` gives with the same settings."""
    assert encode(value) == _reference(value)


@pytest.mark.parametrize("value", [
    {"jsonrpc": "2.0", "id": "é\u2028\"\\", "result": {"price": Decimal("1.50"), "q": -3}},
    "a bare string",
    [Decimal("1E+2"), 1.5, None, True],
])
def test_encode_examples(value: Any) -> None:
    """Answers, a bare string and an array encode compactly, as the reference does."""
    assert encode(value) == _reference(value)
    assert json.loads(encode(value)) == json.loads(_reference(value))


@pytest.mark.parametrize(("value", "error"), [
    ({"bad": object()}, TypeError),
    ({"nan": float("nan")}, ValueError),
    ({"inf": [float("inf")]}, ValueError),
])
def test_encode_refuses_what_json_cannot_carry(value: Any, error: type[Exception]) -> None:
    """A value JSON cannot carry raises the error ``encode`` documents, as before."""
    with pytest.raises(error):
        encode(value)
    with pytest.raises(error):
        _reference(value)


def test_circular_value_is_refused() -> None:
    """A value that contains itself is a ValueError, not a crash (markers are checked)."""
    value: dict[str, Any] = {}
    value["self"] = value
    with pytest.raises(ValueError, match="Circular"):
        encode(value)
