"""The PostgreSQL store under faults: a server that cannot be reached, a connection cut
between appends, a connection cut during ``COMMIT`` (an outcome in doubt that a re-send
settles), and ``tradelog migrate`` both ways. Each test on a schema of its own (see
``test_store_contract``); the server must be reachable, or these tests error."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from daemon.cli.main import main as tradelog
from eventstore import Recorder, StorageUnavailableError
from eventstore.errors import StorageDamagedError
from eventstore.migrate import migrate
from eventstore.postgres.connect import CommitInDoubtError
from eventstore.postgres.recorder import PgRecorder
from tests.eventstore.test_store_contract import PG_URL, PgLog, fills, seqs

SLEEP_AT_COMMIT = """
CREATE FUNCTION test_sleep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER test_sleep_at_commit AFTER INSERT ON events
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_sleep();
"""
"""Makes every COMMIT of an insert wait 30 s, so that the test can cut it."""


class NamedPgLog(PgLog):
    """A ``PgLog`` whose sessions carry an application_name of their own, so that the
    test can end exactly them."""

    def __init__(self) -> None:
        super().__init__()
        self.name = f"tradelog-test-{uuid.uuid4().hex[:8]}"
        self.url += f"&application_name={self.name}"


def _terminate(application_name: str, waiting: bool = False) -> int:
    """End the sessions named ``application_name`` (only those waiting in pg_sleep when
    ``waiting``); returns how many."""
    where = " AND wait_event = 'PgSleep'" if waiting else ""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            f"application_name = %s{where}", (application_name,)).fetchall()
    return len(rows)


async def test_unreachable_server_is_unavailable() -> None:
    """No server on the port: opening answers StorageUnavailableError, saying so."""
    with pytest.raises(StorageUnavailableError, match="PostgreSQL unavailable"):
        await PgRecorder.open("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")


async def test_a_cut_connection_is_replaced_by_the_next_call(named_pg: NamedPgLog) -> None:
    """Both connections ended by the server between calls (a restart, a failover): the
    next append and read find them dead, run on new ones, and succeed; seq gapless."""
    recorder = await PgRecorder.open(named_pg.url)
    try:
        await recorder.append(fills("a", 2))
        assert 2 == _terminate(named_pg.name)
        assert [(3, False)] == seqs(await recorder.append(fills("b", 1)))
        assert 3 == await recorder.last_seq()
        assert (await recorder.verify()).ok
    finally:
        await recorder.close()


async def test_a_session_that_no_longer_takes_writes_is_replaced(named_pg: NamedPgLog) -> None:
    """The appending session's server refuses writes (as a demoted primary does): the
    append runs again on a new session, which the URI points at a server that takes
    them, and is stored once."""
    recorder = await PgRecorder.open(named_pg.url)
    try:
        await recorder.append(fills("a", 1))
        session = recorder._appending
        assert session is not None
        before = await session.run(lambda conn, key: conn.info.backend_pid)
        await session.run(
            lambda conn, key: conn.execute("SET default_transaction_read_only = on"))
        assert [(2, False)] == seqs(await recorder.append(fills("b", 1)))
        assert before != await session.run(lambda conn, key: conn.info.backend_pid)
        assert 2 == await recorder.last_seq()
    finally:
        await recorder.close()


async def test_a_connection_cut_during_commit_is_in_doubt_and_a_resend_settles(
        named_pg: NamedPgLog) -> None:
    """The connection lost while COMMIT runs: CommitInDoubtError (the caller cannot know);
    sending the same events again settles it: stored once, seq gapless."""
    recorder = await PgRecorder.open(named_pg.url)
    try:
        await recorder.append(fills("a", 1))
        named_pg.intrude(SLEEP_AT_COMMIT)
        name = named_pg.name

        def cut() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _terminate(name, waiting=True):
                time.sleep(0.05)

        cutter = threading.Thread(target=cut)
        cutter.start()
        with pytest.raises(CommitInDoubtError, match="send the same events again"):
            await recorder.append(fills("b", 2))
        await asyncio.to_thread(cutter.join)
        named_pg.intrude("DROP TRIGGER test_sleep_at_commit ON events")
        outcome = await recorder.append(fills("b", 2))
        assert [(2, False), (3, False)] == seqs(outcome)
        assert [(2, True), (3, True)] == seqs(await recorder.append(fills("b", 2)))
        assert (await recorder.verify()).ok
    finally:
        await recorder.close()


async def test_migrate_sqlite_to_postgresql_and_back_keeps_every_byte(
        named_pg: NamedPgLog, tmp_path: Path) -> None:
    """``tradelog migrate`` copies a SQLite log into PostgreSQL and back: the rows (seq,
    recorded_at, hash, data text) are equal, verify passes on all three, and a second
    run copies nothing."""
    first = tmp_path / "a.db"
    recorder = await Recorder.open(first)
    for n in range(3):
        await recorder.append(fills(f"a{n}", 40))
        await recorder.append(fills(f"b{n}", 5, account="acct-2"))
    await recorder.close()
    assert 0 == await asyncio.to_thread(
        tradelog, ["migrate", "--from", f"sqlite:///{first}", "--to", named_pg.url, "--batch", "7"])
    back = tmp_path / "b.db"
    assert 0 == await asyncio.to_thread(
        tradelog, ["migrate", "--from", named_pg.url, "--to", f"sqlite:///{back}"])
    with closing(sqlite3.connect(first)) as a, closing(sqlite3.connect(back)) as b:
        rows = list(a.execute("SELECT * FROM events ORDER BY seq"))
        assert rows == list(b.execute("SELECT * FROM events ORDER BY seq"))
    assert [row[:13] for row in named_pg.rows()] == [tuple(r) for r in rows]
    again = await asyncio.to_thread(migrate, f"sqlite:///{first}", named_pg.url)
    assert (0, 135, 135) == (again.copied, again.kept, again.last_seq)
    assert 0 == await asyncio.to_thread(tradelog, ["verify", "--store", named_pg.url])


async def test_migrate_refuses_an_altered_source_at_its_seq(named_pg: NamedPgLog, tmp_path: Path
                                                            ) -> None:
    """A source event altered behind the triggers' back stops the copy at its seq with
    StorageDamagedError; the events before it are copied and verify."""
    source = tmp_path / "a.db"
    recorder = await Recorder.open(source)
    await recorder.append(fills("a", 6))
    await recorder.close()
    with closing(sqlite3.connect(source, isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("UPDATE events SET data = replace(data, '1.5', '7.5') WHERE seq = 5")
    with pytest.raises(StorageDamagedError, match="at seq 5"):
        await asyncio.to_thread(migrate, f"sqlite:///{source}", named_pg.url, batch=2)
    copied = await PgRecorder.open(named_pg.url, readonly=True)
    try:
        report = await copied.verify()
    finally:
        await copied.close()
    assert (True, 4) == (report.ok, report.checked)


GRANTS = [
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT, INSERT ON {schema}.events TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON {schema}.accounts TO {role}",
    "GRANT SELECT ON {schema}.tradelog_meta TO {role}",
]
"""What docs/POSTGRESQL.md grants the daemons' role."""


