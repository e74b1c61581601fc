"""Group commits and the append handler (daemon/service/commits.py, handlers.py) driven
directly, with a writer that stores into a list."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from daemon.access import Peer
from daemon.config import AccessRule
from daemon.service import Service
from eventstore.errors import (
    CommitInDoubtError,
    IdempotencyConflictError,
    NotPermittedError,
    StorageUnavailableError,
    ValidationError,
)
from eventstore.record import AppendOutcome, AppendRequest
from tests.server_fakes import PEER, FakeWriter, make_service
from tests.support import wire_event


def _request(service: Service, count: int = 1) -> AppendRequest:
    events = [wire_event("journal", {"text": "t"}) for _ in range(count)]
    return service.handlers.prepare_append({"events": events}, PEER)


def _writer(service: Service) -> FakeWriter:
    assert isinstance(service.writer, FakeWriter)
    return service.writer


async def test_appends_queued_together_are_one_group(tmp_path: Path) -> None:
    """Appends queued before the task runs are handed to the writer as one group, each
    answered with its own seqs; last_seq follows the commit."""
    service = make_service(tmp_path)
    service.start()
    futures = [service.submit(_request(service, n), PEER, n) for n in (1, 2, 3)]
    outcomes = await asyncio.gather(*futures)
    await service.stop_commits()
    assert ([3], [[1], [2, 3], [4, 5, 6]], 6) == (
        _writer(service).groups, [[r.seq for r in o.results] for o in outcomes],
        service.last_seq)


async def test_a_group_holds_at_most_max_group_events(tmp_path: Path) -> None:
    """Queued appends past ``max_group_events`` events go into the next group."""
    service = make_service(tmp_path, max_group_events=3)
    service.start()
    futures = [service.submit(_request(service, 2), PEER, n) for n in range(3)]
    await asyncio.gather(*futures)
    await service.stop_commits()
    assert [2, 1] == _writer(service).groups


class _GatedWriter(FakeWriter):
    """A ``FakeWriter`` that commits in the order groups are handed over, the first one
    only once ``gate`` is set; ``handed`` records each group's size as it is handed over."""

    def __init__(self, writer: FakeWriter) -> None:
        super().__init__(writer.recorder)
        self.gate = asyncio.Event()
        self.handed: list[int] = []
        self._order = asyncio.Lock()

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        self.handed.append(len(requests))
        async with self._order:
            await self.gate.wait()
            return await super().append_groups(requests)


def _gated(tmp_path: Path) -> tuple[Service, _GatedWriter]:
    """A service on fakes whose writer is a ``_GatedWriter``."""
    service = make_service(tmp_path)
    writer = _GatedWriter(_writer(service))
    service.writer = service.commits.writer = writer  # type: ignore[assignment]
    return service, writer


async def _turns(count: int = 20) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_while_a_group_commits_the_next_grows_to_half_its_size(tmp_path: Path) -> None:
    """While a group of 4 requests commits, one more request is not handed over alone;
    once 2 are queued they go as one group, before the first group is answered."""
    service, writer = _gated(tmp_path)
    service.start()
    first = [service.submit(_request(service), PEER, n) for n in range(4)]
    await _turns()
    second = [service.submit(_request(service), PEER, 4)]
    await _turns()
    held = list(writer.handed)
    second.append(service.submit(_request(service), PEER, 5))
    await _turns()
    grown = list(writer.handed)
    writer.gate.set()
    outcomes = await asyncio.gather(*first, *second)
    await service.stop_commits()
    assert ([4], [4, 2], [4, 2], [1, 2, 3, 4, 5, 6]) == (
        held, grown, writer.groups, [o.results[0].seq for o in outcomes])


async def test_a_small_group_goes_once_the_writer_is_free(tmp_path: Path) -> None:
    """A request queued while a bigger group commits is handed over as soon as that
    group is answered, however small."""
    service, writer = _gated(tmp_path)
    service.start()
    first = [service.submit(_request(service), PEER, n) for n in range(4)]
    await _turns()
    late = service.submit(_request(service), PEER, 4)
    await _turns()
    held = list(writer.handed)
    writer.gate.set()
    await asyncio.gather(*first, late)
    await service.stop_commits()
    assert ([4], [4, 1]) == (held, writer.handed)


