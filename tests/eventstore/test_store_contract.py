"""The recorder contract, one suite run against each store: SQLite (``eventstore.Recorder``
on a fresh file) and PostgreSQL (``eventstore.postgres.PgRecorder`` on a schema of its
own, created and dropped per test).

Gapless seq and one hash chain across every writer, idempotency by source+id with the
original seq answered, ``expected_version``, a failed request storing nothing, the void
rules, append-only triggers, verify naming the first bad seq, and the same hashes for
the same events on both stores. The PostgreSQL server is ``$TRADELOG_TEST_PG``
(default: postgresql://postgres@127.0.0.1:5432/test); when it cannot be reached the
PostgreSQL tests error, never skip.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from eventstore import (
    AppendRequest,
    DatabaseFileError,
    IdempotencyConflictError,
    NewEvent,
    StorageUnavailableError,
    ValidationError,
    VersionConflictError,
    chain_hash,
)
from eventstore.ddl import EVENT_TRIGGERS
from eventstore.store import EventStore, open_store
from schemas import parse_event
from tests.support import fill, wire_event

PG_URL = os.environ.get("TRADELOG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def new(raw: dict[str, Any]) -> NewEvent:
    return NewEvent.from_model(parse_event(raw))


def fills(prefix: str, count: int, **extra: Any) -> list[NewEvent]:
    """``count`` distinct fills with ids ``prefix-0`` ..."""
    return [new(fill("buy", "1", f"1.{i + 1}", event_id=f"{prefix}-{i}", **extra))
            for i in range(count)]


def void(target_id: str, *, event_id: str, account: str = "acct-1") -> NewEvent:
    return new(wire_event("void", {"target_source": "test/bot", "target_id": target_id,
                                   "reason": "entered twice"},
                          account=account, event_id=event_id))


class Log:
    """One log in one store, and an intruder's raw access to it."""

    kind = ""
    url = ""

    async def open(self, *, readonly: bool = False) -> EventStore:
        """A new recorder on this log (its own connections)."""
        return await open_store(self.url, readonly=readonly)

    def intrude(self, *statements: str, disable_triggers: bool = False) -> None:
        """Run ``statements`` in one transaction outside the recorder, first removing the
        append-only triggers when ``disable_triggers``."""
        raise NotImplementedError

    def rows(self) -> list[tuple[Any, ...]]:
        """Every stored row, by seq, read outside the recorder."""
        raise NotImplementedError

    def refusals(self) -> dict[str, str]:
        """Changes the triggers must refuse, by name."""
        return {
            "UPDATE": "UPDATE events SET data = '{}' WHERE seq = 2",
            "UPDATE of seq": "UPDATE events SET seq = 9 WHERE seq = 3",
            "DELETE": "DELETE FROM events WHERE seq = 3",
            "DELETE all": "DELETE FROM events",
        }


class SqliteLog(Log):
    kind = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.path = directory / "log.db"
        self.url = f"sqlite:///{self.path}"

    def intrude(self, *statements: str, disable_triggers: bool = False) -> None:
        with closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.execute("BEGIN")
            if disable_triggers:
                for trigger in EVENT_TRIGGERS:
                    conn.execute(f"DROP TRIGGER {trigger}")
            for statement in statements:
                conn.execute(statement)
            conn.execute("COMMIT")

    def rows(self) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.path)) as conn:
            return list(conn.execute("SELECT * FROM events ORDER BY seq"))


