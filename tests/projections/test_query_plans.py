"""The indexes behind ``query``: the filters a dashboard uses never scan a whole table.

Checked with SQLite's ``EXPLAIN QUERY PLAN`` on the SQL ``query`` runs, for the page and
for the count, in both directions. docs/SCHEMA.md ("Querying") lists the indexes.
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from projections import tables as t
from projections.query import ViewQuery, build_sql, count_sql
from tests.query_support import write_history

TIME = "<expr>"
"""How a plan shows a bound on a time index (on ``rtrim(column, 'Z')``)."""

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("trades", {"account": "a1"}, ["account=?"]),
    ("trades", {"account": "a1", "symbol": "NIFTY"}, ["account=?", "symbol=?"]),
    ("trades", {"account": "a1", "symbol_prefix": "NIF"}, ["account=?", "symbol>?"]),
    ("trades", {"account": "a1", "since": "2024-03-02", "until": "2024-03-03"},
     ["account=?", TIME]),
    ("trades", {"symbol": "NIFTY"}, ["symbol=?"]),
    ("positions", {"account": "a1", "symbol": "NIFTY"}, ["account=?", "symbol=?"]),
    ("positions", {"account": "a1", "since": "2024-03-02"}, ["account=?", TIME]),
    ("signals", {"account": "a1", "status": "active"}, ["account=?", "status=?"]),
    ("signals", {"account": "a1", "symbol": "NIFTY"}, ["account=?", "symbol=?"]),
    ("signals", {"account": "a1", "since": "2024-03-02"}, ["account=?", TIME]),
    ("signals", {"account": "a1", "updated_since": "2024-03-02"}, ["account=?", TIME]),
    ("orders", {"account": "a1", "status": "accepted"}, ["account=?", "status=?"]),
    ("orders", {"account": "a1", "symbol": "NIFTY"}, ["account=?", "symbol=?"]),
    ("orders", {"account": "a1", "until": "2024-03-02"}, ["account=?", TIME]),
    ("orders", {"account": "a1", "updated_since": "2024-03-02"}, ["account=?", TIME]),
    ("journal", {"account": "a1", "symbol": "NIFTY"}, ["account=?", "symbol=?"]),
    ("journal", {"account": "a1", "since": "2024-03-02"}, ["account=?", TIME]),
    ("daily", {"account": "a1", "since": "2024-03-02"}, ["account=?", "date>?"]),
    ("balances", {"account": "a1"}, ["account=?"]),
]


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A connection to a database holding ``history()`` (its views and indexes)."""
    path = tmp_path_factory.mktemp("plans") / "t.db"
    write_history(path)
    connection = sqlite3.connect(path)
    yield connection
    connection.close()


@pytest.mark.parametrize("paging", [{}, {"order": "desc", "offset": 10, "limit": 5}])
@pytest.mark.parametrize(("view", "filters", "constraints"), CASES)
def test_dashboard_filters_search_an_index(conn: sqlite3.Connection, view: str,
                                           filters: dict[str, Any], constraints: list[str],
                                           paging: dict[str, Any]) -> None:
    """The page and the count of each dashboard filter search an index on the filtered
    columns (SQLite's SEARCH with those constraints): no step scans the view's table."""
    q = ViewQuery(view, **filters, **paging)
    q.check()
    for sql, params in (build_sql(q), count_sql(q)):
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        on_table = [step for step in plan if f" {view} " in f"{step} "]
        assert [True] * len(on_table) == [s.startswith("SEARCH") for s in on_table], plan
        assert 1 == len(on_table), plan
        assert [True] * len(constraints) == [c in on_table[0] for c in constraints], plan


def test_every_time_index_is_on_the_expression_query_orders_by() -> None:
    """Each index term that is an expression is ``by_time`` of a column, the very text
    ``query`` orders and bounds by (else SQLite would not use the index)."""
    for table in t.TABLES:
        for index in table.indexes:
            for term in index:
                if "(" in term:
                    column = term[len("rtrim("):term.index(",")]
                    assert t.by_time(column) == term
