"""The append transaction, one synchronous function on one SQLite connection.

``append_in_transaction`` decides every request of a group (duplicates, conflicts,
expected versions), inserts the new events with their hash chain in one
``executemany``, hands them to the follower (the views, ``eventstore.follow``) to fold
and write their rows, and commits: all of it or none of it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from eventstore import ddl
from eventstore.canonical import GENESIS_HASH, chain_hash
from eventstore.decide import Known, Verdict, decide_request, outcomes_of, recorded_at
from eventstore.errors import (
    EventStoreError,
    StorageDamagedError,
    ValidationError,
    map_sqlite_error,
)
from eventstore.follow import (
    Executes,
    FoldError,
    Follower,
    RowsAfter,
    Statement,
    catch_up,
    in_transaction,
    rollback,
    run_statements,
)
from eventstore.record import AppendOutcome, AppendRequest, StoredEvent
from eventstore.verify import stored_canonical, unreadable_reason
from eventstore.voids import check_voids

__all__ = ["FoldError", "Follower", "Statement", "ViewsRefusedError",
           "append_in_transaction", "catch_up", "catch_up_before", "commit_refusing",
           "fold_group", "fold_position", "in_transaction", "rollback", "run_statements"]


class _Batch:
    """Working state of one group commit inside the transaction."""

    def __init__(self, last_seq: int, last_hash: str, last_recorded: str) -> None:
        self.last_seq = last_seq
        self.last_hash = last_hash
        self.recorded_at = recorded_at(last_recorded)
        self.rows: list[tuple[Any, ...]] = []
        self.stored: list[StoredEvent] = []
        self.seen: dict[tuple[str, str], Known] = {}
        self.stored_counts: dict[str, int] = {}
        self.pending_counts: dict[str, int] = {}
        self.stored_before: dict[tuple[str, str], tuple[bytes, int, str]] = {}
        self.damaged: dict[tuple[str, str], StorageDamagedError] = {}
        self.metadata_texts: dict[tuple[Any, ...], str] = {}

    def version(self, conn: sqlite3.Connection, account: str) -> int:
        """The account's event count as this group would leave it so far."""
        if account not in self.stored_counts:
            row = conn.execute("SELECT version FROM accounts WHERE account = ?",
                               (account,)).fetchone()
            self.stored_counts[account] = int(row[0]) if row else 0
        return self.stored_counts[account] + self.pending_counts.get(account, 0)


def _metadata_json(metadata: dict[str, Any], seen: dict[tuple[Any, ...], str]) -> str:
    """The stored text of an event's metadata; one peer's metadata repeats across a
    group, so each distinct one is serialised once."""
    try:
        key = tuple(sorted(metadata.items()))
        text = seen.get(key)
    except TypeError:  # an unhashable value: serialise it every time
        return json.dumps(metadata, sort_keys=True, separators=(",", ":"))
    if text is None:
        text = seen[key] = json.dumps(metadata, sort_keys=True, separators=(",", ":"))
    return text


_LOOKUP_CHUNK = 1000
"""source+id pairs looked up per statement (2 parameters each, far below SQLite's cap)."""


def _already_stored(conn: sqlite3.Connection, requests: Sequence[AppendRequest],
                    damaged: dict[tuple[str, str], StorageDamagedError]
                    ) -> dict[tuple[str, str], tuple[bytes, int, str]]:
    """Canonical bytes, seq and account of every event of the group whose source+id is
    stored (keys already in ``damaged`` are skipped; rows that cannot be read go there):
    one statement per 1000 pairs (a VALUES list joined to the unique index), not one
    per event or per source."""
    keys = sorted({(e.source, e.event_id) for request in requests for e in request.events}
                  - set(damaged))
    columns = ", ".join(f"e.{name.strip()}" for name in ddl.EVENT_COLUMNS.split(","))
    found: dict[tuple[str, str], tuple[bytes, int, str]] = {}
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[start:start + _LOOKUP_CHUNK]
        values = ", ".join(["(?, ?)"] * len(chunk))
        sql = (f"WITH wanted(source, id) AS (VALUES {values}) SELECT {columns} FROM wanted "
               "CROSS JOIN events AS e ON e.source = wanted.source AND e.id = wanted.id")
        try:
            rows = conn.execute(sql, [part for key in chunk for part in key]).fetchall()
            found.update({(row[1], row[2]): (stored_canonical(row), row[0], row[5])
                          for row in rows})
        except (sqlite3.Error, TypeError, ValueError):
            # A stored row that cannot be read: look the keys up one at a time, so that
            # only the requests naming a damaged event fail (``damaged``).
            for key in chunk:
                _lookup_one(conn, key, found, damaged)
    return found


