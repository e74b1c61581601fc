"""Following a PostgreSQL log that several writers append to: every event in seq order,
none missed, none twice, woken by LISTEN/NOTIFY (the poll is set to a minute, so a
follower that relied on it would not finish in time). Each test on a schema of its own."""

from __future__ import annotations

import asyncio

import psycopg

from eventstore import StoredEvent
from eventstore.postgres.notify import channel
from eventstore.postgres.recorder import PgRecorder
from tests.eventstore.test_postgres_faults import NamedPgLog, _terminate
from tests.eventstore.test_store_contract import fills

NO_POLL_S = 60.0


async def _collect(follower: PgRecorder, count: int, **filters: str) -> list[StoredEvent]:
    got: list[StoredEvent] = []
    async for event in follower.follow(1, poll_s=NO_POLL_S, batch=50, **filters):
        got.append(event)
        if len(got) == count:
            break
    return got


async def test_a_follower_sees_every_writers_events_in_seq_order_once(named_pg: NamedPgLog) -> None:
    """Three recorders append at once while a fourth follows from seq 1: it gets 1..N in
    order, each once, every appended event among them."""
    writers = [await PgRecorder.open(named_pg.url) for _ in range(3)]
    follower = await PgRecorder.open(named_pg.url, readonly=True)
    try:
        following = asyncio.create_task(_collect(follower, 3 * 20 * 2))
        await asyncio.sleep(0.2)  # the follower is waiting on an empty log

        async def write(n: int) -> None:
            for i in range(20):
                await writers[n].append(fills(f"w{n}-{i}", 2))

        await asyncio.gather(*(write(n) for n in range(3)))
        got = await asyncio.wait_for(following, 30)
    finally:
        for recorder in (*writers, follower):
            await recorder.close()
    assert list(range(1, 121)) == [e.seq for e in got]
    assert {f"w{n}-{i}-{k}" for n in range(3) for i in range(20) for k in range(2)} == {
        e.event_id for e in got}


async def test_a_follower_whose_listening_session_is_cut_misses_nothing(
        named_pg: NamedPgLog) -> None:
    """The server ends the follower's sessions (its LISTEN one too) between appends: it
    reconnects, reads by seq from where it was, and still gets every event once; with an
    account filter it gets that account's events only."""
    writer = await PgRecorder.open(named_pg.url)
    follower = await PgRecorder.open(named_pg.url, readonly=True)
    try:
        following = asyncio.create_task(_collect(follower, 30))
        only_b = asyncio.create_task(_collect(follower, 10, account="acct-b"))
        await writer.append(fills("a", 10))
        await asyncio.sleep(0.3)
        assert _terminate(named_pg.name) >= 2
        await writer.append(fills("b", 10, account="acct-b"))
        await asyncio.sleep(0.3)
        await writer.append(fills("c", 10))
        got = await asyncio.wait_for(following, 30)
        got_b = await asyncio.wait_for(only_b, 30)
    finally:
        await writer.close()
        await follower.close()
    assert list(range(1, 31)) == [e.seq for e in got]
    assert list(range(11, 21)) == [e.seq for e in got_b]


async def test_notifications_of_the_own_writer_do_not_wake_and_others_do(
        named_pg: NamedPgLog) -> None:
    """A reader told its writer's origin (a daemon's, whose own commits it learns from
    the writer) lets that origin's notifications pass; another writer's, and one with no
    origin, wake it with the seq they name."""
    writer = await PgRecorder.open(named_pg.url)  # creates the log
    follower = await PgRecorder.open(named_pg.url, readonly=True)
    follower.own_origin = "mine"
    try:
        await follower.wait_past(0, 5.0)  # the listening session is in place
        channel_name = channel(follower._reading.key)
        with psycopg.connect(named_pg.url, autocommit=True) as conn:
            for payload in ("7 mine", "4 theirs"):
                conn.execute("SELECT pg_notify(%s, %s)", (channel_name, payload))
            await asyncio.wait_for(follower.wait_past(3, NO_POLL_S), 10)
            assert 4 == follower.notified
            conn.execute("SELECT pg_notify(%s, %s)", (channel_name, "9 mine"))
            conn.execute("SELECT pg_notify(%s, %s)", (channel_name, "8"))
            await asyncio.wait_for(follower.wait_past(4, NO_POLL_S), 10)
            assert 8 == follower.notified
    finally:
        await writer.close()
        await follower.close()


async def test_a_notification_naming_no_seq_wakes_without_stopping_the_listener(
        named_pg: NamedPgLog) -> None:
    """Any session on the database may notify on the log's channel: a payload of 5,000
    digits (past what ``int`` reads) or of non-ASCII digits names no seq and only wakes
    the reader; the listener goes on, and the next notification's seq is taken."""
    writer = await PgRecorder.open(named_pg.url)
    follower = await PgRecorder.open(named_pg.url, readonly=True)
    try:
        await follower.wait_past(0, 5.0)  # the listening session is in place
        channel_name = channel(follower._reading.key)
        with psycopg.connect(named_pg.url, autocommit=True) as conn:
            for payload in ("9" * 5000, "\u0661\u0662 other"):
                conn.execute("SELECT pg_notify(%s, %s)", (channel_name, payload))
            await asyncio.sleep(0.3)
            assert 0 == follower.notified
            conn.execute("SELECT pg_notify(%s, %s)", (channel_name, "6 theirs"))
            await asyncio.wait_for(follower.wait_past(5, NO_POLL_S), 10)
            assert 6 == follower.notified
    finally:
        await writer.close()
        await follower.close()
