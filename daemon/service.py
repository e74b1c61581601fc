"""The service: group-commit writer, method handlers and subscriptions.

One writer task takes every append waiting at that moment, stores them in one
transaction with their view updates (``Recorder.append_groups``), and only then
answers each caller. One caller's conflict never fails another's batch. Subscribers
pull committed events from the log in seq order, woken after each commit, so none is
missed or sent twice and a slow one costs no memory beyond its socket buffer.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daemon.access import Access, Peer
from daemon.config import Config
from daemon.jsonread import encode
from daemon.logs import Throttle, get_logger
from daemon.params import (
    MetricsParams,
    QueryParams,
    ReadParams,
    SubscribeParams,
    UnsubscribeParams,
    append_params,
    check_params,
)
from daemon.rpc import INVALID_PARAMS, METHOD_NOT_FOUND, RpcError
from daemon.version import VERSION
from eventstore.errors import (
    IdempotencyConflictError,
    NotPermittedError,
    StorageDamagedError,
    StorageUnavailableError,
    ValidationError,
)
from eventstore.record import AppendOutcome, AppendRequest, NewEvent
from eventstore.recorder import Recorder
from projections.metrics import compute_metrics
from projections.query import ViewQuery, query_view
from schemas import EVENT_TYPES, EventValidationError, parse_events

if TYPE_CHECKING:
    from daemon.connection import Connection
    from daemon.writer import Writer

__all__ = ["FatalStorageError", "Service", "Subscription"]

log = get_logger("tradelog.service")


class FatalStorageError(Exception):
    """The database is in doubt: the daemon must exit non-zero and be restarted."""


@dataclass(eq=False)
class _Pending:
    request: AppendRequest
    future: asyncio.Future[AppendOutcome]
    peer: Peer
    request_id: Any


@dataclass(eq=False)
class Subscription:
    """A live subscription: the next seq to send, its filters, and its pump task."""

    sid: str
    connection: Connection
    next_seq: int
    account: str | None
    types: list[str] | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


_STOP = object()
_IN_FLIGHT = 2
"""Groups handed to the writer and not yet answered, at most: one committing and the
next already in the writer's pipe (the writer commits each group on its own)."""
_PUMP_BYTES = 64 << 10
"""Bytes of events a subscription's pump reads from the log at a time, at most."""


