"""One client connection: the shell between the socket and the wire protocol.

An ``asyncio.Protocol`` that moves bytes: what the socket gives goes into the
connection's ``ServerProtocol`` (``daemon.wire``), the requests it hands out are started
by a ``CallRunner`` (``daemon.calls``), and the answer lines it gives back are written.
What is left here is what needs the event loop: flow control (the socket is not read
while the protocol wants no data; subscription pumps wait while the socket's buffer is
full), the deadline of an unfinished line, the write timeout of a client that does not
read, the connection counts, and the turns (other connections are served between two).

The connection is the ``Outbox`` of its subscriptions; the server reaches it only
through its public methods (``stop_reading``, ``cancel_reads``, ``pending_answers``,
``unsent``, ``taken``, ``abort``, ``finish``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

from daemon.access import Peer
from daemon.calls import CallRunner, encoded
from daemon.config import Limits
from daemon.logs import get_logger
from daemon.service import Service
from daemon.sockets import FLOW_HIGH, FLOW_LOW, Deadline, WriteFlow, peer_credentials, peer_gone
from daemon.wire.framing import TURN_MEMBERS
from daemon.wire.protocol import (
    Group,
    LineTooLong,
    Requests,
    ServerProtocol,
    Slot,
    Wait,
    error_line,
    unfinished_line_error,
)
from daemon.wire.rpc import INVALID_REQUEST

__all__ = ["Connection"]

log = get_logger("tradelog.connection")


class Connection(asyncio.Protocol):
    """The daemon's side of one client connection."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.transport: asyncio.Transport | None = None
        self._peer = Peer(None, None, None)
        self.wire = ServerProtocol(lambda: self.service.config.limits)
        self.calls = CallRunner(service, self)
        self.flow = WriteFlow(lambda: self.limits.write_timeout_s, self.taken,
                              self._not_reading)
        self.reading_paused = False
        self._room = asyncio.Event()
        self._room.set()
        self._partial = Deadline(self._partial_expired)
        self._abort_timer: asyncio.TimerHandle | None = None
        self._turn: asyncio.Handle | None = None
        self._batch: asyncio.Handle | None = None
        self._counted = False

    @property
    def limits(self) -> Limits:
        """The limits in force (they change on a config reload)."""
        return self.service.config.limits

    @property
    def peer(self) -> Peer:
        """The client's credentials (Nones until connected, or when unknown)."""
        return self._peer

    @property
    def closed(self) -> bool:
        """True once closing or closed: no more requests are read, nothing new is sent."""
        return self.wire.closed

    @property
    def writable(self) -> bool:
        """False while the socket's buffer is above ``FLOW_HIGH`` (until it drains)."""
        return not self.flow.paused

    # ------------------------------------------------------------ lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Take the peer's credentials and count the connection, or refuse it past a limit."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        # Pumps pause well before the answer budget: on their own they never pass it.
        high = min(FLOW_HIGH, self.limits.max_answer_bytes // 4)
        transport.set_write_buffer_limits(high=high, low=min(FLOW_LOW, high // 4))
        self._peer = peer_credentials(transport.get_extra_info("socket"))
        limits = self.limits
        why = self.service.connections.refusal(
            self._peer.uid, min(limits.max_connections, self.service.connection_cap),
            limits.max_connections_per_uid)
        if why is not None:
            self.service.refused_connections.log(
                log, "warning", "connection_refused", reason=why, peer_pid=self._peer.pid,
                peer_uid=self._peer.uid)
            self._write(error_line(None, INVALID_REQUEST, why), force=True)
            self.close_soon()
            return
        self.service.connections.add(self, self._peer.uid)
        self._counted = True
        self._update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        """Mark the connection closed, uncount it, drop its subscriptions and the work
        whose answers can no longer be delivered (appends already queued still commit)."""
        self.wire.close()
        self.wire.lines.clear()
        self.flow.release()
        self._room.set()
        self._partial.set(None)
        for timer in (self._turn, self._abort_timer, self._batch):
            if timer is not None:
                timer.cancel()
        if self._counted:
            self.service.connections.remove(self, self._peer.uid)
            self._counted = False
        self.service.subscriptions.forget(self)
        self.calls.ended()

    def close_soon(self, grace_s: float | None = None) -> None:
        """Close once what is written is flushed; abort if it is not read within ``grace_s``
        (default: the write timeout; ``math.inf``: never, but at shutdown)."""
        if self.transport is None or self.closed:
            return
        self.wire.close()
        self._room.set()
        self.transport.close()
        transport = self.transport
        grace_s = self.limits.write_timeout_s if grace_s is None else grace_s
        if math.isfinite(grace_s):
            self._abort_timer = self._loop.call_later(grace_s, transport.abort)

    def close(self) -> None:
        """``Outbox.close``: close once what is written is read, however late."""
        self.close_soon(grace_s=math.inf)

    def abort(self) -> None:
        """Cut the connection off now, dropping what is not yet sent."""
        self.wire.close()
        if self.transport is not None:
            self.transport.abort()

    def finish(self) -> None:
        """At the end of a drain: close if every answer was taken, else cut off."""
        if self.transport is not None:
            if self.transport.get_write_buffer_size():
                self.transport.abort()
            else:
                self.transport.close()

    def stop_reading(self) -> None:
        """Take no new requests (used while draining)."""
        self.wire.stop()
        self._update_reading()

    def cancel_reads(self) -> None:
        """Cancel the reads not yet answered (at shutdown: nothing is lost by it)."""
        self.calls.cancel_reads()

    def pending_answers(self) -> list[asyncio.Future[Any]]:
        """The work whose answers are still to come (group commits, reads)."""
        return list(self.calls.pending)

    def _update_reading(self) -> None:
        """Read the socket only while the protocol wants data (bounded buffers and work)."""
        if self.transport is None or self.wire.closed or self.wire.lines.ended:
            return
        pause = not self.wire.wants_data()
        if pause and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        elif not pause and self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def _finish_if_done(self) -> None:
        """After the peer's EOF: close once every answer is written (not while subscribed)."""
        if (self.wire.lines.ended and not self.closed and not self.wire.inflight
                and not self.service.subscriptions.count(self) and not self.wire.lines.backlog):
            self.close_soon()

    # ------------------------------------------------------------ writing

    def _write(self, line: bytes, force: bool = False) -> None:
        """Write one NDJSON line; dropped once closed unless ``force``."""
        if self.transport is None or (self.wire.closed and not force):
            return
        if self.transport.is_closing():
            return
        self.transport.write(line)
        self.wire.sent(len(line))
        if not force and self.wire.note_waiting(self.transport.get_write_buffer_size()):
            self._passed_budget()

    def send_notification(self, message: dict[str, Any], force: bool = False) -> None:
        """``Outbox.send_notification``: one JSON-RPC notification as an NDJSON line."""
        data = encoded(message)
        if data is not None:
            self._write(data + b"\n", force)

    def waiting_bytes(self) -> int:
        """Answer bytes written and not yet taken by the client."""
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def unsent(self) -> int:
        """Answer bytes waiting on an open transport (0 once it is closing)."""
        if self.transport is None or self.transport.is_closing():
            return 0
        return self.waiting_bytes()

    def taken(self) -> int:
        """Answer bytes the client has taken so far (written less those still waiting)."""
        return self.wire.taken(self.waiting_bytes())

    def _passed_budget(self) -> None:
        """More than ``max_answer_bytes`` wait to be sent: stop reading until the client
        takes them (``resume_writing``), and end this connection's subscriptions."""
        self._room.clear()
        self._update_reading()
        limit = self.limits.max_answer_bytes
        self.service.subscriptions.close_all(
            self, f"more than {limit} bytes of answers wait for this connection to read "
            f"them (limits.max_answer_bytes)")

    def pause_writing(self) -> None:
        """Called when the transport holds more than ``FLOW_HIGH`` bytes: subscription
        pumps wait. The connection is cut off if the client takes none of it for
        ``write_timeout_s``."""
        self.flow.pause()

    def resume_writing(self) -> None:
        """The transport's buffer drained below ``FLOW_LOW``: cancel the write timeout and
        read requests again if the answer budget had been passed."""
        self.flow.resume()
        if self.wire.drained():
            self._room.set()
            self._drained()

    def _not_reading(self) -> None:
        """No answer taken for ``write_timeout_s``: a subscriber is told where to resume
        (``subscription_closed`` after what is written, at most ``FLOW_HIGH`` bytes) and
        closed once it reads that; any other client is cut off."""
        if self.closed:
            return
        timeout = self.limits.write_timeout_s
        self.service.throttle("client_not_reading").log(
            log, "warning", "client_not_reading", peer_pid=self._peer.pid,
            peer_uid=self._peer.uid, timeout_s=timeout)
        if self.service.subscriptions.count(self):
            self.service.subscriptions.close_all(
                self, f"subscriber too slow: took none of its notifications for {timeout} s "
                "(limits.write_timeout_s); disconnected")
            self.close()
        else:
            self.abort()

    async def wait_writable(self) -> bool:
        """Wait until the client has read enough of its answers; False if it never does."""
        if self.flow.paused:
            await self.flow.wait()
        return not self.closed

    async def room(self) -> None:
        """Wait until the answers waiting are within ``max_answer_bytes`` (or closed)."""
        await self._room.wait()

    @contextlib.asynccontextmanager
    async def read_turn(self) -> AsyncIterator[None]:
        """This connection's turn to read the log (for a subscription's pump): after its
        earlier reads, in one of the service's slots, as requests get theirs."""
        async with self.calls.reads, self.service.reads_running:
            yield

    # ------------------------------------------------------------ reading

    def data_received(self, data: bytes) -> None:
        """Give incoming bytes to the protocol and handle the complete lines."""
        if self.wire.receive_data(data):
            self._take_lines()

    def _take_lines(self) -> None:
        """Dispatch complete lines while the budgets allow, a turn's worth; the rest waits
        (the socket not read). A line over ``max_line_bytes``: -32600, closed."""
        self._turn = None
        if self._batch is not None:
            return  # a batch's members are still being started: they go first
        loop = self._loop
        now = loop.time()
        while self._batch is None:
            event = self.wire.next_event(now)
            if isinstance(event, Requests):
                self._dispatch(event)
            elif isinstance(event, LineTooLong):
                self._oversized(event)
                return
            else:
                break
        if event is Wait.STOPPED:
            return
        if event is Wait.TURN_OVER:
            self._turn = loop.call_soon(self._take_lines)
        self._partial.set(self.wire.lines.partial_deadline)
        self._update_reading()
        if self.wire.lines.ended:
            self._finish_if_done()

    def _dispatch(self, event: Requests, start: int = 0) -> None:
        """Start a line's calls, at most ``TURN_MEMBERS`` of a batch per loop turn (the
        rest next turn, before any later line, so appends keep their order)."""
        if not start:
            for refusal in event.refusals:
                self.calls.note_refusal(refusal)
        self._batch = None
        if self.wire.closed:
            return
        end = start + TURN_MEMBERS
        for slot in event.calls[start:end]:
            self.calls.start(slot)
        if end < len(event.calls):
            self._batch = self._loop.call_soon(self._dispatch, event, end)
            return
        line = self.wire.dispatched(event.group)
        if not event.group.waiting:
            self._answered(event.group, line)
        if start and self._turn is None:  # the lines after the batch, next turn
            self._turn = self._loop.call_soon(self._take_lines)

    def _answered(self, group: Group, line: bytes | None) -> None:
        """A group is answered: write its line, then run what waited for it."""
        if line is not None:
            self._write(line)
        for action in group.after:
            action()

    def deliver(self, slot: Slot, data: bytes | None) -> None:
        """``Caller.deliver``: ``slot``'s answer; written once its group is complete."""
        line, complete = self.wire.answer(slot, data)
        if complete:
            self._answered(slot.group, line)
            self._drained()

    def cancelled(self, slot: Slot) -> None:
        """``Caller.cancelled``: ``slot``'s work was cancelled; its group goes unanswered."""
        _, complete = self.wire.cancel(slot)
        if complete:
            self._answered(slot.group, None)
            self._drained()

    def _drained(self) -> None:
        """Answers went out: take buffered lines again if the budgets now allow."""
        self._update_reading()
        if self._turn is None and self.wire.can_take():
            self._turn = self._loop.call_soon(self._take_lines)
        if self.wire.lines.ended:
            self._finish_if_done()

    def eof_received(self) -> bool | None:
        """Called when the peer stops sending: drop its unfinished line (complete lines
        still buffered are handled).

        Returns True: the transport stays open for answers; we close it ourselves.
        """
        # A last line without "\n" is not processed (PROTOCOL.md). A peer that only shut
        # its sending half still gets its answers; one that closed entirely gets nothing,
        # and keeping its connection would leak it until the next write.
        self.wire.receive_eof()
        self._partial.set(self.wire.lines.partial_deadline)
        if peer_gone(self.transport.get_extra_info("socket") if self.transport else None):
            self.abort()
            return True
        self._drained()
        return True

    def _partial_expired(self) -> None:
        self.service.throttle("partial_line_timeout").log(
            log, "warning", "partial_line_timeout", peer_pid=self._peer.pid,
            peer_uid=self._peer.uid, buffered_bytes=len(self.wire.lines))
        self._write(unfinished_line_error())
        self.wire.lines.clear()
        self.close_soon()

    def _oversized(self, event: LineTooLong) -> None:
        self.service.throttle("line_too_long").log(
            log, "warning", "line_too_long", peer_pid=self._peer.pid,
            peer_uid=self._peer.uid, limit_bytes=event.limit)
        self._write(event.data)
        self.close_soon()
