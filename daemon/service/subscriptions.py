"""Subscriptions: committed events pushed to clients in seq order.

Each subscription's pump pulls pages of committed events from the log (bounded in
bytes, read in its connection's turn) and sends them as ``event`` notifications, then
waits to be woken by a commit, so none is missed or sent twice and a slow subscriber
costs no memory beyond its socket buffer. A pump talks to its client only through an
``Outbox`` (send a notification, is the client writable, close), never through the
server's connection class.
"""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon.access import Access, Peer
from daemon.config import Config
from daemon.logs import Throttle, get_logger
from daemon.service.logread import check_types, read_bounded
from daemon.service.params import SubscribeParams, UnsubscribeParams, check_params
from daemon.wire.rpc import INVALID_PARAMS, RpcError
from eventstore.errors import StorageDamagedError, StorageUnavailableError, ValidationError
from eventstore.store import ViewReader

__all__ = ["PUMP_BYTES", "Outbox", "Subscription", "SubscriptionHost", "Subscriptions"]

log = get_logger("tradelog.service")

PUMP_BYTES = 64 << 10
"""Bytes of events a subscription's pump reads from the log at a time, at most."""
_PAGE = 1000
"""Events a pump reads from the log at a time, at most."""


class Outbox(Protocol):
    """Where a subscription's notifications go: one client connection."""

    @property
    def peer(self) -> Peer:
        """The client's credentials (for the logs)."""
    @property
    def closed(self) -> bool:
        """True once the connection is closing or closed: nothing more is sent."""
    @property
    def writable(self) -> bool:
        """False while the client's socket buffer is full (the pump waits)."""

    def send_notification(self, message: dict[str, Any], force: bool = False) -> None:
        """Send one JSON-RPC notification; dropped once closed unless ``force``."""

    async def wait_writable(self) -> bool:
        """Wait until the client reads again; False if the connection goes first."""

    def read_turn(self) -> AbstractAsyncContextManager[None]:
        """This connection's turn to read the log (after its earlier reads, in a slot)."""

    def close(self) -> None:
        """Close the connection once what is written is flushed."""


class SubscriptionHost(Protocol):
    """What subscriptions need of the service (read at each use: a reload changes them)."""

    @property
    def config(self) -> Config: ...
    @property
    def access(self) -> Access: ...
    @property
    def recorder(self) -> ViewReader: ...
    @property
    def last_seq(self) -> int: ...
    def throttle(self, event: str) -> Throttle: ...


@dataclass(eq=False)
class Subscription:
    """A live subscription: the next seq to send, its filters, and its pump task."""

    sid: str
    outbox: Outbox
    next_seq: int
    account: str | None
    types: list[str] | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


