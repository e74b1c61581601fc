"""Running one connection's calls: each request the wire layer hands out is started on
its handler (``daemon.service.handlers``) the way its method's kind says, and its answer,
encoded, is given back to the connection.

- ``NOW``: answered before the next line is read.
- ``APPEND``: checked now and queued for the group commit in line order; answered when
  the commit is decided (nothing, when its outcome is unknown: the daemon is stopping
  on a storage fault; or, for a commit in doubt on PostgreSQL, the connection is
  closed unanswered and the daemon goes on).
- ``READ``: one at a time per connection, in line order, once the connection's waiting
  answers are within ``max_answer_bytes``, in one of the daemon's ``max_reads_running``
  slots; the answer may take the bytes its batch has left (``AnswerBudget``), else
  ``max_answer_bytes``, and is replaced by an error naming the limit past it.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Protocol

from daemon.errormap import error_from_exception
from daemon.logs import Throttle, get_logger
from daemon.service import CallContext, Outbox, Service
from daemon.service.handlers import Handler, append_result
from daemon.wire.jsonread import encode
from daemon.wire.methods import Kind
from daemon.wire.protocol import Refusal, Slot
from daemon.wire.rpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    Request,
    RpcError,
    error_answer,
    result_answer,
)
from eventstore.errors import CommitInDoubtError
from eventstore.record import AppendOutcome

__all__ = ["CallRunner", "Caller", "encoded"]

log = get_logger("tradelog.connection")


class Caller(Outbox, Protocol):
    """What a ``CallRunner`` needs of its connection, beyond the ``Outbox``."""

    def deliver(self, slot: Slot, data: bytes | None) -> None:
        """Give ``slot`` its encoded answer (None: not answered)."""

    def cancelled(self, slot: Slot) -> None:
        """``slot``'s work was cancelled: its group goes unanswered."""

    def close_soon(self) -> None:
        """Take no more requests and send nothing new; close once what is written is
        read (cut off if not read within the write timeout)."""

    async def room(self) -> None:
        """Wait until the answers waiting to be sent are within ``max_answer_bytes``."""


def encoded(answer: dict[str, Any] | None) -> bytes | None:
    """``answer`` as compact JSON (no line end); one that cannot be serialised is logged
    and replaced by a -32603 error; None stays None."""
    if answer is None:
        return None
    try:
        return encode(answer)
    except (TypeError, ValueError) as exc:
        log.error("answer_not_serialisable", error=repr(exc))
        return encode(error_answer(answer.get("id"), INTERNAL_ERROR,
                                   "internal error; the daemon logged it"))


def _result(request: Request, result: Any) -> dict[str, Any] | None:
    return result_answer(request.id, result) if request.has_id else None