class PgLog(Log):
    kind = "postgresql"

    def __init__(self) -> None:
        self.schema = f"tradelog_test_{uuid.uuid4().hex[:12]}"
        self.url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{self.schema}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.schema}")

    def drop(self) -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.schema} CASCADE")

    def intrude(self, *statements: str, disable_triggers: bool = False) -> None:
        with psycopg.connect(self.url) as conn, conn.transaction():
            if disable_triggers:
                conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
            for statement in statements:
                conn.execute(statement)

    def rows(self) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return list(conn.execute("SELECT * FROM events ORDER BY seq"))

    def refusals(self) -> dict[str, str]:
        return {
            **super().refusals(),
            "TRUNCATE": "TRUNCATE events",
            "upsert on seq": ("INSERT INTO events SELECT * FROM events WHERE seq = 2 "
                              "ON CONFLICT (seq) DO UPDATE SET data = '{}'"),
            "INSERT with a wrong seq": (
                "INSERT INTO events SELECT 7, source, 'new-id', type, time, account, "
                "specversion, datacontenttype, data, recorded_at, schema_version, "
                "metadata, hash, prev_hash FROM events WHERE seq = 3"),
            "INSERT of the next seq on another hash": (
                "INSERT INTO events SELECT 4, source, 'new-id', type, time, account, "
                "specversion, datacontenttype, data, recorded_at, schema_version, "
                "metadata, hash, prev_hash FROM events WHERE seq = 3"),
        }


@contextmanager
def empty_log(kind: str, directory: Path) -> Iterator[Log]:
    """An empty log in the store ``kind`` (``sqlite``: a file in ``directory``;
    ``postgresql``: a schema of its own, dropped on the way out)."""
    if kind == "sqlite":
        yield SqliteLog(directory)
        return
    pg = PgLog()
    try:
        yield pg
    finally:
        pg.drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    """An empty log in each store (PostgreSQL: a schema of its own, dropped after)."""
    with empty_log(request.param, tmp_path) as found:
        yield found


@pytest.fixture
async def store(log: Log) -> AsyncIterator[EventStore]:
    """A writable recorder on ``log``, closed at the end."""
    recorder = await log.open()
    try:
        yield recorder
    finally:
        await recorder.close()


def seqs(outcome: Any) -> list[tuple[int, bool]]:
    return [(r.seq, r.duplicate) for r in outcome.results]


# ------------------------------------------------------------------ append, idempotency


async def test_append_gives_gapless_seq_and_reads_back(store: EventStore) -> None:
    """A batch gets seq 1..N in order; ``read`` returns the events with those seqs."""
    outcome = await store.append(fills("a", 3))
    assert [(1, False), (2, False), (3, False)] == seqs(outcome)
    assert 3 == outcome.last_seq
    stored = await store.read()
    assert [("a-0", 1), ("a-1", 2), ("a-2", 3)] == [(e.event_id, e.seq) for e in stored]
    assert 3 == await store.last_seq()


async def test_batch_with_one_conflicting_event_stores_none_of_it(store: EventStore) -> None:
    """An idempotency conflict anywhere in a batch stores none of it and names the stored
    seq and account of the event it collides with."""
    await store.append([new(fill("buy", "1", "1.5", event_id="x", account="acct-9"))])
    batch = [*fills("b", 2), new(fill("buy", "1", "9.9", event_id="x")), *fills("c", 1)]
    with pytest.raises(IdempotencyConflictError) as caught:
        await store.append(batch)
    assert (1, "x", "test/bot", "acct-9") == (caught.value.seq, caught.value.event_id,
                                               caught.value.source, caught.value.account)
    assert 1 == await store.last_seq()
    assert [(2, False), (3, False)] == seqs(await store.append(fills("b", 2)))


async def test_duplicates_answer_the_original_seq(store: EventStore) -> None:
    """Stored events sent again answer ``duplicate`` with their seq; only new ones are
    stored; the same event twice in one batch is stored once."""
    first = fills("a", 2)
    await store.append(first)
    outcome = await store.append([first[1], *fills("n", 1), first[0]])
    assert [(2, True), (3, False), (1, True)] == seqs(outcome)
    twice = new(fill("buy", "1", "1.5", event_id="twice"))
    assert [(4, False), (4, True)] == seqs(await store.append([twice, twice]))
    assert [1, 2, 3, 4] == [e.seq for e in await store.read()]


