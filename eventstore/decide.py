"""What one append request stores, by the rules every store shares (PROTOCOL.md,
idempotency): pure, no I/O; each store gives what its log holds.

A source+id seen before (earlier in the request, in the group, or stored) with the same
content is a duplicate (its seq again, nothing stored); with other content it is an
idempotency conflict, or, within one request, a batch that contradicts itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from eventstore.compat import same_as_stored
from eventstore.errors import IdempotencyConflictError, ValidationError
from eventstore.record import AppendRequest, EventResult, NewEvent

__all__ = ["Known", "decide_events"]

Known = tuple[bytes, int, str]
"""Canonical bytes, seq and account of an event stored (or pending) under a source+id."""
_Key = tuple[str, str]


def decide_events(request: AppendRequest, next_seq: int, seen: Mapping[_Key, Known],
                  stored_before: Mapping[_Key, Known],
                  damaged: Mapping[_Key, Exception]
                  ) -> tuple[list[EventResult], list[NewEvent], dict[_Key, Known]] | Exception:
    """One request's results, its new events and their keys (to add to ``seen`` once
    the request is kept), or its error.

    ``next_seq``: the seq the request's first new event would get; ``seen``: the
    group's earlier requests' events; ``stored_before``: the group's events already in
    the log; ``damaged``: source+ids whose stored row cannot be read (the error to give).
    """
    results: list[EventResult] = []
    fresh: list[NewEvent] = []
    local: dict[_Key, Known] = {}
    first_index: dict[_Key, int] = {}
    for index, event in enumerate(request.events):
        key = (event.source, event.event_id)
        if key in local and local[key][0] != event.canonical:
            # Nothing is stored under this key: the batch contradicts itself.
            return ValidationError(
                f"event {index}: source+id appears twice in the batch with different "
                f"content (first at event {first_index[key]}); send one of them",
                [{"index": index, "path": "id",
                  "message": f"source+id already used by event {first_index[key]} of this "
                             "batch with different content"}],
            )
        first_index.setdefault(key, index)
        if key in damaged:
            return damaged[key]
        known = local.get(key) or seen.get(key) or stored_before.get(key)
        if known is not None:
            if known[0] != event.canonical and not same_as_stored(known[0], event):
                # The stored event's account goes with the conflict: the daemon
                # answers -32004 instead where the peer may not read that account.
                return IdempotencyConflictError(event.source, event.event_id, known[1],
                                                known[2])
            # Same canonical bytes, so the same account: one the peer was allowed to
            # write (and so read) before the request reached the writer.
            results.append(EventResult(event.event_id, event.source, known[1], True))
            continue
        local[key] = (event.canonical, next_seq, event.account)
        results.append(EventResult(event.event_id, event.source, next_seq, False))
        fresh.append(event)
        next_seq += 1
    return results, fresh, local
