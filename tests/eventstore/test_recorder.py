"""The SQLite recorder on real files: atomic batches, idempotency, optimistic concurrency,
gapless seq under concurrent writers, append-only triggers, verify, a full disk and
files that are not ours."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eventstore import (
    AppendRequest,
    DatabaseFileError,
    IdempotencyConflictError,
    NewEvent,
    Recorder,
    StorageUnavailableError,
    ValidationError,
    VersionConflictError,
    chain_hash,
)
from eventstore.ddl import APPLICATION_ID, EVENT_TRIGGERS
from eventstore.errors import StorageDamagedError
from eventstore.recorder import stored_canonical
from schemas import parse_event
from tests.support import fill, wire_event

REPO = Path(__file__).resolve().parents[2]


def new(raw: dict[str, Any]) -> NewEvent:
    """A ``NewEvent`` from a wire event dict."""
    return NewEvent.from_model(parse_event(raw))


def fills(prefix: str, count: int, **extra: Any) -> list[NewEvent]:
    """``count`` distinct fills with ids ``prefix-0`` ..."""
    return [new(fill("buy", "1", f"1.{i + 1}", event_id=f"{prefix}-{i}", **extra))
            for i in range(count)]


@pytest.fixture
async def recorder(tmp_path: Path) -> AsyncIterator[Recorder]:
    """A writable recorder on a fresh file, closed at the end."""
    rec = await Recorder.open(tmp_path / "log.db")
    try:
        yield rec
    finally:
        await rec.close()


@contextmanager
def raw_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection on the file (autocommit), as an intruder would use."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


def snapshot(path: Path) -> list[tuple[Any, ...]]:
    with raw_sqlite(path) as conn:
        return list(conn.execute("SELECT * FROM events ORDER BY seq"))


# ------------------------------------------------------------------ append, idempotency


async def test_append_gives_gapless_seq_and_reads_back(recorder: Recorder) -> None:
    """A batch gets seq 1..N in order; ``read`` returns the events with those seqs."""
    outcome = await recorder.append(fills("a", 3))
    assert [1, 2, 3] == [r.seq for r in outcome.results]
    assert [False] * 3 == [r.duplicate for r in outcome.results]
    assert 3 == outcome.last_seq
    stored = await recorder.read()
    assert [("a-0", 1), ("a-1", 2), ("a-2", 3)] == [(e.event_id, e.seq) for e in stored]
    assert 3 == await recorder.last_seq()


async def test_batch_with_one_conflicting_event_stores_none_of_it(recorder: Recorder) -> None:
    """An idempotency conflict anywhere in a batch stores none of the batch and names the
    stored seq of the conflicting event."""
    await recorder.append([new(fill("buy", "1", "1.5", event_id="x"))])
    before = await recorder.read()
    batch = [*fills("b", 2), new(fill("buy", "1", "9.9", event_id="x")), *fills("c", 1)]
    with pytest.raises(IdempotencyConflictError) as caught:
        await recorder.append(batch)
    assert (1, "x", "test/bot") == (caught.value.seq, caught.value.event_id,
                                     caught.value.source)
    assert before == await recorder.read()
    assert 1 == await recorder.last_seq()
    outcome = await recorder.append(fills("b", 2))
    assert [(2, False), (3, False)] == [(r.seq, r.duplicate) for r in outcome.results]


async def test_duplicate_returns_original_seq_and_is_not_stored(recorder: Recorder) -> None:
    """Re-sending stored events (same source+id and content) answers ``duplicate`` with
    the original seq and stores only the new ones."""
    first = fills("a", 2)
    await recorder.append(first)
    outcome = await recorder.append([first[1], *fills("n", 1), first[0]])
    assert [(2, True), (3, False), (1, True)] == [
        (r.seq, r.duplicate) for r in outcome.results]
    assert 3 == outcome.last_seq
    assert [1, 2, 3] == [e.seq for e in await recorder.read()]


async def test_duplicate_inside_one_batch_is_stored_once(recorder: Recorder) -> None:
    """The same event twice in one batch is stored once; the second gets its seq."""
    event = new(fill("buy", "1", "1.5", event_id="twice"))
    outcome = await recorder.append([event, event])
    assert [(1, False), (1, True)] == [(r.seq, r.duplicate) for r in outcome.results]
    assert 1 == await recorder.last_seq()


async def test_batch_contradicting_itself_is_refused(recorder: Recorder) -> None:
    """One source+id twice in a batch with different content is a bad batch
    (ValidationError naming both events), not a conflict with a stored seq: nothing of
    the batch is stored, and the seq it would have taken goes to the next event."""
    batch = [*fills("a", 1), new(fill("buy", "1", "1.5", event_id="twin")),
             new(fill("buy", "1", "2.5", event_id="twin"))]
    with pytest.raises(ValidationError) as caught:
        await recorder.append(batch)
    assert [{"index": 2, "path": "id", "message": caught.value.problems[0]["message"]}] == (
        caught.value.problems)
    assert "event 1" in caught.value.problems[0]["message"]
    assert 0 == await recorder.last_seq()


async def test_equal_decimals_in_other_spellings_are_duplicates(recorder: Recorder) -> None:
    """"1.50" and "1.5" (and an exact JSON number) are the same content: a duplicate."""
    await recorder.append([new(fill("buy", "2.0", "1.50", event_id="p"))])
    outcome = await recorder.append([new(fill("buy", "2", "1.5", event_id="p"))])
    assert [(1, True)] == [(r.seq, r.duplicate) for r in outcome.results]
    exact = fill("buy", "0", "0", event_id="p")
    exact["data"].update(quantity=Decimal("2.00"), price=Decimal("1.500"))
    again = await recorder.append([new(exact)])
    assert [(1, True)] == [(r.seq, r.duplicate) for r in again.results]
    assert 1 == await recorder.last_seq()


async def test_same_id_from_another_source_is_a_new_event(recorder: Recorder) -> None:
    """The idempotency key is source+id: the same id from another source is stored."""
    await recorder.append([new(fill("buy", "1", "1", event_id="same", source="bot/a"))])
    outcome = await recorder.append(
        [new(fill("buy", "1", "2", event_id="same", source="bot/b"))])
    assert [(2, False)] == [(r.seq, r.duplicate) for r in outcome.results]


async def test_expected_version_conflict_stores_nothing(recorder: Recorder) -> None:
    """``expected_version`` must equal the account's event count; otherwise nothing is
    stored and ``VersionConflictError.version`` is the current count. Duplicates do
    not count, other accounts are separate."""
    await recorder.append(fills("a", 2))
    await recorder.append(fills("a", 2))  # duplicates: still 2 events in acct-1
    with pytest.raises(VersionConflictError) as caught:
        await recorder.append(fills("b", 1), expected_version=("acct-1", 1))
    assert (2, 1, "acct-1") == (caught.value.version, caught.value.expected,
                                caught.value.account)
    assert 2 == await recorder.last_seq()
    ok = await recorder.append(fills("b", 1), expected_version=("acct-1", 2))
    assert 3 == ok.last_seq
    other = await recorder.append(fills("c", 1, account="acct-2"),
                                  expected_version=("acct-2", 0))
    assert 4 == other.last_seq
    with pytest.raises(VersionConflictError) as again:
        await recorder.append(fills("d", 1), expected_version=("acct-1", 2))
    assert 3 == again.value.version


async def test_group_conflict_fails_only_its_own_request(recorder: Recorder) -> None:
    """In ``append_groups`` a request with an idempotency or version conflict gets its
    error and stores nothing; the other requests of the group are stored, gapless."""
    await recorder.append([new(fill("buy", "1", "1.5", event_id="x"))])
    outcomes = await recorder.append_groups([
        AppendRequest(fills("g1", 2)),
        AppendRequest([*fills("g2", 1), new(fill("sell", "1", "1.5", event_id="x"))]),
        AppendRequest(fills("g3", 1), expected_account="acct-1", expected_version=0),
        AppendRequest(fills("g4", 1), expected_account="acct-1", expected_version=3),
        AppendRequest(fills("g1", 1)),
    ])
    assert [None, IdempotencyConflictError, VersionConflictError, None, None] == [
        type(o.error) if o.error else None for o in outcomes]
    assert [(2, False), (3, False)] == [(r.seq, r.duplicate) for r in outcomes[0].results]
    assert [(4, False)] == [(r.seq, r.duplicate) for r in outcomes[3].results]
    assert [(2, True)] == [(r.seq, r.duplicate) for r in outcomes[4].results]
    assert [] == outcomes[1].results
    assert 3 == outcomes[2].error.version  # type: ignore[union-attr]
    assert ["x", "g1-0", "g1-1", "g4-0"] == [e.event_id for e in await recorder.read()]
    assert {4} == {o.last_seq for o in outcomes}


# ------------------------------------------------------------------ concurrency


async def test_concurrent_tasks_on_one_recorder_get_gapless_seq(recorder: Recorder) -> None:
    """Many asyncio tasks appending at once on one recorder: every event gets a distinct
    seq, the seqs are 1..N without gaps, and the chain verifies."""
    async def task(n: int) -> list[int]:
        outcome = await recorder.append(fills(f"t{n}", 3))
        return [r.seq for r in outcome.results]

    seqs = await asyncio.gather(*(task(n) for n in range(40)))
    for batch in seqs:
        assert batch == list(range(batch[0], batch[0] + 3))
    assert list(range(1, 121)) == sorted(s for batch in seqs for s in batch)
    assert list(range(1, 121)) == [e.seq for e in await recorder.read(limit=1000)]
    assert (await recorder.verify()).ok


WRITER = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    from eventstore import NewEvent, Recorder
    from schemas import parse_event

    db, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    async def main() -> None:
        recorder = await Recorder.open(db)
        try:
            (db.parent / f"ready-{name}").touch()
            while len(list(db.parent.glob("ready-*"))) < 2:
                time.sleep(0.005)
            for i in range(count):
                raw = {"id": f"{name}-{i}", "source": f"bot/{name}", "type": "fill",
                       "time": "2024-03-01T12:00:00Z", "account": name,
                       "data": {"symbol": "EURUSD", "side": "buy", "quantity": "1",
                                "price": "1.5"}}
                await recorder.append([NewEvent.from_model(parse_event(raw))],
                                      expected_version=(name, i))
        finally:
            await recorder.close()

    asyncio.run(main())
""")