async def test_equal_decimals_and_other_sources(store: EventStore) -> None:
    """"1.50" and "1.5" are the same content (a duplicate); the same id from another
    source is another event."""
    await store.append([new(fill("buy", "2.0", "1.50", event_id="p"))])
    assert [(1, True)] == seqs(await store.append([new(fill("buy", "2", "1.5",
                                                                event_id="p"))]))
    other = new(fill("buy", "2", "1.5", event_id="p", source="bot/b"))
    assert [(2, False)] == seqs(await store.append([other]))


async def test_batch_contradicting_itself_is_refused(store: EventStore) -> None:
    """One source+id twice in a batch with different content: ValidationError at the
    second, nothing stored."""
    batch = [*fills("a", 1), new(fill("buy", "1", "1.5", event_id="twin")),
             new(fill("buy", "1", "2.5", event_id="twin"))]
    with pytest.raises(ValidationError) as caught:
        await store.append(batch)
    assert (2, "id") == (caught.value.problems[0]["index"], caught.value.problems[0]["path"])
    assert 0 == await store.last_seq()


async def test_expected_version(store: EventStore) -> None:
    """``expected_version`` must equal the account's event count (duplicates not
    counted, accounts apart); otherwise nothing is stored and the count is given."""
    await store.append(fills("a", 2))
    await store.append(fills("a", 2))
    with pytest.raises(VersionConflictError) as caught:
        await store.append(fills("b", 1), expected_version=("acct-1", 1))
    assert (2, 1, "acct-1") == (caught.value.version, caught.value.expected,
                                caught.value.account)
    assert 3 == (await store.append(fills("b", 1), expected_version=("acct-1", 2))).last_seq
    other = await store.append(fills("c", 1, account="acct-2"),
                               expected_version=("acct-2", 0))
    assert 4 == other.last_seq


async def test_group_conflict_fails_only_its_own_request(store: EventStore) -> None:
    """In a group commit a request with a conflict gets its error and stores nothing; the
    others are stored, gapless, and every outcome carries the group's last seq."""
    await store.append([new(fill("buy", "1", "1.5", event_id="x"))])
    outcomes = await store.append_groups([
        AppendRequest(fills("g1", 2)),
        AppendRequest([*fills("g2", 1), new(fill("sell", "1", "1.5", event_id="x"))]),
        AppendRequest(fills("g3", 1), expected_account="acct-1", expected_version=0),
        AppendRequest(fills("g4", 1), expected_account="acct-1", expected_version=3),
        AppendRequest(fills("g1", 1)),
    ])
    assert [None, IdempotencyConflictError, VersionConflictError, None, None] == [
        type(o.error) if o.error else None for o in outcomes]
    assert [(2, False), (3, False)] == seqs(outcomes[0])
    assert [(4, False)] == seqs(outcomes[3])
    assert [(2, True)] == seqs(outcomes[4])
    assert ["x", "g1-0", "g1-1", "g4-0"] == [e.event_id for e in await store.read()]
    assert {4} == {o.last_seq for o in outcomes}


async def test_void_rules(store: EventStore) -> None:
    """A void names a stored event of its own account that is not a void and is not
    voided yet; anything else is refused at ``data.target_id`` and stores nothing."""
    await store.append(fills("a", 2))
    assert [(3, False)] == seqs(await store.append([void("a-0", event_id="v1")]))
    refused = {
        "no event of account": void("nope", event_id="v2"),
        "no event of account 'acct-2'": void("a-1", event_id="v3", account="acct-2"),
        "itself a void": void("v1", event_id="v4"),
        "already voided (by the void at seq 3)": void("a-0", event_id="v5"),
    }
    for words, event in refused.items():
        with pytest.raises(ValidationError) as caught:
            await store.append([event])
        assert "data.target_id" == caught.value.problems[0]["path"], words
        assert words in caught.value.problems[0]["message"]
    both = [void("a-1", event_id="v6"), void("a-1", event_id="v7")]
    with pytest.raises(ValidationError, match="already voided"):
        await store.append(both)
    assert 3 == await store.last_seq()


