"""One group commit's decisions on PostgreSQL: the working state of a group inside its
transaction (``Group``: the rows it will insert, the chain, the accounts' versions) and
the verdict on each request, by the same rules as SQLite
(``eventstore.decide.decide_events``, the void rules of ``eventstore.postgres.voids``).

A group decided on a guess of where the log is (``eventstore.postgres.tail``), rather
than on a read of it, must not refuse what only a read could decide: ``decide_guessed``
raises ``UnsureError`` then, and the group is made again from a read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eventstore.canonical import GENESIS_HASH, chain_hash
from eventstore.decide import Known, Verdict, decide_request, recorded_at
from eventstore.errors import VersionConflictError
from eventstore.postgres.voids import check_voids
from eventstore.record import AppendRequest, NewEvent, StoredEvent

if TYPE_CHECKING:
    from eventstore.postgres.connect import Connection

__all__ = ["Group", "UnsureError", "Verdict", "accounts", "decide_all", "decide_guessed"]

class Group:
    """Working state of one group commit inside the transaction."""

    def __init__(self, last: tuple[Any, ...] | None, versions: dict[str, int],
                 stored_before: dict[tuple[str, str], Known]) -> None:
        self.last_seq, self.last_hash, last_recorded = last or (0, GENESIS_HASH, "")
        self.recorded_at = recorded_at(last_recorded)
        self.versions = versions
        self.stored_before = stored_before
        self.seen: dict[tuple[str, str], Known] = {}
        self.pending: dict[str, int] = {}
        self.columns: list[list[Any]] = [[] for _ in range(14)]
        self.stored: list[StoredEvent] = []
        self.known: set[str] | None = None
        """The accounts whose versions were read with the log (None: a guessed group,
        on the versions its ``Tail`` kept)."""

    def version(self, account: str) -> int:
        """The account's event count as this group would leave it so far."""
        return self.versions.get(account, 0) + self.pending.get(account, 0)

    def versions_known(self, kept: Mapping[str, int]) -> dict[str, int]:
        """The versions this group leaves of the accounts whose version it knew: those
        read with the log (``known``) or, for a guessed group, those of ``kept`` (the
        versions its ``Tail`` kept) that it appends to."""
        known = (self.known if self.known is not None
                 else [a for a in self.pending if a in kept])
        return {account: self.version(account) for account in known}

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


def _decide(conn: Connection, request: AppendRequest, group: Group) -> Verdict:
    """One request's verdict (``eventstore.decide.decide_request``)."""
    return decide_request(
        request, group.version, group.last_seq + 1, group.seen, group.stored_before, {},
        lambda fresh: check_voids(conn, request.events, fresh, group.stored))


def accounts(requests: Sequence[AppendRequest]) -> list[str]:
    """The accounts a group appends to or checks the version of."""
    return sorted({e.account for r in requests for e in r.events}
                  | {r.expected_account for r in requests if r.expected_account})


class UnsureError(Exception):
    """A guessed group refused a request: it goes again from a read of the log."""


def decide_all(conn: Connection, requests: Sequence[AppendRequest], group: Group
               ) -> list[Verdict]:
    """Each request's verdict in order; the new events of those kept join the group."""
    decided: list[Verdict] = []
    for request in requests:
        verdict = _decide(conn, request, group)
        decided.append(verdict)
        if not isinstance(verdict, Exception):
            for event in verdict[1]:
                group.add(event)
    return decided


def decide_guessed(conn: Connection, requests: Sequence[AppendRequest], group: Group
                   ) -> list[Verdict]:
    """``decide_all`` for a guessed group. A refusal other than a version conflict (the
    versions it checks are known) may come of not knowing what is stored (a void sent
    again is refused as voiding its target twice): ``UnsureError``, the read decides.
    So does a group that stores nothing: only its insert lets the server check the
    guess (the next seq on the last hash), so its version conflicts could be answered
    on versions another writer's append has moved."""
    decided = decide_all(conn, requests, group)
    if not group.stored or any(isinstance(v, Exception)
                               and not isinstance(v, VersionConflictError)
                               for v in decided):
        raise UnsureError
    return decided
