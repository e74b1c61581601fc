"""``as_of_time``: the view folded from exactly the events whose event time <= T."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.errors import ValidationError
from eventstore.record import StoredEvent
from eventstore.recorder import Recorder
from projections import runner as runner_module
from projections import tables as t
from projections.fold import fold
from projections.query import ViewQuery, query_view
from projections.query_params import MAX_LIMIT
from projections.startup import open_views
from tests.fold_support import new_event, rows_of
from tests.projections.test_fold_properties import sequences
from tests.query_support import write_history

MOMENTS = ["2024-03-01T09:00:00Z", "2024-03-02T09:20:00.5Z", "2024-03-03T15:00:00+05:30",
           "2024-03-04T09:31:00Z", "2030-01-01T00:00:00Z", "2000-01-01T00:00:00Z"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding ``history()``, whose event times run against seq order."""
    path = tmp_path_factory.mktemp("as_of_time") / "t.db"
    write_history(path)
    return path


def run(db: Path, fn: Any) -> Any:
    async def go() -> Any:
        recorder = await Recorder.open(db, readonly=True)
        try:
            return await fn(recorder)
        finally:
            await recorder.close()

    return asyncio.run(go())


def expected_at(events: list[StoredEvent], moment: str) -> dict[str, list[dict[str, Any]]]:
    """Every view folded from the stored events whose time is at or before ``moment``
    (their own seqs kept), picked out here in Python."""
    bound = datetime.fromisoformat(moment)
    return rows_of(fold(e for e in events if datetime.fromisoformat(e.time) <= bound))


@pytest.mark.parametrize("moment", MOMENTS)
def test_as_of_time_folds_exactly_the_events_up_to_that_time(db: Path, moment: str) -> None:
    """Every view ``as_of_time`` T equals a fresh fold of the events whose event time is
    <= T, in seq order (late events with an earlier time included, earlier-seq events
    with a later time left out); ``as_of_seq`` is the log's last seq."""
    async def answer(recorder: Recorder) -> tuple[list[StoredEvent], dict[str, Any]]:
        events = await recorder.read(1, 100_000)
        views = {v: await query_view(recorder, ViewQuery(v, as_of_time=moment, limit=MAX_LIMIT))
                 for v in t.VIEWS}
        return events, views

    events, views = run(db, answer)
    expected = expected_at(events, moment)
    assert {v: expected[v] for v in t.VIEWS} == {v: views[v]["rows"] for v in t.VIEWS}
    assert {events[-1].seq} == {views[v]["as_of_seq"] for v in t.VIEWS}


def test_the_history_has_events_out_of_time_order(db: Path) -> None:
    """The history these tests use does have events whose time runs back along seq (else
    ``as_of_time`` would be ``as_of`` in disguise and the tests would prove less)."""
    events = run(db, lambda r: r.read(1, 100_000))
    times = [datetime.fromisoformat(e.time) for e in events]
    assert any(later < earlier for earlier, later in pairwise(times))


@pytest.mark.parametrize("view", list(t.VIEWS))
def test_as_of_time_with_account_and_filters(db: Path, view: str) -> None:
    """With ``account`` (only that account's events are read) and other filters,
    ``as_of_time`` gives the rows of the whole fold that pass them, paged as usual."""
    moment = "2024-03-03T09:30:00Z"
    events = run(db, lambda r: r.read(1, 100_000))
    expected = [r for r in expected_at(events, moment)[view] if r["account"] == "a2"]
    answer = run(db, lambda r: query_view(r, ViewQuery(
        view, account="a2", as_of_time=moment, order="desc", offset=1, limit=3)))
    assert (list(reversed(expected))[1:4], len(expected)) == (answer["rows"], answer["total"])


def test_as_of_with_account_gives_that_accounts_rows_of_the_whole_fold(db: Path) -> None:
    """``as_of`` a seq with ``account`` (only that account's rows are written into the
    scratch tables the query runs on) gives, for every view, the rows of a fresh fold of
    events 1..seq that belong to the account, at seqs along the whole history."""
    async def answers(recorder: Recorder) -> tuple[list[StoredEvent], dict[Any, Any]]:
        events = await recorder.read(1, 100_000)
        seqs = sorted({*range(1, len(events) + 1, max(1, len(events) // 6)), len(events)})
        found = {(view, seq): await query_view(recorder, ViewQuery(
                     view, account="a2", as_of=seq, limit=MAX_LIMIT))
                 for seq in seqs for view in t.VIEWS}
        return events, found

    events, found = run(db, answers)
    assert {view for view, _ in found} == set(t.VIEWS)
    for (view, seq), answer in found.items():
        expected = [r for r in rows_of(fold(events[:seq]))[view] if r["account"] == "a2"]
        assert (expected, len(expected)) == (answer["rows"], answer["total"]), (view, seq)
    assert any(answer["rows"] for answer in found.values())


def test_as_of_time_and_as_of_together_are_refused() -> None:
    """``as_of`` and ``as_of_time`` name two different pasts: giving both is refused."""
    with pytest.raises(ValidationError, match="as_of_time"):
        ViewQuery("positions", as_of=3, as_of_time="2024-03-01T00:00:00Z").check()


@pytest.mark.parametrize("value", ["yesterday", "2024-03-01", "1899-12-31T23:59:59Z",
                                   "2200-01-01T00:00:00Z", "2024-03-01T12:00:00"])
def test_as_of_time_must_be_an_rfc3339_time_in_range(value: str) -> None:
    """``as_of_time`` is an RFC 3339 time with an offset within the time bounds."""
    with pytest.raises(ValidationError, match="as_of_time"):
        ViewQuery("positions", as_of_time=value).check()


async def _as_of_time_with_snapshots(wires: list[dict[str, Any]], every: int,
                                     picks: list[int], shift_ms: int) -> None:
    with tempfile.TemporaryDirectory() as directory, mock.patch.object(
            runner_module, "SNAPSHOT_EVERY", every):
        path = Path(directory) / "t.db"
        recorder = await Recorder.open(path)
        try:
            await open_views(recorder)
            for wire in wires:
                await recorder.append([new_event(wire)])
            events = await recorder.read(1, 100_000)
            for pick in picks:
                base = datetime.fromisoformat(events[pick % len(events)].time)
                moment = (base + timedelta(milliseconds=shift_ms)).isoformat()
                expected = expected_at(events, moment)
                account = events[pick % len(events)].account
                for view in t.VIEWS:
                    answer = await query_view(recorder, ViewQuery(
                        view, as_of_time=moment, limit=MAX_LIMIT))
                    assert expected[view] == answer["rows"], (view, moment)
                    mine = await query_view(recorder, ViewQuery(
                        view, account=account, as_of_time=moment, limit=MAX_LIMIT))
                    assert [r for r in expected[view] if r["account"] == account] == mine[
                        "rows"], (view, moment, account)
        finally:
            await recorder.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequences(max_size=24), st.integers(1, 4), st.lists(st.integers(0, 100), min_size=1,
                                                             max_size=3),
       st.sampled_from([-1, 0, 1]))
def test_as_of_time_from_snapshots_equals_a_fold_of_the_events_up_to_then(
        wires: list[dict[str, Any]], every: int, picks: list[int], shift_ms: int) -> None:
    """With a snapshot every 1-4 events and times out of seq order (several offsets),
    every view ``as_of_time`` T (an event's time, or a millisecond either side) equals
    a fold of exactly the events whose time is <= T, and with ``account`` its rows of
    that account: the snapshot it may start from holds only events that are all in."""
    asyncio.run(_as_of_time_with_snapshots(wires, every, picks, shift_ms))
