"""Whether a ``void`` may be stored: its target checked against the log. Runs in the write
transaction, on the writer's connection.

EVENTS.md: a void's target (``target_source`` + ``target_id``) is a stored event of the
void's own account and is not a ``void``; a target already voided is refused, so a
second void of it stores nothing. Anything else is refused with -32602 at path
``data.target_id``, saying why. Events stored earlier in the same group, or earlier in
the same request, count as stored (they commit together, before the void).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from eventstore.errors import ValidationError
from eventstore.record import NewEvent, StoredEvent

__all__ = ["VOID_TARGET_INDEX", "TargetLookup", "VoidLookup", "check_voids", "void_refusal"]

_Key = tuple[str, str]
_TARGET = "json_extract(data, '$.target_source'), json_extract(data, '$.target_id')"
VOID_TARGET_INDEX = (
    f"CREATE INDEX IF NOT EXISTS events_void_target ON events (account, {_TARGET}) "
    "WHERE type = 'void'")
"""A partial index of the voids by account and target, made the first time a void is
checked: whether a target is already voided is then one index lookup, whatever the
size of the account (a file without voids never gets it)."""


TargetLookup = Callable[[tuple[str, str]], "tuple[str, str] | None"]
"""(type, account) of the stored event a (source, id) names; None if there is none."""
VoidLookup = Callable[[str, tuple[str, str]], "int | None"]
"""The seq of a stored void of (source, id) in the account; None if there is none."""


def _stored_target(conn: sqlite3.Connection, key: _Key) -> tuple[str, str] | None:
    row = conn.execute("SELECT type, account FROM events WHERE source = ? AND id = ?",
                       key).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def _stored_void(conn: sqlite3.Connection, account: str, key: _Key) -> int | None:
    row = conn.execute(
        "SELECT seq FROM events INDEXED BY events_void_target WHERE account = ? AND "
        "type = 'void' AND json_extract(data, '$.target_source') = ? AND "
        "json_extract(data, '$.target_id') = ? LIMIT 1", (account, *key)).fetchone()
    return None if row is None else int(row[0])


def _refusal(index: int, message: str) -> ValidationError:
    return ValidationError(f"event {index}: data.target_id: {message}",
                           [{"index": index, "path": "data.target_id", "message": message}])


def check_voids(conn: sqlite3.Connection, events: Sequence[NewEvent], fresh: Sequence[NewEvent],
                earlier: Sequence[StoredEvent]) -> ValidationError | None:
    """The refusal of the first void among ``fresh`` (the request's new events, a subset
    of ``events`` in order) whose target may not be voided, else None.

    ``earlier``: the events of the group's earlier requests, stored with this one.
    """
    if not any(event.event_type == "void" for event in fresh):
        return None
    conn.execute(VOID_TARGET_INDEX)
    return void_refusal(events, fresh, earlier, lambda key: _stored_target(conn, key),
                        lambda account, key: _stored_void(conn, account, key))


def void_refusal(events: Sequence[NewEvent], fresh: Sequence[NewEvent],
                 earlier: Sequence[StoredEvent], stored_target: TargetLookup,
                 stored_void: VoidLookup) -> ValidationError | None:
    """The rules of EVENTS.md for the voids among ``fresh``, for every store: the store
    gives its two lookups of the log (``stored_target``, ``stored_void``); the events of
    ``earlier`` and of this request before each void count as stored. The refusal of the
    first void whose target may not be voided, else None."""
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
            found = pending[key] if key in pending else stored_target(key)
            if found is None or found[1] != event.account:
                return _refusal(index, f"no event of account {event.account!r} has source "
                                       f"{key[0][:80]!r} and id {key[1][:80]!r}; a void names "
                                       "an event already stored in its own account")
            if found[0] == "void":
                return _refusal(index, "the target is itself a void, and a void cannot be "
                                       "voided; to restore the event, send it again with a "
                                       "new id")
            if key in voided:
                already, seq = True, voided[key]
            else:
                seq = stored_void(event.account, key)
                already = seq is not None
            if already:
                where = f" at seq {seq}" if seq is not None else " earlier in this append"
                return _refusal(index, f"the target is already voided (by the void{where}); "
                                       "it is out of every view, nothing more to do")
            voided[key] = None
        pending[(event.source, event.event_id)] = (event.event_type, event.account)
    return None


def _key_of(data: dict[str, Any]) -> _Key:
    return (str(data["target_source"]), str(data["target_id"]))