def test_two_processes_append_to_one_file_without_gaps(tmp_path: Path) -> None:
    """Two recorders in two OS processes append to the same file at the same time: both
    succeed (BEGIN IMMEDIATE and the busy timeout serialise them), every event is stored
    once, seq is 1..N without gaps, and the chain verifies."""
    db = tmp_path / "shared.db"
    count = 150
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), name, str(count)],
                              env=env, stderr=subprocess.PIPE)
             for name in ("alpha", "beta")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert 0 == proc.returncode, err.decode()

    async def check() -> None:
        recorder = await Recorder.open(db, readonly=True)
        try:
            stored = await recorder.read(limit=10 * count)
            report = await recorder.verify()
        finally:
            await recorder.close()
        assert list(range(1, 2 * count + 1)) == [e.seq for e in stored]
        for name in ("alpha", "beta"):
            ids = [e.event_id for e in stored if e.source == f"bot/{name}"]
            assert [f"{name}-{i}" for i in range(count)] == ids
        assert (True, 2 * count) == (report.ok, report.checked)

    asyncio.run(check())


def test_recorders_in_threads_open_a_new_file_together(tmp_path: Path) -> None:
    """Several recorders (each in its own thread and event loop) creating the same new
    file at once all open it and append: the file is prepared once, seq has no gaps."""
    import threading

    db = tmp_path / "new.db"
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        async def main() -> None:
            barrier.wait()
            rec = await Recorder.open(db)
            try:
                for i in range(20):
                    await rec.append(fills(f"th{n}-{i}", 2))
            finally:
                await rec.close()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [] == errors
    rows = snapshot(db)
    assert list(range(1, 161)) == [row[0] for row in rows]


