"""The chain's status for ``GET /api/v1/verify``: re-hashed in the background.

A ``Verifier`` walks the hash chain (``eventstore.verify``) on its own read-only
connection, on a worker thread: the whole log once after start, then, every
``interval_s``, only the events appended since (each chained on the last hash it
checked), so an intact chain is confirmed up to the newest seq at little cost. The
endpoint only reports the last result; no request starts a walk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventstore.canonical import GENESIS_HASH
from eventstore.errors import StorageDamagedError, TradelogError
from eventstore.recorder import open_sqlite
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


def _walk(path: Path, start: _Walk) -> _Walk:
    """Re-hash the events after ``start.seq``; the new position, or the first bad seq."""
    conn = open_sqlite(path, readonly=True, busy_timeout_s=5.0)
    walk = _Walk(start.seq, start.hash)
    try:
        while walk.bad_seq is None:
            before = walk.seq
            conn.execute("BEGIN")
            try:
                _chunk(conn, walk)
            finally:
                conn.execute("COMMIT")
            if walk.seq - before < _CHUNK:
                break
    except StorageDamagedError as exc:
        walk.bad_seq, walk.reason = exc.seq, exc.why
    except sqlite3.Error as exc:
        walk.bad_seq, walk.reason = walk.seq + 1, unreadable_reason(exc)
    finally:
        conn.close()
    return walk


def _chunk(conn: sqlite3.Connection, walk: _Walk) -> None:
    """Re-hash up to ``_CHUNK`` events after ``walk.seq`` (``eventstore.verify.check_rows``,
    the chain's one rule), moving ``walk`` on to the last good one."""
    checked, last_hash, bad_seq, reason = check_rows(
        rows_after(conn, walk.seq, walk.seq + _CHUNK + 1), walk.hash, walk.seq + 1)
    walk.seq, walk.hash = walk.seq + checked, last_hash
    if bad_seq is not None:
        walk.bad_seq, walk.reason = bad_seq, reason


class Verifier:
    """The background chain check of the file at ``path``, every ``interval_s``."""

    def __init__(self, path: Path, interval_s: float = 60.0) -> None:
        self.path = path
        self.interval_s = interval_s
        self._walk = _Walk()
        self._checked_at: datetime | None = None
        self._error: str | None = None
        self.wake = asyncio.Event()

    def status(self, last_seq: int) -> dict[str, Any]:
        """``{"status", "verified_seq", "last_seq", "checked_at", "bad_seq", "reason"}``:
        ``status`` is ``intact`` (events 1..``verified_seq`` re-hashed and chained),
        ``damaged`` (``bad_seq`` is the first that fails, ``reason`` why), ``pending``
        (no walk has finished yet) or ``unavailable`` (the file could not be read:
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
                self._walk = await asyncio.to_thread(_walk, self.path, self._walk)
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
