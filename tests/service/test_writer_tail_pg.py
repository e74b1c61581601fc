"""A PostgreSQL writer alone on its log appends without reading the log's last row first
(``eventstore.postgres.tail``): its group goes in one flight on what its own last commit
left. The guess is checked by the server (the next seq, the source+id key): another
writer's append in between, or a re-sent event, makes the group go again from a read,
with the same outcomes and view rows as SQLite gives for the same groups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest

from daemon.writer.core import WriterCore
from daemon.writer.pgcore import PgWriterCore
from eventstore.errors import VersionConflictError
from eventstore.postgres import writes
from eventstore.postgres.tail import QUIET_GROUPS
from eventstore.record import AppendOutcome, AppendRequest, NewEvent
from eventstore.writes import ViewsRefusedError
from tests.eventstore.test_store_contract import PgLog
from tests.fold_support import boom_steps, new_event
from tests.projections.test_views_runner import sample
from tests.service.test_writer_core_pg import view_tables


@contextmanager
def counted_reads() -> Iterator[list[int]]:
    """How many groups read the log's last row before appending (``_read_state``)."""
    reads = [0]
    real = writes._read_state

    def spy(*args: object) -> object:
        reads[0] += 1
        return real(*args)  # type: ignore[arg-type]

    with mock.patch.object(writes, "_read_state", spy):
        yield reads


def _events(account: str, start: int) -> list[NewEvent]:
    return [new_event(w) for w in sample(account=account, start=start)]


def _seqs(outcome: AppendOutcome) -> list[tuple[int, bool]]:
    return [(r.seq, r.duplicate) for r in outcome.results]


def test_a_writer_alone_reads_the_log_only_until_it_is_quiet(pg: PgLog, tmp_path: Path
                                                            ) -> None:
    """One event per group: the first groups read the log, the rest go in one flight;
    the view rows are SQLite's for the same groups."""
    core, _ = PgWriterCore.open(pg.url)
    lite, _ = WriterCore.open(tmp_path / "x.db")
    events = _events("acct-1", 0) + _events("acct-2", 10)
    try:
        with counted_reads() as reads:
            for event in events:
                [outcome] = core.commit([AppendRequest([event])])
                [expected] = lite.commit([AppendRequest([event])])
                assert _seqs(expected) == _seqs(outcome)
        assert QUIET_GROUPS + 1 == reads[0]
    finally:
        core.close()
        lite.close()
    on_lite, on_pg = view_tables(pg.url, tmp_path / "x.db")
    assert on_lite == on_pg


def test_another_writers_append_makes_the_guess_go_again_from_a_read(
        pg: PgLog, tmp_path: Path) -> None:
    """Writer one is quiet and guessing; writer two appends; one's next group finds its
    guessed seq taken, is rolled back and made again on a read: gapless, and the view
    rows (one's views fold two's events first) are SQLite's."""
    one, _ = PgWriterCore.open(pg.url)
    two, _ = PgWriterCore.open(pg.url)
    lite, _ = WriterCore.open(tmp_path / "x.db")
    first, second = _events("acct-1", 0), _events("acct-2", 10)
    turns = [(one, [e]) for e in first[:4]] + [(two, second[:3])] + [
        (one, [e]) for e in first[4:]] + [(two, second[3:])]
    try:
        with counted_reads() as reads:
            for core, group in turns:
                [outcome] = core.commit([AppendRequest(group)])
                [expected] = lite.commit([AppendRequest(group)])
                assert outcome.error is None
                assert _seqs(expected) == _seqs(outcome)
        # one: 3 reads to become quiet, then a read after the guess failed (and again
        # until quiet); two: a read for each of its groups.
        assert reads[0] >= QUIET_GROUPS + 1 + 1 + 2
    finally:
        one.close()
        two.close()
        lite.close()
    on_lite, on_pg = view_tables(pg.url, tmp_path / "x.db")
    assert on_lite == on_pg


def test_a_resent_event_and_a_stale_version_are_answered_as_after_a_read(pg: PgLog) -> None:
    """On a quiet writer: an event sent again is answered ``duplicate`` with its seq (the
    guess fails on the source+id key and the read tells); an expected version that is
    no longer current is a ``VersionConflictError`` with the current version."""
    core, _ = PgWriterCore.open(pg.url)
    events = _events("acct-1", 0)
    try:
        for event in events:
            core.commit([AppendRequest([event])])
        assert core.tail.quiet >= QUIET_GROUPS
        [again] = core.commit([AppendRequest([events[2]])])
        assert [(3, True)] == _seqs(again)
        more = _events("acct-1", 20)
        for event in more[:QUIET_GROUPS + 1]:
            core.commit([AppendRequest([event])])
        assert core.tail.versions["acct-1"] == len(events) + QUIET_GROUPS + 1
        with counted_reads() as reads:
            stale, current = core.commit([
                AppendRequest(more[3:4], expected_account="acct-1", expected_version=1),
                AppendRequest(more[4:5], expected_account="acct-1",
                              expected_version=len(events) + QUIET_GROUPS + 1)])
        assert 0 == reads[0]
        assert isinstance(stale.error, VersionConflictError)
        assert "1" in str(stale.error)
        assert current.error is None
        assert [(len(events) + QUIET_GROUPS + 2, False)] == _seqs(current)
    finally:
        core.close()