# ------------------------------------------------------------------ triggers


TAMPERING = {
    "UPDATE": "UPDATE events SET data = '{}' WHERE seq = 2",
    "UPDATE of seq": "UPDATE events SET seq = 9 WHERE seq = 3",
    "DELETE": "DELETE FROM events WHERE seq = 3",
    "DELETE all": "DELETE FROM events",
    "INSERT OR REPLACE on seq": (
        "INSERT OR REPLACE INTO events SELECT seq, source, id, type, time, account, "
        "specversion, datacontenttype, '{}', recorded_at, schema_version, metadata, hash "
        "FROM events WHERE seq = 1"),
    "REPLACE on source+id with the next seq": (
        "REPLACE INTO events SELECT 4, source, id, type, time, account, specversion, "
        "datacontenttype, '{}', recorded_at, schema_version, metadata, hash "
        "FROM events WHERE seq = 1"),
    "upsert on seq": (
        "INSERT INTO events SELECT * FROM events WHERE seq = 2 "
        "ON CONFLICT (seq) DO UPDATE SET data = '{}'"),
    "upsert on source+id": (
        "INSERT INTO events SELECT 4, source, id, type, time, account, specversion, "
        "datacontenttype, data, recorded_at, schema_version, metadata, hash "
        "FROM events WHERE seq = 2 ON CONFLICT (source, id) DO UPDATE SET data = '{}'"),
    "INSERT with a wrong seq": (
        "INSERT INTO events SELECT 7, source, 'new-id', type, time, account, specversion, "
        "datacontenttype, data, recorded_at, schema_version, metadata, hash "
        "FROM events WHERE seq = 1"),
    "INSERT without a seq": (
        "INSERT INTO events (source, id, type, time, account, specversion, data, "
        "recorded_at, schema_version, metadata, hash) SELECT source, 'new-id', type, time, "
        "account, specversion, data, recorded_at, schema_version, metadata, hash "
        "FROM events WHERE seq = 1"),
    "INSERT of a past seq": (
        "INSERT OR IGNORE INTO events SELECT 2, source, 'new-id', type, time, account, "
        "specversion, datacontenttype, data, recorded_at, schema_version, metadata, hash "
        "FROM events WHERE seq = 1"),
}


