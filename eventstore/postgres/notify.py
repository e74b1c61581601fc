"""Waking up on new events, whichever daemon stored them: LISTEN/NOTIFY to wake, reads by
seq to catch up.

Each append transaction that stores events sends ``pg_notify(channel, payload)``
(``writes.append_group``), the payload its last seq, then a space and the writer's
origin when it has one (``eventstore.postgres.tail.Tail``); PostgreSQL delivers
notifications at commit, in commit order, to every session listening on the channel, on
any host. ``Waker`` holds one such session
on a thread of its own and wakes the waiters of its event loop. A notification only says
"look again": readers always read by seq from where they are, so an event is never missed
(a lost notification, or one sent while the session was being reconnected, costs at most
``poll_s`` of delay) and never given twice.

Seq is gapless to readers too: an append commits, and becomes visible, before its lock is
released, so the next append commits after it; a snapshot that shows seq N+1 shows N.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING

import psycopg

from eventstore.postgres.connect import connect

if TYPE_CHECKING:
    from eventstore.postgres.connect import Connection

__all__ = ["Waker", "channel"]


def channel(key: int) -> str:
    """The NOTIFY channel of the log whose advisory-lock key is ``key``: named by the low
    32 bits, its events table's oid (``ddl.LOCK_CLASS`` is the high half)."""
    return f"tradelog_{key & 0xFFFFFFFF:d}"


def _seq_named(text: str) -> int:
    """The seq a notification's payload names, 0 when it names none a log can hold (any
    session on the database may send one on the channel: it only wakes the readers)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else 0


class Waker:
    """One LISTEN session for one log; ``await wait(after)`` returns once the log may hold
    an event past seq ``after`` (a notification came, the session was re-made, or
    ``timeout`` passed). Create with ``Waker(conninfo, key)``, ``start()`` it inside the
    event loop that waits, ``close()`` at the end."""

    def __init__(self, conninfo: str, key: int, *, retry_s: float = 1.0,
                 own_origin: str = "") -> None:
        self.conninfo = conninfo
        self.own_origin = own_origin
        """Notifications of this writer's origin (the waiting daemon's own commits,
        which it learns of from its writer) are let pass without waking anyone."""
        self.channel = channel(key)
        self.retry_s = retry_s
        self.notified = 0
        """The highest seq a notification named (0: none yet)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._conn: Connection | None = None

    def start(self) -> None:
        """Start listening (from a coroutine of the loop whose tasks will ``wait``)."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._thread = threading.Thread(target=self._listen, name="tradelog-pg-listen",
                                        daemon=True)
        self._thread.start()

    def _wake(self, seq: int) -> None:
        self.notified = max(self.notified, seq)
        if self._changed is not None:
            self._changed.set()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                # The primary (target_session_attrs=read-write): notifications are sent
                # there, and a standby refuses LISTEN.
                conn = connect(self.conninfo, readonly=False)
            except Exception:
                self._stop.wait(self.retry_s)
                continue
            self._conn = conn
            try:
                conn.execute(f"LISTEN {self.channel}")
                # Anything committed while no session listened is found by the readers'
                # next read by seq: wake them once the session is in place.
                self._post(0)
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=0.5):
                        seq, _, origin = note.payload.partition(" ")
                        if not origin or origin != self.own_origin:
                            self._post(_seq_named(seq))
            except psycopg.Error:
                self._stop.wait(self.retry_s)
            finally:
                self._conn = None
                with contextlib.suppress(psycopg.Error):
                    conn.close()

    def _post(self, seq: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake, seq)

    async def wait(self, after: int, timeout: float) -> None:
        """Return once a notification names a seq past ``after`` (at once if one already
        did), the listening session was re-made, or after ``timeout`` seconds."""
        if self._changed is None:
            raise RuntimeError("Waker.start() first")
        if self.notified > after:
            return
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def close(self) -> None:
        """Stop listening and end the session."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