def _quiet_again(core: PgWriterCore, account: str, start: int) -> None:
    """Groups on ``account`` until ``core`` guesses again (``QUIET_GROUPS`` reads that
    found the log where it left it)."""
    for event in _events(account, start)[:QUIET_GROUPS + 1]:
        [outcome] = core.commit([AppendRequest([event])])
        assert outcome.error is None
    assert core.tail.quiet >= QUIET_GROUPS


@contextmanager
def _two_writers(pg: PgLog) -> Iterator[tuple[PgWriterCore, PgWriterCore, list[NewEvent]]]:
    """Writers one and two on one log, one having committed acct-1's first four events
    alone (so it knows acct-1's version and guesses now); acct-1's events to go on with."""
    one, _ = PgWriterCore.open(pg.url)
    two, _ = PgWriterCore.open(pg.url)
    first = _events("acct-1", 0)
    try:
        for event in first[:4]:
            one.commit([AppendRequest([event])])
        yield one, two, first
    finally:
        one.close()
        two.close()


def test_a_version_another_writer_moved_is_not_taken_from_the_tail(pg: PgLog) -> None:
    """Writer one knows acct-1's version; writer two appends to acct-1; one appends to
    acct-2 until it guesses again. A request on acct-1 with the version one knew is a
    conflict (two's event counts), and one with the current version is stored: the
    versions one kept before another writer's append are not used after it."""
    with _two_writers(pg) as (one, two, first):
        known = one.tail.versions["acct-1"]
        [moved] = two.commit([AppendRequest(first[4:5])])
        assert moved.error is None
        _quiet_again(one, "acct-2", 10)
        [stale] = one.commit([AppendRequest(first[5:6], expected_account="acct-1",
                                            expected_version=known)])
        assert isinstance(stale.error, VersionConflictError)
        assert stale.error.version == known + 1
        [current] = one.commit([AppendRequest(first[5:6], expected_account="acct-1",
                                              expected_version=known + 1)])
        assert current.error is None


def test_a_guessed_group_that_stores_nothing_is_decided_on_a_read(pg: PgLog) -> None:
    """Writer one is quiet and guessing, with acct-1's version; writer two appends to
    acct-1. A group of one request expecting the version two left stores nothing if
    refused, so no key of the server checks the guess: it is decided on a read, and
    stored."""
    with _two_writers(pg) as (one, two, first):
        assert one.tail.quiet >= QUIET_GROUPS
        known = one.tail.versions["acct-1"]
        two.commit([AppendRequest(first[4:5])])
        [outcome] = one.commit([AppendRequest(first[5:6], expected_account="acct-1",
                                              expected_version=known + 1)])
        assert outcome.error is None
        assert [(6, False)] == _seqs(outcome)


def test_a_session_whose_prepared_statements_are_gone_is_made_again(pg: PgLog) -> None:
    """psycopg prepares a statement on its sixth use; in a pipeline the server aborts
    (a one-flight group whose guess failed) it remembers one as prepared although the
    server skipped it, and every later group on that session failed ("prepared
    statement ... does not exist", answered -32001 for good). Here the server's
    prepared statements are dropped behind psycopg's back, which leaves the same state:
    the next group runs on a new session and is stored."""
    core, _ = PgWriterCore.open(pg.url)
    events = _events("acct-1", 0) + _events("acct-2", 10)
    try:
        for event in events[:8]:
            core.commit([AppendRequest([event])])
        assert core.conn is not None
        before = core.conn.info.backend_pid
        core.conn.pgconn.exec_(b"DEALLOCATE ALL")  # not through psycopg's statement cache
        [outcome] = core.commit([AppendRequest(events[8:9])])
        assert outcome.error is None
        assert [(9, False)] == _seqs(outcome)
        assert core.conn.info.backend_pid != before
        [outcome] = core.commit([AppendRequest(events[9:10])])
        assert [(10, False)] == _seqs(outcome)
    finally:
        core.close()


def test_a_fold_failure_in_a_guessed_group_is_decided_on_a_read(
        pg: PgLog, monkeypatch: pytest.MonkeyPatch) -> None:
    """A guessed group folds on what this writer knew, which may miss another writer's
    events: a fold failure there sends the group to the read path, which refuses the
    request only if its fold fails again (here it does: a fold step that raises on
    symbol BOOM), and the writer goes on."""
    boom_steps(monkeypatch)
    core, _ = PgWriterCore.open(pg.url)
    events = _events("acct-1", 0)
    try:
        for event in events[:QUIET_GROUPS + 1]:
            core.commit([AppendRequest([event])])
        bad = new_event({"id": "boom-1", "source": "test/fold", "type": "fill",
                         "account": "acct-1", "time": "2024-03-01T12:30:00Z",
                         "data": {"symbol": "BOOM", "side": "buy", "quantity": "1",
                                  "price": "10"}})
        with counted_reads() as reads:
            [refused] = core.commit([AppendRequest([bad])])
        assert 1 == reads[0]
        assert isinstance(refused.error, ViewsRefusedError)
        [after] = core.commit([AppendRequest([events[QUIET_GROUPS + 1]])])
        assert [(QUIET_GROUPS + 2, False)] == _seqs(after)
    finally:
        core.close()