@pytest.mark.parametrize("name", list(TAMPERING))
async def test_triggers_refuse_changes_through_plain_sqlite(recorder: Recorder,
                                                            name: str) -> None:
    """UPDATE, DELETE, INSERT OR REPLACE, REPLACE, upserts and inserts with a wrong seq,
    run through a plain sqlite3 connection on the file, are refused by the triggers and
    change nothing."""
    await recorder.append(fills("a", 3))
    before = snapshot(recorder.path)
    with raw_sqlite(recorder.path) as conn, pytest.raises(sqlite3.IntegrityError,
                                                          match="append-only"):
        conn.execute(TAMPERING[name])
    assert before == snapshot(recorder.path)
    assert (await recorder.verify()).ok
    outcome = await recorder.append(fills("b", 1))
    assert 4 == outcome.last_seq


# ------------------------------------------------------------------ verify


def tamper(path: Path, *statements: str) -> None:
    """Drop the triggers, then run ``statements`` in one transaction, as an intruder."""
    with raw_sqlite(path) as conn:
        conn.execute("BEGIN")
        for trigger in EVENT_TRIGGERS:
            conn.execute(f"DROP TRIGGER {trigger}")
        for statement in statements:
            conn.execute(statement)
        conn.execute("COMMIT")


ALTERATIONS = {
    "content altered": (["UPDATE events SET data = replace(data, '\"1.3\"', '\"9.3\"') "
                         "WHERE seq = 3"], 3),
    "account altered": (["UPDATE events SET account = 'other' WHERE seq = 2"], 2),
    "event deleted": (["DELETE FROM events WHERE seq = 2"], 2),
    "first event deleted": (["DELETE FROM events WHERE seq = 1"], 1),
    "two events swapped": (["UPDATE events SET seq = -1 WHERE seq = 2",
                            "UPDATE events SET seq = 2 WHERE seq = 4",
                            "UPDATE events SET seq = 4 WHERE seq = -1"], 2),
    "stored hash altered": (
        ["UPDATE events SET hash = '00' || substr(hash, 3) WHERE seq = 3"], 3),
}


