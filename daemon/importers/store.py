"""Where ``tradelog import`` writes: the running daemon, or the database file itself.

``open_store`` gives the same three calls either way: ``append`` a batch (PROTOCOL.md
``append`` result), ``query`` a view (``query`` result) and ``read`` stored events (as
wire dicts, the stored fields included). Through the daemon by default; with ``db`` the
file is opened directly, holding the daemon's lock so the two never mix (the views are
brought up to date first, as the daemon does at start).
"""

from __future__ import annotations

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
from eventstore.record import NewEvent
from eventstore.recorder import Recorder
from projections.query import ViewQuery, query_view
from projections.startup import open_views
from schemas import parse_event

__all__ = ["Store", "open_store"]


@dataclass(frozen=True)
class Store:
    """The calls an import makes (module docstring)."""

    append: Appender
    query: Query
    read: Read


@asynccontextmanager
async def open_store(db: Path | None, socket: Path,
                     metadata: dict[str, Any]) -> AsyncIterator[Store]:
    """The daemon at ``socket``, or with ``db`` the file itself (``metadata`` is stored
    with each event appended there, as the daemon stores a peer's).

    Raises:
        OSError, RemoteError: the daemon cannot be reached or refuses (client errors).
        DatabaseFileError: ``db`` is in use by another tradelog process.
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
    with hold_lock(db):
        recorder = await Recorder.open(db)
        try:
            await open_views(recorder)

            async def append(batch: list[dict[str, Any]]) -> dict[str, Any]:
                outcome = await recorder.append(
                    [NewEvent.from_model(parse_event(e), metadata) for e in batch])
                return {"results": [r.to_wire() for r in outcome.results]}

            async def query(view: str, **params: Any) -> dict[str, Any]:
                return await query_view(recorder, ViewQuery(view, **params))

            async def read_file(from_seq: int, account: str, types: list[str]
                                ) -> list[dict[str, Any]]:
                return [{"seq": e.seq, "source": e.source, "id": e.event_id,
                         "type": e.event_type, "data": e.data}
                        for e in await recorder.read(from_seq, PAGE, account, types)]

            yield Store(append, query, read_file)
        finally:
            await recorder.close()