async def test_a_role_granted_only_appending_cannot_change_the_log(named_pg: NamedPgLog) -> None:
    """The log created by its owner; a role with the grants of docs/POSTGRESQL.md appends
    (small and COPY-sized groups) and verifies, and is refused UPDATE, TRUNCATE and
    disabling or dropping a trigger."""
    role = f"tradelog_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        owner = await PgRecorder.open(named_pg.url)
        await owner.close()
        named_pg.intrude(*(g.format(schema=named_pg.schema, role=role) for g in GRANTS))
        as_role = make_conninfo(named_pg.url, user=role)
        recorder = await PgRecorder.open(as_role)
        try:
            await recorder.append(fills("a", 2))
            assert 22 == (await recorder.append(fills("b", 20))).last_seq
            assert (await recorder.verify()).ok
        finally:
            await recorder.close()
        for statement in ("UPDATE events SET data = '{}'", "TRUNCATE events",
                          "ALTER TABLE events DISABLE TRIGGER USER",
                          "DROP TRIGGER events_no_update ON events"):
            with psycopg.connect(as_role) as conn, pytest.raises(psycopg.errors.
                                                                 InsufficientPrivilege):
                conn.execute(statement)
        assert 22 == len(named_pg.rows())
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


async def test_a_session_whose_prepared_statements_are_gone_is_replaced(pg: PgLog) -> None:
    """The appending session's server no longer has the statements psycopg prepared on
    it (as after a one-flight group that the server aborted while psycopg prepared a
    statement: ``eventstore.postgres.connect.session_lost``): the append runs again on a
    new session and is stored once."""
    recorder = await PgRecorder.open(pg.url)
    try:
        for n in range(8):
            await recorder.append(fills(f"a{n}", 1))
        session = recorder._appending
        assert session is not None
        before = await session.run(lambda conn, key: conn.info.backend_pid)
        await session.run(lambda conn, key: conn.pgconn.exec_(b"DEALLOCATE ALL"))
        assert [(9, False)] == seqs(await recorder.append(fills("b", 1)))
        assert before != await session.run(lambda conn, key: conn.info.backend_pid)
        assert (await recorder.verify()).ok
    finally:
        await recorder.close()