@pytest.mark.parametrize("name", list(ALTERATIONS))
async def test_verify_finds_the_first_tampered_seq(recorder: Recorder, name: str) -> None:
    """With the triggers dropped first, an altered, deleted or swapped event is caught:
    ``ok`` is False and ``bad_seq`` is the first seq that no longer chains."""
    await recorder.append(fills("a", 5))
    statements, bad_seq = ALTERATIONS[name]
    tamper(recorder.path, *statements)
    report = await recorder.verify()
    assert (False, bad_seq) == (report.ok, report.bad_seq)
    assert bad_seq - 1 == report.checked
    assert report.reason


async def test_verify_catches_a_rehashed_event_at_the_next_link(recorder: Recorder) -> None:
    """An intruder who alters an event and recomputes its own hash breaks the next link:
    verify names the following seq."""
    await recorder.append(fills("a", 4))
    with raw_sqlite(recorder.path) as conn:
        conn.execute("BEGIN")
        for trigger in EVENT_TRIGGERS:
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("UPDATE events SET data = replace(data, '\"1.2\"', '\"7\"') "
                     "WHERE seq = 2")
        row = conn.execute("SELECT * FROM events WHERE seq = 2").fetchone()
        previous = conn.execute("SELECT hash FROM events WHERE seq = 1").fetchone()[0]
        conn.execute("UPDATE events SET hash = ? WHERE seq = 2",
                     (chain_hash(previous, stored_canonical(row)),))
        conn.execute("COMMIT")
    report = await recorder.verify()
    assert (False, 3) == (report.ok, report.bad_seq)


async def test_verify_reports_removed_triggers_on_an_intact_chain(recorder: Recorder) -> None:
    """Dropping a trigger leaves the chain intact but verify still fails, naming it."""
    await recorder.append(fills("a", 3))
    with raw_sqlite(recorder.path) as conn:
        conn.execute("DROP TRIGGER events_no_delete")
    report = await recorder.verify()
    assert (False, None, 3) == (report.ok, report.bad_seq, report.checked)
    assert "events_no_delete" in report.reason


async def test_verify_reports_a_trigger_replaced_by_a_harmless_one(recorder: Recorder) -> None:
    """A trigger dropped and re-created under its name with a body that allows the change
    is reported as well."""
    await recorder.append(fills("a", 2))
    with raw_sqlite(recorder.path) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
                     "BEGIN SELECT 1; END")
    report = await recorder.verify()
    assert (False, None) == (report.ok, report.bad_seq)
    assert "events_no_update" in report.reason


async def test_verify_of_a_good_log(recorder: Recorder) -> None:
    """An untouched log verifies: every event checked, ``last_hash`` is the last event's."""
    empty = await recorder.verify()
    assert (True, 0) == (empty.ok, empty.checked)
    await recorder.append(fills("a", 4))
    report = await recorder.verify()
    last = (await recorder.read())[-1]
    assert (True, 4, last.hash, None, "") == (report.ok, report.checked, report.last_hash,
                                              report.bad_seq, report.reason)


