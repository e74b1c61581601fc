"""``GET /api/v1/stream``: committed events as Server-Sent Events.

A stream is a socket subscription whose notifications go to an HTTP response instead
of a connection: the service's own ``Subscriptions`` pump reads the log in pages (in a
read slot), sends in seq order, pauses while the client does not read, and closes the
subscription once the client falls ``limits.subscriber_max_lag`` events behind, as it
does for a socket subscriber. Here the client's buffer is the ``_Outbox`` queue,
bounded at ``QUEUE_BYTES``; streams count as connections (``limits.max_connections``).

Each event is ``id: <seq>`` / ``event: event`` / ``data: <the stored event>``, so a
browser's ``EventSource`` resumes after a drop with ``Last-Event-ID`` and misses
nothing. After each burst a small ``event: views`` (``{"seq": N, "accounts": [...]}``)
tells that the views have moved to seq N; ``event: closed`` (``{"reason",
"next_seq"}``) ends a stream that the daemon closed; a ``: keep-alive`` comment is
sent every ``KEEPALIVE_S`` of silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from daemon.access import Peer
from daemon.http.context import Api
from daemon.wire.jsonread import encode

__all__ = ["KEEPALIVE_S", "QUEUE_BYTES", "ClosingStreamingResponse", "open_stream"]

QUEUE_BYTES = 256 << 10
"""Bytes of events waiting for one stream's client before its pump pauses."""
KEEPALIVE_S = 15.0
RETRY_MS = 2000
"""The reconnect delay the stream asks of ``EventSource``."""


class ClosingStreamingResponse(StreamingResponse):
    """A ``StreamingResponse`` that closes its body (``aclose``) however the response
    ends. When the client goes, Starlette stops at its ``send`` and leaves the body
    generator suspended at a ``yield``: without this, the stream's subscription and its
    place among the connections would be released only when the collector finds the
    generator, which on an idle daemon may be never."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


class _Outbox:
    """``daemon.service.subscriptions.Outbox`` for one SSE response."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self.peer = Peer(None, os.getuid(), os.getgid())
        self.closed = False
        self.queue: deque[tuple[bytes, int, str]] = deque()
        """(SSE chunk, its event's seq or 0, its account or "")"""
        self.size = 0
        self.ready = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()
        self._turn = asyncio.Lock()

    @property
    def writable(self) -> bool:
        return self.size < QUEUE_BYTES

    def send_notification(self, message: dict[str, Any], force: bool = False) -> None:
        if self.closed and not force:
            return
        params = message["params"]
        seq, account = 0, ""
        if message["method"] == "event":
            event = params["event"]
            seq, account = event["seq"], event["account"]
            chunk = f"id: {seq}\nevent: event\ndata: ".encode() + encode(event) + b"\n\n"
        else:
            closed = {k: v for k, v in params.items() if k != "subscription"}
            chunk = b"event: closed\ndata: " + encode(closed) + b"\n\n"
            self.closed = True
        self.queue.append((chunk, seq, account))
        self.size += len(chunk)
        if not self.writable:
            self.drained.clear()
        self.ready.set()

    async def wait_writable(self) -> bool:
        await self.drained.wait()
        return not self.closed

    @contextlib.asynccontextmanager
    async def read_turn(self) -> AsyncIterator[None]:
        async with self._turn, self._api.service.reads_running:
            yield

    def close(self) -> None:
        self.closed = True
        self.ready.set()
        self.drained.set()

    def take(self) -> tuple[bytes, int, str]:
        item = self.queue.popleft()
        chunk = item[0]
        self.size -= len(chunk)
        if self.writable:
            self.drained.set()
        return item


def open_stream(api: Api, from_seq: int | None, account: str | None,
                types: list[str] | None) -> AsyncIterator[bytes]:
    """Subscribe (from ``from_seq``, None: the next event committed) and return the SSE
    body. Checks come first, so a bad request fails before any byte is sent.

    Raises:
        ValidationError / RpcError (-32602: bad params, unknown types),
        StorageUnavailableError: too many connections.
    """
    service = api.service
    refusal = service.connections.refusal(None, service.connection_cap,
                                          service.config.limits.max_connections_per_uid)
    if refusal is not None:
        from eventstore.errors import StorageUnavailableError

        raise StorageUnavailableError(refusal)
    outbox = _Outbox(api)
    params: dict[str, Any] = {"from_seq": from_seq or service.last_seq + 1}
    if account is not None:
        params["account"] = account
    if types is not None:
        params["types"] = types
    sub = service.subscriptions.subscribe(params, outbox.peer, outbox)
    service.connections.add(outbox, None)
    service.subscriptions.start_pump(sub)
    return _body(api, outbox)


async def _body(api: Api, outbox: _Outbox) -> AsyncIterator[bytes]:
    service = api.service
    stopping = asyncio.ensure_future(api.stopping.wait())
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        while not api.stopping.is_set():
            burst: set[str] = set()
            last = 0
            while outbox.queue:
                chunk, seq, account = outbox.take()
                if seq:
                    last = seq
                    burst.add(account)
                yield chunk
            if last:
                yield b"event: views\ndata: " + encode(
                    {"seq": last, "accounts": sorted(burst)}) + b"\n\n"
            if outbox.closed:
                return
            outbox.ready.clear()
            ready = asyncio.ensure_future(outbox.ready.wait())
            try:
                done, _ = await asyncio.wait([ready, stopping], timeout=KEEPALIVE_S,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                ready.cancel()
            if not done:
                yield b": keep-alive\n\n"
    finally:
        stopping.cancel()
        outbox.close()
        service.subscriptions.forget(outbox)
        service.connections.remove(outbox, None)