async def test_read_filters_and_pages(store: EventStore) -> None:
    """``read`` filters by account and type and pages by from_seq/limit; ``read_page``
    adds the last seq and honours ``before_seq``."""
    await store.append([*fills("a", 3), *fills("b", 2, account="acct-2"),
                        new(wire_event("cash", {"amount": "10", "kind": "deposit"},
                                       event_id="c"))])
    assert [4, 5] == [e.seq for e in await store.read(account="acct-2")]
    assert [6] == [e.seq for e in await store.read(types=["cash"])]
    assert [2, 3] == [e.seq for e in await store.read(from_seq=2, limit=2)]
    page, last = await store.read_page(from_seq=1, before_seq=3)
    assert ([1, 2], 6) == ([e.seq for e in page], last)


# ------------------------------------------------------------------ many writers


async def test_concurrent_appends_from_several_recorders_are_gapless(log: Log) -> None:
    """Three recorders on one log (three connections, as three daemons) and many tasks
    each, appending at once with ``expected_version`` on accounts of their own: every
    event stored once, seq 1..N gapless, each batch's seqs consecutive, the chain
    verifies."""
    recorders = [await log.open() for _ in range(3)]
    try:
        async def task(r: int, t: int) -> list[list[int]]:
            account = f"acct-{r}-{t}"
            got = []
            for i in range(5):
                outcome = await recorders[r].append(
                    fills(f"r{r}t{t}b{i}", 3, account=account),
                    expected_version=(account, 3 * i))
                got.append([x.seq for x in outcome.results])
            return got

        batches = [b for found in await asyncio.gather(
            *(task(r, t) for r in range(3) for t in range(4))) for b in found]
        for batch in batches:
            assert batch == list(range(batch[0], batch[0] + 3))
        total = 3 * 4 * 5 * 3
        assert list(range(1, total + 1)) == sorted(s for b in batches for s in b)
        report = await recorders[0].verify()
        assert (True, total) == (report.ok, report.checked), report.reason
    finally:
        for recorder in recorders:
            await recorder.close()


async def test_reopening_keeps_the_log_and_readonly_refuses_appends(log: Log) -> None:
    """Closing and opening again continues the seq and chain; a read-only recorder reads
    and verifies but answers appends with StorageUnavailableError."""
    first = await log.open()
    await first.append(fills("a", 2))
    await first.close()
    again = await log.open()
    assert [(3, False)] == seqs(await again.append(fills("b", 1)))
    await again.close()
    reader = await log.open(readonly=True)
    try:
        assert 3 == await reader.last_seq()
        assert (await reader.verify()).ok
        with pytest.raises(StorageUnavailableError):
            await reader.append(fills("c", 1))
    finally:
        await reader.close()


# ------------------------------------------------------------------ triggers and verify


async def test_triggers_refuse_changes(log: Log, store: EventStore) -> None:
    """UPDATE, DELETE (and on PostgreSQL TRUNCATE, upserts, and inserts off the chain)
    through a plain connection are refused and change nothing; appends go on."""
    await store.append(fills("a", 3))
    before = log.rows()
    for name, statement in log.refusals().items():
        with pytest.raises(Exception, match="append-only") as caught:
            log.intrude(statement)
        assert isinstance(caught.value, sqlite3.Error | psycopg.Error), name
        assert before == log.rows(), name
    assert (await store.verify()).ok
    assert 4 == (await store.append(fills("b", 1))).last_seq


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


def tamper_with(log: Log, name: str) -> int:
    """Make the alteration ``name`` of ``ALTERATIONS`` to a log of at least 5 events
    (``fills``), its triggers removed first; returns the first seq that no longer
    chains."""
    statements, bad_seq = ALTERATIONS[name]
    if log.kind == "postgresql" and name == "two events swapped":
        statements = ["ALTER TABLE events DROP CONSTRAINT events_seq_check", *statements]
    log.intrude(*statements, disable_triggers=True)
    return bad_seq


