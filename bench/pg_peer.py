"""The PostgreSQL store against the peer: the ``eventsourcing`` library's PostgreSQL
application, one event per ``save``, at 1, 8 and 64 clients (docs/POSTGRESQL.md).

    python -m bench.pg_peer [--dsn postgresql://postgres@127.0.0.1/test] [--repeats 3]

The peer: one application, a connection pool as large as the clients, each client a
thread saving its own aggregate, one domain event per save (each save one transaction
under the library's table lock). tradelog: each client a task appending one event at a
time through a ``PgRecorder``, grouped as the daemon groups its clients (every request
waiting when a commit ends goes into the next one, ``append_groups``). Both durable
(``synchronous_commit = on``), both on a fresh schema of the same database. The daemon's
socket, parsing and views are not in these figures: they compare the two stores' commits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from bench.peer import _classes
from bench.pg_driver import make_events
from eventstore.postgres.recorder import PgRecorder
from eventstore.record import AppendOutcome, AppendRequest, NewEvent


def _schema(dsn: str) -> str:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema


def _drop(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def peer_rate(dsn: str, clients: int, per_client: int) -> float:
    """Events per second of the ``eventsourcing`` PostgreSQL application."""
    ledger_class, app_class = _classes()
    parts = urlsplit(dsn)
    schema = _schema(dsn)
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres",
           "POSTGRES_DBNAME": parts.path.lstrip("/"), "POSTGRES_HOST": parts.hostname or "",
           "POSTGRES_PORT": str(parts.port or 5432), "POSTGRES_USER": parts.username or "",
           "POSTGRES_PASSWORD": parts.password or "", "POSTGRES_SCHEMA": schema,
           "POSTGRES_POOL_SIZE": str(clients), "POSTGRES_MAX_OVERFLOW": "0",
           "IS_SNAPSHOTTING_ENABLED": "n"}
    app = app_class(env=env)
    try:
        ledgers = [ledger_class(f"acct-{n}") for n in range(clients)]
        for ledger in ledgers:
            app.save(ledger)
        barrier = threading.Barrier(clients + 1)

        def client(ledger: Any) -> None:
            barrier.wait()
            for i in range(per_client):
                ledger.record({"n": i})
                app.save(ledger)

        threads = [threading.Thread(target=client, args=(ledger,)) for ledger in ledgers]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        took = time.perf_counter() - started
    finally:
        app.close()
        _drop(dsn, schema)
    return clients * per_client / took


class _Grouper:
    """The daemon's group commit in small: requests waiting when a commit ends go into
    the next one."""

    def __init__(self, recorder: PgRecorder) -> None:
        self.recorder = recorder
        self.waiting: list[tuple[AppendRequest, asyncio.Future[AppendOutcome]]] = []
        self.wake = asyncio.Event()
        self.groups = 0

    async def append(self, request: AppendRequest) -> AppendOutcome:
        future: asyncio.Future[AppendOutcome] = asyncio.get_running_loop().create_future()
        self.waiting.append((request, future))
        self.wake.set()
        return await future

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            group, self.waiting = self.waiting, []
            if not group:
                continue
            outcomes = await self.recorder.append_groups([r for r, _ in group])
            self.groups += 1
            for (_, future), outcome in zip(group, outcomes, strict=True):
                future.set_result(outcome)


async def _tradelog(url: str, streams: list[list[NewEvent]]) -> float:
    recorder = await PgRecorder.open(url)
    grouper = _Grouper(recorder)
    committer = asyncio.create_task(grouper.run())
    try:
        async def client(events: list[NewEvent]) -> None:
            for event in events:
                outcome = await grouper.append(AppendRequest([event]))
                assert outcome.error is None, outcome.error

        started = time.perf_counter()
        await asyncio.gather(*(client(events) for events in streams))
        took = time.perf_counter() - started
        assert (await recorder.verify()).ok
    finally:
        committer.cancel()
        await recorder.close()
    return sum(map(len, streams)) / took


def tradelog_rate(dsn: str, clients: int, per_client: int) -> float:
    """Events per second of ``PgRecorder`` with the daemon's grouping."""
    events = make_events(clients * per_client, f"t{uuid.uuid4().hex[:8]}")
    streams = [events[n::clients] for n in range(clients)]
    schema = _schema(dsn)
    sep = "&" if "?" in dsn else "?"
    try:
        return asyncio.run(_tradelog(f"{dsn}{sep}options=-csearch_path%3D{schema}", streams))
    finally:
        _drop(dsn, schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_peer")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", type=int, default=1000, help="events per load")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    results = []
    for clients in (1, 8, 64):
        per_client = max(1, args.events // clients)
        peer, ours = [], []
        for _ in range(args.repeats):  # turns: the machine's other load falls on both
            peer.append(peer_rate(args.dsn, clients, per_client))
            ours.append(tradelog_rate(args.dsn, clients, per_client))
        figure = {"clients": clients, "events": clients * per_client,
                  "eventsourcing_events_per_s": round(statistics.median(peer)),
                  "tradelog_store_events_per_s": round(statistics.median(ours)),
                  "repeats": args.repeats}
        figure["ratio"] = round(figure["tradelog_store_events_per_s"]
                                / figure["eventsourcing_events_per_s"], 2)
        results.append(figure)
        print(json.dumps(figure), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