class Service:
    """Everything a connection asks of the daemon. Create, ``start()``, ``drain()``.

    ``recorder`` serves reads; ``writer`` makes the group commits (a ``WriterProcess``
    or, in one process, a ``LocalWriter`` on the same recorder).
    """

    def __init__(self, config: Config, recorder: Recorder, writer: Writer,
                 last_seq: int) -> None:
        self.config = config
        self.recorder = recorder
        self.writer = writer
        self.access = Access(config.access)
        self.last_seq = last_seq
        self.started = time.monotonic()
        self.connections: set[Connection] = set()
        self.per_uid: dict[int | None, int] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self.fatal: asyncio.Event = asyncio.Event()
        self.fatal_reason = ""
        self.reads_running = asyncio.Semaphore(config.limits.max_reads_running)
        self.connection_cap = config.limits.max_connections
        """Connections the open-file limit leaves room for (set by the server at start)."""
        self.refused_connections = Throttle(config.limits.refusals_log_interval_s)
        self._log_throttles: dict[str, Throttle] = {}

    def throttle(self, event: str) -> Throttle:
        """The daemon-wide rate limit for log records of ``event`` that clients cause
        (20 per ``refusals_log_interval_s``), whichever connections they come from."""
        found = self._log_throttles.get(event)
        if found is None:
            found = Throttle(self.config.limits.refusals_log_interval_s, burst=20)
            self._log_throttles[event] = found
        return found

    def start(self) -> None:
        """Start the group-commit writer task; call once, inside the running loop."""
        self._writer = asyncio.create_task(self._write_loop(), name="writer")

    def reload(self, config: Config) -> None:
        """Apply a reloaded config: access rules and limits (paths need a restart)."""
        self.config = config.model_copy(update={"db": self.config.db,
                                                "socket": self.config.socket})
        self.access = Access(config.access)

    # ---------------------------------------------------------------- writer

    def submit(self, request: AppendRequest, peer: Peer,
               request_id: Any) -> asyncio.Future[AppendOutcome]:
        """Queue one caller's batch for the next group commit; the future is its outcome.

        Raises:
            StorageUnavailableError: the writer has stopped (the daemon is shutting down).
        """
        if self._stopping:
            raise StorageUnavailableError(
                "the daemon is shutting down and takes no more appends; nothing was stored, "
                "send it again once the daemon is back")
        future: asyncio.Future[AppendOutcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(request, future, peer, request_id))
        return future

    async def append_internal(self, events: list[dict[str, Any]], peer: Peer,
                              metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append wire events from inside the daemon (the inbox) on behalf of ``peer`` (the
        owner of the file), checked by the access rules exactly as that peer's ``append``
        over the socket. ``metadata`` is added to the peer's in each stored event's
        metadata (e.g. the inbox file's name).

        Returns the ``append`` result. Raises ``ValidationError``, ``NotPermittedError``,
        the outcome's conflict error, or ``StorageUnavailableError``.
        """
        request = self.prepare_append({"events": events}, peer)
        if metadata:
            for event in request.events:
                event.metadata.update(metadata)
        outcome = await self.submit(request, peer, "inbox")
        if outcome.error is not None:
            raise outcome.error
        return {"results": [r.to_wire() for r in outcome.results],
                "last_seq": outcome.last_seq}

    async def _write_loop(self) -> None:
        """Take what is queued as one group and hand it to the writer, up to
        ``_IN_FLIGHT`` groups ahead: the one grouping stage. The next group waits in the
        writer's pipe while one commits (the writer never idles for a round trip), and
        the group after it collects what arrives meanwhile."""
        limit = self.config.limits.max_group_events
        stopping = False
        in_flight: set[asyncio.Task[None]] = set()
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                break
            group: list[_Pending] = [first]
            size = len(first.request.events)
            while size < limit and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
                size += len(item.request.events)
            in_flight.add(asyncio.create_task(self._commit(group)))
            if len(in_flight) >= _IN_FLIGHT:
                _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        if in_flight:
            await asyncio.wait(in_flight)

    async def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            outcomes = await self.writer.append_groups([p.request for p in group])
        except StorageUnavailableError as exc:
            log.warning("batch_failed", requests=len(group), error=str(exc))
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        except Exception as exc:
            # The outcome is unknown: never answer "rejected"; stop so systemd restarts us.
            log.critical("storage_in_doubt", error=repr(exc), requests=len(group))
            self.fatal_reason = repr(exc)
            self.fatal.set()
            for pending in group:
                pending.future.cancel()
            return
        stored = duplicates = rejected = 0
        for pending, outcome in zip(group, outcomes, strict=True):
            if outcome.error is not None:
                rejected += 1  # logged by its connection, at a bounded rate
            for result in outcome.results:
                if result.duplicate:
                    duplicates += 1
                else:
                    stored += 1
            if not pending.future.done():
                pending.future.set_result(self._hide_foreign(outcome, pending.peer))
        if outcomes:
            self.last_seq = max(self.last_seq, outcomes[-1].last_seq)
        log.info("batch_committed", requests=len(group), events=stored, duplicates=duplicates,
                 rejected=rejected, last_seq=self.last_seq,
                 duration_ms=round((time.perf_counter() - started) * 1000, 3))
        if stored:
            for sub in self.subscriptions.values():
                sub.wake.set()

    def _hide_foreign(self, outcome: AppendOutcome, peer: Peer) -> AppendOutcome:
        """``outcome`` as ``peer`` may see it: a conflict with a stored event of an account
        it may not read becomes -32004, telling nothing of that event (PROTOCOL.md
        ``append``). Nothing of such a request was stored. (A duplicate has the same
        canonical bytes, so the same account, which the peer was allowed to write.)"""
        error = outcome.error
        if not isinstance(error, IdempotencyConflictError) or error.account is None:
            return outcome
        try:
            self.access.check(peer, "read", error.account)
        except NotPermittedError:
            return AppendOutcome([], outcome.last_seq, NotPermittedError(
                f"event id {error.event_id!r} from source {error.source!r} is already "
                f"used by an event uid {peer.uid} may not read; nothing was stored: send "
                "a new id"))
        return outcome

    async def stop_writer(self) -> None:
        """Commit everything queued so far, then end the writer task."""
        self._stopping = True
        self._queue.put_nowait(_STOP)
        if self._writer is not None:
            await self._writer

    # ---------------------------------------------------------------- methods

    def prepare_append(self, params: dict[str, Any], peer: Peer) -> AppendRequest:
        """Check an ``append`` and build its request (sync: runs as the line is read).

        Raises:
            ValidationError (-32602), NotPermittedError (-32004).
        """
        checked = append_params(params)
        maximum = self.config.limits.max_events_per_append
        if len(checked.events) > maximum:
            raise ValidationError(
                f"{len(checked.events)} events in one append; at most {maximum}: split the batch")
        try:
            models = parse_events(checked.events)
        except EventValidationError as exc:
            raise ValidationError(f"invalid event: {exc}",
                                  [p.as_dict() for p in exc.problems]) from None
        meta = peer.metadata()
        events = [NewEvent.from_model(model, meta) for model in models]
        for account in {e.account for e in events}:
            self.access.check(peer, "write", account)
        expected = checked.expected_version
        if expected is not None:
            self.access.check(peer, "write", expected.account)
            return AppendRequest(events, expected.account, expected.version)
        return AppendRequest(events)

    async def query(self, params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """The ``query`` method: ``{"view", "as_of_seq", "rows"}`` (PROTOCOL.md).

        Raises:
            ValidationError (-32602), NotPermittedError (-32004), StorageUnavailableError (-32001).
        """
        checked = check_params(QueryParams, params)
        self.access.check(peer, "read", checked.account)
        await self._views_current()
        return await query_view(self.recorder, ViewQuery(**checked.model_dump()))

    async def metrics(self, params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """The ``metrics`` method: performance figures of one account (docs/METRICS.md)."""
        checked = check_params(MetricsParams, params)
        self.access.check(peer, "read", checked.account)
        await self._views_current()
        values = checked.model_dump()
        account = values.pop("account")
        return await compute_metrics(self.recorder, account, **values)

    async def _views_current(self) -> None:
        """Have the writer write the views' rows it holds back, so that a query sees every
        event acknowledged before it arrived. If that write fails (disk full), the query
        reads the tables as they are: its ``as_of_seq`` says how far they go."""
        if self.writer.flushed >= self.last_seq:
            return
        try:
            await self.writer.flush_views()
        except StorageUnavailableError as exc:
            log.warning("views_not_written", error=str(exc))

    async def read(self, params: dict[str, Any], peer: Peer,
                   max_bytes: int | None = None) -> dict[str, Any]:
        """The ``read`` method: ``{"events": [stored, ...], "next_seq": N}`` (PROTOCOL.md).

        ``max_bytes``: the most the events may take encoded (None: the connection's answer
        limit); the page ends early there, always with at least one event, and
        ``next_seq`` follows the last event returned.

        Raises:
            ValidationError, RpcError (-32602, unknown types), NotPermittedError (-32004),
            StorageUnavailableError (-32001), StorageDamagedError (-32603 with
            ``{"storage": "corrupt", "seq": N}``: a stored event cannot be read).
        """
        checked = check_params(ReadParams, params)
        self.access.check(peer, "read", checked.account)
        _check_types(checked.types)
        events, next_seq = await self._read_bounded(
            checked.from_seq, checked.limit, checked.account, checked.types,
            self.config.limits.max_answer_bytes if max_bytes is None else max_bytes)
        return {"events": events, "next_seq": next_seq}

    async def _read_bounded(self, from_seq: int, limit: int, account: str | None,
                            types: list[str] | None, max_bytes: int
                            ) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` stored events in wire form from ``from_seq`` on, and the seq to
        read next, taking at most ``max_bytes`` encoded (at least one event). The log is
        read in chunks sized from the events seen so far, so neither many events nor
        large ones are held beyond about ``max_bytes`` at a time."""
        out: list[dict[str, Any]] = []
        size = 0
        seq = from_seq
        chunk = min(limit, 64)
        while True:
            events, last = await self.recorder.read_page(seq, chunk, account, types)
            for event in events:
                wire = event.to_wire()
                cost = len(encode(wire)) + 1
                if out and size + cost > max_bytes:
                    return out, event.seq
                out.append(wire)
                size += cost
                seq = event.seq + 1
                if len(out) == limit:
                    return out, seq
            if len(events) < chunk:
                return out, max(seq, last + 1)
            average = max(size // max(len(out), 1), 1)
            chunk = max(1, min(limit - len(out), 1000, (max_bytes - size) // average + 1))

    def health(self) -> dict[str, Any]:
        """The ``health`` method's result (PROTOCOL.md); never raises.

        ``uptime_s`` is seconds since the service was created (3 decimals); ``connections``
        counts open connections.
        """
        return {
            "status": "ok",
            "version": VERSION,
            "last_seq": self.last_seq,
            "projection_seq": self.writer.checkpoint,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "connections": len(self.connections),
        }

    def subscribe(self, params: dict[str, Any], peer: Peer,
                  connection: Connection) -> Subscription:
        """Register a subscription on ``connection``; its pump starts with ``start_pump``.

        Raises:
            ValidationError, RpcError (-32602, unknown types), NotPermittedError (-32004).
        """
        checked = check_params(SubscribeParams, params)
        self.access.check(peer, "read", checked.account)
        _check_types(checked.types)
        most = self.config.limits.max_subscriptions_per_connection
        if len(connection.subscriptions) >= most:
            raise RpcError(INVALID_PARAMS, f"this connection already has {most} "
                           "subscriptions, the most allowed "
                           "(limits.max_subscriptions_per_connection); unsubscribe one, or "
                           "use one subscription with fewer filters")
        sub = Subscription(f"sub-{next(self._ids)}", connection, checked.from_seq,
                           checked.account, checked.types)
        self.subscriptions[sub.sid] = sub
        connection.subscriptions.add(sub.sid)
        return sub

    def start_pump(self, sub: Subscription) -> None:
        """Start the task that sends ``sub``'s events (catch-up, then live) to its connection."""
        sub.task = asyncio.create_task(self._pump(sub), name=sub.sid)

    def unsubscribe(self, params: dict[str, Any], connection: Connection) -> bool:
        """The ``unsubscribe`` method: drop a subscription of ``connection``; returns True.

        Raises:
            ValidationError: bad params, or no such subscription on this connection.
        """
        checked = check_params(UnsubscribeParams, params)
        if checked.subscription not in connection.subscriptions:
            raise ValidationError(f"no subscription {checked.subscription!r} on this connection")
        self.drop_subscription(checked.subscription)
        return True

    def drop_subscription(self, sid: str) -> None:
        """Forget subscription ``sid``, cancelling its pump unless called from it; no-op if gone."""
        sub = self.subscriptions.pop(sid, None)
        if sub is None:
            return
        sub.connection.subscriptions.discard(sid)
        if sub.task is not None and sub.task is not asyncio.current_task():
            sub.task.cancel()

    async def _pump(self, sub: Subscription) -> None:
        """Send the subscription's events in seq order: a page from the log at a time
        (bounded in bytes, read in the connection's turn), then wait for a commit.
        Sending stops while the client's socket is full (``conn.write_paused``), so a
        slow reader costs no memory beyond a page; while it is not reading, watch how
        far it falls behind and close the subscription past ``subscriber_max_lag``."""
        page = 1000
        conn = sub.connection
        try:
            while sub.sid in self.subscriptions and not conn.closed:
                sub.wake.clear()
                async with conn.read_turn():
                    events, next_seq = await self._read_bounded(
                        sub.next_seq, page, sub.account, sub.types, _PUMP_BYTES)
                if sub.sid not in self.subscriptions or conn.closed:
                    return
                for event in events:
                    # Counted as sent first: the send may end the subscription (answers
                    # past the budget), and its notice must name the seq after this one.
                    sub.next_seq = event["seq"] + 1
                    conn.send({"jsonrpc": "2.0", "method": "event",
                               "params": {"subscription": sub.sid, "event": event}})
                    if conn.write_paused or sub.sid not in self.subscriptions:
                        break
                else:
                    sub.next_seq = max(sub.next_seq, next_seq)
                events.clear()  # not held while waiting: a paused pump costs no memory
                if sub.sid not in self.subscriptions:
                    return  # closed by the sends (answers past the connection's budget)
                if conn.write_paused:
                    if not await self._until_writable(sub):
                        return
                    continue  # commits may have come while we waited: read again
                if sub.next_seq > self.last_seq:
                    await sub.wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._close_failed(sub, exc)

    async def _close_failed(self, sub: Subscription, exc: Exception) -> None:
        """End a subscription whose pump failed, never silently (the client would wait
        for ever): on damage at seq N, first send the events before N (they read
        fine), then ``subscription_closed`` with the reason (and ``"storage":
        "corrupt"``, ``"seq": N`` for damage)."""
        conn = sub.connection
        closed: dict[str, Any] = {"subscription": sub.sid, "reason": str(exc)}
        if isinstance(exc, StorageDamagedError):
            closed.update(storage="corrupt", seq=exc.seq)
            log.error("subscription_damaged", subscription=sub.sid, seq=exc.seq)
            if exc.seq is not None and exc.seq > sub.next_seq:
                try:
                    events, _ = await self.recorder.read_page(
                        sub.next_seq, min(exc.seq - sub.next_seq, 1000), sub.account,
                        sub.types, before_seq=exc.seq)
                except StorageDamagedError:
                    events = []
                for event in events:
                    sub.next_seq = event.seq + 1
                    conn.send({"jsonrpc": "2.0", "method": "event",
                               "params": {"subscription": sub.sid, "event": event.to_wire()}})
        elif not isinstance(exc, StorageUnavailableError):
            log.error("subscription_failed", subscription=sub.sid, error=repr(exc))
            closed["reason"] = f"the subscription failed: {exc}"
        closed["next_seq"] = sub.next_seq
        conn.send({"jsonrpc": "2.0", "method": "subscription_closed", "params": closed})
        self.drop_subscription(sub.sid)

    async def _until_writable(self, sub: Subscription) -> bool:
        """Wait until the client reads again; False (subscription closed) if it falls more
        than ``subscriber_max_lag`` events behind first, or the connection goes."""
        conn = sub.connection
        while conn.write_paused and not conn.closed and sub.sid in self.subscriptions:
            behind = self.last_seq - (sub.next_seq - 1)
            if behind > self.config.limits.subscriber_max_lag:
                self._too_slow(sub, f"fell {behind} events behind "
                               "(limits.subscriber_max_lag)")
                return False
            sub.wake.clear()
            waiters = [asyncio.ensure_future(conn.wait_writable()),
                       asyncio.ensure_future(sub.wake.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        if sub.sid not in self.subscriptions:
            return False  # unsubscribed, told it was closed, or disconnected meanwhile
        if conn.closed:
            self.drop_subscription(sub.sid)
            return False
        return True

    def _too_slow(self, sub: Subscription, why: str) -> None:
        self._close_subscription(sub, f"subscriber too slow: {why}; disconnected")
        sub.connection.close_soon()

    def close_subscriptions(self, connection: Connection, why: str) -> None:
        """End every subscription of ``connection``, each told so with
        ``subscription_closed`` (``why`` and where to resume); the connection stays."""
        for sid in sorted(connection.subscriptions):
            sub = self.subscriptions.get(sid)
            if sub is not None:
                self._close_subscription(sub, why)

    def _close_subscription(self, sub: Subscription, why: str) -> None:
        reason = f"{why}. Subscribe again with from_seq={sub.next_seq} to resume"
        self.throttle("subscriber_disconnected").log(
            log, "warning", "subscriber_disconnected", subscription=sub.sid, reason=reason,
            peer_pid=sub.connection.peer.pid)
        sub.connection.send({"jsonrpc": "2.0", "method": "subscription_closed",
                             "params": {"subscription": sub.sid, "reason": reason,
                                        "next_seq": sub.next_seq}}, force=True)
        self.drop_subscription(sub.sid)

    def method_not_found(self, method: str) -> RpcError:
        """The -32601 error for an unknown ``method``, listing the methods there are."""
        return RpcError(METHOD_NOT_FOUND,
                        f"unknown method {method[:64]!r}; methods are append, query, read, "
                        "subscribe, unsubscribe, health, metrics")


def _check_types(types: list[str] | None) -> None:
    if types is None:
        return
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise RpcError(INVALID_PARAMS, f"unknown event types {unknown}; use "
                       + ", ".join(EVENT_TYPES))


Callback = Callable[[], None]
