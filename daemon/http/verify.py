"""The chain's status for ``GET /api/v1/verify``: re-hashed in the background.

A ``Verifier`` walks the hash chain (``eventstore.verify``) on its own read-only
connection to the log (the SQLite file, or the PostgreSQL log on a session of its own),
on a worker thread: the whole log once after start, then, every ``interval_s``, only the
events appended since (each chained on the last hash it checked), so an intact chain is
confirmed up to the newest seq at little cost. The endpoint only reports the last
result; no request starts a walk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventstore.canonical import GENESIS_HASH
from eventstore.errors import StorageDamagedError, TradelogError
from eventstore.recorder import open_sqlite
from eventstore.store import StoreURL
from eventstore.verify import check_rows, rows_after, unreadable_reason
from schemas.values import format_time

__all__ = ["Verifier"]


@dataclass
class _Walk:
    seq: int = 0
    hash: str = GENESIS_HASH
    bad_seq: int | None = None
    reason: str = ""


_CHUNK = 50_000
"""Events re-hashed per read transaction (a long one would hold back WAL checkpoints)."""


Checked = tuple[int, str, int | None, str]
"""``eventstore.verify.check_rows``' answer: (checked, last good hash, bad seq, reason)."""
Check = Callable[[Iterator[tuple[Any, ...]]], Checked]
InChunk = Callable[[int, int, Check], Checked]
"""``(after, before, check)``: ``check`` of the stored rows with ``after < seq < before``
(in seq order), run in one read transaction."""


def _walk(store: StoreURL, start: _Walk) -> _Walk:
    """Re-hash the events of ``store`` after ``start.seq``; the new position, or the
    first bad seq.

    Raises:
        TradelogError: the log cannot be opened or read (the server unreachable, the
            file missing): ``Verifier.status`` says unavailable.
    """
    walk = _Walk(start.seq, start.hash)
    if store.kind == "postgresql":
        _walk_postgresql(store.conninfo or "", walk)
        return walk
    assert store.path is not None
    conn = open_sqlite(store.path, readonly=True, busy_timeout_s=5.0)

    def in_chunk(after: int, before: int, check: Check) -> Checked:
        conn.execute("BEGIN")
        try:
            with closing(rows_after(conn, after, before)) as rows:
                return check(rows)
        finally:
            conn.execute("COMMIT")

    try:
        _chunks(in_chunk, walk)
    except sqlite3.Error as exc:
        walk.bad_seq, walk.reason = walk.seq + 1, unreadable_reason(exc)
    finally:
        conn.close()
    return walk


def _walk_postgresql(conninfo: str, walk: _Walk) -> None:
    """``_walk`` on a PostgreSQL log: each chunk in one read-only snapshot
    (``eventstore.postgres.reads``) of a session opened for the walk."""
    from eventstore.postgres.connect import Connection, connect
    from eventstore.postgres.reads import rows_after as pg_rows_after
    from eventstore.postgres.reads import snapshot

    conn = connect(conninfo, readonly=True)

    def in_chunk(after: int, before: int, check: Check) -> Checked:
        def read(snap: Connection) -> Checked:
            with closing(pg_rows_after(snap, after, before)) as rows:
                return check(rows)

        return snapshot(conn, read)

    try:
        _chunks(in_chunk, walk)
    finally:
        conn.close()


def _chunks(in_chunk: InChunk, walk: _Walk) -> None:
    """Re-hash ``_CHUNK`` events at a time after ``walk.seq``
    (``eventstore.verify.check_rows``, the chain's one rule), moving ``walk`` on to the
    last good one, until a chunk comes short (the end of the log) or a seq is bad."""
    try:
        while walk.bad_seq is None:
            before = walk.seq
            checked, last_hash, bad_seq, reason = in_chunk(
                walk.seq, walk.seq + _CHUNK + 1,
                lambda rows: check_rows(rows, walk.hash, walk.seq + 1))
            walk.seq, walk.hash = walk.seq + checked, last_hash
            if bad_seq is not None:
                walk.bad_seq, walk.reason = bad_seq, reason
            if walk.seq - before < _CHUNK:
                break
    except StorageDamagedError as exc:
        walk.bad_seq, walk.reason = exc.seq, exc.why


class Verifier:
    """The background chain check of the log in ``store`` (a SQLite file or a PostgreSQL
    log), every ``interval_s`` seconds."""

    def __init__(self, store: StoreURL, interval_s: float = 60.0) -> None:
        self.store = store
        self.interval_s = interval_s
        self._walk = _Walk()
        self._checked_at: datetime | None = None
        self._error: str | None = None
        self.wake = asyncio.Event()

    def status(self, last_seq: int) -> dict[str, Any]:
        """``{"status", "verified_seq", "last_seq", "checked_at", "bad_seq", "reason"}``:
        ``status`` is ``intact`` (events 1..``verified_seq`` re-hashed and chained),
        ``damaged`` (``bad_seq`` is the first that fails, ``reason`` why), ``pending``
        (no walk has finished yet) or ``unavailable`` (the log could not be read:
        ``reason``). ``checked_at``: when the last walk ended (UTC), None before."""
        if self._walk.bad_seq is not None:
            status = "damaged"
        elif self._error is not None:
            status = "unavailable"
        elif self._checked_at is None:
            status = "pending"
        else:
            status = "intact"
        return {"status": status, "verified_seq": self._walk.seq, "last_seq": last_seq,
                "checked_at": format_time(self._checked_at) if self._checked_at else None,
                "bad_seq": self._walk.bad_seq,
                "reason": self._walk.reason or self._error}

    async def run(self, stop: asyncio.Event) -> None:
        """Walk now, then every ``interval_s`` (or when ``wake`` is set) until ``stop``;
        a damaged chain is not walked again (its first bad seq stays reported)."""
        while not stop.is_set() and self._walk.bad_seq is None:
            try:
                self._walk = await asyncio.to_thread(_walk, self.store, self._walk)
                self._error = None
            except TradelogError as exc:
                self._error = str(exc)
            self._checked_at = datetime.now(UTC)
            self.wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            try:
                await asyncio.wait(waits, timeout=self.interval_s,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
