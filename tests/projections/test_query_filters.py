"""``query`` filters, in process on a real recorder: each keeps exactly the rows it names.

The rows each filter should keep are worked out in Python from the whole view
(``tests.query_support.matches``), never by the SQL under test. Views and filters are
taken from the tables, so a view or column added later is checked the same way.
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eventstore.errors import ValidationError
from eventstore.recorder import Recorder
from projections import tables as t
from projections.query import ViewQuery, build_sql, count_sql, query_view
from projections.query_params import MAX_LIMIT
from projections.query_sql import FILTER_COLUMNS, filters_of, order_of
from projections.startup import open_views
from tests.fold_support import new_event
from tests.query_support import PREFIXES, SYMBOLS, history, matches, parse, same_attr


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding ``history()`` with its views, written once for the module."""
    path = tmp_path_factory.mktemp("query") / "t.db"

    async def write() -> None:
        recorder = await Recorder.open(path)
        try:
            await open_views(recorder)
            wires = history()
            for start in range(0, len(wires), 50):
                await recorder.append([new_event(w) for w in wires[start:start + 50]])
        finally:
            await recorder.close()

    asyncio.run(write())
    return path


def ask(db: Path, **params: Any) -> dict[str, Any]:
    """``query_view`` on a fresh read-only recorder of ``db``."""
    async def run() -> dict[str, Any]:
        recorder = await Recorder.open(db, readonly=True)
        try:
            return await query_view(recorder, ViewQuery(**params))
        finally:
            await recorder.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def everything(db: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of every view, in the view's order."""
    return {view: ask(db, view=view, order="asc", limit=MAX_LIMIT)["rows"] for view in t.VIEWS}


def values_for(view: str, name: str, rows: list[dict[str, Any]]) -> list[Any]:
    """Values of filter ``name`` to try on ``view``: those its rows hold, and one none does."""
    if name == "symbol_prefix":
        return PREFIXES
    if name == "updated_since":
        stamps = sorted({r["updated_at"] for r in rows})
        return [stamps[0], stamps[len(stamps) // 2], stamps[-1], "2024-03-03T10:00:00+05:30"]
    column = FILTER_COLUMNS[name]
    held = sorted({r[column] for r in rows if r[column] is not None})
    if name == "entity":  # a closed set: any other value is refused, not matched
        return held
    return [*held[:6], "none-such"]


def cases() -> Iterator[tuple[str, str]]:
    for view in t.VIEWS:
        for name in filters_of(view):
            if name != "attrs":
                yield view, name


@pytest.mark.parametrize(("view", "name"), list(cases()))
def test_each_filter_keeps_exactly_the_rows_it_names(
        db: Path, everything: dict[str, list[dict[str, Any]]], view: str, name: str) -> None:
    """For every view and every filter it has, the answer is exactly the view's rows
    that pass the filter by PROTOCOL.md's words, in the view's order, and ``total``
    counts them."""
    rows = everything[view]
    assert rows, f"the history leaves {view} empty: the test would prove nothing"
    tried = 0
    for value in values_for(view, name, rows):
        expected = [r for r in rows if matches(view, r, name, value)]
        answer = ask(db, view=view, order="asc", limit=MAX_LIMIT, **{name: value})
        assert expected == answer["rows"], (name, value)
        assert len(expected) == answer["total"]
        tried += bool(expected)
    assert tried >= 1, f"no value of {name} kept any row of {view}"


@pytest.mark.parametrize("prefix", PREFIXES)
def test_symbol_prefix_is_literal(everything: dict[str, list[dict[str, Any]]],
                                  db: Path, prefix: str) -> None:
    """``symbol_prefix`` is a plain prefix: ``%`` and ``_`` are characters, case counts,
    non-ASCII compares as written, and a prefix equal to a symbol keeps it."""
    expected = sorted({s for s in SYMBOLS if s.startswith(prefix)})
    answer = ask(db, view="signals", symbol_prefix=prefix, order="asc", limit=MAX_LIMIT)
    assert expected == sorted({r["symbol"] for r in answer["rows"]})


@pytest.mark.parametrize("view", [v for v in t.VIEWS if order_of(v).time is not None])
@pytest.mark.parametrize(("since", "until"), [
    ("2024-03-02", "2024-03-04"), ("2024-03-02T09:10:00Z", None),
    (None, "2024-03-03T09:20:01.500000Z"), ("2024-03-03T14:40:00+05:30", "2024-03-03"),
    ("2024-03-05", "2024-03-01"),
])
def test_since_and_until_bound_the_time_column_inclusively(
        db: Path, everything: dict[str, list[dict[str, Any]]], view: str,
        since: str | None, until: str | None) -> None:
    """``since``/``until`` keep the rows whose time column lies between them, both ends
    included; a date is the whole UTC day; an offset is honoured."""
    expected = [r for r in everything[view]
                if (since is None or matches(view, r, "since", since))
                and (until is None or matches(view, r, "until", until))]
    params = {k: v for k, v in (("since", since), ("until", until)) if v is not None}
    answer = ask(db, view=view, order="asc", limit=MAX_LIMIT, **params)
    assert expected == answer["rows"]


def test_since_and_until_include_a_row_at_the_bound(
        everything: dict[str, list[dict[str, Any]]], db: Path) -> None:
    """A row whose time equals ``since`` or ``until`` exactly (a fraction included) is kept."""
    row = next(r for r in everything["signals"] if "." in r["created_at"])
    answer = ask(db, view="signals", since=row["created_at"], until=row["created_at"],
                 order="asc", limit=MAX_LIMIT)
    assert row in answer["rows"]
    assert all(parse(r["created_at"]) == parse(row["created_at"]) for r in answer["rows"])


def test_filters_combine_with_and(everything: dict[str, list[dict[str, Any]]],
                                  db: Path) -> None:
    """Several filters keep the rows that pass all of them."""
    params = {"account": "a1", "status": "active", "symbol_prefix": "NIFTY",
              "since": "2024-03-02"}
    expected = [r for r in everything["signals"]
                if all(matches("signals", r, k, v) for k, v in params.items())]
    assert expected
    assert expected == ask(db, view="signals", order="asc", **params)["rows"]


def test_the_views_are_in_their_time_order(everything: dict[str, list[dict[str, Any]]]) -> None:
    """Rows come in the view's time order (exact to the microsecond: ``...00Z`` before
    ``...00.500000Z``), ties broken by the key, so the order is total."""
    def key(view: str, row: dict[str, Any]) -> tuple[Any, ...]:
        spec = order_of(view)
        return tuple(parse(row[c]) if c == spec.time and spec.kind == "time" else row[c]
                     for c in spec.order if c in row)

    for view, rows in everything.items():
        keys = [key(view, r) for r in rows]
        assert sorted(keys) == keys, view
        if all(c in t.VIEWS[view].fields for c in order_of(view).order):
            assert len(set(keys)) == len(keys), view


def test_without_order_or_offset_limit_keeps_the_most_recent_oldest_first(
        everything: dict[str, list[dict[str, Any]]], db: Path) -> None:
    """With neither ``order`` nor ``offset``, ``limit`` N gives the last N rows of the
    view's order, oldest first, and ``total`` all of them."""
    for view in ("trades", "signals", "journal", "daily"):
        rows = everything[view]
        answer = ask(db, view=view, limit=5)
        assert (rows[-5:], len(rows)) == (answer["rows"], answer["total"])


def test_order_desc_and_offset(everything: dict[str, list[dict[str, Any]]], db: Path) -> None:
    """``order`` desc gives the rows newest first; ``offset`` skips that many of them."""
    rows = everything["orders"]
    answer = ask(db, view="orders", order="desc", offset=3, limit=4)
    assert (list(reversed(rows))[3:7], len(rows)) == (answer["rows"], answer["total"])
    answer = ask(db, view="orders", offset=len(rows))
    assert ([], len(rows)) == (answer["rows"], answer["total"])


def test_default_limit_is_1000(db: Path, tmp_path: Path) -> None:
    """A query without ``limit`` returns at most 1000 rows (the most recent), with
    ``total`` counting every one."""
    path = tmp_path / "many.db"
    wires = [{"id": f"j{i}", "source": "t", "type": "journal",
              "time": f"2024-03-01T12:{i // 60 % 60:02d}:{i % 60:02d}Z", "account": "a1",
              "data": {"text": f"entry {i}"}} for i in range(1100)]

    async def write() -> dict[str, Any]:
        recorder = await Recorder.open(path)
        try:
            await open_views(recorder)
            await recorder.append([new_event(w) for w in wires])
            return await query_view(recorder, ViewQuery("journal"))
        finally:
            await recorder.close()

    answer = asyncio.run(write())
    assert (1000, 1100, "entry 100", "entry 1099") == (
        len(answer["rows"]), answer["total"], answer["rows"][0]["text"],
        answer["rows"][-1]["text"])


REFUSED = [(view, name) for view in t.VIEWS for name in FILTER_COLUMNS
           if name not in filters_of(view)]


@pytest.mark.parametrize(("view", "name"), REFUSED)
def test_a_filter_the_view_lacks_is_refused_naming_both(view: str, name: str) -> None:
    """A filter on a field the view does not have is refused (never ignored), and the
    message names the filter and the view."""
    value: Any = {"k": "v"} if name == "attrs" else (
        "signal" if name == "entity" else "2024-03-01T00:00:00Z"
        if name == "updated_since" else "x")
    with pytest.raises(ValidationError) as caught:
        ViewQuery(view, **{name: value}).check()
    message = str(caught.value)
    assert (True, True) == (f"{name!r}" in message, f"{view!r}" in message)


@pytest.mark.parametrize("name", ["since", "until"])
def test_since_on_a_view_without_time_column_is_refused(name: str) -> None:
    """``since``/``until`` on a view with no time column (balances) are refused."""
    params: dict[str, Any] = {name: "2024-03-01"}
    with pytest.raises(ValidationError, match=f"'balances' has no time column.*'{name}'"):
        ViewQuery("balances", **params).check()


# ---------------------------------------------------------------- the generic path
# No view has every filter's column today (attrs, entity, venue... arrive with the new
# views), so a view with all of them is made here and queried with the same SQL.

NOTES = t.Table(
    "notes",
    (("account", "text"), ("note_id", "text"), ("symbol", "text"), ("strategy", "text"),
     ("status", "text"), ("venue", "text"), ("asset_class", "text"), ("entity", "text"),
     ("entity_id", "text"), ("updated_at", "text"), ("attrs", "json")),
    public=11, key=("account", "note_id"))


def note_rows() -> list[dict[str, Any]]:
    """The notes, in the view's order (its key: account, note_id)."""
    attrs = [{"segment": "NFO-OPT", "lots": "2", "token": 256265, "hedge": True},
             {"segment": "NSE", "lots": 2, "delta": "0.25", "hedge": False, "gap": None},
             {"segment": "NFO-OPT", "delta": 0.25, "note": "a \"quoted\" \\ text"},
             {"token": 256265, "hedge": None, "a.b": "dotted"},
             {}, None]
    rows = []
    for i in range(24):
        rows.append({
            "account": ("a1", "a2")[i % 2], "note_id": f"n{i:02d}",
            "symbol": SYMBOLS[i % len(SYMBOLS)], "strategy": ("sma", "rsi", None)[i % 3],
            "status": ("active", "closed")[i % 4 // 2], "venue": ("NSE", "NFO")[i % 3 % 2],
            "asset_class": ("option", "future", "equity")[i % 3],
            "entity": ("signal", "order")[i % 2], "entity_id": f"e{i % 5}",
            "updated_at": f"2024-03-0{1 + i % 3}T10:00:0{i % 2}{'.250000' if i % 4 else ''}Z",
            "attrs": attrs[i % len(attrs)],
        })
    return sorted(rows, key=lambda r: (r["account"], r["note_id"]))


@pytest.fixture
def notes(monkeypatch: pytest.MonkeyPatch) -> Iterator[sqlite3.Connection]:
    """A ``notes`` view (every filter's column) registered in ``VIEWS``, with rows."""
    monkeypatch.setitem(t.VIEWS, "notes", NOTES)
    conn = sqlite3.connect(":memory:")
    for statement in NOTES.ddl():
        conn.execute(statement)
    for row in note_rows():
        values = [json.dumps(v) if k == "attrs" and v is not None else v
                  for k, v in row.items()]
        conn.execute(NOTES.upsert_sql(), values)
    yield conn
    conn.close()


def run_notes(conn: sqlite3.Connection, **params: Any) -> tuple[list[str], int]:
    q = ViewQuery("notes", order="asc", limit=MAX_LIMIT, **params)
    q.check()
    sql, values = build_sql(q)
    count_text, count_values = count_sql(q)
    ids = [row[1] for row in conn.execute(sql, values)]
    return ids, conn.execute(count_text, count_values).fetchone()[0]


def test_a_view_with_every_column_takes_every_filter(notes: sqlite3.Connection) -> None:
    """A view whose table has a filter's column takes that filter with no other change."""
    assert list(FILTER_COLUMNS) == filters_of("notes")


@pytest.mark.parametrize(("name", "value"), [
    ("strategy", "rsi"), ("status", "closed"), ("venue", "NFO"), ("asset_class", "option"),
    ("entity", "order"), ("entity_id", "e3"), ("symbol", "A_B"), ("symbol_prefix", "NIFTY2"),
    ("updated_since", "2024-03-02T10:00:01Z"), ("updated_since", "2024-03-02"),
    ("updated_since", "2024-03-02T15:30:00.25+05:30"),
])
def test_generic_filters_keep_exactly_their_rows(notes: sqlite3.Connection, name: str,
                                                 value: Any) -> None:
    """Each text and time filter keeps exactly the rows whose field passes it."""
    rows = note_rows()
    expected = [r["note_id"] for r in rows if matches("notes", r, name, value)]
    assert expected
    assert (expected, len(expected)) == run_notes(notes, **{name: value})


@pytest.mark.parametrize("attrs", [
    {"segment": "NFO-OPT"}, {"segment": "NFO-OPT", "hedge": True}, {"hedge": False},
    {"hedge": None}, {"gap": None}, {"lots": 2}, {"lots": "2"}, {"delta": Decimal("0.25")},
    {"delta": Decimal("0.250")}, {"token": 256265}, {"a.b": "dotted"},
    {"note": "a \"quoted\" \\ text"}, {"segment": "NSE", "lots": Decimal("2.0")},
    {"segment": "nfo-opt"}, {"missing": None},
])
def test_attrs_filter_keeps_rows_holding_every_key_with_that_value(
        notes: sqlite3.Connection, attrs: dict[str, Any]) -> None:
    """``attrs`` keeps the rows whose attrs hold every given key with that value: a
    string only a string, true/false/null only themselves (a missing key is not null),
    a number a number or the decimal text of it; text compares exactly."""
    rows = note_rows()
    expected = [r["note_id"] for r in rows
                if r["attrs"] is not None
                and all(k in r["attrs"] and same_attr(r["attrs"][k], v) for k, v in attrs.items())]
    assert (expected, len(expected)) == run_notes(notes, attrs=attrs)


def test_attrs_filter_values_with_sql_are_only_values(notes: sqlite3.Connection) -> None:
    """A filter value that reads as SQL is compared as text, not run."""
    hostile = "x' OR 1=1 --"
    assert ([], 0) == run_notes(notes, attrs={"segment": hostile}, symbol=hostile)
    assert ([], 0) == run_notes(notes, symbol_prefix="%")