@pytest.mark.parametrize("name", list(ALTERATIONS))
async def test_verify_finds_the_first_tampered_seq(log: Log, store: EventStore,
                                                   name: str) -> None:
    """With the triggers removed first, an altered, deleted or swapped event is caught:
    ``bad_seq`` is the first seq that no longer chains, every one before it checked."""
    await store.append(fills("a", 5))
    bad_seq = tamper_with(log, name)
    report = await store.verify()
    assert (False, bad_seq, bad_seq - 1) == (report.ok, report.bad_seq, report.checked)
    assert report.reason


async def test_verify_reports_removed_triggers_on_an_intact_chain(log: Log,
                                                                  store: EventStore) -> None:
    """Triggers removed (dropped on SQLite, disabled on PostgreSQL) leave the chain whole,
    but verify fails naming them."""
    await store.append(fills("a", 2))
    log.intrude(disable_triggers=True)
    report = await store.verify()
    assert (False, None, 2) == (report.ok, report.bad_seq, report.checked)
    assert "events_no_update" in report.reason


async def test_verify_and_verify_tail_of_a_good_log(store: EventStore) -> None:
    """An untouched log verifies, ``last_hash`` the last event's; the tail check re-hashes
    only the last events."""
    await store.append(fills("a", 10))
    report = await store.verify()
    last = (await store.read(from_seq=10))[0]
    assert (True, 10, last.hash) == (report.ok, report.checked, report.last_hash)
    tail = await store.verify_tail(3)
    assert (True, 3) == (tail.ok, tail.checked)


# ------------------------------------------------------------------ the same chain


async def test_both_stores_chain_the_same_events_to_the_same_hashes(tmp_path: Path) -> None:
    """The same events appended to a SQLite and a PostgreSQL log, in small and large
    groups, get the same seqs and hashes (each the SHA-256 of the previous hash and the
    canonical bytes) and verify on both."""
    pg = PgLog()
    try:
        stores = [await SqliteLog(tmp_path).open(), await pg.open()]
        try:
            for recorder in stores:
                await recorder.append(fills("a", 3))
                await recorder.append_groups([AppendRequest(fills("b", 2)),
                                              AppendRequest(fills("a", 1))])
                # A large group too (PostgreSQL stores it by COPY).
                await recorder.append_groups([AppendRequest(fills("c", 30)),
                                              AppendRequest(fills("d", 9, account="x"))])
            sqlite_log, pg_log = [await r.read() for r in stores]
            reports = [await r.verify() for r in stores]
        finally:
            for recorder in stores:
                await recorder.close()
    finally:
        pg.drop()
    assert [(e.seq, e.hash) for e in sqlite_log] == [(e.seq, e.hash) for e in pg_log]
    assert sqlite_log[0].hash == chain_hash("0" * 64, fills("a", 1)[0].canonical)
    assert [e.data for e in sqlite_log] == [e.data for e in pg_log]
    assert 44 == len(pg_log)
    assert [(True, 44)] * 2 == [(r.ok, r.checked) for r in reports]


async def test_a_schema_holding_other_tables_is_refused(tmp_path: Path) -> None:
    """A PostgreSQL schema with an events table that is not a tradelog log is refused
    with DatabaseFileError and left as it was; a read-only open of an empty schema
    creates nothing."""
    pg = PgLog()
    try:
        pg.intrude("CREATE TABLE events (id int)")
        with pytest.raises(DatabaseFileError, match="not a tradelog log"):
            await pg.open()
        pg.intrude("DROP TABLE events")
        with pytest.raises(DatabaseFileError, match="holds no tradelog log"):
            await pg.open(readonly=True)
        with psycopg.connect(pg.url) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s",
                                  (pg.schema,)).fetchone()
        assert (0,) == tables
    finally:
        pg.drop()
