"""Strict JSON reading (daemon/wire/jsonread.py): numbers are bounded before conversion."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from daemon.wire.jsonread import JSONReadError, loads


@pytest.mark.parametrize(("raw", "expected"), [
    (b"9" * 40, int("9" * 40)),
    (b"-" + b"9" * 39, -int("9" * 39)),
    (b"1.5e40", Decimal("1.5e40")),
    (b"1E-40", Decimal("1E-40")),
    (b"0." + b"1" * 38, Decimal("0." + "1" * 38)),
    (b'{"a":[1.25,3]}', {"a": [Decimal("1.25"), 3]}),
])
def test_numbers_within_bounds_are_read_exactly(raw: bytes, expected: Any) -> None:
    """Numbers of at most 40 characters with exponents within +-40 are read: integers as
    int, the others as exact Decimal."""
    assert expected == loads(raw)


@pytest.mark.parametrize(("raw", "names"), [
    (b"9" * 41, "more than 40 characters"),
    (b"-" + b"9" * 40, "more than 40 characters"),
    (b"0." + b"0" * 39, "more than 40 characters"),
    (b"9" * 5000, "more than 40 characters"),
    (b"1e41", "exponent beyond +-40"),
    (b"1E-41", "exponent beyond +-40"),
    (b"1e1000000", "exponent beyond +-40"),
    (b"1e5000", "exponent beyond +-40"),
    (b'{"jsonrpc":"2.0","id":1e1000000,"method":"health"}', "exponent beyond +-40"),
    (b'{"p":{"q":[1,2,' + b"3" * 100 + b"]}}", "more than 40 characters"),
])
def test_numbers_past_the_bounds_are_refused(raw: bytes, names: str) -> None:
    """A number of more than 40 characters, or with an exponent beyond +-40, anywhere in
    the value, is a JSONReadError (-32700) naming the bound."""
    with pytest.raises(JSONReadError) as refused:
        loads(raw)
    assert names in str(refused.value)


def test_huge_exponent_message_shows_the_number_short() -> None:
    """The message quotes a long number shortened, so an error stays small."""
    with pytest.raises(JSONReadError) as refused:
        loads(b"1" * 200_000)
    assert len(str(refused.value)) < 200
    assert "200000 characters" in str(refused.value)
