"""The views' lifecycle on one SQLite connection, synchronous: prepare (create the
tables, load the state, catch up), rebuild, write what is held back.

Whoever owns the connection calls these on the thread that uses it: the writer
process directly, the one-process writer and the tools through the recorder
(``projections.startup``). Each runs in a write transaction of its own
(``BEGIN IMMEDIATE`` ... ``COMMIT``); on any error nothing changes and the runner's
state is discarded (reloaded at the next use).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from eventstore.follow import Executes, RowsAfter, catch_up, in_transaction, run_statements
from eventstore.logger import structlog
from projections.fold import PROJECTION_VERSION
from projections.runner import ViewRunner
from projections.snapshots import use_table_snapshots

__all__ = ["ConnectionLookup", "Transact", "flush", "log_left_out", "open_on", "prepare",
           "rebuild", "stored_version"]

log = structlog.get_logger(component="tradelog.views")

T = TypeVar("T")


class Transact(Protocol):
    """Runs ``body()`` in one write transaction of the connection, ``doing`` naming it in
    errors; on any error rolls back and discards the runner's state (``runner.discard``).
    SQLite's is ``eventstore.follow.in_transaction``."""

    def __call__(self, runner: ViewRunner, doing: str, body: Callable[[], T]) -> T:
        """``body()``'s result, committed."""
        ...


def _sqlite_transact(conn: Executes) -> Transact:
    assert isinstance(conn, sqlite3.Connection)
    sqlite = conn

    class OnSqlite:
        def __call__(self, runner: ViewRunner, doing: str, body: Callable[[], T]) -> T:
            return in_transaction(sqlite, runner, doing, body)

    return OnSqlite()


class ConnectionLookup:
    """Reads on the connection that folds (inside its transaction, so they see its own
    uncommitted writes): what ``ViewRunner.attach`` takes to load rows on demand."""

    def __init__(self, conn: Executes) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of ``sql`` run with ``params``."""
        rows: list[tuple[Any, ...]] = self.conn.execute(sql, params).fetchall()
        return rows

    def chunks(self, sql: str, params: Sequence[Any]) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``sql`` run with ``params``, lazily, in lists of up to 4096."""
        cursor = self.conn.execute(sql, params)
        while rows := cursor.fetchmany(4096):
            yield rows


def log_left_out(runner: ViewRunner) -> None:
    """Log each stored event the views left out while opening (``event_left_out``, with
    its seq and why; the first ``LEFT_OUT_KEPT``) and their count, then forget them, so
    that each is logged once per fold of it."""
    for seq, reason in runner.left_out:
        log.warning("event_left_out", seq=seq, reason=reason)
    if runner.left_out_count:
        log.warning("events_left_out", count=runner.left_out_count,
                    logged=len(runner.left_out),
                    hint="values version 1.1 refuses; kept in the log, left out of every view")
    runner.left_out.clear()
    runner.left_out_count = 0


def stored_version(conn: sqlite3.Connection) -> int | None:
    """The projection version the views' tables were written with (None: no views yet)."""
    found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                         "name = 'projection_checkpoint'").fetchall()
    if not found:
        return None
    rows = conn.execute("SELECT version FROM projection_checkpoint WHERE name = 'views'"
                        ).fetchall()
    return int(rows[0][0]) if rows else None


def prepare(conn: Executes, runner: ViewRunner, transact: Transact | None = None,
            rows: RowsAfter | None = None) -> int:
    """Create the views' tables if missing, load the state and fold the log past the
    checkpoint; returns the number of events folded. ``transact`` and ``rows`` (the
    transaction and the log's reader, ``eventstore.follow.catch_up``) default to
    SQLite's on ``conn``."""

    def body() -> int:
        for statement in runner.ddl():
            conn.execute(statement)
        return catch_up(conn, runner, rows=rows)

    return (transact or _sqlite_transact(conn))(runner, "preparing views", body)


def rebuild(conn: Executes, runner: ViewRunner, transact: Transact | None = None,
            rows: RowsAfter | None = None, end_snapshot: bool = False) -> int:
    """Rebuild every view from the whole log into new tables, swapped in when complete
    (one transaction: on any error nothing changes). Returns the number of events
    folded. ``transact`` and ``rows`` as ``prepare`` says; ``end_snapshot``: also a
    snapshot at the last seq, so that the tables are whole there for writers already
    running (``projections.pgviews.rebuild_views``)."""

    runner.read_log(ConnectionLookup(conn))  # a void refolds its account from the log

    def body() -> int:
        for statement in runner.rebuild_begin():
            conn.execute(statement)
        folded = catch_up(conn, runner, rows=rows)
        state = runner.state
        if end_snapshot and state is not None and state.folded_seq > runner.snapshot_seq:
            run_statements(conn, runner.snapshot(state))
        run_statements(conn, runner.rebuild_end())
        return folded

    return (transact or _sqlite_transact(conn))(runner, "rebuilding views", body)


def flush(conn: sqlite3.Connection, runner: ViewRunner) -> None:
    """Write what the runner holds back (``ViewRunner.flush``) in a transaction of its
    own; a no-op when the tables are current."""

    def body() -> None:
        if runner.needs_load():
            catch_up(conn, runner)
        run_statements(conn, runner.flush())

    in_transaction(conn, runner, "writing views", body)


def open_on(conn: Executes, progress: Callable[[int], None] | None = None,
            transact: Transact | None = None, rows: RowsAfter | None = None,
            version: int | None = None) -> tuple[ViewRunner, int]:
    """Bring the views on ``conn`` up to date and return their runner, attached to
    ``conn`` for on-demand rows, with the number of events folded.

    A normal start loads the state from the tables and folds only the events past the
    checkpoint. When the stored projection version differs from ``PROJECTION_VERSION``
    the views are rebuilt from the log first (into new tables, swapped in when done)
    and the state is loaded again from them at the next fold.

    On another store ``transact``, ``rows`` (as ``prepare`` says) and the stored
    ``version`` (None: no views yet) are given; on SQLite they are read from ``conn``.
    """
    runner = ViewRunner()
    if transact is None:
        assert isinstance(conn, sqlite3.Connection)
        version = stored_version(conn)
        use_table_snapshots(conn)  # SQLite makes the snapshots from the tables
        runner.table_snapshots = True
    runner.progress = progress
    if version is not None and version != PROJECTION_VERSION:
        folded = rebuild(conn, runner, transact, rows)
        runner.attach(ConnectionLookup(conn))
        runner.discard()
    else:
        runner.attach(ConnectionLookup(conn))
        folded = prepare(conn, runner, transact, rows)
    runner.progress = None
    return runner, folded
