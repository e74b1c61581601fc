"""One client connection: NDJSON framing, limits, JSON-RPC dispatch, flow control.

An ``asyncio.Protocol``: bytes come in through ``data_received``, complete lines are
decoded strictly and dispatched in order (so pipelined appends keep their order in the
writer's queue); answers go out as they are ready, each carrying its ``id``.

Budgets (PROTOCOL.md, "Limits"; docs/PROTOCOL-NOTES.md, "Budgets"): requests read and
not yet answered (batch members one each) are at most ``max_inflight_per_connection``;
past it, and while more than ``max_answer_bytes`` of answers wait to be sent, the
connection is not read. ``read``, ``query`` and ``metrics`` run one at a time per
connection, in order, and at most ``max_reads_running`` over all connections, so one
connection's work never holds back another's answers for long; each answer, and each
batch's answers together, are bounded by ``max_answer_bytes``. At most a turn's worth of
lines is handled before the loop runs other connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from daemon.access import Peer, peer_groups
from daemon.config import Limits
from daemon.jsonread import JSONReadError, encode, loads
from daemon.logs import Throttle, get_logger
from daemon.rpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    Request,
    RpcError,
    answer_id,
    error_answer,
    error_from_exception,
    parse_request,
    result_answer,
)
from daemon.service import Service
from eventstore.record import AppendOutcome

__all__ = ["Connection", "peer_credentials"]

log = get_logger("tradelog.connection")

FLOW_HIGH = 256 << 10
"""Bytes waiting in a connection's transport above which subscription pumps wait (and
the write timeout runs) until it drains below ``FLOW_LOW`` (both at most a quarter of
``max_answer_bytes``)."""
FLOW_LOW = 64 << 10
TURN_LINES = 64
"""Lines handled in one go before the loop serves other connections."""
TURN_BYTES = 1 << 20


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


@dataclass(eq=False)
class _Batch:
    """One batch array's share of the answer budget: bytes of its members' answers so far."""

    budget: int
    used: int = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.used


class Connection(asyncio.Protocol):
    """The daemon's side of one client connection."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.transport: asyncio.Transport | None = None
        self.peer = Peer(None, None, None)
        self.buffer = bytearray()
        self.closed = False
        self.accepting = True
        self.write_paused = False
        self.over_budget = False
        self.inflight = 0
        self.reading_paused = False
        self.eof = False
        self.subscriptions: set[str] = set()
        self.tasks: set[asyncio.Future[Any]] = set()
        self._weights: dict[asyncio.Future[Any], int] = {}
        self._then: dict[asyncio.Future[Any], list[Callable[[], None]]] = {}
        self._reading_tasks: set[asyncio.Future[Any]] = set()
        self._writable = asyncio.Event()
        self._writable.set()
        self._room = asyncio.Event()
        self._room.set()
        self._reads = asyncio.Lock()
        self._partial_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._written = 0
        self._sent_mark = 0
        self._scanned = 0
        self._backlog = False
        self._turn: asyncio.Handle | None = None
        self._counted = False
        self._after_send: list[Callable[[], None]] = []
        self.refusals = Throttle(service.config.limits.refusals_log_interval_s)

    @property
    def limits(self) -> Limits:
        """The limits in force (they change on a config reload)."""
        return self.service.config.limits

    # ------------------------------------------------------------ lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Take the peer's credentials and count the connection, or refuse it past a limit."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # Pumps pause well before the answer budget: on their own they never pass it.
        high = min(FLOW_HIGH, self.limits.max_answer_bytes // 4)
        transport.set_write_buffer_limits(high=high, low=min(FLOW_LOW, high // 4))
        self.peer = peer_credentials(transport.get_extra_info("socket"))
        limits = self.limits
        service = self.service
        cap = min(limits.max_connections, service.connection_cap)
        if len(service.connections) >= cap:
            self._refuse(f"too many connections (limits.max_connections: at most {cap}); "
                         "retry later")
            return
        if service.per_uid.get(self.peer.uid, 0) >= limits.max_connections_per_uid:
            self._refuse(f"too many connections from uid {self.peer.uid} "
                         f"(limits.max_connections_per_uid: at most "
                         f"{limits.max_connections_per_uid}); close some and retry")
            return
        service.connections.add(self)
        service.per_uid[self.peer.uid] = service.per_uid.get(self.peer.uid, 0) + 1
        self._counted = True
        self._update_reading()

    def _refuse(self, why: str) -> None:
        self.service.refused_connections.log(
            log, "warning", "connection_refused", reason=why, peer_pid=self.peer.pid,
            peer_uid=self.peer.uid)
        self.send(error_answer(None, INVALID_REQUEST, why), force=True)
        self.close_soon()

    def connection_lost(self, exc: Exception | None) -> None:
        """Mark the connection closed, uncount it, drop its subscriptions and the work
        whose answers can no longer be delivered (appends already queued still commit)."""
        self.closed = True
        self._writable.set()
        self._room.set()
        self.buffer = bytearray()
        for timer in (self._partial_timer, self._write_timer, self._turn, self._abort_timer):
            if timer is not None:
                timer.cancel()
        if self._counted:
            service = self.service
            service.connections.discard(self)
            service.per_uid[self.peer.uid] -= 1
            if not service.per_uid[self.peer.uid]:
                del service.per_uid[self.peer.uid]
            self._counted = False
        for sid in list(self.subscriptions):
            self.service.drop_subscription(sid)
        for task in [*self.tasks, *self._reading_tasks]:
            task.cancel()
        if self.refusals.held_back:
            self.service.throttle("requests_refused").log(
                log, "info", "requests_refused", peer_pid=self.peer.pid,
                peer_uid=self.peer.uid, refused=self.refusals.held_back)

    def close_soon(self, grace_s: float | None = None) -> None:
        """Close after flushing what is written; abort if the peer does not read it within
        ``grace_s`` (default: the write timeout)."""
        if self.transport is None or self.closed:
            return
        self.closed = True
        self._room.set()
        self.transport.close()
        transport = self.transport
        if grace_s is None:
            grace_s = self.limits.write_timeout_s
        self._abort_timer = asyncio.get_running_loop().call_later(grace_s, transport.abort)

    def stop_reading(self) -> None:
        """Take no new requests (used while draining)."""
        self.accepting = False
        self.buffer.clear()
        self._backlog = False
        self._update_reading()

    def cancel_reads(self) -> None:
        """Cancel the ``read``/``query``/``metrics`` work not yet answered (at shutdown:
        nothing is lost by it, and it must not hold up the stop)."""
        for task in list(self._reading_tasks):
            task.cancel()

    def _update_reading(self) -> None:
        """Read requests only while accepting, below the in-flight limit, while answers
        waiting stay within ``max_answer_bytes``, and while no complete line waits in the
        buffer (so one client cannot make us buffer or work without bound)."""
        if self.transport is None or self.closed or self.eof:
            return
        pause = (not self.accepting or self.over_budget or self._backlog
                 or self.inflight >= self.limits.max_inflight_per_connection)
        if pause and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        elif not pause and self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def _peer_gone(self) -> bool:
        """True once the peer closed its socket entirely (not just its sending half): for
        a Unix stream socket that shows as POLLHUP."""
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is None:
            return False
        poller = select.poll()
        try:
            poller.register(sock.fileno(), select.POLLIN)
            return any(mask & select.POLLHUP for _, mask in poller.poll(0))
        except (OSError, ValueError):
            return True

    def _finish_if_done(self) -> None:
        """After the peer's EOF: close once every answer is written (subscriptions keep
        a half-closed connection open)."""
        if (self.eof and not self.closed and not self.tasks and not self.subscriptions
                and not self._backlog):
            self.close_soon()

    # ------------------------------------------------------------ writing

    def send(self, message: Any, force: bool = False) -> None:
        """Write one JSON-RPC message (or one already encoded, as ``bytes`` without the line
        end) as an NDJSON line; dropped once closed unless ``force``.

        A message that cannot be serialised is logged and answered with -32603 instead.
        """
        if self.transport is None or (self.closed and not force):
            return
        if self.transport.is_closing():
            return
        if isinstance(message, bytes):
            self.transport.write(message)
            self._written += len(message)
            line = b"\n"
        else:
            try:
                line = encode(message) + b"\n"
            except (TypeError, ValueError) as exc:
                log.error("answer_not_serialisable", error=repr(exc))
                line = encode(error_answer(answer_id(message), INTERNAL_ERROR,
                                           "internal error; the daemon logged it")) + b"\n"
        self.transport.write(line)
        self._written += len(line)
        if (not self.over_budget and not force
                and self.transport.get_write_buffer_size() > self.limits.max_answer_bytes):
            self._passed_budget()

    def waiting_bytes(self) -> int:
        """Answer bytes written and not yet taken by the client."""
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def taken(self) -> int:
        """Answer bytes the client has taken so far (written less those still waiting)."""
        return self._written - self.waiting_bytes()

    def _passed_budget(self) -> None:
        """More than ``max_answer_bytes`` wait to be sent: stop reading until the client
        takes them (``resume_writing``), and end this connection's subscriptions."""
        self.over_budget = True
        self._room.clear()
        self._update_reading()
        limit = self.limits.max_answer_bytes
        self.service.close_subscriptions(
            self, f"more than {limit} bytes of answers wait for this connection to read "
            f"them (limits.max_answer_bytes)")

    def pause_writing(self) -> None:
        """Called when the transport holds more than ``FLOW_HIGH`` bytes: subscription
        pumps wait. The connection is cut off if the client takes none of it for
        ``write_timeout_s``."""
        self.write_paused = True
        self._writable.clear()
        self._arm_write_timer()

    def _arm_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
        self._sent_mark = self.taken()
        timeout = self.limits.write_timeout_s
        self._write_timer = asyncio.get_running_loop().call_later(timeout, self._write_check)

    def resume_writing(self) -> None:
        """The transport's buffer drained below ``FLOW_LOW``: cancel the write timeout and
        read requests again if the answer budget had been passed."""
        self.write_paused = False
        self._writable.set()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        if self.over_budget:
            self.over_budget = False
            self._room.set()
            self._update_reading()

    def _write_check(self) -> None:
        """The write timeout ran out: go on if the client took some answers meanwhile,
        otherwise it is not reading: end its subscriptions (each told so, for a client
        that reads again within a grace period) and cut it off."""
        self._write_timer = None
        if self.closed or not self.write_paused:
            return
        if self.taken() > self._sent_mark:
            self._arm_write_timer()  # the client took some: slow, not stuck
            return
        timeout = self.limits.write_timeout_s
        self.service.throttle("client_not_reading").log(
            log, "warning", "client_not_reading", peer_pid=self.peer.pid,
            peer_uid=self.peer.uid, timeout_s=timeout)
        if self.subscriptions:
            self.service.close_subscriptions(
                self, f"subscriber too slow: took none of its notifications for {timeout} s "
                "(limits.write_timeout_s); disconnected")
            self.close_soon()
        elif self.transport is not None:
            self.closed = True
            self.transport.abort()

    async def wait_writable(self) -> bool:
        """Wait until the client has read enough of its answers; False if it never does."""
        if not self.write_paused:
            return not self.closed
        await self._writable.wait()
        return not self.closed

    # ------------------------------------------------------------ reading

    def data_received(self, data: bytes) -> None:
        """Add incoming bytes to the buffer and handle the complete lines in it."""
        if self.closed or self.eof or not self.accepting:
            return
        self.buffer += data
        self._take_lines()

    def _take_lines(self) -> None:
        """Dispatch complete lines while the budgets allow, at most a turn's worth; the
        rest stays buffered (the socket not read meanwhile) until answers drain or the
        next turn. A line over ``max_line_bytes`` is answered with -32600 and the
        connection closed."""
        self._turn = None
        limit = self.limits.max_line_bytes
        start = lines = 0
        partial = False
        while not self.closed and self.accepting:
            if self.inflight >= self.limits.max_inflight_per_connection or self.over_budget:
                break
            if lines >= TURN_LINES or start >= TURN_BYTES:
                self._turn = asyncio.get_running_loop().call_soon(self._take_lines)
                break
            end = self.buffer.find(b"\n", max(start, self._scanned))
            if end < 0:
                partial = True
                break
            if end - start > limit:
                self._oversized(limit)
                return
            line = bytes(self.buffer[start:end])
            start = end + 1
            lines += 1
            self._line(line)
        if self.closed or not self.accepting:
            return
        del self.buffer[:start]
        if partial:
            self._scanned = len(self.buffer)
            self._backlog = False
            if len(self.buffer) > limit:
                self._oversized(limit)
                return
        else:
            self._scanned = 0
            self._backlog = bool(self.buffer)
        self._arm_partial_timer(restart=start > 0)
        self._update_reading()
        self._finish_if_done()

    def _drained(self) -> None:
        """Answers went out: take buffered lines again if the budgets now allow."""
        self._update_reading()
        if (self._backlog and self._turn is None and not self.closed
                and self.inflight < self.limits.max_inflight_per_connection
                and not self.over_budget):
            self._turn = asyncio.get_running_loop().call_soon(self._take_lines)
        self._finish_if_done()

    def eof_received(self) -> bool | None:
        """Called when the peer stops sending: drop its unfinished line (complete lines
        still buffered are handled).

        Returns True: the transport stays open for answers; we close it ourselves.
        """
        # A last line without "\n" is not processed (PROTOCOL.md). A peer that only shut
        # its sending half still gets its answers; one that closed entirely gets nothing,
        # and keeping its connection would leak it until the next write.
        self.eof = True
        del self.buffer[self.buffer.rfind(b"\n") + 1:]
        self._scanned = 0
        self._backlog = bool(self.buffer)
        self._arm_partial_timer(restart=True)
        if self._peer_gone():
            if self.transport is not None:
                self.closed = True
                self.transport.abort()
            return True
        self._drained()
        return True

    def _arm_partial_timer(self, restart: bool) -> None:
        """The deadline for an unfinished line runs from when that line began: more bytes
        of it do not extend it (a client trickling a line byte by byte is cut off too).
        Complete lines waiting for their turn are not unfinished."""
        waiting = bool(self.buffer) and not self._backlog and not self.eof
        if self._partial_timer is not None and (restart or not waiting):
            self._partial_timer.cancel()
            self._partial_timer = None
        if waiting and self._partial_timer is None:
            timeout = self.limits.partial_line_timeout_s
            self._partial_timer = asyncio.get_running_loop().call_later(
                timeout, self._partial_expired)

    def _partial_expired(self) -> None:
        self._partial_timer = None
        self.service.throttle("partial_line_timeout").log(
            log, "warning", "partial_line_timeout", peer_pid=self.peer.pid,
            peer_uid=self.peer.uid, buffered_bytes=len(self.buffer))
        self.send(error_answer(None, INVALID_REQUEST, "a request line was left unfinished "
                               "for too long (limits.partial_line_timeout_s); end each "
                               "request with \\n"))
        self.buffer.clear()
        self.close_soon()

    def _oversized(self, limit: int) -> None:
        self.service.throttle("line_too_long").log(
            log, "warning", "line_too_long", peer_pid=self.peer.pid, peer_uid=self.peer.uid,
            limit_bytes=limit)
        self.send(error_answer(None, INVALID_REQUEST,
                               f"request line longer than {limit} bytes "
                               "(limits.max_line_bytes); the connection is closed. Split "
                               "large appends into several requests"))
        self.buffer.clear()
        self.close_soon()

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = loads(line)
        except JSONReadError as exc:
            self._note_refusal(None, PARSE_ERROR, str(exc))
            self.send(error_answer(None, PARSE_ERROR, f"parse error: {exc}"))
            return
        if isinstance(message, list):
            self._batch_line(message)
            return
        answer = self._dispatch(message, None)
        if isinstance(answer, dict):
            self.send(answer)
            self._run_after_send()
        elif answer is not None:
            self._track(answer, 1)
        else:
            self._run_after_send()

    def _batch_line(self, members: list[Any]) -> None:
        """A batch array: every member dispatched now, in order (so its appends keep their
        place in the writer's queue relative to the lines after it), answered as one array
        once all are done. Each member counts one against the in-flight limit."""
        limit = self.limits.max_batch_requests
        if not members or len(members) > limit:
            why = ("an empty batch is not a request" if not members else
                   f"a batch of {len(members)} requests; at most {limit} in one batch array "
                   "(limits.max_batch_requests): split it")
            self._note_refusal(None, INVALID_REQUEST, why)
            self.send(error_answer(None, INVALID_REQUEST, why))
            return
        batch = _Batch(self.limits.max_answer_bytes)
        answers = [self._dispatch(member, batch) for member in members]
        if all(a is None or isinstance(a, dict) for a in answers):
            ready = [a for a in answers if isinstance(a, dict)]
            if ready:
                self.send(ready)
            self._run_after_send()
            return
        after, self._after_send = self._after_send, []
        self._track(asyncio.ensure_future(self._batch(answers)), len(members), after)

    def _run_after_send(self) -> None:
        """Start what had to wait for its answer to be written (a subscription's pump)."""
        pending, self._after_send = self._after_send, []
        for action in pending:
            action()

    # ------------------------------------------------------------ dispatch

    def _track(self, pending: asyncio.Future[Any], weight: int,
               after: list[Callable[[], None]] | None = None) -> None:
        """Count ``pending`` (an answer to come: a dict, encoded bytes or None) as
        ``weight`` requests in flight, and send its answer when it is ready; then run
        ``after`` (pumps of subscriptions made in a batch)."""
        self.tasks.add(pending)
        self._weights[pending] = weight
        if after:
            self._then[pending] = after
        self.inflight += weight
        self._update_reading()
        pending.add_done_callback(self._answer_ready)

    def _answer_ready(self, pending: asyncio.Future[Any]) -> None:
        if not pending.cancelled():
            failure = pending.exception()
            if failure is not None:
                log.error("request_task_failed", error=repr(failure))
            else:
                answer = pending.result()
                if answer is not None:
                    self.send(answer)
        self.tasks.discard(pending)
        self.inflight -= self._weights.pop(pending, 1)
        for action in self._then.pop(pending, []):
            action()
        self._drained()

    async def _batch(self, dispatched: list[Any]) -> bytes | None:
        """A batch's answer as one encoded array (no line end), in request order, once
        every member is done; None when no member is answered (all notifications)."""
        parts: list[bytes] = []
        for each in dispatched:
            answer = await each if isinstance(each, asyncio.Future) else each
            if isinstance(answer, bytes):
                parts.append(answer)
            elif answer is not None:
                parts.append(encode(answer))
        return b"[" + b",".join(parts) + b"]" if parts else None

    def _dispatch(self, message: Any, batch: _Batch | None
                  ) -> dict[str, Any] | asyncio.Future[Any] | None:
        """Answer now (a dict), later (a future of the answer), or never (None)."""
        try:
            request = parse_request(message)
        except RpcError as exc:
            if exc.code == INVALID_PARAMS and "id" not in message:
                return None  # a well-formed notification: never answered, even in error
            request_id = answer_id(message)
            self._note_refusal(request_id, exc.code, exc.message)
            return error_answer(request_id, exc.code, exc.message, exc.data)
        try:
            return self._call(request, batch)
        except Exception as exc:
            return self._error(request, exc)

    def _note_refusal(self, request_id: Any, code: int, message: str,
                      method: str | None = None) -> None:
        """Log a refused request: at most one record per ``refusals_log_interval_s`` per
        connection, with the count of those held back."""
        held = self.refusals.allow()
        if held is None:
            return
        overall = self.service.throttle("request_refused")
        if overall.allow() is None:
            self.refusals.held_back += held + 1
            return
        log.info("request_refused", method=(method or "")[:64] or None,
                 request_id=request_id, peer_pid=self.peer.pid, peer_uid=self.peer.uid,
                 code=code, error=message[:200], held_back=held)

    def _error(self, request: Request, exc: BaseException) -> dict[str, Any] | None:
        error = error_from_exception(exc)
        if error.code == INTERNAL_ERROR:
            log.error("request_failed", method=request.method[:64], request_id=request.id,
                      peer_pid=self.peer.pid, peer_uid=self.peer.uid, error=repr(exc))
        else:
            self._note_refusal(request.id, error.code, error.message, request.method)
        if not request.has_id:
            return None
        return error_answer(request.id, error.code, error.message, error.data)

    def _call(self, request: Request, batch: _Batch | None
              ) -> dict[str, Any] | asyncio.Future[Any] | None:
        service = self.service
        method = request.method
        if method == "append":
            append = service.prepare_append(request.params, self.peer)
            committed = service.submit(append, self.peer, request.id)
            answer: asyncio.Future[dict[str, Any] | None] = committed.get_loop().create_future()
            committed.add_done_callback(partial(self._settle_append, request, answer))
            return answer
        if method == "health":
            return self._result(request, service.health())
        if method == "subscribe":
            # The pump starts once the answer is written, so notifications follow it.
            sub = service.subscribe(request.params, self.peer, self)
            self._after_send.append(lambda: service.start_pump(sub))
            return self._result(request, {"subscription": sub.sid})
        if method == "unsubscribe":
            return self._result(request, {"unsubscribed": service.unsubscribe(
                request.params, self)})
        if method == "query":
            return self._read_work(request, batch, lambda _: service.query(
                request.params, self.peer))
        if method == "read":
            return self._read_work(request, batch, lambda room: service.read(
                request.params, self.peer, max_bytes=room))
        if method == "metrics":
            return self._read_work(request, batch, lambda _: service.metrics(
                request.params, self.peer))
        if method == "backup":
            from daemon.backup import backup_method

            return self._read_work(request, batch, lambda _: backup_method(
                service, request.params, self.peer))
        raise service.method_not_found(method)

    def _read_work(self, request: Request, batch: _Batch | None,
                   work: Callable[[int], Awaitable[Any]]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(self._run_read(request, batch, work))
        self._reading_tasks.add(task)
        task.add_done_callback(self._reading_tasks.discard)
        return task

    async def _run_read(self, request: Request, batch: _Batch | None,
                        work: Callable[[int], Awaitable[Any]]) -> bytes | None:
        """Run a ``read``/``query``/``metrics``: after this connection's earlier ones, once
        its waiting answers are within budget, in one of the service's slots; ``work``
        gets the bytes its answer may take. Returns the encoded answer (no line end)."""
        limit = self.limits.max_answer_bytes
        batch_full = RpcError(
            INVALID_REQUEST, f"not answered: this batch's answers reached {limit} bytes "
            "(limits.max_answer_bytes); send it again in a smaller batch or on its own")
        async with self._reads:
            if batch is not None and batch.remaining <= 0:
                return self._encoded(self._error(request, batch_full))
            await self._room.wait()
            if self.closed:
                return None
            room = batch.remaining if batch is not None else limit
            async with self.service.reads_running:
                try:
                    answer = self._result(request, await work(room))
                except Exception as exc:
                    answer = self._error(request, exc)
                data = self._encoded(answer)
            if data is not None and len(data) > room:
                data = self._encoded(self._error(request, batch_full if batch is not None
                                                 else RpcError(
                    INVALID_PARAMS, f"the answer would take {len(data)} bytes, more than "
                    f"limits.max_answer_bytes ({limit}); ask for fewer rows (limit, "
                    "offset)")))
            if batch is not None and data is not None:
                batch.used += len(data)
            return data

    @contextlib.asynccontextmanager
    async def read_turn(self) -> AsyncIterator[None]:
        """This connection's turn to read the log (for a subscription's pump): after its
        earlier reads, in one of the service's slots, as requests get theirs."""
        async with self._reads, self.service.reads_running:
            yield

    @staticmethod
    def _encoded(answer: dict[str, Any] | None) -> bytes | None:
        if answer is None:
            return None
        try:
            return encode(answer)
        except (TypeError, ValueError) as exc:
            log.error("answer_not_serialisable", error=repr(exc))
            return encode(error_answer(answer.get("id"), INTERNAL_ERROR,
                                       "internal error; the daemon logged it"))

    def _result(self, request: Request, result: Any) -> dict[str, Any] | None:
        return result_answer(request.id, result) if request.has_id else None

    def _settle_append(self, request: Request, answer: asyncio.Future[dict[str, Any] | None],
                       committed: asyncio.Future[AppendOutcome]) -> None:
        if answer.done():
            return
        try:
            answer.set_result(self._append_answer(request, committed))
        except Exception as exc:
            answer.set_exception(exc)

    def _append_answer(self, request: Request,
                       committed: asyncio.Future[AppendOutcome]) -> dict[str, Any] | None:
        """The answer to an append once its group commit is decided."""
        if committed.cancelled():
            # Outcome unknown (the daemon is stopping on a storage fault): no answer.
            return None
        failure = committed.exception()
        if failure is not None:
            return self._error(request, failure)
        outcome = committed.result()
        if outcome.error is not None:
            return self._error(request, outcome.error)
        return self._result(request, {
            "results": [r.to_wire() for r in outcome.results],
            "last_seq": outcome.last_seq,
        })
