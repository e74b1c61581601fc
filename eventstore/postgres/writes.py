"""The group commit on PostgreSQL: several callers' batches in one transaction, with the
same outcomes as SQLite's ``eventstore.writes.append_in_transaction``.

Appends from every connection to a log (every daemon on every host) are serialised by
one transaction-level advisory lock (``pg_advisory_xact_lock``, released by the
``COMMIT``): only its holder reads the last seq and hash, so seq is gapless and the
chain one line. The lock is taken in a statement of its own: in READ COMMITTED each
statement sees what was committed before it began, so the reads after it see the
previous holder's commit. Two network round trips and five statements per group
(pipeline mode): ``BEGIN``, the lock and the reads; then the inserts with the versions
and the notification, the views' rows, and ``COMMIT`` (a third round trip for ``COPY``
when the group is large; more when the views must read the log or a row first).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import pq

from eventstore.canonical import GENESIS_HASH, chain_hash
from eventstore.decide import decide_events
from eventstore.errors import (
    EventStoreError,
    StorageCorruptError,
    VersionConflictError,
)
from eventstore.follow import Executes, Follower
from eventstore.postgres import ddl, reads
from eventstore.postgres.connect import CommitInDoubtError, Connection, map_pg_error
from eventstore.postgres.notify import channel
from eventstore.postgres.voids import check_voids
from eventstore.record import AppendOutcome, AppendRequest, EventResult, NewEvent, StoredEvent
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

_Known = tuple[bytes, int, str]
"""Canonical bytes, seq and account of an event stored (or deciding to be)."""


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _Group:
    """Working state of one group commit inside the transaction."""

    def __init__(self, last: tuple[Any, ...] | None, versions: dict[str, int],
                 stored_before: dict[tuple[str, str], _Known]) -> None:
        self.last_seq, self.last_hash, last_recorded = last or (0, GENESIS_HASH, "")
        self.recorded_at = max(_utc_now(), last_recorded)
        self.versions = versions
        self.stored_before = stored_before
        self.seen: dict[tuple[str, str], _Known] = {}
        self.pending: dict[str, int] = {}
        self.columns: list[list[Any]] = [[] for _ in range(14)]
        self.stored: list[StoredEvent] = []

    def version(self, account: str) -> int:
        """The account's event count as this group would leave it so far."""
        return self.versions.get(account, 0) + self.pending.get(account, 0)

    def add(self, event: NewEvent) -> None:
        """Chain ``event`` on the last hash and keep its row for the insert."""
        previous = self.last_hash
        self.last_seq += 1
        self.last_hash = chain_hash(previous, event.canonical)
        metadata = json.dumps(event.metadata, sort_keys=True, separators=(",", ":"))
        row = (self.last_seq, event.source, event.event_id, event.event_type, event.time,
               event.account, event.specversion, event.datacontenttype, event.data_json,
               self.recorded_at, event.schema_version, metadata, self.last_hash, previous)
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)
        self.stored.append(StoredEvent(
            self.last_seq, event.event_id, event.source, event.event_type, event.time,
            event.account, event.specversion, event.datacontenttype, event.data,
            self.recorded_at, event.schema_version, self.last_hash, event.metadata))
        self.pending[event.account] = self.pending.get(event.account, 0) + 1


def _decide(conn: Connection, request: AppendRequest, group: _Group
            ) -> tuple[list[EventResult], list[NewEvent]] | Exception:
    """One request's results and new events, or its error (as SQLite decides it)."""
    if request.expected_account is not None and request.expected_version is not None:
        current = group.version(request.expected_account)
        if current != request.expected_version:
            return VersionConflictError(request.expected_account, request.expected_version,
                                        current)
    decided = decide_events(request, group.last_seq + 1, group.seen, group.stored_before,
                            {})
    if isinstance(decided, Exception):
        return decided
    results, fresh, local = decided
    refused = check_voids(conn, request.events, fresh, group.stored)
    if refused is not None:
        return refused
    group.seen.update(local)
    return results, fresh


