"""Socket-side helpers of the server shell: the peer's credentials, whether the peer is
gone, and the write side's flow control (a client that takes none of its answers for
``write_timeout_s`` is stuck)."""

from __future__ import annotations

import asyncio
import select
import socket
import struct
from collections.abc import Callable

from daemon.access import Peer, peer_groups

__all__ = ["FLOW_HIGH", "FLOW_LOW", "Deadline", "WriteFlow", "peer_credentials", "peer_gone"]

FLOW_HIGH = 256 << 10
"""Bytes waiting in a connection's transport above which subscription pumps wait (and
the write timeout runs) until it drains below ``FLOW_LOW`` (both at most a quarter of
``max_answer_bytes``)."""
FLOW_LOW = 64 << 10


def peer_credentials(sock: socket.socket | None) -> Peer:
    """pid/uid/gid of the peer of a Unix socket (SO_PEERCRED) and its supplementary
    groups (``peer_groups``); Nones when unavailable."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return Peer(None, None, None)
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return Peer(None, None, None)
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid, peer_groups(sock, pid, uid, gid))


def peer_gone(sock: socket.socket | None) -> bool:
    """True once the peer closed its socket entirely (not just its sending half): for
    a Unix stream socket that shows as POLLHUP. False without a socket."""
    if sock is None:
        return False
    poller = select.poll()
    try:
        poller.register(sock.fileno(), select.POLLIN)
        return any(mask & select.POLLHUP for _, mask in poller.poll(0))
    except (OSError, ValueError):
        return True


class WriteFlow:
    """The write side of one transport: ``paused`` between the transport's
    ``pause_writing`` and ``resume_writing``. While paused, every ``timeout_s()``
    seconds the bytes the client took (``taken()``) are compared: none taken calls
    ``stuck()``; some taken starts another period (slow, not stuck)."""

    def __init__(self, timeout_s: Callable[[], float], taken: Callable[[], int],
                 stuck: Callable[[], None]) -> None:
        self.paused = False
        self._timeout_s = timeout_s
        self._taken = taken
        self._stuck = stuck
        self._writable = asyncio.Event()
        self._writable.set()
        self._timer: asyncio.TimerHandle | None = None
        self._mark = 0

    def pause(self) -> None:
        """The transport's buffer passed its high mark: start the write timeout."""
        self.paused = True
        self._writable.clear()
        self._arm()

    def resume(self) -> None:
        """The buffer drained below its low mark: cancel the write timeout."""
        self.paused = False
        self._writable.set()
        self.cancel()

    def release(self) -> None:
        """The connection is gone: wake whoever waits, run no timer."""
        self._writable.set()
        self.cancel()

    def cancel(self) -> None:
        """Stop the write timeout."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def wait(self) -> None:
        """Wait until not paused (or ``release``)."""
        await self._writable.wait()

    def _arm(self) -> None:
        self.cancel()
        self._mark = self._taken()
        self._timer = asyncio.get_running_loop().call_later(self._timeout_s(), self._check)

    def _check(self) -> None:
        self._timer = None
        if not self.paused:
            return
        if self._taken() > self._mark:
            self._arm()
            return
        self._stuck()


class Deadline:
    """One timer kept at a deadline that moves (an unfinished line's): re-armed only
    when the deadline changes; ``expired`` runs when it passes."""

    def __init__(self, expired: Callable[[], None]) -> None:
        self._expired = expired
        self._at: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def set(self, at: float | None) -> None:
        """Move the deadline to loop time ``at`` (None: no deadline)."""
        if at == self._at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._at = at
        if at is not None:
            self._timer = asyncio.get_running_loop().call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._at = None
        self._expired()
