"""``PgWriterCore``: the writer's core on a PostgreSQL log, its views folded into each
group's transaction. Two cores on one log (two daemons' writers) taking turns leave
the same view rows as one SQLite ``WriterCore`` given the same groups in the same order;
a core found with a dead connection makes a new one; the view tables are PostgreSQL's."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg

from daemon.writer.core import WriterCore
from daemon.writer.pgcore import PgWriterCore
from eventstore.postgres.recorder import PgRecorder
from eventstore.record import AppendRequest
from eventstore.recorder import Recorder
from projections import runner as runner_module
from projections import tables as t
from projections.query import query_view
from projections.query_params import ViewQuery
from tests.eventstore.test_store_contract import PgLog
from tests.fold_support import new_event
from tests.projections.test_views_runner import sample


def _groups() -> list[list[AppendRequest]]:
    """Groups touching every view, from two accounts, a duplicate and a void among them."""
    first = [new_event(w) for w in sample()]
    other = [new_event(w) for w in sample(account="acct-2", start=20)]
    void = new_event({"id": "v-1", "source": "test/fold", "type": "void",
                      "time": "2024-03-01T13:00:00Z", "account": "acct-2",
                      "data": {"target_source": "test/fold", "target_id": other[3].event_id,
                               "reason": "typo"}})
    tagged = [new_event({
        "id": f"s-{n}", "source": "test/fold", "type": "signal", "account": "acct-2",
        "time": f"2024-03-01T13:0{n}:00Z",
        "data": {"signal_id": f"tagged-{n}", "strategy": "sma", "symbol": symbol,
                 "side": "long", "attrs": attrs}})
        for n, (symbol, attrs) in enumerate([
            ("xyz", {"segment": "x", "n": 2, "r": "1.5"}),
            ("XAB", {"segment": "y", "n": Decimal("2.0"), "r": Decimal("1.50"), "flag": True}),
            ("Xé", {"segment": "x", "flag": False, "none": None}),
            ("Y", {"n": "2"})])]
    return [
        [AppendRequest(first), AppendRequest(tagged)],
        [AppendRequest([new_event(w) for w in sample(start=10)]), AppendRequest(other)],
        [AppendRequest(first[:2])],
        [AppendRequest([void])],
        [AppendRequest([new_event(w) for w in sample(account="acct-2", start=30)])],
    ]


Tables = dict[str, list[tuple[Any, ...]]]


def _tables(rows_of: Any) -> Tables:
    return {table.name: sorted(map(tuple, rows_of(table.select_sql())), key=repr)
            for table in t.TABLES}


def view_tables(pg_url: str, sqlite_db: Path) -> tuple[Tables, Tables]:
    """Every view table's rows (sorted) in the SQLite file and on PostgreSQL."""
    with psycopg.connect(pg_url) as conn:
        on_pg = _tables(lambda sql: conn.execute(sql).fetchall())
    lite = sqlite3.connect(sqlite_db)
    try:
        on_lite = _tables(lambda sql: lite.execute(sql).fetchall())
    finally:
        lite.close()
    return on_lite, on_pg


def test_two_cores_taking_turns_write_the_rows_sqlite_writes(pg: PgLog, tmp_path: Path
                                                             ) -> None:
    """Each core folds, under the log's lock, what the other appended since its own
    last commit before folding its group: the shared tables end as SQLite's do."""
    one, _ = PgWriterCore.open(pg.url)
    two, ready = PgWriterCore.open(pg.url)
    lite, _ = WriterCore.open(tmp_path / "x.db")
    try:
        assert (0, 0) == (ready.checkpoint, ready.last_seq)
        for number, group in enumerate(_groups()):
            core = (one, two)[number % 2]
            outcomes = core.commit(group)
            assert [o.last_seq for o in outcomes] == [o.last_seq for o in lite.commit(group)]
            assert all(o.error is None for o in outcomes)
            assert core.checkpoint == outcomes[-1].last_seq
    finally:
        one.close()
        two.close()
        lite.close()
    on_lite, on_pg = view_tables(pg.url, tmp_path / "x.db")
    with psycopg.connect(pg.url) as conn:
        checkpoint = conn.execute("SELECT last_seq FROM projection_checkpoint").fetchall()
    assert on_lite == on_pg
    assert on_pg["journal"]
    assert on_pg["view_voids"]
    assert [(33,)] == checkpoint


QUERIES = [
    ViewQuery("signals", attrs={"segment": "x"}),
    ViewQuery("signals", attrs={"n": 2}),
    ViewQuery("signals", attrs={"r": Decimal("1.5")}),
    ViewQuery("signals", attrs={"flag": True}),
    ViewQuery("signals", attrs={"flag": False}),
    ViewQuery("signals", attrs={"none": None}),
    ViewQuery("signals", symbol_prefix="X"),
    ViewQuery("signals", order="asc", offset=1, limit=2),
    ViewQuery("signals"),
    ViewQuery("positions", account="acct-1"),
    ViewQuery("journal", order="desc", offset=0),
    ViewQuery("daily"),
]


