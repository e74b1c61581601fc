"""Paging through a view with ``order``/``offset``/``limit`` gives every row once."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import tables as t
from projections.query import ViewQuery, build_sql, count_sql
from projections.query_params import MAX_LIMIT
from projections.query_sql import order_of
from tests.query_support import write_history


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a database holding ``history()``."""
    path = tmp_path_factory.mktemp("paging") / "t.db"
    write_history(path)
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    yield connection
    connection.close()


def run(conn: sqlite3.Connection, **params: Any) -> tuple[list[tuple[Any, ...]], int]:
    """The page and ``total`` of a query, with the very SQL ``query`` runs."""
    q = ViewQuery(**params)
    q.check()
    sql, values = build_sql(q)
    count, count_values = count_sql(q)
    return list(conn.execute(sql, values)), conn.execute(count, count_values).fetchone()[0]


FILTERS = st.sampled_from([{}, {"account": "a1"}, {"account": "a2", "since": "2024-03-02"},
                           {"until": "2024-03-03T09:30:00Z"}])


@settings(max_examples=60, deadline=None)
@given(view=st.sampled_from(list(t.VIEWS)), size=st.integers(1, 17),
       order=st.sampled_from(["asc", "desc", None]), filters=FILTERS)
def test_pages_give_every_row_once(conn: sqlite3.Connection, view: str, size: int,
                                   order: str | None, filters: dict[str, Any]) -> None:
    """Pages of ``size`` rows from offset 0, ``size``, ... until ``total`` give the
    view's rows exactly once each, in its order (reversed for ``desc``); ``total`` is the
    same on every page."""
    if order_of(view).time is None:  # no time column: since/until are refused
        filters = {k: v for k, v in filters.items() if k == "account"}
    whole, total = run(conn, view=view, order="asc", limit=MAX_LIMIT, **filters)
    expected = whole if order != "desc" else list(reversed(whole))
    pages: list[tuple[Any, ...]] = []
    offset = 0
    while offset < total + size:
        page, page_total = run(conn, view=view, order=order, offset=offset, limit=size,
                               **filters)
        assert total == page_total
        assert len(page) == min(size, max(total - offset, 0))
        pages += page
        offset += size
    assert expected == pages
    assert len(whole) == total