async def test_read_names_the_seq_of_a_row_it_cannot_read_or_decode(recorder: Recorder
                                                                    ) -> None:
    """A payload whose bytes are not UTF-8 (seq 4) or not JSON (seq 7): ``read`` raises
    ``StorageDamagedError`` naming that seq, with and without filters, and reads that
    stay clear of it still work."""
    await recorder.append(fills("a", 9))
    tamper(recorder.path,
           "UPDATE events SET data = CAST(x'7b22ff' AS TEXT) WHERE seq = 4",
           "UPDATE events SET data = '{\"side\": ' WHERE seq = 7")
    failures = []
    for start, account in ((1, None), (1, "acct-1"), (5, None)):
        with pytest.raises(StorageDamagedError) as caught:
            await recorder.read(from_seq=start, account=account)
        failures.append(caught.value.seq)
    assert [4, 4, 7] == failures
    assert "storage corrupt at seq 4" in str(
        await _damage_of(recorder.read_page(1, 100)))
    assert [5, 6] == [e.seq for e in await recorder.read(from_seq=5, limit=2)]
    assert [8, 9] == [e.seq for e in await recorder.read(from_seq=8)]


async def _damage_of(reading: Any) -> StorageDamagedError:
    try:
        await reading
    except StorageDamagedError as exc:
        return exc
    raise AssertionError("no StorageDamagedError")


async def test_verify_reports_an_unreadable_row_as_its_seq(recorder: Recorder) -> None:
    """A row whose text is not UTF-8 makes ``verify`` report that seq (never raise),
    with every event before it checked."""
    await recorder.append(fills("a", 6))
    tamper(recorder.path, "UPDATE events SET source = CAST(x'ff' AS TEXT) WHERE seq = 5")
    report = await recorder.verify()
    assert (False, 5, 4) == (report.ok, report.bad_seq, report.checked)
    assert report.reason.startswith("the row cannot be read")


async def test_verify_tail_checks_only_the_last_events(recorder: Recorder) -> None:
    """``verify_tail(3)`` on 10 events: an alteration at seq 5 is outside it (ok, 3
    checked); one at seq 9 is named."""
    await recorder.append(fills("a", 10))
    tamper(recorder.path, "UPDATE events SET data = replace(data, '1.5', '9.5') WHERE seq = 5")
    outside = await recorder.verify_tail(3)
    with raw_sqlite(recorder.path) as conn:
        conn.execute("UPDATE events SET data = replace(data, '1.9', '9.9') WHERE seq = 9")
    inside = await recorder.verify_tail(3)
    assert ((True, 3), (False, 9, 1)) == ((outside.ok, outside.checked),
                                          (inside.ok, inside.bad_seq, inside.checked))


