"""The group commit on PostgreSQL: several callers' batches in one transaction, with the
same outcomes as SQLite's ``eventstore.writes.append_in_transaction`` (the decisions:
``eventstore.postgres.group``).

Appends from every connection to a log (every daemon on every host) are serialised by
one transaction-level advisory lock (``pg_advisory_xact_lock``, released by the
``COMMIT``): only its holder appends, so seq is gapless and the chain one line. The lock
is taken in a statement of its own: in READ COMMITTED each statement sees what was
committed before it began, so the statements after it see the previous holder's commit.

A group that reads the log first makes two network round trips (pipeline mode):
``BEGIN``, the lock and the reads (the last row, the group's stored source+id pairs, its
accounts' versions); then the insert with the versions and the notification, the views'
rows, and ``COMMIT`` (a third round trip for ``COPY`` when the group is large; more when
the views must read the log or a row first). A writer alone on the log skips the read:
one flight, checked by the server (``eventstore.postgres.tail``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import pq

from eventstore.decide import outcomes_of
from eventstore.errors import (
    EventStoreError,
    StorageCorruptError,
)
from eventstore.follow import Executes, FoldError, Follower
from eventstore.postgres import ddl, reads
from eventstore.postgres.connect import CommitInDoubtError, Connection, map_pg_error
from eventstore.postgres.group import (
    Group,
    UnsureError,
    Verdict,
    accounts,
    decide_all,
    decide_guessed,
)
from eventstore.postgres.notify import channel
from eventstore.postgres.tail import Tail
from eventstore.record import AppendOutcome, AppendRequest
from eventstore.verify import stored_canonical
from eventstore.writes import catch_up_before, commit_refusing, fold_group

__all__ = ["COPY", "INSERT", "UPSERT", "append_group", "rollback"]

_COLUMNS = ", ".join("e." + c.strip() for c in ddl.EVENT_COLUMNS.split(","))
_STATE = (
    "SELECT (SELECT json_build_array(seq, hash, recorded_at) FROM events "
    "ORDER BY seq DESC LIMIT 1), "
    f"(SELECT coalesce(json_agg(json_build_array({_COLUMNS})), '[]') "
    "FROM unnest(%s::text[], %s::text[]) AS w(source, id) "
    "JOIN events AS e ON e.source = w.source AND e.id = w.id), "
    "(SELECT coalesce(json_agg(json_build_array(account, version)), '[]') "
    "FROM accounts WHERE account = ANY(%s::text[]))")
"""The last row, the group's source+id pairs already stored (``EVENT_COLUMNS``) and its
accounts' versions, in one statement (each a JSON value: the texts come back exact)."""
INSERT = (f"INSERT INTO events ({ddl.INSERT_COLUMNS}) SELECT * FROM unnest("
          "%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
          "%s::text[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[], "
          "%s::text[], %s::text[])")
"""Rows as fourteen column arrays, one statement whatever their number (``migrate``)."""
UPSERT = ("INSERT INTO accounts (account, version) SELECT * FROM unnest(%s::text[], "
          "%s::bigint[]) ON CONFLICT (account) DO UPDATE SET version = accounts.version "
          "+ excluded.version")
_THEN_NOTIFY = "SELECT pg_notify(%s, %s)"
_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_UPSERT_ALL = f"WITH acc AS ({UPSERT}) {_THEN_NOTIFY}"


@functools.cache
def _insert_values(rows: int) -> str:
    """The rows, the versions and the notification in one statement, the rows as
    ``VALUES`` of scalar parameters: for the small groups that do not go by ``COPY``,
    cheaper for the driver to adapt than ``INSERT``'s fourteen arrays (about 0.1 ms of
    a one-event append's 1.1 ms)."""
    one = "(" + ", ".join(["%s"] * 14) + ")"
    values = ", ".join([one] * rows)
    return (f"WITH ins AS (INSERT INTO events ({ddl.INSERT_COLUMNS}) VALUES {values}), "
            f"acc AS ({UPSERT}) {_THEN_NOTIFY}")
"""The versions and the notification, after the rows went by ``COPY``."""

