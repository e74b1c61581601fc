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
from typing import TYPE_CHECKING, Any

from eventstore.errors import ValidationError
from eventstore.record import NewEvent, StoredEvent

if TYPE_CHECKING:
    from eventstore.postgres.connect import Connection

__all__ = ["check_voids"]

_Key = tuple[str, str]
_VOIDED = ("SELECT seq FROM events WHERE account = %s AND type = 'void' "
           "AND (data::json ->> 'target_source') = %s AND (data::json ->> 'target_id') = %s "
           "LIMIT 1")
"""Served by the partial index ``events_void_target`` (``eventstore.postgres.ddl``)."""


def _target(conn: Connection, key: _Key, pending: dict[_Key, tuple[str, str]]
            ) -> tuple[str, str] | None:
    if key in pending:
        return pending[key]
    row = conn.execute("SELECT type, account FROM events WHERE source = %s AND id = %s",
                       key).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def _voided_by(conn: Connection, account: str, key: _Key,
               pending: dict[_Key, int | None]) -> tuple[bool, int | None]:
    if key in pending:
        return True, pending[key]
    row = conn.execute(_VOIDED, (account, *key)).fetchone()
    return (False, None) if row is None else (True, int(row[0]))


def _refusal(index: int, message: str) -> ValidationError:
    return ValidationError(f"event {index}: data.target_id: {message}",
                           [{"index": index, "path": "data.target_id", "message": message}])


def check_voids(conn: Connection, events: Sequence[NewEvent], fresh: Sequence[NewEvent],
                earlier: Sequence[StoredEvent]) -> ValidationError | None:
    """The refusal of the first void among ``fresh`` (the request's new events, a subset
    of ``events`` in order) whose target may not be voided, else None.

    ``earlier``: the events of the group's earlier requests, stored with this one.
    """
    if not any(event.event_type == "void" for event in fresh):
        return None
    is_fresh = {id(event) for event in fresh}
    pending: dict[_Key, tuple[str, str]] = {}
    voided: dict[_Key, int | None] = {}
    for stored in earlier:
        pending[(stored.source, stored.event_id)] = (stored.event_type, stored.account)
        if stored.event_type == "void":
            voided[_key_of(stored.data)] = stored.seq
    for index, event in enumerate(events):
        if id(event) not in is_fresh:
            continue
        if event.event_type == "void":
            key = _key_of(event.data)
            found = _target(conn, key, pending)
            if found is None or found[1] != event.account:
                return _refusal(index, f"no event of account {event.account!r} has source "
                                       f"{key[0][:80]!r} and id {key[1][:80]!r}; a void names "
                                       "an event already stored in its own account")
            if found[0] == "void":
                return _refusal(index, "the target is itself a void, and a void cannot be "
                                       "voided; to restore the event, send it again with a "
                                       "new id")
            already, seq = _voided_by(conn, event.account, key, voided)
            if already:
                where = f" at seq {seq}" if seq is not None else " earlier in this append"
                return _refusal(index, f"the target is already voided (by the void{where}); "
                                       "it is out of every view, nothing more to do")
            voided[key] = None
        pending[(event.source, event.event_id)] = (event.event_type, event.account)
    return None


def _key_of(data: dict[str, Any]) -> _Key:
    return (str(data["target_source"]), str(data["target_id"]))
