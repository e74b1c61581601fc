"""The request handlers: one per method of ``daemon.wire.methods.METHODS``.

Every handler takes the request's ``params`` and a ``CallContext`` (who asks, where
notifications go, how many bytes the answer may take, what to run once the answer is
written). What it returns depends on the method's kind: ``NOW`` the result itself;
``READ`` an awaitable of the result; ``APPEND`` the future of the group commit's
``AppendOutcome`` (``append_result`` makes the result of it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon.access import Access, Peer
from daemon.backup import backup_method
from daemon.config import Config
from daemon.logs import get_logger
from daemon.service.logread import check_types, read_bounded
from daemon.service.params import (
    MetricsParams,
    QueryParams,
    ReadParams,
    append_params,
    check_params,
)
from daemon.service.subscriptions import Outbox, Subscriptions
from eventstore.errors import ValidationError
from eventstore.record import AppendOutcome, AppendRequest, NewEvent
from eventstore.store import ViewReader
from projections.query import ViewQuery, query_view
from schemas import EventValidationError, parse_events

__all__ = ["CallContext", "Handler", "HandlerHost", "Handlers", "append_result"]

log = get_logger("tradelog.service")

Handler = Callable[[dict[str, Any], "CallContext"], Any]


@dataclass(eq=False, slots=True)
class CallContext:
    """The caller of one request: its ``peer``, its ``outbox`` (for subscriptions), the
    bytes its answer may take (``room``), the request's id, and ``after``: actions to run
    once the answer is written."""

    peer: Peer
    outbox: Outbox
    room: int
    request_id: Any = None
    after: list[Callable[[], None]] = field(default_factory=list)


class HandlerHost(Protocol):
    """What the handlers need of the service (read at each use: a reload changes it)."""

    @property
    def config(self) -> Config: ...
    @property
    def access(self) -> Access: ...
    @property
    def recorder(self) -> ViewReader: ...
    @property
    def last_seq(self) -> int: ...
    @property
    def subscriptions(self) -> Subscriptions: ...
    def submit(self, request: AppendRequest, peer: Peer,
               request_id: Any) -> asyncio.Future[AppendOutcome]: ...
    def health(self) -> dict[str, Any]: ...
    async def views_current(self) -> None: ...


def append_result(outcome: AppendOutcome) -> dict[str, Any]:
    """The ``append`` result for a stored outcome: ``{"results": [...], "last_seq": N}``."""
    return {"results": [r.to_wire() for r in outcome.results], "last_seq": outcome.last_seq}


class Handlers:
    """The method handlers, by name (``table``)."""

    def __init__(self, host: HandlerHost) -> None:
        self._host = host
        self.table: dict[str, Handler] = {
            "append": self.append,
            "query": self.query,
            "read": self.read,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
            "health": self.health,
            "metrics": self.metrics,
            "backup": self.backup,
        }

    def prepare_append(self, params: dict[str, Any], peer: Peer) -> AppendRequest:
        """Check an ``append`` and build its request (sync: runs as the line is read).

        Raises:
            ValidationError (-32602), NotPermittedError (-32004).
        """
        checked = append_params(params)
        maximum = self._host.config.limits.max_events_per_append
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
        access = self._host.access
        for account in {e.account for e in events}:
            access.check(peer, "write", account)
        expected = checked.expected_version
        if expected is not None:
            access.check(peer, "write", expected.account)
            return AppendRequest(events, expected.account, expected.version)
        return AppendRequest(events)

    def append(self, params: dict[str, Any], ctx: CallContext
               ) -> asyncio.Future[AppendOutcome]:
        """The ``append`` method: checked now, queued for the next group commit.

        Raises:
            ValidationError (-32602), NotPermittedError (-32004), StorageUnavailableError
            (-32001: the daemon is shutting down).
        """
        return self._host.submit(self.prepare_append(params, ctx.peer), ctx.peer,
                                 ctx.request_id)

    async def query(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The ``query`` method: ``{"view", "as_of_seq", "rows"}`` (PROTOCOL.md).

        Raises:
            ValidationError (-32602), NotPermittedError (-32004), StorageUnavailableError (-32001).
        """
        checked = check_params(QueryParams, params)
        self._host.access.check(ctx.peer, "read", checked.account)
        await self._host.views_current()
        return await query_view(self._host.recorder, ViewQuery(**checked.model_dump()))

    async def metrics(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The ``metrics`` method: performance figures of one account (docs/METRICS.md)."""
        checked = check_params(MetricsParams, params)
        self._host.access.check(ctx.peer, "read", checked.account)
        await self._host.views_current()
        values = checked.model_dump()
        account = values.pop("account")
        # Loaded at the first call: a daemon never asked for metrics starts without it.
        from projections.metrics import compute_metrics

        return await compute_metrics(self._host.recorder, account, **values)

    async def read(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The ``read`` method: ``{"events": [stored, ...], "next_seq": N}`` (PROTOCOL.md).

        The events take at most ``ctx.room`` bytes encoded; the page ends early there,
        always with at least one event, and ``next_seq`` follows the last event returned.

        Raises:
            ValidationError, RpcError (-32602, unknown types), NotPermittedError (-32004),
            StorageUnavailableError (-32001), StorageDamagedError (-32603 with
            ``{"storage": "corrupt", "seq": N}``: a stored event cannot be read).
        """
        checked = check_params(ReadParams, params)
        self._host.access.check(ctx.peer, "read", checked.account)
        check_types(checked.types)
        events, next_seq = await read_bounded(
            self._host.recorder, checked.from_seq, checked.limit, checked.account,
            checked.types, ctx.room)
        return {"events": events, "next_seq": next_seq}

    def health(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The ``health`` method (PROTOCOL.md); its params are not looked at; never raises."""
        return self._host.health()

    def subscribe(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The ``subscribe`` method: ``{"subscription": id}``; the pump starts once this
        answer is written, so the notifications follow it."""
        subscriptions = self._host.subscriptions
        sub = subscriptions.subscribe(params, ctx.peer, ctx.outbox)
        ctx.after.append(lambda: subscriptions.start_pump(sub))
        return {"subscription": sub.sid}

    def unsubscribe(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The ``unsubscribe`` method: ``{"unsubscribed": true}``."""
        return {"unsubscribed": self._host.subscriptions.unsubscribe(params, ctx.outbox)}

    async def backup(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """The ``backup`` method (``daemon.backup.backup_method``)."""
        return await backup_method(self._host, params, ctx.peer)