@pytest.mark.parametrize("damage", ["text", "page"])
async def test_append_naming_a_damaged_event_fails_alone(tmp_path: Path, damage: str) -> None:
    """A request re-using the source+id of an event whose stored row cannot be read (its
    text not UTF-8, or its page's header overwritten in the file) gets
    ``StorageDamagedError`` naming that seq; the other requests of its group commit."""
    path = tmp_path / "log.db"
    rec = await Recorder.open(path)
    try:
        await rec.append([new(wire_event("journal", {"text": f"note-{i:03d}" + "x" * 300},
                                         event_id=f"j{i}")) for i in range(40)])
    finally:
        await rec.close()
    raw = bytearray(path.read_bytes())
    at = raw.find(b'{"text":"note-020')
    if damage == "text":
        raw[at + 9:at + 12] = b"\xff\xfe\xff"
    else:
        raw[at // 4096 * 4096:at // 4096 * 4096 + 12] = b"\xff" * 12
    path.write_bytes(bytes(raw))
    rec = await Recorder.open(path)
    try:
        again = new(wire_event("journal", {"text": "note-020" + "x" * 300}, event_id="j20"))
        outcomes = await rec.append_groups([
            AppendRequest([again]), AppendRequest(fills("fresh", 2))])
    finally:
        await rec.close()
    error = outcomes[0].error
    assert isinstance(error, StorageDamagedError)
    assert 21 == error.seq  # from the source+id index, even when the row is unreadable
    assert ([], [41, 42]) == (outcomes[0].results, [r.seq for r in outcomes[1].results])


async def test_conflict_names_the_stored_events_account(recorder: Recorder) -> None:
    """The -32002 conflict carries the account of the stored event (for the daemon's
    access check), not the account of the event that collided with it."""
    await recorder.append([new(fill("buy", "1", "1", event_id="x", account="acct-a"))])
    with pytest.raises(IdempotencyConflictError) as caught:
        await recorder.append([new(fill("buy", "1", "1", event_id="x", account="acct-b"))])
    assert ("acct-a", 1) == (caught.value.account, caught.value.seq)


async def test_new_file_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    """A database the recorder creates, and SQLite's -wal and -shm beside it, are 0600
    even under a permissive umask."""
    old = os.umask(0o002)
    try:
        rec = await Recorder.open(tmp_path / "new.db")
        try:
            await rec.append(fills("a", 1))
            modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
        finally:
            await rec.close()
    finally:
        os.umask(old)
    assert {"new.db": 0o600, "new.db-wal": 0o600, "new.db-shm": 0o600} == modes


# ------------------------------------------------------------------ storage faults


async def _set_max_pages(recorder: Recorder, pages: int | None) -> int:
    """Set ``PRAGMA max_page_count`` on the recorder's writer connection (the pragma is
    per connection); ``None`` sets it to the current page count. Returns the value set."""
    def run(conn: sqlite3.Connection) -> int:
        target = pages
        if target is None:
            target = int(conn.execute("PRAGMA page_count").fetchone()[0])
        return int(conn.execute(f"PRAGMA max_page_count = {target}").fetchone()[0])

    return await recorder.on_appender(run)


async def test_full_database_refuses_the_batch_and_recovers(recorder: Recorder) -> None:
    """A full database answers StorageUnavailableError ("storage unavailable"), stores
    nothing of the batch, keeps the log verifiable, and takes appends once space returns."""
    await recorder.append(fills("a", 3))
    before = await recorder.read()
    await _set_max_pages(recorder, None)
    big = [new(wire_event("journal", {"text": "x" * 5000}, event_id=f"j-{i}"))
           for i in range(20)]
    with pytest.raises(StorageUnavailableError, match="storage unavailable"):
        await recorder.append(big)
    assert before == await recorder.read()
    assert 3 == await recorder.last_seq()
    assert (await recorder.verify()).ok
    await _set_max_pages(recorder, 1_000_000)
    outcome = await recorder.append(big)
    assert list(range(4, 24)) == [r.seq for r in outcome.results]
    assert [False] * 20 == [r.duplicate for r in outcome.results]
    report = await recorder.verify()
    assert (True, 23) == (report.ok, report.checked)


async def test_readonly_recorder_refuses_appends(tmp_path: Path) -> None:
    """A recorder opened read-only answers appends with StorageUnavailableError."""
    path = tmp_path / "log.db"
    writer = await Recorder.open(path)
    await writer.close()
    reader = await Recorder.open(path, readonly=True)
    try:
        with pytest.raises(StorageUnavailableError):
            await reader.append(fills("a", 1))
        assert 0 == await reader.last_seq()
    finally:
        await reader.close()


async def test_readonly_open_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    """Opening a missing path read-only raises DatabaseFileError and creates no file."""
    with pytest.raises(DatabaseFileError):
        await Recorder.open(tmp_path / "missing.db", readonly=True)
    assert [] == list(tmp_path.iterdir())


async def test_close_leaves_no_write_ahead_log(tmp_path: Path) -> None:
    """After ``close`` the write-ahead log is checkpointed into the file and removed."""
    rec = await Recorder.open(tmp_path / "log.db")
    await rec.append(fills("a", 2))
    await rec.close()
    await rec.close()  # idempotent
    assert ["log.db"] == sorted(p.name for p in tmp_path.iterdir())


# ------------------------------------------------------------------ foreign files


def _foreign_app(path: Path) -> None:
    with raw_sqlite(path) as conn:
        conn.execute("PRAGMA application_id = 1234")


def _foreign_tables(path: Path) -> None:
    with raw_sqlite(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('keep me')")


def _foreign_tables_with_our_name(path: Path) -> None:
    with raw_sqlite(path) as conn:
        conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, what TEXT)")


def _newer_tradelog(path: Path) -> None:
    with raw_sqlite(path) as conn:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 2")
        conn.execute("CREATE TABLE events_v2 (seq INTEGER PRIMARY KEY)")


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"date,symbol,price\n2024-03-01,EURUSD,1.0850\n" * 200)


