"""What one append request stores, by the rules every store shares (PROTOCOL.md,
idempotency): pure, no I/O; each store gives what its log holds.

A source+id seen before (earlier in the request, in the group, or stored) with the same
content is a duplicate (its seq again, nothing stored); with other content it is an
idempotency conflict, or, within one request, a batch that contradicts itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from eventstore.compat import same_as_stored
from eventstore.errors import IdempotencyConflictError, ValidationError, VersionConflictError
from eventstore.record import AppendOutcome, AppendRequest, EventResult, NewEvent

__all__ = ["Known", "Verdict", "decide_events", "decide_request", "outcomes_of",
           "recorded_at"]

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


Verdict = tuple[list[EventResult], list[NewEvent]] | Exception
"""A request's results and new events, or the error that refuses it."""


def decide_request(request: AppendRequest, version: Callable[[str], int], next_seq: int,
                   seen: dict[_Key, Known], stored_before: Mapping[_Key, Known],
                   damaged: Mapping[_Key, Exception],
                   refuse_voids: Callable[[list[NewEvent]], Exception | None]) -> Verdict:
    """One request's verdict, as every store decides it: a ``VersionConflictError`` when
    its expected version is not ``version(account)`` (the account's event count as the
    group would leave it so far), then ``decide_events``, then the store's void rules
    (``refuse_voids(fresh)``: the refusal of the first void among the request's new
    events that may not be stored, or None). A request kept adds its keys to ``seen``.
    """
    if request.expected_account is not None and request.expected_version is not None:
        current = version(request.expected_account)
        if current != request.expected_version:
            return VersionConflictError(request.expected_account, request.expected_version,
                                        current)
    decided = decide_events(request, next_seq, seen, stored_before, damaged)
    if isinstance(decided, Exception):
        return decided
    results, fresh, local = decided
    refused = refuse_voids(fresh)
    if refused is not None:
        return refused
    seen.update(local)
    return results, fresh


def recorded_at(last_recorded: str) -> str:
    """A new group's ``recorded_at``: now, in UTC (RFC 3339, microseconds, ``Z``), never
    before ``last_recorded`` (the log's last; "" for an empty log), so that it never goes
    back when the clock does."""
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return max(now, last_recorded)


def outcomes_of(decided: Sequence[Verdict], last_seq: int) -> list[AppendOutcome]:
    """One ``AppendOutcome`` per verdict, in order, each with the group's ``last_seq``
    (a refused request carries its error and no results)."""
    return [AppendOutcome([], last_seq, verdict) if isinstance(verdict, Exception)
            else AppendOutcome(verdict[0], last_seq) for verdict in decided]