COPY = f"COPY events ({ddl.INSERT_COLUMNS}) FROM STDIN"
COPY_FROM = 16
"""Groups of this many new events or more go in by ``COPY`` (about a quarter of the
client's CPU per row of the ``unnest`` insert, one round trip more: bench/pg_driver.py)."""

def _read_state(conn: Connection, key: int, requests: Sequence[AppendRequest]) -> Group:
    """``BEGIN``, the lock, then (a statement of its own, so that it sees the previous
    holder's commit) the last row, the group's stored source+id pairs and its accounts'
    versions: one round trip."""
    pairs = sorted({(e.source, e.event_id) for r in requests for e in r.events})
    with conn.pipeline():
        conn.execute("BEGIN")
        conn.execute(_LOCK, (key,))
        cursor = conn.execute(_STATE, ([p[0] for p in pairs], [p[1] for p in pairs],
                                       accounts(requests)))
    row = cursor.fetchone()
    last, known, versions = row if row is not None else (None, [], [])
    stored_before = {(r[1], r[2]): (stored_canonical(r), int(r[0]), str(r[5]))
                     for r in known}
    return Group(tuple(last) if last else None, {str(a): int(v) for a, v in versions},
                  stored_before)


def append_group(conn: Connection, key: int, requests: Sequence[AppendRequest],
                 views: Follower | None = None, spelling: Executes | None = None,
                 tail: Tail | None = None) -> list[AppendOutcome]:
    """Decide and store a group of requests in one transaction under the log's lock
    ``key``; one ``AppendOutcome`` per request, in order (a rejected one carries its
    ``VersionConflictError``, ``IdempotencyConflictError`` or ``ValidationError`` and
    stores nothing; the others are stored, gapless).

    With ``views`` (and ``spelling``, ``conn`` running their SQLite-spelled statements:
    ``eventstore.postgres.dialect.SqliteSpelling``), the views fold, in the same
    transaction and under the same lock, first what other writers appended past their
    checkpoint, then the group: their rows commit with it. A request holding a new event
    they cannot fold is refused as on SQLite (``eventstore.writes.commit_refusing``).

    With ``tail`` (this connection's own ``Tail``, kept up to date here), a group may
    go in one flight without reading the log first (``eventstore.postgres.tail``).

    The answer comes after ``COMMIT`` has returned, so after the commit is durable as
    the server's ``synchronous_commit`` makes it (flushed locally, and on a synchronous
    standby when one is configured).

    Raises:
        StorageUnavailableError: the server is unreachable, read-only or full; nothing
            of the group was stored.
        StorageBusyError: the lock was not had within ``lock_timeout``; nothing stored.
        CommitInDoubtError: the connection was lost during ``COMMIT``; re-send to settle.
        StorageCorruptError: the rollback failed, or the server reports damaged data.
    """
    if views is None or spelling is None:
        return _append(conn, key, requests, None, None, tail)
    return commit_refusing(lambda some: _append(conn, key, some, views, spelling, tail),
                           requests, lambda: reads.last_seq(conn))


def _append(conn: Connection, key: int, requests: Sequence[AppendRequest],
            views: Follower | None, spelling: Executes | None, tail: Tail | None
            ) -> list[AppendOutcome]:
    if (tail is not None and tail.may_skip_read(requests)
            and sum(len(r.events) for r in requests) < COPY_FROM
            and (views is None or (not views.needs_load() and views.checkpoint == tail.seq))):
        guess = Group((tail.seq, tail.hash, tail.recorded_at), tail.versions, {})
        outcomes = _commit(conn, key, requests, views, spelling, tail, guess)
        if outcomes is not None:
            return outcomes
        tail.raced()
    outcomes = _commit(conn, key, requests, views, spelling, tail, None)
    assert outcomes is not None  # a group that reads the log first is not guessed
    return outcomes