async def test_queries_answer_as_on_sqlite(pg: PgLog, tmp_path: Path) -> None:
    """Every ``query`` (its filters, ``attrs`` by JSON type, prefixes by code point,
    paging) answers on the PostgreSQL views what it answers on SQLite's."""
    core, _ = PgWriterCore.open(pg.url)
    lite, _ = WriterCore.open(tmp_path / "x.db")
    try:
        for group in _groups():
            core.commit(group)
            lite.commit(group)
    finally:
        core.close()
        lite.close()
    on_pg = await PgRecorder.open(pg.url, readonly=True)
    on_lite = await Recorder.open(tmp_path / "x.db", readonly=True)
    try:
        for query in QUERIES:
            assert await query_view(on_lite, query) == await query_view(on_pg, query), query
        assert 2 == (await query_view(on_pg, QUERIES[0]))["total"]
    finally:
        await on_pg.close()
        await on_lite.close()


def test_a_dead_connection_is_made_again_and_the_views_go_on(pg: PgLog) -> None:
    """The server ends the core's session (a restart, a failover): the next commit
    connects again, reloads the views from their tables and commits with them."""
    core, _ = PgWriterCore.open(pg.url)
    try:
        core.commit([AppendRequest([new_event(w) for w in sample()])])
        assert core.conn is not None
        pid = core.conn.info.backend_pid
        with psycopg.connect(pg.url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        [outcome] = core.commit([AppendRequest([new_event(w) for w in sample(start=10)])])
        assert (14, None) == (outcome.last_seq, outcome.error)
        assert core.conn.info.backend_pid != pid
    finally:
        core.close()
    with psycopg.connect(pg.url) as conn:
        assert [("2000",)] == conn.execute("SELECT cash FROM balances").fetchall()


def test_view_tables_have_postgresql_types_and_keys(pg: PgLog) -> None:
    """Integers are ``bigint``, text ``text``; each table keeps its primary key."""
    core, _ = PgWriterCore.open(pg.url)
    core.close()
    with psycopg.connect(pg.url) as conn:
        kinds: dict[str, str] = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'trades'").fetchall())
        keys = conn.execute(
            "SELECT count(*) FROM pg_index WHERE indisprimary AND indrelid = "
            "ANY(%s::regclass[])", ([table.name for table in t.TABLES],)).fetchone()
    assert ("bigint", "text") == (kinds["closed_seq"], kinds["symbol"])
    assert keys is not None
    assert len(t.TABLES) == keys[0]


def _restarted_history() -> list[list[AppendRequest]]:
    """Signals and orders made before a restart and changed after it (a fill of an
    order, a status of a signal), in small groups: each group is written by a new core,
    as after a daemon's restart."""
    first, second = sample(), sample(account="acct-2", start=10)
    status = {"id": "st-1", "source": "test/fold", "type": "status", "account": "acct-1",
              "time": "2024-03-01T12:30:00Z",
              "data": {"entity": "signal", "entity_id": "s0", "status": "triggered"}}
    events = [new_event(w) for w in [*first[:3], *second[:3], first[3], status,
                                     *second[3:], *first[4:]]]
    return [[AppendRequest(events[n:n + 2])] for n in range(0, len(events), 2)]


async def test_snapshots_after_restarts_give_every_past_seq(pg: PgLog, tmp_path: Path) -> None:
    """With a snapshot every 3 events, one signal and order kept in memory and a new core
    for every group (each snapshot after a start copies, by key from the live tables,
    the signals and orders changed before the start), ``as_of`` every seq on PostgreSQL
    equals the views of a fresh SQLite log fed the events up to it."""
    groups = _restarted_history()
    with mock.patch.object(runner_module, "SNAPSHOT_EVERY", 3), mock.patch.object(
            runner_module, "CACHE_ROWS", 1):
        for group in groups:
            core, _ = PgWriterCore.open(pg.url)
            try:
                core.commit(group)
            finally:
                core.close()
    with psycopg.connect(pg.url) as conn:
        versions = conn.execute("SELECT count(*) FROM view_snapshot_orders").fetchone()
    assert versions is not None
    assert versions[0] >= 2
    events = [e for group in groups for request in group for e in request.events]
    on_pg = await PgRecorder.open(pg.url, readonly=True)
    try:
        for n in range(1, len(events) + 1):
            lite, _ = WriterCore.open(tmp_path / f"prefix-{n}.db")
            try:
                lite.commit([AppendRequest(events[:n])])
            finally:
                lite.close()
            on_lite = await Recorder.open(tmp_path / f"prefix-{n}.db", readonly=True)
            try:
                for view in ("signals", "orders", "positions", "balances"):
                    expected = await query_view(on_lite, ViewQuery(view))
                    assert expected == await query_view(on_pg, ViewQuery(view, as_of=n)), (
                        view, n)
            finally:
                await on_lite.close()
    finally:
        await on_pg.close()