async def test_storage_unavailable_fails_the_group_retryably(tmp_path: Path) -> None:
    """The writer saying storage is unavailable fails each request of the group with
    that error; the daemon goes on."""
    service = make_service(tmp_path)
    _writer(service).fail = StorageUnavailableError("disk full")
    service.start()
    future = service.submit(_request(service), PEER, 1)
    with pytest.raises(StorageUnavailableError):
        await future
    await service.stop_commits()
    assert not service.fatal.is_set()


async def test_an_unknown_outcome_is_fatal_and_never_answered(tmp_path: Path) -> None:
    """Any other failure leaves the outcome unknown: the requests are cancelled (never
    answered "rejected") and ``fatal`` is set with the reason."""
    service = make_service(tmp_path)
    _writer(service).fail = RuntimeError("pipe broke")
    service.start()
    future = service.submit(_request(service), PEER, 1)
    await service.stop_commits()
    assert (True, True, True) == (future.cancelled(), service.fatal.is_set(),
                                  "pipe broke" in service.fatal_reason)


async def test_a_commit_in_doubt_fails_only_its_group_and_is_not_fatal(
        tmp_path: Path) -> None:
    """A commit in doubt (PostgreSQL: the connection lost during COMMIT) fails each
    request of its group with ``CommitInDoubtError`` (never an answer: the socket
    closes their connections), ``fatal`` stays clear, and the next group commits."""
    service = make_service(tmp_path)
    writer = _writer(service)
    writer.fail = CommitInDoubtError("lost during COMMIT")
    service.start()
    doubtful = service.submit(_request(service), PEER, 1)
    with pytest.raises(CommitInDoubtError):
        await doubtful
    writer.fail = None
    outcome = await service.submit(_request(service), PEER, 2)
    await service.stop_commits()
    assert (False, [1]) == (service.fatal.is_set(), [r.seq for r in outcome.results])


async def test_no_append_is_taken_once_stopping(tmp_path: Path) -> None:
    """After ``stop_commits`` an append is refused as retryable, nothing queued."""
    service = make_service(tmp_path)
    service.start()
    await service.stop_commits()
    with pytest.raises(StorageUnavailableError, match="shutting down"):
        service.submit(_request(service), PEER, 1)


def test_append_checks_the_count_and_the_events(tmp_path: Path) -> None:
    """More than ``max_events_per_append`` events, or an invalid event: ValidationError
    naming what to fix, before anything is queued."""
    service = make_service(tmp_path, max_events_per_append=2)
    with pytest.raises(ValidationError, match="at most 2: split the batch"):
        _request(service, 3)
    with pytest.raises(ValidationError, match="invalid event"):
        service.handlers.prepare_append({"events": [{"type": "journal"}]}, PEER)


def test_append_checks_write_access(tmp_path: Path) -> None:
    """With access rules, an account the peer may not write is refused (-32004)."""
    service = make_service(tmp_path)
    service.access.rules = [AccessRule(uid=50001, write=["acct-2"])]
    with pytest.raises(NotPermittedError, match="may not write account 'acct-1'"):
        service.handlers.prepare_append(
            {"events": [wire_event("journal", {"text": "t"})]}, Peer(1, 50001, 50001))


def test_a_conflict_with_an_unreadable_event_tells_nothing_of_it(tmp_path: Path) -> None:
    """An idempotency conflict with an event of an account the peer may not read becomes
    -32004 without that event's details; one it may read stays as it is."""
    service = make_service(tmp_path)
    service.access.rules = [AccessRule(uid=50001, write=["acct-1"]),
                            AccessRule(uid=50002, write=["acct-1"], read=["acct-2"])]
    conflict = AppendOutcome([], 9, IdempotencyConflictError(
        source="s", event_id="e", seq=3, account="acct-2"))
    hidden = service.as_seen_by(conflict, Peer(1, 50001, 50001))
    shown = service.as_seen_by(conflict, Peer(2, 50002, 50002))
    assert (True, False, conflict) == (isinstance(hidden.error, NotPermittedError),
                                       "seq 3" in str(hidden.error), shown)
