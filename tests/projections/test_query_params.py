"""``query`` params checked in process (``ViewQuery.check``) and ``show``'s ``--attr``:
the bounds the daemon's params model cannot see (they depend on the view), and the
values a client could try to smuggle SQL or unbounded work through."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from daemon.cli.commands import _attrs
from daemon.cli.main import build_parser
from eventstore.errors import ValidationError
from projections import tables as t
from projections.query import ViewQuery
from projections.query_params import MAX_LIMIT, MAX_OFFSET
from tests.projections.test_query_filters import NOTES


@pytest.fixture
def notes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``notes`` view of ``test_query_filters`` (every filter's column) in ``VIEWS``."""
    monkeypatch.setitem(t.VIEWS, "notes", NOTES)


@pytest.mark.parametrize(("params", "name"), [
    ({"attrs": {'a"b': 1}}, "attrs key"), ({"attrs": {"$.x": 1}}, "attrs key"),
    ({"attrs": {"": 1}}, "attrs key"), ({"attrs": {"k" * 65: 1}}, "attrs key"),
    ({"attrs": {"k": 10**15}}, "attrs.k"), ({"attrs": {"k": Decimal("1e-19")}}, "attrs.k"),
    ({"attrs": {"k": Decimal("NaN")}}, "attrs.k"), ({"attrs": {"k": 0.1}}, "attrs.k"),
    ({"attrs": {"k": "\x00"}}, "attrs.k"), ({"attrs": {"k": "v" * 257}}, "attrs.k"),
    ({"attrs": {f"k{i}": 1 for i in range(33)}}, "attrs"), ({"attrs": {}}, "attrs"),
    ({"attrs": [("k", 1)]}, "attrs"), ({"entity": "position"}, "entity"),
    ({"symbol": "x" * 257}, "symbol"), ({"venue": ""}, "venue"),
    ({"asset_class": "a\x00"}, "asset_class"), ({"strategy": 7}, "strategy"),
    ({"account": "../etc"}, "account"), ({"limit": 0}, "limit"),
    ({"limit": MAX_LIMIT + 1}, "limit"), ({"limit": True}, "limit"),
    ({"offset": -1}, "offset"), ({"offset": MAX_OFFSET + 1}, "offset"),
    ({"order": "ASC"}, "order"), ({"updated_since": "2024-02-30"}, "updated_since"),
    ({"updated_since": "2024-03-01T12:00:00"}, "updated_since"),
    ({"as_of": -5}, "as_of"), ({"as_of_time": "soon"}, "as_of_time"),
])
def test_bad_values_are_refused_naming_the_param(notes: None, params: dict[str, Any],
                                                 name: str) -> None:
    """On a view that has every filter, each value past its bound is refused with a
    message naming the param, before any SQL runs."""
    with pytest.raises(ValidationError) as caught:
        ViewQuery("notes", **params).check()
    assert str(caught.value).startswith(name) or f"{name} " in str(caught.value), caught.value


@pytest.mark.parametrize("params", [
    {"attrs": {f"k{i}": i for i in range(32)}}, {"attrs": {"k.-_K9": None}},
    {"attrs": {"k": Decimal("-999999999999999.999999999999999999")}},
    {"symbol": "x" * 256}, {"offset": MAX_OFFSET, "limit": MAX_LIMIT},
    {"updated_since": "2199-12-31"}, {"entity": "order", "entity_id": "o-1"},
])
def test_values_at_their_bounds_are_taken(notes: None, params: dict[str, Any]) -> None:
    """Each bound is inclusive: a value right at it passes the check."""
    ViewQuery("notes", **params).check()


def test_unknown_view_is_refused_listing_the_views() -> None:
    """An unknown view is refused naming the views there are (and only 64 characters of
    what was sent)."""
    with pytest.raises(ValidationError) as caught:
        ViewQuery("x" * 1000).check()
    message = str(caught.value)
    assert (True, True) == (all(v in message for v in t.VIEWS), len(message) < 400)


@pytest.mark.parametrize(("flags", "expected"), [
    (["segment=NFO-OPT"], {"segment": "NFO-OPT"}),
    (["lots=2", "delta=0.25"], {"lots": 2, "delta": Decimal("0.25")}),
    (["hedge=true", "gap=null", "x=false"], {"hedge": True, "gap": None, "x": False}),
    (['code="2"'], {"code": "2"}), (["note=a=b"], {"note": "a=b"}),
    (["list=[1]"], {"list": "[1]"}), (["empty="], {"empty": ""}),
])
def test_attr_flags_become_the_attrs_filter(flags: list[str], expected: dict[str, Any]) -> None:
    """``--attr KEY=VALUE``: VALUE is JSON when it reads as a number, true, false, null
    or a quoted string, else the text itself."""
    assert expected == _attrs(flags)


def test_attr_flag_without_equals_is_refused() -> None:
    """``--attr segment`` (no ``=``) is refused saying how to write it."""
    with pytest.raises(ValidationError, match="KEY=VALUE"):
        _attrs(["segment"])


def test_show_knows_every_view() -> None:
    """``tradelog show`` takes every view ``query`` serves."""
    for view in t.VIEWS:
        assert view == build_parser().parse_args(["show", view]).view
