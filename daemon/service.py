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
from daemon.logs import get_logger
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
from eventstore.errors import StorageUnavailableError, ValidationError
from eventstore.record import AppendOutcome, AppendRequest, NewEvent
from eventstore.recorder import Recorder
from projections.metrics import compute_metrics
from projections.query import ViewQuery, query_view
from schemas import EVENT_TYPES, EventValidationError, parse_events

if TYPE_CHECKING:
    from daemon.connection import Connection
    from daemon.writer import Writer

__all__ = ["FatalStorageError", "Service", "Subscription"]

VERSION = "0.1.0"
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
_IN_FLIGHT = 4
"""Groups handed to the writer and not yet answered, at most."""


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
        """Take what is queued as one group and hand it to the writer without waiting for
        its commit, up to ``_IN_FLIGHT`` groups ahead: the writer process commits the
        groups waiting for it together, while this loop keeps reading requests."""
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
                rejected += 1
                log.info("append_rejected", request_id=pending.request_id,
                         peer_pid=pending.peer.pid, peer_uid=pending.peer.uid,
                         error=str(outcome.error))
            for result in outcome.results:
                if result.duplicate:
                    duplicates += 1
                else:
                    stored += 1
            if not pending.future.done():
                pending.future.set_result(outcome)
        if outcomes:
            self.last_seq = max(self.last_seq, outcomes[-1].last_seq)
        log.info("batch_committed", requests=len(group), events=stored, duplicates=duplicates,
                 rejected=rejected, last_seq=self.last_seq,
                 duration_ms=round((time.perf_counter() - started) * 1000, 3))
        if stored:
            for sub in self.subscriptions.values():
                sub.wake.set()

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

    async def read(self, params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        """The ``read`` method: ``{"events": [stored, ...], "next_seq": N}`` (PROTOCOL.md).

        Raises:
            ValidationError, RpcError (-32602, unknown types), NotPermittedError (-32004),
            StorageUnavailableError (-32001).
        """
        checked = check_params(ReadParams, params)
        self.access.check(peer, "read", checked.account)
        _check_types(checked.types)
        events, last = await self.recorder.read_page(
            checked.from_seq, checked.limit, checked.account, checked.types)
        if len(events) == checked.limit:
            next_seq = events[-1].seq + 1
        else:
            next_seq = max(checked.from_seq, last + 1)
        return {"events": [e.to_wire() for e in events], "next_seq": next_seq}

    def health(self) -> dict[str, Any]:
        """The ``health`` method's result (PROTOCOL.md); never raises.

        ``uptime_s`` is seconds since the service was created (3 decimals); ``connections``
        counts open connections.
        """
        return {
            "status": "ok",
            "version": VERSION,
            "last_seq": self.last_seq,
            "projection_seq": self.writer.position,
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
        """Send the subscription's events in seq order: a page from the log at a time,
        then wait for a commit. While the client is not reading, watch how far it falls
        behind and close the subscription past ``subscriber_max_lag``."""
        page = 1000
        conn = sub.connection
        try:
            while sub.sid in self.subscriptions and not conn.closed:
                sub.wake.clear()
                events, last = await self.recorder.read_page(
                    sub.next_seq, page, sub.account, sub.types)
                if sub.sid not in self.subscriptions or conn.closed:
                    return
                for event in events:
                    conn.send({"jsonrpc": "2.0", "method": "event",
                               "params": {"subscription": sub.sid, "event": event.to_wire()}})
                sub.next_seq = events[-1].seq + 1 if len(events) == page else max(
                    sub.next_seq, last + 1)
                if conn.write_paused:
                    if not await self._until_writable(sub):
                        return
                    continue  # commits may have come while we waited: read again
                if len(events) < page:
                    await sub.wake.wait()
        except asyncio.CancelledError:
            raise
        except StorageUnavailableError as exc:
            conn.send({"jsonrpc": "2.0", "method": "subscription_closed",
                       "params": {"subscription": sub.sid, "reason": str(exc)}})
            self.drop_subscription(sub.sid)

    async def _until_writable(self, sub: Subscription) -> bool:
        """Wait until the client reads again; False (subscription closed) if it falls more
        than ``subscriber_max_lag`` events behind first, or the connection goes."""
        conn = sub.connection
        while conn.write_paused and not conn.closed and sub.sid in self.subscriptions:
            behind = self.last_seq - (sub.next_seq - 1)
            if behind > self.config.limits.subscriber_max_lag:
                self._too_slow(sub, f"fell {behind} events behind")
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
            return False  # unsubscribed or disconnected meanwhile
        if conn.closed:
            self._too_slow(sub, "did not read its notifications in time")
            return False
        return True

    def _too_slow(self, sub: Subscription, why: str) -> None:
        reason = (f"subscriber too slow: {why}; disconnected. Reconnect and subscribe "
                  f"with from_seq={sub.next_seq} to resume")
        log.warning("subscriber_disconnected", subscription=sub.sid, reason=reason,
                    peer_pid=sub.connection.peer.pid)
        sub.connection.send({"jsonrpc": "2.0", "method": "subscription_closed",
                             "params": {"subscription": sub.sid, "reason": reason,
                                        "next_seq": sub.next_seq}}, force=True)
        self.drop_subscription(sub.sid)
        sub.connection.close_soon()

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