def _lookup_one(conn: sqlite3.Connection, key: tuple[str, str],
                found: dict[tuple[str, str], tuple[bytes, int, str]],
                damaged: dict[tuple[str, str], StorageDamagedError]) -> None:
    """Look one source+id up into ``found``; a stored row that cannot be read goes into
    ``damaged`` with its seq (read from the unique index alone, None if even that fails)."""
    try:
        row = conn.execute(f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE source = ? "
                           "AND id = ?", key).fetchone()
        if row is not None:
            found[key] = (stored_canonical(row), row[0], row[5])
    except (sqlite3.Error, TypeError, ValueError) as exc:
        try:
            seq_row = conn.execute("SELECT seq FROM events WHERE source = ? AND id = ?",
                                   key).fetchone()
            seq = int(seq_row[0]) if seq_row else None
        except (sqlite3.Error, TypeError, ValueError):
            seq = None
        damaged[key] = StorageDamagedError(seq, unreadable_reason(exc))


def _check_request(conn: sqlite3.Connection, request: AppendRequest,
                   batch: _Batch) -> Verdict:
    """Decide one request: results for each event and the new ones, or its error."""
    return decide_request(
        request, lambda account: batch.version(conn, account), batch.last_seq + 1,
        batch.seen, batch.stored_before, batch.damaged,
        lambda fresh: check_voids(conn, request.events, fresh, batch.stored))


def append_in_transaction(conn: sqlite3.Connection, requests: Sequence[AppendRequest],
                           views: Follower | None) -> list[AppendOutcome]:
    """Decide, store and fold a group of requests in one ``BEGIN IMMEDIATE`` transaction.

    Returns one ``AppendOutcome`` per request, in order; a rejected one carries its
    conflict or ``ValidationError`` and stores nothing. Raises what ``map_sqlite_error``
    makes of a driver error (e.g. ``StorageUnavailableError``); then nothing is stored.

    When the views cannot fold a new event of the group (``FoldError``), the whole
    transaction is rolled back (the views' state discarded) and the group committed
    again without the request holding that event, which is refused with a
    ``ViewsRefusedError`` (-32602, nothing of it stored); every other request is stored
    as it would have been. The fast path folds the group once, as before.
    """
    return commit_refusing(lambda some: _append_group(conn, some, views), requests,
                           lambda: _last_seq(conn))


def commit_refusing(commit: Callable[[Sequence[AppendRequest]], list[AppendOutcome]],
                    requests: Sequence[AppendRequest], last_seq: Callable[[], int]
                    ) -> list[AppendOutcome]:
    """``commit(requests)`` (one transaction: the group's outcomes), committed again
    without each request holding a new event the views could not fold (the
    ``FoldError`` raised, with ``where`` set, by ``commit``): that request is answered
    ``ViewsRefusedError``. ``last_seq()`` gives the log's last seq when every request
    was refused. Raises what ``commit`` raises otherwise."""
    refused: dict[int, ViewsRefusedError] = {}
    remaining = list(range(len(requests)))
    while True:
        try:
            outcomes = commit([requests[i] for i in remaining])
            break
        except FoldError as exc:
            if exc.where is None:
                raise
            position, index = exc.where
            refused[remaining.pop(position)] = ViewsRefusedError.at(index, exc.reason)
            if not remaining:
                outcomes = []
                break
    if not refused:
        return outcomes
    last = outcomes[-1].last_seq if outcomes else last_seq()
    stored = iter(outcomes)
    return [AppendOutcome([], last, refused[i]) if i in refused else next(stored)
            for i in range(len(requests))]


class ViewsRefusedError(ValidationError):
    """An append refused because the views could not fold one of its events (-32602);
    nothing of it was stored. Within the bounds on values this does not happen."""

    @classmethod
    def at(cls, index: int, reason: str) -> ViewsRefusedError:
        """The error for event ``index`` of the request, with the fold's ``reason``."""
        message = ("the views could not account for this event, so nothing of the append "
                   f"was stored ({reason}); check its values")
        return cls(f"event {index}: {message}",
                   [{"index": index, "path": "data", "message": message}])


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    return int(row[0])