def _notice(sid: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": {"subscription": sid, **params}}


class Subscriptions:
    """Every live subscription, by id and by outbox."""

    def __init__(self, host: SubscriptionHost) -> None:
        self._host = host
        self._ids = itertools.count(1)
        self.live: dict[str, Subscription] = {}
        self._of: dict[Outbox, set[str]] = {}

    def __len__(self) -> int:
        return len(self.live)

    def count(self, outbox: Outbox) -> int:
        """Live subscriptions of ``outbox``."""
        return len(self._of.get(outbox, ()))

    def subscribe(self, params: dict[str, Any], peer: Peer, outbox: Outbox) -> Subscription:
        """Register a subscription on ``outbox``; its pump starts with ``start_pump``.

        Raises:
            ValidationError, RpcError (-32602, unknown types or too many subscriptions),
            NotPermittedError (-32004).
        """
        checked = check_params(SubscribeParams, params)
        self._host.access.check(peer, "read", checked.account)
        check_types(checked.types)
        most = self._host.config.limits.max_subscriptions_per_connection
        if self.count(outbox) >= most:
            raise RpcError(INVALID_PARAMS, f"this connection already has {most} "
                           "subscriptions, the most allowed "
                           "(limits.max_subscriptions_per_connection); unsubscribe one, or "
                           "use one subscription with fewer filters")
        sub = Subscription(f"sub-{next(self._ids)}", outbox, checked.from_seq,
                           checked.account, checked.types)
        self.live[sub.sid] = sub
        self._of.setdefault(outbox, set()).add(sub.sid)
        return sub

    def start_pump(self, sub: Subscription) -> None:
        """Start the task that sends ``sub``'s events (catch-up, then live)."""
        sub.task = asyncio.create_task(self._pump(sub), name=sub.sid)

    def unsubscribe(self, params: dict[str, Any], outbox: Outbox) -> bool:
        """The ``unsubscribe`` method: drop a subscription of ``outbox``; returns True.

        Raises:
            ValidationError: bad params, or no such subscription on this connection.
        """
        checked = check_params(UnsubscribeParams, params)
        if checked.subscription not in self._of.get(outbox, ()):
            raise ValidationError(f"no subscription {checked.subscription!r} on this connection")
        self.drop(checked.subscription)
        return True

    def drop(self, sid: str) -> None:
        """Forget subscription ``sid``, cancelling its pump unless called from it; no-op if gone."""
        sub = self.live.pop(sid, None)
        if sub is None:
            return
        mine = self._of.get(sub.outbox)
        if mine is not None:
            mine.discard(sid)
            if not mine:
                del self._of[sub.outbox]
        if sub.task is not None and sub.task is not asyncio.current_task():
            sub.task.cancel()

    def forget(self, outbox: Outbox) -> None:
        """Drop every subscription of ``outbox`` silently (its connection is gone)."""
        for sid in list(self._of.get(outbox, ())):
            self.drop(sid)

    def drop_all(self) -> None:
        """Drop every subscription silently (the daemon is stopping)."""
        for sid in list(self.live):
            self.drop(sid)

    def wake_all(self) -> None:
        """New events were committed: wake every pump."""
        for sub in self.live.values():
            sub.wake.set()

    def close_all(self, outbox: Outbox, why: str) -> None:
        """End every subscription of ``outbox``, each told so with
        ``subscription_closed`` (``why`` and where to resume); the connection stays."""
        for sid in sorted(self._of.get(outbox, ())):
            sub = self.live.get(sid)
            if sub is not None:
                self._close(sub, why)

    def _close(self, sub: Subscription, why: str) -> None:
        reason = f"{why}. Subscribe again with from_seq={sub.next_seq} to resume"
        self._host.throttle("subscriber_disconnected").log(
            log, "warning", "subscriber_disconnected", subscription=sub.sid, reason=reason,
            peer_pid=sub.outbox.peer.pid)
        sub.outbox.send_notification(_notice(sub.sid, "subscription_closed", {
            "reason": reason, "next_seq": sub.next_seq}), force=True)
        self.drop(sub.sid)

    async def _pump(self, sub: Subscription) -> None:
        """Send the subscription's events in seq order: a page from the log at a time
        (bounded in bytes, read in the connection's turn), then wait for a commit.
        Sending stops while the client's socket is full (not ``writable``), so a slow
        reader costs no memory beyond a page; while it is not reading, watch how far it
        falls behind and close the subscription past ``subscriber_max_lag``."""
        out = sub.outbox
        try:
            while sub.sid in self.live and not out.closed:
                sub.wake.clear()
                async with out.read_turn():
                    events, next_seq = await read_bounded(
                        self._host.recorder, sub.next_seq, _PAGE, sub.account, sub.types,
                        PUMP_BYTES)
                if sub.sid not in self.live or out.closed:
                    return
                for event in events:
                    # Counted as sent first: the send may end the subscription (answers
                    # past the budget), and its notice must name the seq after this one.
                    sub.next_seq = event["seq"] + 1
                    out.send_notification(_notice(sub.sid, "event", {"event": event}))
                    if not out.writable or sub.sid not in self.live:
                        break
                else:
                    sub.next_seq = max(sub.next_seq, next_seq)
                events.clear()  # not held while waiting: a paused pump costs no memory
                if sub.sid not in self.live:
                    return  # closed by the sends (answers past the connection's budget)
                if not out.writable:
                    if not await self._until_writable(sub):
                        return
                    continue  # commits may have come while we waited: read again
                if sub.next_seq > self._host.last_seq:
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
        out = sub.outbox
        closed: dict[str, Any] = {"reason": str(exc)}
        if isinstance(exc, StorageDamagedError):
            closed.update(storage="corrupt", seq=exc.seq)
            log.error("subscription_damaged", subscription=sub.sid, seq=exc.seq)
            if exc.seq is not None and exc.seq > sub.next_seq:
                try:
                    events, _ = await self._host.recorder.read_page(
                        sub.next_seq, min(exc.seq - sub.next_seq, _PAGE), sub.account,
                        sub.types, before_seq=exc.seq)
                except StorageDamagedError:
                    events = []
                for event in events:
                    sub.next_seq = event.seq + 1
                    out.send_notification(_notice(sub.sid, "event", {"event": event.to_wire()}))
        elif not isinstance(exc, StorageUnavailableError):
            log.error("subscription_failed", subscription=sub.sid, error=repr(exc))
            closed["reason"] = f"the subscription failed: {exc}"
        closed["next_seq"] = sub.next_seq
        out.send_notification(_notice(sub.sid, "subscription_closed", closed))
        self.drop(sub.sid)

    async def _until_writable(self, sub: Subscription) -> bool:
        """Wait until the client reads again; False (subscription closed) if it falls more
        than ``subscriber_max_lag`` events behind first, or the connection goes."""
        out = sub.outbox
        while not out.writable and not out.closed and sub.sid in self.live:
            behind = self._host.last_seq - (sub.next_seq - 1)
            if behind > self._host.config.limits.subscriber_max_lag:
                self._close(sub, f"subscriber too slow: fell {behind} events behind "
                            "(limits.subscriber_max_lag); disconnected")
                out.close()
                return False
            sub.wake.clear()
            waiters = [asyncio.ensure_future(out.wait_writable()),
                       asyncio.ensure_future(sub.wake.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        if sub.sid not in self.live:
            return False  # unsubscribed, told it was closed, or disconnected meanwhile
        if out.closed:
            self.drop(sub.sid)
            return False
        return True
