"""Property: whatever batches arrive, in whatever groups, the log stays a gapless,
duplicate-free hash chain."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import (
    AppendOutcome,
    AppendRequest,
    IdempotencyConflictError,
    NewEvent,
    Recorder,
    ValidationError,
    canonical_data,
)
from eventstore.canonical import canonical_event
from eventstore.record import StoredEvent
from schemas import parse_event
from tests.support import fill

KEYS = 6
PRICES = ("1.5", "1.50", "2.5")
"""Spellings of a pool event's price: the first two are the same content, the third
conflicts with them."""


def pool_event(key: int, spelling: int) -> NewEvent:
    """Event ``key`` of a small pool (two sources), its price spelled ``PRICES[spelling]``."""
    return NewEvent.from_model(parse_event(fill(
        "buy", "1", PRICES[spelling], event_id=f"e{key}", source=f"bot/{key % 2}",
        account=f"acct-{key % 3}")))


def stored_canonical(event: StoredEvent) -> bytes:
    return canonical_event(
        account=event.account, data_json=canonical_data(event.data),
        datacontenttype=event.datacontenttype, event_id=event.event_id, source=event.source,
        specversion=event.specversion, time=event.time, event_type=event.event_type)


_choice = st.tuples(st.integers(0, KEYS - 1), st.sampled_from([0, 0, 1, 1, 2]))
_batch = st.lists(_choice, max_size=5)
_groups = st.lists(st.lists(_batch, min_size=1, max_size=4), min_size=1, max_size=6)


async def _apply(path: Path, groups: list[list[list[tuple[int, int]]]]) -> tuple[
        list[tuple[AppendRequest, AppendOutcome]], list[StoredEvent], bool, int]:
    recorder = await Recorder.open(path)
    try:
        requests = [[AppendRequest([pool_event(*choice) for choice in batch])
                     for batch in group] for group in groups]
        answers = await asyncio.gather(*(recorder.append_groups(group)
                                         for group in requests))
        pairs = [pair for group, outcomes in zip(requests, answers, strict=True)
                 for pair in zip(group, outcomes, strict=True)]
        stored = await recorder.read(limit=10_000)
        report = await recorder.verify()
        return pairs, stored, report.ok, report.checked
    finally:
        await recorder.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups=_groups)
def test_any_interleaving_of_batches_keeps_a_gapless_unique_chain(
        groups: list[list[list[tuple[int, int]]]]) -> None:
    """Batches drawn from a small pool (so duplicates, equal decimals spelled apart and
    conflicts happen), committed via ``append_groups`` in random group splits, leave each
    source+id stored exactly once, seq 1..N without gaps, a chain that verifies, and
    answers that agree with what is stored."""
    with tempfile.TemporaryDirectory() as directory:
        pairs, stored, ok, checked = asyncio.run(_apply(Path(directory) / "p.db", groups))

    assert list(range(1, len(stored) + 1)) == [e.seq for e in stored]
    keys = [(e.source, e.event_id) for e in stored]
    assert len(set(keys)) == len(keys)
    assert (True, len(stored)) == (ok, checked)

    by_seq = {e.seq: e for e in stored}
    first_results: list[int] = []
    for request, outcome in pairs:
        if outcome.error is not None:
            # a refused request: nothing of it stored unless stored by another request
            assert [] == outcome.results
            if isinstance(outcome.error, ValidationError):
                # the batch itself holds one source+id with two contents
                contents: dict[tuple[str, str], set[bytes]] = {}
                for event in request.events:
                    contents.setdefault((event.source, event.event_id), set()).add(
                        event.canonical)
                assert any(len(found) > 1 for found in contents.values())
                continue
            assert isinstance(outcome.error, IdempotencyConflictError)
            held = by_seq[outcome.error.seq]
            assert (outcome.error.source, outcome.error.event_id) == (held.source,
                                                                       held.event_id)
            continue
        assert len(request.events) == len(outcome.results)
        for event, result in zip(request.events, outcome.results, strict=True):
            held = by_seq[result.seq]
            assert (event.source, event.event_id) == (held.source, held.event_id)
            assert event.canonical == stored_canonical(held)
            if not result.duplicate:
                first_results.append(result.seq)
    # every stored event was stored fresh by exactly one accepted request
    assert sorted(by_seq) == sorted(first_results)
