"""Whether a ``void`` may be stored, on PostgreSQL: the rules of ``eventstore.voids``
(EVENTS.md), its targets looked up with this store's SQL. Runs in the write transaction,
under the log's lock.

A void's target (``target_source`` + ``target_id``) is a stored event of the void's own
account and is not a ``void``; a target already voided is refused. Events stored earlier
in the same group, or earlier in the same request, count as stored. Refusals are
``ValidationError`` at path ``data.target_id`` with the same words as on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eventstore.errors import ValidationError
from eventstore.record import NewEvent, StoredEvent
from eventstore.voids import void_refusal

if TYPE_CHECKING:
    from eventstore.postgres.connect import Connection

__all__ = ["check_voids"]

_Key = tuple[str, str]
_VOIDED = ("SELECT seq FROM events WHERE account = %s AND type = 'void' "
           "AND (data::json ->> 'target_source') = %s AND (data::json ->> 'target_id') = %s "
           "LIMIT 1")
"""Served by the partial index ``events_void_target`` (``eventstore.postgres.ddl``)."""


def _stored_target(conn: Connection, key: _Key) -> tuple[str, str] | None:
    row = conn.execute("SELECT type, account FROM events WHERE source = %s AND id = %s",
                       key).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def _stored_void(conn: Connection, account: str, key: _Key) -> int | None:
    row = conn.execute(_VOIDED, (account, *key)).fetchone()
    return None if row is None else int(row[0])


def check_voids(conn: Connection, events: Sequence[NewEvent], fresh: Sequence[NewEvent],
                earlier: Sequence[StoredEvent]) -> ValidationError | None:
    """The refusal of the first void among ``fresh`` (the request's new events, a subset
    of ``events`` in order) whose target may not be voided, else None
    (``eventstore.voids.void_refusal`` with this store's lookups).

    ``earlier``: the events of the group's earlier requests, stored with this one.
    """
    if not any(event.event_type == "void" for event in fresh):
        return None
    return void_refusal(events, fresh, earlier, lambda key: _stored_target(conn, key),
                        lambda account, key: _stored_void(conn, account, key))
