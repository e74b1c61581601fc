"""One client connection: NDJSON framing, limits, JSON-RPC dispatch, flow control.

An ``asyncio.Protocol``: bytes come in through ``data_received``, complete lines are
decoded strictly and dispatched at once (so pipelined appends keep their order in
the writer's queue); answers go out as they are ready, each carrying its ``id``.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
from collections.abc import Callable
from functools import partial
from typing import Any

from daemon.access import Peer
from daemon.jsonread import JSONReadError, dumps, loads
from daemon.logs import get_logger
from daemon.rpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    Request,
    RpcError,
    error_answer,
    error_from_exception,
    parse_request,
    result_answer,
)
from daemon.service import Service
from eventstore.record import AppendOutcome

__all__ = ["Connection", "peer_credentials"]

log = get_logger("tradelog.connection")


def peer_credentials(sock: socket.socket | None) -> Peer:
    """pid/uid/gid of the peer of a Unix socket (SO_PEERCRED); Nones when unavailable."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return Peer(None, None, None)
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return Peer(None, None, None)
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


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
        self.inflight = 0
        self.reading_paused = False
        self.eof = False
        self.subscriptions: set[str] = set()
        self.tasks: set[asyncio.Future[Any]] = set()
        self._writable = asyncio.Event()
        self._writable.set()
        self._partial_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._counted = False
        self._after_send: list[Callable[[], None]] = []

    # ------------------------------------------------------------ lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Take the peer's credentials and count the connection, or refuse it past a limit."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = peer_credentials(transport.get_extra_info("socket"))
        limits = self.service.config.limits
        service = self.service
        if len(service.connections) >= limits.max_connections:
            self._refuse(f"too many connections (at most {limits.max_connections}); "
                         "retry later")
            return
        if service.per_uid.get(self.peer.uid, 0) >= limits.max_connections_per_uid:
            self._refuse(f"too many connections from uid {self.peer.uid} (at most "
                         f"{limits.max_connections_per_uid}); close some and retry")
            return
        service.connections.add(self)
        service.per_uid[self.peer.uid] = service.per_uid.get(self.peer.uid, 0) + 1
        self._counted = True
        self._update_reading()

    def _refuse(self, why: str) -> None:
        log.warning("connection_refused", reason=why, peer_pid=self.peer.pid,
                    peer_uid=self.peer.uid)
        self.send(error_answer(None, INVALID_REQUEST, why), force=True)
        self.close_soon()

    def connection_lost(self, exc: Exception | None) -> None:
        """Mark the connection closed, uncount it, and drop its subscriptions."""
        self.closed = True
        self._writable.set()
        for timer in (self._partial_timer, self._write_timer):
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

    def close_soon(self, grace_s: float | None = None) -> None:
        """Close after flushing what is written; abort if the peer does not read it within
        ``grace_s`` (default: the write timeout)."""
        if self.transport is None or self.closed:
            return
        self.closed = True
        self.transport.close()
        transport = self.transport
        if grace_s is None:
            grace_s = self.service.config.limits.write_timeout_s
        asyncio.get_running_loop().call_later(grace_s, transport.abort)

    def stop_reading(self) -> None:
        """Take no new requests (used while draining)."""
        self.accepting = False
        self._update_reading()

    def _update_reading(self) -> None:
        """Read requests only while accepting, below the in-flight limit, and while the
        client reads its answers (so one that never reads cannot make us buffer without
        bound)."""
        if self.transport is None or self.closed or self.eof:
            return
        pause = (not self.accepting or self.write_paused or self.inflight
                 >= self.service.config.limits.max_inflight_per_connection)
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
        if self.eof and not self.closed and not self.tasks and not self.subscriptions:
            self.close_soon()

    # ------------------------------------------------------------ writing

    def send(self, message: Any, force: bool = False) -> None:
        """Write one JSON-RPC message as an NDJSON line; dropped once closed unless ``force``.

        A message that cannot be serialised is logged and answered with -32603 instead.
        """
        if self.transport is None or (self.closed and not force):
            return
        if self.transport.is_closing():
            return
        try:
            line = dumps(message)
        except (TypeError, ValueError) as exc:
            log.error("answer_not_serialisable", error=repr(exc))
            request_id = message.get("id") if isinstance(message, dict) else None
            line = dumps(error_answer(request_id if isinstance(request_id, int) else None,
                                      INTERNAL_ERROR, "internal error; the daemon logged it"))
        self.transport.write(line)

    def pause_writing(self) -> None:
        """Called when the transport's buffer is full: stop reading requests.

        The connection is aborted if the buffer is still full after ``write_timeout_s``.
        """
        self.write_paused = True
        self._writable.clear()
        if self._write_timer is not None:
            self._write_timer.cancel()
        timeout = self.service.config.limits.write_timeout_s
        self._write_timer = asyncio.get_running_loop().call_later(timeout, self._write_stuck)
        self._update_reading()

    def resume_writing(self) -> None:
        """The transport's buffer drained: cancel the write timeout and read requests again."""
        self.write_paused = False
        self._writable.set()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self._update_reading()

    def _write_stuck(self) -> None:
        log.warning("client_not_reading", peer_pid=self.peer.pid, peer_uid=self.peer.uid,
                    timeout_s=self.service.config.limits.write_timeout_s)
        if self.transport is not None:
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
        """Split incoming bytes into lines and dispatch each complete one.

        A line over ``max_line_bytes`` is answered with -32600 and the connection closed.
        """
        if self.closed or self.eof:
            return
        scanned = len(self.buffer)
        self.buffer += data
        limit = self.service.config.limits.max_line_bytes
        start = 0
        while not self.closed:
            end = self.buffer.find(b"\n", max(start, scanned))
            if end < 0:
                break
            if end - start > limit:
                self._oversized(limit)
                return
            line = bytes(self.buffer[start:end])
            start = end + 1
            self._line(line)
        del self.buffer[:start]
        if self.closed:
            return
        if len(self.buffer) > limit:
            self._oversized(limit)
            return
        self._arm_partial_timer(restart=start > 0)

    def eof_received(self) -> bool | None:
        """Called when the peer stops sending: drop its unfinished line.

        Returns True: the transport stays open for answers; we close it ourselves.
        """
        # A last line without "\n" is not processed (PROTOCOL.md). A peer that only shut
        # its sending half still gets its answers; one that closed entirely gets nothing,
        # and keeping its connection would leak it until the next write.
        self.eof = True
        self.buffer.clear()
        self._arm_partial_timer(restart=True)
        if self._peer_gone():
            if self.transport is not None:
                self.closed = True
                self.transport.abort()
            return True
        self._finish_if_done()
        return True

    def _arm_partial_timer(self, restart: bool) -> None:
        """The deadline for an unfinished line runs from when that line began: more bytes
        of it do not extend it (a client trickling a line byte by byte is cut off too)."""
        if self._partial_timer is not None and (restart or not self.buffer):
            self._partial_timer.cancel()
            self._partial_timer = None
        if self.buffer and self._partial_timer is None:
            timeout = self.service.config.limits.partial_line_timeout_s
            self._partial_timer = asyncio.get_running_loop().call_later(
                timeout, self._partial_expired)

    def _partial_expired(self) -> None:
        self._partial_timer = None
        log.warning("partial_line_timeout", peer_pid=self.peer.pid, peer_uid=self.peer.uid,
                    buffered_bytes=len(self.buffer))
        self.send(error_answer(None, INVALID_REQUEST, "a request line was left unfinished "
                               "for too long; end each request with \\n"))
        self.buffer.clear()
        self.close_soon()

    def _oversized(self, limit: int) -> None:
        log.warning("line_too_long", peer_pid=self.peer.pid, peer_uid=self.peer.uid,
                    limit_bytes=limit)
        self.send(error_answer(None, INVALID_REQUEST,
                               f"request line longer than {limit} bytes; the connection is "
                               "closed. Split large appends into several requests"))
        self.buffer.clear()
        self.close_soon()

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = loads(line)
        except JSONReadError as exc:
            self.send(error_answer(None, PARSE_ERROR, f"parse error: {exc}"))
            return
        if isinstance(message, list):
            if not message:
                self.send(error_answer(None, INVALID_REQUEST, "an empty batch is not a request"))
                return
            # Dispatch every member now, so its appends keep their place in the writer's
            # queue relative to the lines after it; answer the batch as one array later.
            answers = [self._dispatch(member) for member in message]
            if all(a is None or isinstance(a, dict) for a in answers):
                ready = [a for a in answers if isinstance(a, dict)]
                if ready:
                    self.send(ready)
                self._run_after_send()
            else:
                after, self._after_send = self._after_send, []
                self._track(self._batch(answers, after))
            return
        answer = self._dispatch(message)
        if isinstance(answer, dict):
            self.send(answer)
            self._run_after_send()
        elif answer is not None:
            self._track_answer(answer)
        else:
            self._run_after_send()

    def _run_after_send(self) -> None:
        """Start what had to wait for its answer to be written (a subscription's pump)."""
        pending, self._after_send = self._after_send, []
        for action in pending:
            action()

    # ------------------------------------------------------------ dispatch

    def _track(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        self.inflight += 1
        self._update_reading()
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        self.inflight -= 1
        self._update_reading()
        if not task.cancelled() and task.exception() is not None:
            log.error("request_task_failed", error=repr(task.exception()))
        self._finish_if_done()

    def _track_answer(self, pending: asyncio.Future[dict[str, Any] | None]) -> None:
        """Send ``pending``'s answer when it is ready (a callback, not a task: appends are
        the hot path)."""
        self.tasks.add(pending)
        self.inflight += 1
        self._update_reading()
        pending.add_done_callback(self._answer_ready)

    def _answer_ready(self, pending: asyncio.Future[dict[str, Any] | None]) -> None:
        if not pending.cancelled():
            failure = pending.exception()
            if failure is not None:
                log.error("request_task_failed", error=repr(failure))
            else:
                answer = pending.result()
                if answer is not None:
                    self.send(answer)
        self.tasks.discard(pending)
        self.inflight -= 1
        self._update_reading()
        self._finish_if_done()

    async def _batch(self, dispatched: list[Any], after: list[Callable[[], None]]) -> None:
        """Answer a batch as one array, in request order, once every member is done; then
        run ``after`` (pumps of subscriptions made in the batch)."""
        answers: list[Any] = []
        try:
            for each in dispatched:
                answer = await each if isinstance(each, asyncio.Future) else each
                if answer is not None:
                    answers.append(answer)
            if answers:
                self.send(answers)
        finally:
            for action in after:
                action()

    def _dispatch(self, message: Any) -> dict[str, Any] | asyncio.Future[Any] | None:
        """Answer now (a dict), later (a future of the answer), or never (None)."""
        try:
            request = parse_request(message)
        except RpcError as exc:
            if exc.code == INVALID_PARAMS and "id" not in message:
                return None  # a well-formed notification: never answered, even in error
            request_id = message.get("id") if isinstance(message, dict) else None
            if not isinstance(request_id, str | int) or isinstance(request_id, bool):
                request_id = None
            return error_answer(request_id, exc.code, exc.message, exc.data)
        try:
            return self._call(request)
        except Exception as exc:
            return self._error(request, exc)

    def _error(self, request: Request, exc: BaseException) -> dict[str, Any] | None:
        error = error_from_exception(exc)
        if error.code == -32603:
            log.error("request_failed", method=request.method, request_id=request.id,
                      peer_pid=self.peer.pid, peer_uid=self.peer.uid, error=repr(exc))
        else:
            log.info("request_refused", method=request.method, request_id=request.id,
                     peer_pid=self.peer.pid, peer_uid=self.peer.uid, code=error.code,
                     error=error.message)
        if not request.has_id:
            return None
        return error_answer(request.id, error.code, error.message, error.data)

    def _call(self, request: Request) -> dict[str, Any] | asyncio.Future[Any] | None:
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
            return asyncio.ensure_future(self._run(request, service.query(
                request.params, self.peer)))
        if method == "read":
            return asyncio.ensure_future(self._run(request, service.read(
                request.params, self.peer)))
        if method == "metrics":
            return asyncio.ensure_future(self._run(request, service.metrics(
                request.params, self.peer)))
        if method == "backup":
            from daemon.backup import backup_method

            return asyncio.ensure_future(self._run(request, backup_method(
                service, request.params, self.peer)))
        raise service.method_not_found(method)

    def _result(self, request: Request, result: Any) -> dict[str, Any] | None:
        return result_answer(request.id, result) if request.has_id else None

    async def _run(self, request: Request, work: Any) -> dict[str, Any] | None:
        try:
            return self._result(request, await work)
        except Exception as exc:
            return self._error(request, exc)

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
