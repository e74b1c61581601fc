"""asyncpg against psycopg 3 on the PostgreSQL append path (docs/POSTGRESQL.md).

    python -m bench.pg_driver [--dsn postgresql://postgres@127.0.0.1/test]
                              [--commit durable|nowait] [--repeats 5] [--json FILE]

Each driver runs the same append transaction, the statements of the store's first
version (``eventstore.postgres.writes`` has since merged the three reads into one
statement, and the insert, upsert and notification into one): ``BEGIN``;
``pg_advisory_xact_lock``; the last row; the group's source+id pairs already stored; the
accounts' versions; one ``INSERT ... SELECT FROM unnest`` of the rows, or ``COPY``
(chained with ``eventstore.canonical.chain_hash``); the accounts upsert; ``COMMIT``
(durable: ``synchronous_commit`` as the server has it). Loads: one event per
transaction and groups of 64, from 1 connection and from 4 connections at once (each
its own appender contending for the lock). Every run is on a fresh schema made with
the store's own DDL (``eventstore.postgres.ddl``), dropped at the end. The drivers take
turns within each repeat and the median repeat is reported, with the client's CPU time
per event (the bench process's, all threads).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import psycopg

from bench.events import events as wire_events
from eventstore.canonical import GENESIS_HASH, chain_hash
from eventstore.postgres import ddl
from eventstore.record import NewEvent
from schemas import parse_event

LOCK = "SELECT pg_advisory_xact_lock($1)"
LAST = "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1"
KNOWN = ("SELECT e.seq, e.source, e.id FROM unnest($1::text[], $2::text[]) AS w(source, id) "
         "JOIN events AS e ON e.source = w.source AND e.id = w.id")
VERSIONS = "SELECT account, version FROM accounts WHERE account = ANY($1::text[])"
INSERT = (f"INSERT INTO events ({ddl.INSERT_COLUMNS}) SELECT * FROM unnest("
          "$1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
          "$7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::text[], "
          "$13::text[], $14::text[])")
UPSERT = ("INSERT INTO accounts (account, version) SELECT * FROM unnest($1::text[], "
          "$2::bigint[]) ON CONFLICT (account) DO UPDATE SET version = accounts.version "
          "+ excluded.version")


SYNC = ["on"]
"""``synchronous_commit`` of the bench's sessions: ``on`` (durable, as the store runs) or
``off`` (``--commit nowait``: the WAL flush left out, to see the drivers' own cost)."""


def _options(schema: str) -> str:
    return f"-csearch_path={schema} -csynchronous_commit={SYNC[0]}"


def _ps(sql: str) -> str:
    """The statement with psycopg's ``%s`` placeholders instead of ``$n``."""
    import re

    return re.sub(r"\$\d+", "%s", sql)


def make_events(count: int, prefix: str) -> list[NewEvent]:
    return [NewEvent.from_model(parse_event(raw)) for raw in wire_events(count, 11, prefix)]


def columns(events: Sequence[NewEvent], last_seq: int, last_hash: str,
            recorded_at: str) -> tuple[list[list[Any]], dict[str, int]]:
    """The 14 column arrays of the rows and each account's added count."""
    cols: list[list[Any]] = [[] for _ in range(14)]
    counts: dict[str, int] = {}
    for event in events:
        last_seq += 1
        previous, last_hash = last_hash, chain_hash(last_hash, event.canonical)
        row = (last_seq, event.source, event.event_id, event.event_type, event.time,
               event.account, event.specversion, event.datacontenttype, event.data_json,
               recorded_at, event.schema_version, "{}", last_hash, previous)
        for col, value in zip(cols, row, strict=True):
            col.append(value)
        counts[event.account] = counts.get(event.account, 0) + 1
    return cols, counts


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# ----------------------------------------------------------------- asyncpg


async def asyncpg_append(conn: asyncpg.Connection, key: int, events: Sequence[NewEvent]) -> None:
    async with conn.transaction():
        await conn.execute(LOCK, key)
        last = await conn.fetchrow(LAST)
        await conn.fetch(KNOWN, [e.source for e in events], [e.event_id for e in events])
        await conn.fetch(VERSIONS, sorted({e.account for e in events}))
        seq, digest = (last[0], last[1]) if last else (0, GENESIS_HASH)
        cols, counts = columns(events, seq, digest, _now())
        await conn.execute(INSERT, *cols)
        await conn.execute(UPSERT, list(counts), list(counts.values()))


async def asyncpg_copy_append(conn: asyncpg.Connection, key: int,
                              events: Sequence[NewEvent]) -> None:
    """As ``asyncpg_append``, the rows sent by ``COPY`` (``copy_records_to_table``)."""
    async with conn.transaction():
        await conn.execute(LOCK, key)
        last = await conn.fetchrow(LAST)
        await conn.fetch(KNOWN, [e.source for e in events], [e.event_id for e in events])
        await conn.fetch(VERSIONS, sorted({e.account for e in events}))
        seq, digest = (last[0], last[1]) if last else (0, GENESIS_HASH)
        cols, counts = columns(events, seq, digest, _now())
        await conn.copy_records_to_table(
            "events", records=list(zip(*cols, strict=True)),
            columns=[c.strip() for c in ddl.INSERT_COLUMNS.split(",")])
        await conn.execute(UPSERT, list(counts), list(counts.values()))


async def asyncpg_run(dsn: str, schema: str, key: int, batches: list[list[NewEvent]],
                      clients: int, append: Callable[..., Any] = asyncpg_append
                      ) -> list[float]:
    settings = {"search_path": schema, "synchronous_commit": SYNC[0]}
    conns = [await asyncpg.connect(dsn, server_settings=settings) for _ in range(clients)]
    took: list[float] = []

    async def one(conn: asyncpg.Connection, mine: list[list[NewEvent]]) -> None:
        for batch in mine:
            started = time.perf_counter()
            await append(conn, key, batch)
            took.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(one(c, batches[i::clients]) for i, c in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.close()
    return took


# ----------------------------------------------------------------- psycopg 3


def psycopg_append(conn: psycopg.Connection[Any], key: int, events: Sequence[NewEvent]) -> None:
    with conn.transaction():
        with conn.pipeline():
            conn.execute(_ps(LOCK), (key,))
            last_cur = conn.execute(LAST)
            conn.execute(_ps(KNOWN), ([e.source for e in events], [e.event_id for e in events]))
            conn.execute(_ps(VERSIONS), (sorted({e.account for e in events}),))
            last = last_cur.fetchone()
        seq, digest = (last[0], last[1]) if last else (0, GENESIS_HASH)
        cols, counts = columns(events, seq, digest, _now())
        with conn.pipeline():
            conn.execute(_ps(INSERT), cols)
            conn.execute(_ps(UPSERT), (list(counts), list(counts.values())))


def psycopg_plain_append(conn: psycopg.Connection[Any], key: int,
                         events: Sequence[NewEvent]) -> None:
    """The same transaction without pipeline mode: one round trip per statement."""
    with conn.transaction():
        conn.execute(_ps(LOCK), (key,))
        last = conn.execute(LAST).fetchone()
        conn.execute(_ps(KNOWN), ([e.source for e in events], [e.event_id for e in events]))
        conn.execute(_ps(VERSIONS), (sorted({e.account for e in events}),))
        seq, digest = (last[0], last[1]) if last else (0, GENESIS_HASH)
        cols, counts = columns(events, seq, digest, _now())
        conn.execute(_ps(INSERT), cols)
        conn.execute(_ps(UPSERT), (list(counts), list(counts.values())))


def psycopg_copy_append(conn: psycopg.Connection[Any], key: int,
                        events: Sequence[NewEvent]) -> None:
    """As ``psycopg_append``, the rows sent by ``COPY`` (what the store does for groups
    of ``eventstore.postgres.writes.COPY_FROM`` events or more)."""
    with conn.transaction():
        with conn.pipeline():
            conn.execute(_ps(LOCK), (key,))
            last_cur = conn.execute(LAST)
            conn.execute(_ps(KNOWN), ([e.source for e in events], [e.event_id for e in events]))
            conn.execute(_ps(VERSIONS), (sorted({e.account for e in events}),))
            last = last_cur.fetchone()
        seq, digest = (last[0], last[1]) if last else (0, GENESIS_HASH)
        cols, counts = columns(events, seq, digest, _now())
        with conn.cursor().copy(f"COPY events ({ddl.INSERT_COLUMNS}) FROM STDIN") as copy:
            for row in zip(*cols, strict=True):
                copy.write_row(row)
        conn.execute(_ps(UPSERT), (list(counts), list(counts.values())))


def psycopg_run(dsn: str, schema: str, key: int, batches: list[list[NewEvent]],
                clients: int, append: Callable[..., None] = psycopg_append) -> list[float]:
    took: list[float] = []
    lock = threading.Lock()

    def one(mine: list[list[NewEvent]]) -> None:
        with psycopg.connect(dsn, options=_options(schema)) as conn:
            for batch in mine:
                started = time.perf_counter()
                append(conn, key, batch)
                with lock:
                    took.append(time.perf_counter() - started)

    threads = [threading.Thread(target=one, args=(batches[i::clients],))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return took


async def apsycopg_run(dsn: str, schema: str, key: int, batches: list[list[NewEvent]],
                       clients: int) -> list[float]:
    took: list[float] = []

    async def one(mine: list[list[NewEvent]]) -> None:
        conn = await psycopg.AsyncConnection.connect(dsn, options=_options(schema))
        try:
            for events in mine:
                started = time.perf_counter()
                async with conn.transaction():
                    async with conn.pipeline():
                        await conn.execute(_ps(LOCK), (key,))
                        last_cur = await conn.execute(LAST)
                        await conn.execute(_ps(KNOWN), ([e.source for e in events],
                                                        [e.event_id for e in events]))
                        await conn.execute(_ps(VERSIONS), (sorted({e.account for e in events}),))
                        last = await last_cur.fetchone()
                    seq, digest = (last[0], last[1]) if last else (0, GENESIS_HASH)
                    cols, counts = columns(events, seq, digest, _now())
                    async with conn.pipeline():
                        await conn.execute(_ps(INSERT), cols)
                        await conn.execute(_ps(UPSERT), (list(counts), list(counts.values())))
                took.append(time.perf_counter() - started)
        finally:
            await conn.close()

    await asyncio.gather(*(one(batches[i::clients]) for i in range(clients)))
    return took


# ----------------------------------------------------------------- the runs


def fresh_schema(dsn: str) -> tuple[str, int]:
    """A new schema holding an empty log; returns its name and the log's lock key."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        with conn.transaction():
            for statement in ddl.SETUP:
                conn.execute(statement.encode())
        oid = conn.execute("SELECT 'events'::regclass::oid::bigint").fetchone()
        assert oid is not None
    return schema, (ddl.LOCK_CLASS << 32) | int(oid[0])


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


RUNNERS: dict[str, Callable[..., list[float]]] = {
    "asyncpg": lambda *a: asyncio.run(asyncpg_run(*a)),
    "asyncpg (COPY)": lambda dsn, schema, key, batches, clients: asyncio.run(asyncpg_run(
        dsn, schema, key, batches, clients, append=asyncpg_copy_append)),
    "psycopg (sync, pipeline)": psycopg_run,
    "psycopg (sync)": functools.partial(psycopg_run, append=psycopg_plain_append),
    "psycopg (sync, pipeline, COPY)": functools.partial(psycopg_run, append=psycopg_copy_append),
    "psycopg (async, pipeline)": lambda *a: asyncio.run(apsycopg_run(*a)),
}


def measure(dsn: str, name: str, events: list[NewEvent], group: int,
            clients: int) -> dict[str, Any]:
    batches = [events[i:i + group] for i in range(0, len(events), group)]
    schema, key = fresh_schema(dsn)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        took = RUNNERS[name](dsn, schema, key, batches, clients)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        drop_schema(dsn, schema)
    took.sort()
    return {"driver": name, "group": group, "clients": clients, "events": len(events),
            "events_per_s": round(len(events) / wall),
            "client_cpu_us_per_event": round(cpu / len(events) * 1e6, 1),
            "commit_p50_ms": round(statistics.median(took) * 1000, 3),
            "commit_p99_ms": round(took[int(len(took) * 0.99) - 1] * 1000, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_driver")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--single", type=int, default=1000,
                        help="events for the one-event-per-transaction runs")
    parser.add_argument("--grouped", type=int, default=64 * 100,
                        help="events for the groups-of-64 runs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--groups", default="1,64", help="events per transaction to run")
    parser.add_argument("--commit", choices=["durable", "nowait"], default="durable",
                        help="nowait: synchronous_commit=off in the bench's sessions")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    SYNC[0] = "on" if args.commit == "durable" else "off"
    results = []
    wanted = {int(g) for g in args.groups.split(",")}
    for group, count in ((1, args.single), (64, args.grouped)):
        if group not in wanted:
            continue
        for clients in (1, 4):
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in RUNNERS}
            for repeat in range(args.repeats):
                # The drivers take turns within each repeat, so that the machine's other
                # load falls on each alike; the median repeat is kept.
                events = make_events(count, f"{uuid.uuid4().hex[:6]}-{repeat}")
                for name in RUNNERS:
                    runs[name].append(measure(args.dsn, name, events, group, clients))
            for figures in runs.values():
                figures.sort(key=lambda f: f["events_per_s"])
                kept = {**figures[len(figures) // 2], "commit": args.commit,
                        "repeats": len(figures)}
                results.append(kept)
                print(json.dumps(kept), flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
