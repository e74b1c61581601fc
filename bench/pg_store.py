"""The PostgreSQL store against the SQLite one, at the recorder (docs/POSTGRESQL.md).

    python -m bench.pg_store [--dsn postgresql://postgres@127.0.0.1/test] [--repeats 3]

Both durable as they run (SQLite: WAL, ``synchronous=FULL``; PostgreSQL:
``synchronous_commit`` as the server has it). Loads: one event per append, one writer;
64 events per append, one writer; one event per append from three recorders on the same
log at once (three daemons' writers; on SQLite, three connections to one file). The
daemon's own group commit, socket and views are not in these figures (bench/ingest.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from eventstore.record import NewEvent
from eventstore.store import EventStore, open_store


async def _run(urls: list[str], batches: list[list[NewEvent]]) -> float:
    """Events per second appending ``batches`` split over one recorder per URL."""
    stores: list[EventStore] = [await open_store(url) for url in urls]
    try:
        async def one(store: EventStore, mine: list[list[NewEvent]]) -> None:
            for batch in mine:
                await store.append(batch)

        started = time.perf_counter()
        await asyncio.gather(*(one(store, batches[i::len(stores)])
                               for i, store in enumerate(stores)))
        took = time.perf_counter() - started
        assert sum(map(len, batches)) == await stores[0].last_seq()
        assert (await stores[0].verify()).ok
    finally:
        for store in stores:
            await store.close()
    return sum(map(len, batches)) / took


def schema_url(dsn: str, prefix: str = "bench_") -> tuple[str, str]:
    """A fresh schema of ``dsn`` (``prefix`` and 12 hex digits) and the URL whose
    ``search_path`` names it."""
    schema = f"{prefix}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in dsn else "?"
    return schema, f"{dsn}{sep}options=-csearch_path%3D{schema}"


def measure(dsn: str, kind: str, group: int, writers: int, count: int) -> float:
    from bench.pg_driver import make_events  # asyncpg: the bench extra, not the tests'

    events = make_events(count, f"{kind[0]}{uuid.uuid4().hex[:8]}")
    batches = [events[i:i + group] for i in range(0, len(events), group)]
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite:///{Path(directory) / 'log.db'}"
            return asyncio.run(_run([url] * writers, batches))
    schema, url = schema_url(dsn)
    try:
        return asyncio.run(_run([url] * writers, batches))
    finally:
        drop_schema(dsn, schema)


def drop_schema(dsn: str, schema: str) -> None:
    """Drop ``schema`` of ``dsn`` with everything in it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


LOADS = [("1 event per append, 1 writer", 1, 1, 1000),
         ("64 events per append, 1 writer", 64, 1, 64 * 100),
         ("1 event per append, 3 writers at once", 1, 3, 1500)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_store")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    for name, group, writers, count in LOADS:
        rates: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        for _ in range(args.repeats):
            # Turns within each repeat: the machine's other load falls on both alike.
            for kind, found in rates.items():
                found.append(measure(args.dsn, kind, group, writers, count))
        figure = {"load": name, "events": count, "repeats": args.repeats,
                  **{f"{kind}_events_per_s": round(statistics.median(r))
                     for kind, r in rates.items()}}
        results.append(figure)
        print(json.dumps(figure), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