def _commit(conn: Connection, key: int, requests: Sequence[AppendRequest],
            views: Follower | None, spelling: Executes | None, tail: Tail | None,
            guess: Group | None) -> list[AppendOutcome] | None:
    """Read the log (unless ``guess`` is given), decide, insert, fold and ``COMMIT``. A
    guessed group (on where this writer's last commit left the log: ``guess``) goes in
    the same flight as its ``BEGIN`` and lock, and returns None, rolled back, when the
    guess failed (or anything else did before ``COMMIT``: the read path will say what)."""
    committing = False
    try:
        if guess is None:
            group = _read_state(conn, key, requests)
            if tail is not None:
                tail.found(group.last_seq, group.last_hash)
            group.known = set(accounts(requests))
            decided = _prepare(conn, requests, views, spelling, group)
        else:
            group = guess
        with conn.pipeline():
            if guess is not None:
                conn.execute("BEGIN")
                conn.execute(_LOCK, (key,))
                decided = decide_guessed(conn, requests, group)
            if group.stored and len(group.stored) < COPY_FROM:
                conn.execute(_insert_values(len(group.stored)), [
                    value for row in zip(*group.columns, strict=True) for value in row
                ] + _tail_params(key, group, tail))
            elif group.stored:
                conn.execute(_UPSERT_ALL, _tail_params(key, group, tail))
            if views is not None and spelling is not None:
                # The views' rows go in the same flight as the events' and the COMMIT
                # (a row the fold reads, or a void's history, syncs the pipeline first,
                # so it sees the events' rows).
                fold_group(spelling, views, group, decided, _rows(conn))
            committing = True
            conn.execute("COMMIT")
    except UnsureError:
        rollback(conn)  # nothing folded yet: the views' state stands
        return None
    except FoldError:
        rollback(conn, views)
        if guess is not None:
            return None  # folded on a state that may miss another writer's events
        raise
    except EventStoreError:
        rollback(conn, views)
        raise
    except psycopg.Error as exc:
        if committing and (conn.broken or conn.closed):
            raise CommitInDoubtError(
                "the connection to PostgreSQL was lost during COMMIT: the group may or "
                f"may not be stored ({exc}); send the same events again to settle it"
            ) from exc
        rollback(conn, views)
        if guess is not None and not (conn.broken or conn.closed):
            return None
        raise map_pg_error(exc, "appending") from exc
    except BaseException:
        rollback(conn, views)
        raise
    if tail is not None:
        tail.committed(group.last_seq, group.last_hash, group.recorded_at,
                       group.versions_known(tail.versions))
    return outcomes_of(decided, group.last_seq)


def _prepare(conn: Connection, requests: Sequence[AppendRequest],
             views: Follower | None, spelling: Executes | None, group: Group
             ) -> list[Verdict]:
    """For a group that read the log, before its pipeline: decide it, fold what others
    appended first (its rows come from a server-side cursor) and ``COPY`` a large
    group's rows, neither of which a pipeline can hold."""
    decided = decide_all(conn, requests, group)
    if views is not None and spelling is not None:
        catch_up_before(spelling, views, group, _rows(conn))
    if len(group.stored) >= COPY_FROM:
        with conn.cursor().copy(COPY) as copy:
            for row in zip(*group.columns, strict=True):
                copy.write_row(row)
    return decided


def _rows(conn: Connection) -> Callable[[int, int | None], Iterator[tuple[Any, ...]]]:
    def rows(after: int, before: int | None) -> Iterator[tuple[Any, ...]]:
        return reads.rows_after(conn, after, before)
    return rows


def _tail_params(key: int, group: Group, tail: Tail | None) -> list[Any]:
    """The accounts' version increments, the channel and the notification's payload
    (the last seq, then the writer's origin, if any: ``eventstore.postgres.notify``)."""
    payload = str(group.last_seq)
    if tail is not None and tail.origin:
        payload = f"{payload} {tail.origin}"
    return [list(group.pending), list(group.pending.values()), channel(key), payload]


def rollback(conn: Connection, views: Follower | None = None) -> None:
    """Roll back the open transaction, if any (a broken connection has none left: the
    server rolls it back when the session ends), after ``views.discard()``.

    Raises ``StorageCorruptError`` when the ROLLBACK itself fails on a live connection.
    """
    if views is not None:
        views.discard()
    if conn.broken or conn.closed:
        return
    if conn.info.transaction_status == pq.TransactionStatus.IDLE:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.OperationalError:
        return  # the connection went: the server ends the transaction with it
    except psycopg.Error as exc:
        raise StorageCorruptError(f"rollback failed, the log is in doubt: {exc}") from exc
