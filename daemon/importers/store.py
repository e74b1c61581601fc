"""Where ``tradelog import`` writes: the running daemon, the database file itself, or
a PostgreSQL log itself.

``open_store`` gives the same three calls each way: ``append`` a batch (PROTOCOL.md
``append`` result), ``query`` a view (``query`` result) and ``read`` stored events (as
wire dicts, the stored fields included). Through the daemon by default; with a file
the file is opened directly, holding the daemon's lock so the two never mix (the views
are brought up to date first, as the daemon does at start).

On a PostgreSQL log this process appends as one more daemon's writer would, with the
calls ``daemon.writer.pgcore.PgWriterCore`` makes: the views brought up to date under
the log's lock at open (``projections.pgviews.open_views``), then each batch committed
by ``eventstore.postgres.writes.append_group`` with the views' rows in its transaction,
under the log's append lock, after folding what other writers appended since. So it is
safe beside daemons serving the log: they take the same lock for each commit, fold this
process's events before their next one, and their subscribers get them (the commit's
notification). Views and reads come from a read-only ``PgRecorder``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.client import AsyncClient
from daemon.importers.reconcile import Query
from daemon.importers.run import Appender
from daemon.importers.void import PAGE, Read
from daemon.lockfile import hold_lock
from eventstore.record import AppendRequest, NewEvent
from eventstore.recorder import Recorder
from eventstore.store import StoreURL, ViewReader, open_reader
from projections.query import ViewQuery, query_view
from projections.startup import open_views
from schemas import parse_event

__all__ = ["BUSY_TIMEOUT_S", "Store", "open_store"]


@dataclass(frozen=True)
class Store:
    """The calls an import makes (module docstring)."""

    append: Appender
    query: Query
    read: Read


@asynccontextmanager
async def open_store(db: Path | StoreURL | None, socket: Path,
                     metadata: dict[str, Any]) -> AsyncIterator[Store]:
    """The daemon at ``socket``, or with ``db`` the log itself: a SQLite file (its path,
    or a ``sqlite`` store URL) or a PostgreSQL log (a ``postgresql`` store URL).
    ``metadata`` is stored with each event appended there, as the daemon stores a peer's.

    Raises:
        OSError, RemoteError: the daemon cannot be reached or refuses (client errors).
        DatabaseFileError: the file is in use by another tradelog process; not a
            tradelog log.
        StorageUnavailableError: the PostgreSQL server cannot be reached or refuses.
    """
    if db is None:
        async with AsyncClient(socket) as client:

            async def read(from_seq: int, account: str, types: list[str]
                           ) -> list[dict[str, Any]]:
                answer = await client.read(from_seq, PAGE, account, types)
                events: list[dict[str, Any]] = answer["events"]
                return events

            yield Store(client.append, client.query, read)
        return
    if isinstance(db, StoreURL):
        if db.kind != "sqlite":
            async with _postgresql(db, metadata) as store:
                yield store
            return
        assert db.path is not None
        db = db.path
    with hold_lock(db):
        recorder = await Recorder.open(db)
        try:
            await open_views(recorder)

            async def append(batch: list[dict[str, Any]]) -> dict[str, Any]:
                outcome = await recorder.append(
                    [NewEvent.from_model(parse_event(e), metadata) for e in batch])
                return {"results": [r.to_wire() for r in outcome.results]}

            yield Store(append, *_reading(recorder))
        finally:
            await recorder.close()


def _reading(reader: ViewReader) -> tuple[Query, Read]:
    """``query`` and ``read`` of a ``Store`` on a log opened in this process."""

    async def query(view: str, **params: Any) -> dict[str, Any]:
        return await query_view(reader, ViewQuery(view, **params))

    async def read(from_seq: int, account: str, types: list[str]) -> list[dict[str, Any]]:
        return [{"seq": e.seq, "source": e.source, "id": e.event_id, "type": e.event_type,
                 "data": e.data} for e in await reader.read(from_seq, PAGE, account, types)]

    return query, read


BUSY_TIMEOUT_S = 30.0
"""How long an append to a PostgreSQL log waits for its lock, retrying, while daemons
commit (each holds it for milliseconds)."""


@asynccontextmanager
async def _postgresql(url: StoreURL, metadata: dict[str, Any]) -> AsyncIterator[Store]:
    """``Store`` on the PostgreSQL log ``url`` (module docstring)."""
    from daemon.writer.pgcore import open_log
    from eventstore.busy import retry_busy
    from eventstore.postgres.writes import append_group

    assert url.conninfo is not None
    conn, key, runner, _, spelling = await asyncio.to_thread(open_log, url.conninfo,
                                                             BUSY_TIMEOUT_S)
    try:
        reader = await open_reader(url)
        try:

            async def append(batch: list[dict[str, Any]]) -> dict[str, Any]:
                request = AppendRequest(
                    [NewEvent.from_model(parse_event(e), metadata) for e in batch])
                [outcome] = await asyncio.to_thread(retry_busy, lambda: append_group(
                    conn, key, [request], runner, spelling), BUSY_TIMEOUT_S)
                if outcome.error is not None:
                    raise outcome.error
                return {"results": [r.to_wire() for r in outcome.results]}

            yield Store(append, *_reading(reader))
        finally:
            await reader.close()
    finally:
        conn.close()