def _read_state(conn: Connection, key: int, requests: Sequence[AppendRequest]) -> _Group:
    """``BEGIN``, the lock, then (a statement of its own, so that it sees the previous
    holder's commit) the last row, the group's stored source+id pairs and its accounts'
    versions: one round trip."""
    pairs = sorted({(e.source, e.event_id) for r in requests for e in r.events})
    accounts = sorted({e.account for r in requests for e in r.events}
                      | {r.expected_account for r in requests if r.expected_account})
    with conn.pipeline():
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        cursor = conn.execute(_STATE, ([p[0] for p in pairs], [p[1] for p in pairs],
                                       accounts))
    row = cursor.fetchone()
    last, known, versions = row if row is not None else (None, [], [])
    stored_before = {(r[1], r[2]): (stored_canonical(r), int(r[0]), str(r[5]))
                     for r in known}
    return _Group(tuple(last) if last else None, {str(a): int(v) for a, v in versions},
                  stored_before)


def append_group(conn: Connection, key: int, requests: Sequence[AppendRequest],
                 views: Follower | None = None, spelling: Executes | None = None
                 ) -> list[AppendOutcome]:
    """Decide and store a group of requests in one transaction under the log's lock
    ``key``; one ``AppendOutcome`` per request, in order (a rejected one carries its
    ``VersionConflictError``, ``IdempotencyConflictError`` or ``ValidationError`` and
    stores nothing; the others are stored, gapless).

    With ``views`` (and ``spelling``, ``conn`` running their SQLite-spelled statements:
    ``eventstore.postgres.dialect.SqliteSpelling``), the views fold, in the same
    transaction and under the same lock, first what other writers appended past their
    checkpoint, then the group: their rows commit with it. A request holding a new event
    they cannot fold is refused as on SQLite (``eventstore.writes.commit_refusing``).

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
        return _append(conn, key, requests, None, None)
    return commit_refusing(lambda some: _append(conn, key, some, views, spelling),
                           requests, lambda: reads.last_seq(conn))


def _append(conn: Connection, key: int, requests: Sequence[AppendRequest],
            views: Follower | None, spelling: Executes | None) -> list[AppendOutcome]:
    committing = False
    try:
        group = _read_state(conn, key, requests)
        decided: list[tuple[list[EventResult], list[NewEvent]] | Exception] = []
        for request in requests:
            verdict = _decide(conn, request, group)
            decided.append(verdict)
            if not isinstance(verdict, Exception):
                for event in verdict[1]:
                    group.add(event)

        def rows(after: int, before: int | None) -> Iterator[tuple[Any, ...]]:
            return reads.rows_after(conn, after, before)

        if views is not None and spelling is not None:
            # What others appended first: its rows come from a server-side cursor, which
            # a pipeline cannot hold.
            catch_up_before(spelling, views, group, rows)
        if len(group.stored) >= COPY_FROM:
            with conn.cursor().copy(COPY) as copy:
                for row in zip(*group.columns, strict=True):
                    copy.write_row(row)
        with conn.pipeline():
            if group.stored:
                tail = [list(group.pending), list(group.pending.values()), channel(key),
                        str(group.last_seq)]
                if len(group.stored) < COPY_FROM:
                    count = len(group.stored)
                    conn.execute(_insert_values(count), [
                        value for row in zip(*group.columns, strict=True) for value in row
                    ] + tail)
                else:
                    conn.execute(_UPSERT_ALL, tail)
            if views is not None and spelling is not None:
                # The views' rows go in the same flight as the events' and the COMMIT
                # (a row the fold reads, or a void's history, syncs the pipeline first,
                # so it sees the events' rows).
                fold_group(spelling, views, group, decided, rows)
            committing = True
            conn.execute("COMMIT")
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
        raise map_pg_error(exc, "appending") from exc
    except BaseException:
        rollback(conn, views)
        raise
    outcomes: list[AppendOutcome] = []
    for verdict in decided:
        if isinstance(verdict, Exception):
            outcomes.append(AppendOutcome([], group.last_seq, verdict))
        else:
            outcomes.append(AppendOutcome(verdict[0], group.last_seq))
    return outcomes


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