class CallRunner:
    """Starts one connection's calls and hands their answers back to it."""

    def __init__(self, service: Service, caller: Caller) -> None:
        self._service = service
        self._caller = caller
        self.reads = asyncio.Lock()
        """Held by the connection's ``READ`` calls and its subscriptions' pages, in turn."""
        self.pending: set[asyncio.Future[Any]] = set()
        """Work whose answers are still to come (group commits, reads)."""
        self._reading: set[asyncio.Future[Any]] = set()
        self.refusals = Throttle(service.config.limits.refusals_log_interval_s)
        """Refusals logged for this connection: one record per interval, with a count."""

    def start(self, slot: Slot) -> None:
        """Start ``slot``'s call; its answer reaches ``Caller.deliver`` (at once for
        ``NOW`` methods and for requests refused by their handler)."""
        request = slot.request
        caller = self._caller
        service = self._service
        ctx = CallContext(caller.peer, caller, service.config.limits.max_answer_bytes,
                          request.id, slot.group.after)
        handler = service.handlers.table[request.method]
        kind = slot.method.kind
        try:
            if kind is Kind.NOW:
                caller.deliver(slot, encoded(_result(request, handler(request.params, ctx))))
            elif kind is Kind.APPEND:
                committed: asyncio.Future[AppendOutcome] = handler(request.params, ctx)
                self.pending.add(committed)
                committed.add_done_callback(partial(self._committed, slot))
            else:
                task = asyncio.ensure_future(self._read(slot, handler, ctx))
                self.pending.add(task)
                self._reading.add(task)
                task.add_done_callback(partial(self._read_done, slot))
        except Exception as exc:
            self._caller.deliver(slot, encoded(self.error(request, exc)))

    def cancel_reads(self) -> None:
        """Cancel the ``READ`` calls not yet answered (their groups go unanswered)."""
        for task in list(self._reading):
            task.cancel()

    def ended(self) -> None:
        """The connection is gone: cancel its reads; log how many refusals were held back."""
        self.cancel_reads()
        if self.refusals.held_back:
            self._service.throttle("requests_refused").log(
                log, "info", "requests_refused", peer_pid=self._caller.peer.pid,
                peer_uid=self._caller.peer.uid, refused=self.refusals.held_back)

    def note_refusal(self, refusal: Refusal) -> None:
        """Log a refused request: at most one record per ``refusals_log_interval_s`` per
        connection (and 20 daemon-wide), with the count of those held back."""
        held = self.refusals.allow()
        if held is None:
            return
        overall = self._service.throttle("request_refused")
        if overall.allow() is None:
            self.refusals.held_back += held + 1
            return
        peer = self._caller.peer
        log.info("request_refused", method=(refusal.method or "")[:64] or None,
                 request_id=refusal.request_id, peer_pid=peer.pid, peer_uid=peer.uid,
                 code=refusal.code, error=refusal.message[:200], held_back=held)

    def error(self, request: Request, exc: BaseException) -> dict[str, Any] | None:
        """The error answer for ``exc`` (None for a notification); an unexpected error is
        logged, a refusal noted at a bounded rate."""
        error = error_from_exception(exc)
        if error.code == INTERNAL_ERROR:
            log.error("request_failed", method=request.method[:64], request_id=request.id,
                      peer_pid=self._caller.peer.pid, peer_uid=self._caller.peer.uid,
                      error=repr(exc))
        else:
            self.note_refusal(Refusal(request.id, error.code, error.message,
                                              request.method))
        if not request.has_id:
            return None
        return error_answer(request.id, error.code, error.message, error.data)

    def _committed(self, slot: Slot, committed: asyncio.Future[AppendOutcome]) -> None:
        """The answer to an append once its group commit is decided. A group in doubt
        (``CommitInDoubtError``) is answered by closing the connection: any answer would
        claim an outcome (-32001 says nothing was stored), where a connection lost before
        the answer is what PROTOCOL.md tells clients to settle by re-sending."""
        self.pending.discard(committed)
        request = slot.request
        if not committed.cancelled() and isinstance(committed.exception(),
                                                    CommitInDoubtError):
            self._caller.cancelled(slot)
            self._caller.close_soon()
            return
        try:
            if committed.cancelled():
                answer = None  # outcome unknown (stopping on a storage fault): no answer
            elif (failure := committed.exception()) is not None:
                answer = self.error(request, failure)
            elif (outcome := committed.result()).error is not None:
                answer = self.error(request, outcome.error)
            elif request.has_id:
                answer = result_answer(request.id, append_result(outcome))
            else:
                answer = None
        except Exception as exc:
            log.error("request_task_failed", error=repr(exc))
            answer = None
        self._caller.deliver(slot, encoded(answer))

    def _read_done(self, slot: Slot, task: asyncio.Future[bytes | None]) -> None:
        self.pending.discard(task)
        self._reading.discard(task)
        if task.cancelled():
            self._caller.cancelled(slot)
            return
        failure = task.exception()
        if failure is not None:
            log.error("request_task_failed", error=repr(failure))
            self._caller.deliver(slot, None)
            return
        self._caller.deliver(slot, task.result())

    async def _read(self, slot: Slot, handler: Handler, ctx: CallContext) -> bytes | None:
        """Run a ``READ`` call: after this connection's earlier ones, once its waiting
        answers are within budget, in one of the service's slots; the handler gets the
        bytes its answer may take (``ctx.room``). Returns the encoded answer."""
        request = slot.request
        batch = slot.group.budget
        limit = self._service.config.limits.max_answer_bytes
        batch_full = RpcError(
            INVALID_REQUEST, f"not answered: this batch's answers reached {limit} bytes "
            "(limits.max_answer_bytes); send it again in a smaller batch or on its own")
        async with self.reads:
            if batch is not None and batch.remaining <= 0:
                return encoded(self.error(request, batch_full))
            await self._caller.room()
            if self._caller.closed:
                return None
            room = ctx.room = batch.remaining if batch is not None else limit
            async with self._service.reads_running:
                try:
                    answer = _result(request, await handler(request.params, ctx))
                except Exception as exc:
                    answer = self.error(request, exc)
                # Off the event loop: a 16 MiB answer takes ~100 ms to encode.
                data = await asyncio.to_thread(encoded, answer)
            if data is not None and len(data) > room:
                data = encoded(self.error(request, batch_full if batch is not None else RpcError(
                    INVALID_PARAMS, f"the answer would take {len(data)} bytes, more than "
                    f"limits.max_answer_bytes ({limit}); ask for fewer rows (limit, offset)")))
            if batch is not None and data is not None:
                batch.used += len(data)
            return data
