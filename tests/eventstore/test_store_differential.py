"""Property: the two stores answer alike. The same groups of batches (duplicates, equal
decimals spelled apart, conflicts, batches contradicting themselves, ``expected_version``
right and wrong, voids) committed in the same order to a SQLite and a PostgreSQL log get
the same outcomes, request by request, and leave the same events with the same seqs and
hashes. Each example on a new file and a new schema."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import AppendOutcome, AppendRequest, NewEvent
from eventstore.store import EventStore
from schemas import parse_event
from tests.eventstore.test_recorder_properties import pool_event
from tests.eventstore.test_store_contract import PgLog, SqliteLog
from tests.support import wire_event

_choice = st.tuples(st.integers(0, 5), st.sampled_from([0, 0, 1, 1, 2]))
_expected = st.none() | st.tuples(st.integers(0, 2), st.integers(0, 3))
_void = st.tuples(st.just(-1), st.integers(0, 2))
_batch = st.tuples(st.lists(_choice | _void, max_size=4), _expected)
_groups = st.lists(st.lists(_batch, min_size=1, max_size=3), min_size=1, max_size=5)

Batch = tuple[list[tuple[int, int]], tuple[int, int] | None]


def _event(choice: tuple[int, int], n: int) -> NewEvent:
    if choice[0] == -1:  # a void of pool event ``choice[1]``, in its account
        key = choice[1]
        return NewEvent.from_model(parse_event(wire_event(
            "void", {"target_source": f"bot/{key % 2}", "target_id": f"e{key}",
                     "reason": "entered twice"},
            account=f"acct-{key % 3}", event_id=f"v{n}")))
    return pool_event(*choice)


def _requests(groups: list[list[Batch]]) -> list[list[AppendRequest]]:
    made: list[list[AppendRequest]] = []
    n = 0
    for group in groups:
        requests = []
        for choices, expected in group:
            events = []
            for choice in choices:
                events.append(_event(choice, n))
                n += 1
            account, version = (f"acct-{expected[0]}", expected[1]) if expected else (None,
                                                                                    None)
            requests.append(AppendRequest(events, account, version))
        made.append(requests)
    return made


def _answer(outcome: AppendOutcome) -> tuple[Any, ...]:
    error = outcome.error
    if error is None:
        return ("ok", outcome.last_seq, [(r.seq, r.duplicate) for r in outcome.results])
    return ("refused", outcome.last_seq, type(error).__name__, str(error))


async def _apply(store: EventStore, groups: list[list[AppendRequest]]
                 ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], bool]:
    try:
        answers = []
        for group in groups:
            answers += [_answer(o) for o in await store.append_groups(group)]
        stored = [(e.seq, e.source, e.event_id, e.hash, e.data)
                  for e in await store.read(limit=10_000)]
        return answers, stored, (await store.verify()).ok
    finally:
        await store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups=_groups)
def test_both_stores_answer_every_history_alike(groups: list[list[Batch]]) -> None:
    """Outcome by outcome (seqs, duplicates, the error and its message) and event by
    event (seq, source+id, hash, data), the SQLite and PostgreSQL logs agree, and both
    verify."""
    requests = _requests(groups)

    async def both() -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], bool]]:
        with tempfile.TemporaryDirectory() as directory:
            pg = PgLog()
            try:
                return [await _apply(await SqliteLog(Path(directory)).open(), requests),
                        await _apply(await pg.open(), requests)]
            finally:
                pg.drop()

    on_sqlite, on_pg = asyncio.run(both())
    assert on_sqlite == on_pg
    assert on_sqlite[2]
