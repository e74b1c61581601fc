"""What follows the log inside the append's transaction (the views), seen from the log.

The event store knows stored events only. Whatever keeps derived rows in the same
transaction as the append implements ``Follower``: ``append_in_transaction`` hands it
each group of newly stored events and runs the statements it returns before
``COMMIT``; ``catch_up`` folds the stored events past its checkpoint. The statements,
the transaction helpers and the fold's error are here too, free of any view.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from eventstore.errors import StorageCorruptError, StorageDamagedError, map_sqlite_error
from eventstore.record import StoredEvent
from eventstore.verify import rows_after, unreadable_reason

__all__ = ["Executes", "FoldError", "Follower", "RowsAfter", "Statement", "catch_up",
           "from_storage", "in_transaction", "rollback", "run_statements"]

T = TypeVar("T")

Statement = tuple[str, Sequence[Sequence[Any]] | None]
"""An SQL statement and the parameter rows to ``executemany`` it with (None: run once)."""


class Executes(Protocol):
    """What runs the views' statements: a ``sqlite3.Connection``, or a PostgreSQL
    connection in SQLite's spelling (``eventstore.postgres.dialect.SqliteSpelling``)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any:
        """Run one statement; returns a cursor over its rows."""
        ...

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        """Run one statement once per parameter row."""
        ...


RowsAfter = Callable[[int, int | None], Iterator[tuple[Any, ...]]]
"""``(after, before)`` -> the stored rows with ``after < seq < before`` (no bound when
None), in seq order (``eventstore.verify.rows_after`` on SQLite)."""


def run_statements(conn: Executes, statements: Sequence[Statement]) -> None:
    """Execute statements in order: ``executemany`` with their rows, or once when None."""
    for sql, rows in statements:
        if rows is None:
            conn.execute(sql)
        else:
            conn.executemany(sql, rows)


def from_storage(exc: BaseException) -> bool:
    """Whether ``exc`` is the database driver's (sqlite3's or psycopg's): a read the views
    made while folding failed, which is the storage's fault and never the event's, so
    it is raised as it is rather than as a ``FoldError`` (which refuses the event). On a
    PostgreSQL pipeline an earlier statement's error (a guessed seq taken) surfaces at
    such a read."""
    return isinstance(exc, sqlite3.Error) or type(exc).__module__.partition(".")[0] == "psycopg"


class FoldError(Exception):
    """The views could not fold the event at ``seq`` (``reason`` says why); the views'
    in-memory state may be half changed and is discarded or restarted.

    Raised by ``Follower.fold``. A new event whose fold fails is not stored: its
    request is refused (``append_in_transaction``); a stored one is left out of the
    views (``catch_up``, ``Follower.leave_out``).
    """

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"the views could not fold the event at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason
        self.where: tuple[int, int] | None = None
        """(request, event index) in the group being appended, when it is a new event."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.seq, self.reason))


class Follower(Protocol):
    """What the recorder needs from the projections to keep views in the append's transaction.

    The recorder calls, inside the write transaction: ``load_queries``/``restore`` when
    ``needs_load`` is true, then ``fold`` with every event past ``checkpoint`` (including
    any another process appended), executes the statements it returns, and commits.
    On rollback it calls ``discard`` so that the in-memory state is reloaded next time.
    """

    @property
    def checkpoint(self) -> int:
        """The ``seq`` of the last event folded into the views (0 before any)."""
        ...

    def needs_load(self) -> bool:
        """True when the in-memory state must be restored (``load_queries``/``restore``) first."""
        ...

    def ddl(self) -> list[str]:
        """SQL to create the view tables if missing, run once before the first catch-up."""
        ...

    def load_queries(self) -> list[str]:
        """SELECTs whose rows, in this order, ``restore`` rebuilds the state from."""
        ...

    def restore(self, results: list[list[tuple[Any, ...]]]) -> None:
        """Rebuild the in-memory state from the rows of each of ``load_queries``, in order."""
        ...

    def fold(self, events: Sequence[StoredEvent], fresh: bool = False) -> list[Statement]:
        """Fold stored events (in seq order); return the row writes and checkpoint to run.

        ``fresh``: the events are this append's, just validated (values within bounds).
        Raises ``FoldError`` naming the first event it could not fold."""
        ...

    def leave_out(self, seq: int, reason: str) -> None:
        """Leave the stored event ``seq`` out of the views from now on, and restart the
        fold (``needs_load`` again, or an empty state in a rebuild) so that the log is
        folded again from ``checkpoint`` without it."""
        ...

    def flush(self) -> list[Statement]:
        """The row writes and checkpoint held back since the last write (``[]``: none)."""
        ...

    def discard(self) -> None:
        """Forget the in-memory state after a rollback, so it is reloaded next time."""
        ...

    def rebuild_begin(self) -> list[str]:
        """Start a rebuild from an empty state: SQL creating the fresh tables to fill."""
        ...

    def rebuild_end(self) -> list[Statement]:
        """Finish a rebuild: statements writing the state and swapping the new tables in."""
        ...


def rollback(conn: sqlite3.Connection, views: Follower | None) -> None:
    """Roll back the open transaction, if any, after ``views.discard()`` (views may be None).

    Raises ``StorageCorruptError`` if the ROLLBACK itself fails (the database is in doubt).
    """
    if views is not None:
        views.discard()
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StorageCorruptError(f"rollback failed, the database is in doubt: {exc}") from exc


def catch_up(conn: Executes, views: Follower, before: int | None = None,
             rows: RowsAfter | None = None) -> int:
    """Load the views' state if needed and fold every stored event past their checkpoint
    (and before seq ``before``, when given); returns the number of events folded.
    ``rows`` reads the log (default: ``rows_after`` on ``conn``, a SQLite connection).

    A stored event the views cannot fold never stops this (nor so the start): it is
    left out of the views (``Follower.leave_out``) and the log folded again without it.
    """
    while True:
        try:
            return _catch_up_once(conn, views, before, rows)
        except FoldError as exc:
            views.leave_out(exc.seq, exc.reason)


def _catch_up_once(conn: Executes, views: Follower, before: int | None,
                   rows_of: RowsAfter | None) -> int:
    if views.needs_load():
        views.restore([list(conn.execute(q)) for q in views.load_queries()])
    folded = 0
    # Read through ``rows_after``: a row of the log that cannot be read is damage
    # (StorageDamagedError naming its seq), not a fault of the views.
    rows = (rows_of(views.checkpoint, before) if rows_of is not None
            else rows_after(conn, views.checkpoint, before))  # type: ignore[arg-type]
    while batch := list(itertools.islice(rows, 2048)):
        run_statements(conn, views.fold([_stored(row) for row in batch]))
        folded += len(batch)
    return folded


def _stored(row: tuple[Any, ...]) -> StoredEvent:
    """``StoredEvent.from_row``; a payload that is not JSON is damage at that seq."""
    try:
        return StoredEvent.from_row(row)
    except (TypeError, ValueError) as exc:
        raise StorageDamagedError(row[0], unreadable_reason(exc)) from exc


def in_transaction(conn: sqlite3.Connection, views: Follower | None, doing: str,
                   body: Callable[[], T]) -> T:
    """Run ``body()`` between ``BEGIN IMMEDIATE`` and ``COMMIT``; on any error roll back
    (discarding the views' state) and raise driver errors mapped by ``map_sqlite_error``
    with ``doing`` in the message."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body()
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn, views)
            raise
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, doing) from exc
    return result

