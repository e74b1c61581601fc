"""Subscriptions (daemon/service/subscriptions.py) driven directly, with a fake outbox
and a log held in a list: catch-up and live events in order, the limits, and how a
subscription ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemon.service import Service
from daemon.wire.rpc import RpcError
from eventstore.errors import ValidationError
from tests.server_fakes import PEER, FakeOutbox, FakeRecorder, make_service, stored_event


async def _settle() -> None:
    """Let the pumps run until they wait (their pages are converted on worker threads)."""
    for _ in range(40):
        await asyncio.sleep(0.002)


def _service(tmp_path: Path, events: int = 0, **limits: int) -> Service:
    recorder = FakeRecorder([stored_event(seq) for seq in range(1, events + 1)])
    return make_service(tmp_path, recorder, **limits)


async def test_catch_up_then_live_events_in_seq_order(tmp_path: Path) -> None:
    """From ``from_seq`` the stored events come first, then each committed one after a
    wake, as ``event`` notifications naming the subscription; none twice."""
    service = _service(tmp_path, events=5)
    out = FakeOutbox()
    sub = service.subscriptions.subscribe({"from_seq": 3}, PEER, out)
    service.subscriptions.start_pump(sub)
    await _settle()
    assert [3, 4, 5] == out.seqs()
    service.recorder.events.append(stored_event(6))  # type: ignore[attr-defined]
    service.commits.last_seq = 6
    service.subscriptions.wake_all()
    await _settle()
    assert ([3, 4, 5, 6], {sub.sid}) == (
        out.seqs(), {m["params"]["subscription"] for m in out.sent})
    service.subscriptions.drop_all()
    await _settle()


async def test_the_filters_apply(tmp_path: Path) -> None:
    """``account`` keeps only that account's events."""
    recorder = FakeRecorder([stored_event(1, "acct-1"), stored_event(2, "acct-2"),
                             stored_event(3, "acct-1")])
    service = make_service(tmp_path, recorder)
    out = FakeOutbox()
    service.subscriptions.start_pump(service.subscriptions.subscribe(
        {"account": "acct-1"}, PEER, out))
    await _settle()
    assert [1, 3] == out.seqs()
    service.subscriptions.drop_all()
    await _settle()


def test_subscriptions_per_connection_are_limited(tmp_path: Path) -> None:
    """Past ``max_subscriptions_per_connection`` on one outbox: -32602 naming the limit;
    another outbox still subscribes."""
    service = _service(tmp_path, max_subscriptions_per_connection=2)
    one, other = FakeOutbox(), FakeOutbox()
    for _ in range(2):
        service.subscriptions.subscribe({}, PEER, one)
    with pytest.raises(RpcError, match=r"limits\.max_subscriptions_per_connection") as refused:
        service.subscriptions.subscribe({}, PEER, one)
    service.subscriptions.subscribe({}, PEER, other)
    assert (-32602, 2, 1) == (refused.value.code, service.subscriptions.count(one),
                              service.subscriptions.count(other))


def test_unknown_types_are_refused(tmp_path: Path) -> None:
    """A type that is no event type: -32602 naming it."""
    service = _service(tmp_path)
    with pytest.raises(RpcError, match="unknown event types"):
        service.subscriptions.subscribe({"types": ["nope"]}, PEER, FakeOutbox())


def test_only_the_own_subscriptions_can_be_ended(tmp_path: Path) -> None:
    """``unsubscribe`` of another connection's subscription is refused; of its own, it
    is dropped."""
    service = _service(tmp_path)
    mine, theirs = FakeOutbox(), FakeOutbox()
    sid = service.subscriptions.subscribe({}, PEER, theirs).sid
    with pytest.raises(ValidationError, match="no subscription"):
        service.subscriptions.unsubscribe({"subscription": sid}, mine)
    assert service.subscriptions.unsubscribe({"subscription": sid}, theirs)
    assert (0, 0) == (len(service.subscriptions), service.subscriptions.count(theirs))


async def test_close_all_tells_where_to_resume(tmp_path: Path) -> None:
    """``close_all`` sends each subscription of the outbox ``subscription_closed`` (even
    past the budget: forced) with the reason and the seq to resume from."""
    service = _service(tmp_path, events=2)
    out = FakeOutbox()
    sub = service.subscriptions.subscribe({}, PEER, out)
    service.subscriptions.start_pump(sub)
    await _settle()
    service.subscriptions.close_all(out, "budget passed")
    closed = out.sent[-1]
    assert ("subscription_closed", sub.sid, 3, True, True, 0) == (
        closed["method"], closed["params"]["subscription"], closed["params"]["next_seq"],
        "from_seq=3" in closed["params"]["reason"], out.forced[-1],
        len(service.subscriptions))


async def test_a_subscriber_too_far_behind_is_closed(tmp_path: Path) -> None:
    """While the client does not read, a pump whose subscription falls more than
    ``subscriber_max_lag`` events behind ends it (saying so) and closes the outbox."""
    service = _service(tmp_path, events=1, subscriber_max_lag=5)
    out = FakeOutbox()
    out.block()
    service.subscriptions.start_pump(service.subscriptions.subscribe({}, PEER, out))
    await _settle()
    assert [1] == out.seqs()
    service.commits.last_seq = 10
    service.subscriptions.wake_all()
    await _settle()
    closed = out.sent[-1]
    assert ("subscription_closed", True, 1, 0) == (
        closed["method"], "limits.subscriber_max_lag" in closed["params"]["reason"],
        out.closes, len(service.subscriptions))


async def test_damage_sends_what_reads_then_says_where(tmp_path: Path) -> None:
    """Damage at seq N: the events before N are sent, then ``subscription_closed`` with
    ``storage: corrupt``, ``seq`` N and ``next_seq`` N."""
    service = _service(tmp_path, events=5)
    service.recorder.damaged_at = 4  # type: ignore[attr-defined]
    out = FakeOutbox()
    service.subscriptions.start_pump(service.subscriptions.subscribe({}, PEER, out))
    await _settle()
    closed = out.sent[-1]["params"]
    assert ([1, 2, 3], "corrupt", 4, 4) == (out.seqs(), closed["storage"], closed["seq"],
                                            closed["next_seq"])