FOREIGN = {
    "another application_id": _foreign_app,
    "tables without ours": _foreign_tables,
    "a table named like ours but no application_id": _foreign_tables_with_our_name,
    "a newer user_version": _newer_tradelog,
    "not a SQLite file": _not_sqlite,
}


@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize("name", list(FOREIGN))
async def test_foreign_or_newer_file_is_refused_untouched(tmp_path: Path, name: str,
                                                          readonly: bool) -> None:
    """A foreign SQLite file, a newer tradelog's file or a non-SQLite file is refused with
    DatabaseFileError, and neither the file (bytes, mtime) nor its folder is changed."""
    path = tmp_path / "other.db"
    FOREIGN[name](path)
    content, mtime = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.raises(DatabaseFileError):
        await Recorder.open(path, readonly=readonly)
    assert content == path.read_bytes()
    assert mtime == path.stat().st_mtime_ns
    assert ["other.db"] == [p.name for p in tmp_path.iterdir()]


async def test_newer_file_written_by_tradelog_is_refused_untouched(tmp_path: Path) -> None:
    """A real tradelog file whose ``user_version`` was raised by a newer tradelog is
    refused with a message saying to upgrade, and left as it was."""
    path = tmp_path / "log.db"
    rec = await Recorder.open(path)
    await rec.append(fills("a", 2))
    await rec.close()
    with raw_sqlite(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    content, mtime = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.raises(DatabaseFileError, match="newer tradelog"):
        await Recorder.open(path)
    assert (content, mtime) == (path.read_bytes(), path.stat().st_mtime_ns)


async def test_reopening_our_own_file_keeps_the_log(tmp_path: Path) -> None:
    """Closing and opening again keeps every event and continues the seq."""
    path = tmp_path / "log.db"
    rec = await Recorder.open(path)
    await rec.append(fills("a", 2))
    await rec.close()
    rec = await Recorder.open(path)
    try:
        outcome = await rec.append([*fills("a", 1), *fills("b", 1)])
        assert [(1, True), (3, False)] == [(r.seq, r.duplicate) for r in outcome.results]
        assert (await rec.verify()).ok
    finally:
        await rec.close()


async def test_read_filters_by_account_and_type(recorder: Recorder) -> None:
    """``read`` filters by account and types and pages by ``from_seq``/``limit``;
    ``read_page`` also gives the last seq."""
    await recorder.append([*fills("a", 2), *fills("b", 1, account="acct-2"),
                           new(wire_event("cash", {"amount": "5", "kind": "deposit"}))])
    assert [3] == [e.seq for e in await recorder.read(account="acct-2")]
    assert [4] == [e.seq for e in await recorder.read(types=["cash"])]
    assert [2, 3] == [e.seq for e in await recorder.read(from_seq=2, limit=2)]
    events, last = await recorder.read_page(from_seq=4)
    assert ([4], 4) == ([e.seq for e in events], last)