def fold_position(decided: Sequence[Verdict],
                  seq: int) -> tuple[int, int] | None:
    """(request, event index) of the new event stored at ``seq`` in this group."""
    for position, verdict in enumerate(decided):
        if isinstance(verdict, Exception):
            continue
        for index, result in enumerate(verdict[0]):
            if result.seq == seq and not result.duplicate:
                return position, index
    return None


def _append_group(conn: sqlite3.Connection, requests: Sequence[AppendRequest],
                  views: Follower | None) -> list[AppendOutcome]:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, "starting a write") from exc
    try:
        last = conn.execute(
            "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        batch = _Batch(*(last if last else (0, GENESIS_HASH, "")))
        batch.stored_before = _already_stored(conn, requests, batch.damaged)
        if batch.damaged:
            # Having met a damaged page, SQLite may fail this transaction's inserts: start
            # again without looking those keys up (their requests fail on their own).
            damaged = batch.damaged
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            last = conn.execute(
                "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
            batch = _Batch(*(last if last else (0, GENESIS_HASH, "")))
            batch.damaged = damaged
            batch.stored_before = _already_stored(conn, requests, batch.damaged)
        decided: list[Verdict] = []
        for request in requests:
            verdict = _check_request(conn, request, batch)
            decided.append(verdict)
            if isinstance(verdict, Exception):
                continue
            for event in verdict[1]:
                batch.last_seq += 1
                batch.last_hash = chain_hash(batch.last_hash, event.canonical)
                metadata = _metadata_json(event.metadata, batch.metadata_texts)
                batch.rows.append((
                    batch.last_seq, event.source, event.event_id, event.event_type, event.time,
                    event.account, event.specversion, event.datacontenttype, event.data_json,
                    batch.recorded_at, event.schema_version, metadata, batch.last_hash,
                ))
                batch.stored.append(StoredEvent(
                    batch.last_seq, event.event_id, event.source, event.event_type,
                    event.time, event.account, event.specversion, event.datacontenttype,
                    event.data, batch.recorded_at, event.schema_version, batch.last_hash,
                    event.metadata,
                ))
                batch.pending_counts[event.account] = (
                    batch.pending_counts.get(event.account, 0) + 1)
        if batch.rows:
            conn.executemany(
                f"INSERT INTO events ({ddl.EVENT_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch.rows)
            conn.executemany(
                "INSERT INTO accounts (account, version) VALUES (?, ?) "
                "ON CONFLICT (account) DO UPDATE SET version = version + excluded.version",
                list(batch.pending_counts.items()))
        if views is not None:
            fold_group(conn, views, batch, decided)
        conn.execute("COMMIT")
    except EventStoreError:
        rollback(conn, views)
        raise
    except sqlite3.Error as exc:
        rollback(conn, views)
        raise map_sqlite_error(exc, "appending") from exc
    except BaseException:
        rollback(conn, views)
        raise
    return outcomes_of(decided, batch.last_seq)


class _Stored(Protocol):
    stored: list[StoredEvent]
    last_seq: int


def fold_group(conn: Executes, views: Follower, batch: _Stored,
               decided: Sequence[Verdict],
               rows: RowsAfter | None = None) -> None:
    """Inside the group's transaction, after its rows are inserted: fold what others
    appended past the views' checkpoint (``catch_up_before``), then the group's new
    events (``batch.stored``), and run the views' row writes on ``conn``.

    Raises:
        FoldError: a new event could not be folded; ``where`` names its request and
            index among ``decided`` (the group's verdicts), for ``commit_refusing``.
    """
    catch_up_before(conn, views, batch, rows)
    try:
        statements = views.fold(batch.stored, fresh=True)
    except FoldError as exc:
        exc.where = fold_position(decided, exc.seq)
        raise
    run_statements(conn, statements)


def catch_up_before(conn: Executes, views: Follower, batch: _Stored,
                    rows: RowsAfter | None = None) -> None:
    """Fold what another process appended before this group (``batch``: its new events,
    ``stored``, and the last seq, ``last_seq``), so views never skip events; ``rows``
    reads the log as ``catch_up`` says."""
    first_new = batch.stored[0].seq if batch.stored else batch.last_seq + 1
    if views.needs_load() or views.checkpoint < first_new - 1:
        catch_up(conn, views, before=first_new, rows=rows)
