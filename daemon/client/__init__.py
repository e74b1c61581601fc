"""The client bots use: async (``AsyncClient``) and blocking (``Client``) flavours.

Both speak PROTOCOL.md over the Unix socket, reconnect with exponential backoff
(tenacity) and re-send a request whose answer was lost. Re-sending an ``append`` is safe:
events carry their own ids, so ones already stored come back ``"duplicate": true``.

    async with AsyncClient("/run/tradelog/tradelog.sock") as client:
        await client.append([event])
        async for stored in client.subscribe(from_seq=1):
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from daemon.jsonread import dumps, loads

__all__ = ["AsyncClient", "Client", "RemoteError"]

RETRYABLE_CODES = {-32001}
LINE_LIMIT = 64 << 20


class RemoteError(Exception):
    """The daemon answered with a JSON-RPC error: ``code``, ``message``, ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, RemoteError):
        return exc.code in RETRYABLE_CODES
    return isinstance(exc, OSError | EOFError | asyncio.IncompleteReadError)


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class AsyncClient:
    """An asyncio client. ``retry_for_s``: how long to keep reconnecting and re-sending."""

    def __init__(self, path: str | Path, retry_for_s: float = 30.0) -> None:
        self.path = str(path)
        self.retry_for_s = retry_for_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._notifications: asyncio.Queue[Any] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._listener: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection (retrying while the daemon is not there yet)."""
        async for attempt in self._retrying():
            with attempt:
                await self._open()

    async def _open(self) -> None:
        await self.close()
        # A fresh queue per connection: nothing of an old connection (its notifications,
        # its end-of-stream marker) can leak into a new subscription.
        self._notifications = asyncio.Queue()
        self._reader, self._writer = await asyncio.open_unix_connection(
            self.path, limit=LINE_LIMIT)
        self._listener = asyncio.create_task(
            self._listen(self._reader, self._notifications))

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(retry=retry_if_exception(_retryable),
                             stop=stop_after_delay(self.retry_for_s),
                             wait=wait_random_exponential(multiplier=0.05, max=2.0), reraise=True)

    async def close(self) -> None:
        """Close the connection; calls still waiting for an answer get ``EOFError``."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None
        self._fail_pending(EOFError("the connection was closed"))

    def _fail_pending(self, error: BaseException) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    async def _listen(self, reader: asyncio.StreamReader,
                      notifications: asyncio.Queue[Any]) -> None:
        error: BaseException = EOFError("the daemon closed the connection")
        try:
            while line := await reader.readline():
                message = loads(line)
                if isinstance(message, list):
                    for item in message:
                        self._deliver(item, notifications)
                else:
                    self._deliver(message, notifications)
        except (OSError, ValueError) as exc:
            error = exc
        self._fail_pending(error)
        notifications.put_nowait(error)

    def _deliver(self, message: Any, notifications: asyncio.Queue[Any]) -> None:
        if "method" in message:
            notifications.put_nowait(message)
            return
        future = self._pending.pop(message.get("id"), None)
        if future is None or future.done():
            return
        if "error" in message:
            err = message["error"]
            future.set_exception(RemoteError(err["code"], err["message"], err.get("data")))
        else:
            future.set_result(message["result"])

    async def _call_once(self, method: str, params: dict[str, Any]) -> Any:
        if (self._writer is None or self._writer.is_closing() or self._listener is None
                or self._listener.done()):
            await self._open()
        assert self._writer is not None
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._writer.write(dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                  "params": params}))
        await self._writer.drain()
        return await future

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send one request and return its ``result``.

        Raises:
            RemoteError: the daemon's error (after retries for -32001).
            OSError: the daemon could not be reached within ``retry_for_s``.
        """
        async for attempt in self._retrying():
            with attempt:
                try:
                    return await self._call_once(method, params or {})
                except (OSError, EOFError):
                    await self.close()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def append(self, events: Sequence[dict[str, Any]],
                     expected_version: tuple[str, int] | None = None) -> dict[str, Any]:
        """Append events atomically; returns ``{"results": [...], "last_seq": N}``."""
        params: dict[str, Any] = {"events": list(events)}
        if expected_version is not None:
            params["expected_version"] = {"account": expected_version[0],
                                          "version": expected_version[1]}
        result: dict[str, Any] = await self.call("append", params)
        return result

    async def query(self, view: str, **filters: Any) -> dict[str, Any]:
        """A view's rows: ``{"view", "as_of_seq", "total", "rows"}``; filters and paging as
        PROTOCOL.md (``limit`` defaults to 1,000 rows, the most recent; ``total`` counts all)."""
        result: dict[str, Any] = await self.call("query", _params(view=view, **filters))
        return result

    async def read(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
                   types: list[str] | None = None) -> dict[str, Any]:
        """Stored events from ``from_seq``: ``{"events": [stored, ...], "next_seq": N}``.

        ``account``/``types`` of None do not filter. Raises ``RemoteError`` (``code`` -32602
        bad params, -32004 not permitted, -32001 after retries) or, once ``retry_for_s`` is
        spent, ``OSError``/``EOFError``.
        """
        result: dict[str, Any] = await self.call(
            "read", _params(from_seq=from_seq, limit=limit, account=account, types=types))
        return result

    async def health(self) -> dict[str, Any]:
        """The daemon's health: ``{"status", "version", "last_seq", "projection_seq", ...}``.

        The rest is ``uptime_s`` (seconds) and ``connections``. Raises ``OSError``/``EOFError``
        if the daemon cannot be reached within ``retry_for_s``.
        """
        result: dict[str, Any] = await self.call("health")
        return result

    async def subscribe(self, from_seq: int | None = None, account: str | None = None,
                        types: list[str] | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """Stored events from ``from_seq`` on, then live ones, in seq order.

        The subscription gets a connection of its own (opening it closes this client's
        current one; calls made meanwhile reconnect). After a lost connection it
        resubscribes from the seq after the last one seen, so nothing is missed or
        repeated. Raises ``RemoteError`` if the daemon closes the subscription (e.g. too
        slow).
        """
        next_seq = from_seq
        while True:
            sid = None
            async for attempt in self._retrying():
                with attempt:
                    await self._open()
                    answer = await self._call_once("subscribe", _params(
                        from_seq=next_seq, account=account, types=types))
                    sid = answer["subscription"]
            notifications = self._notifications
            while True:
                message = await notifications.get()
                if isinstance(message, BaseException):
                    break
                params = message.get("params") or {}
                if params.get("subscription") != sid:
                    continue
                if message.get("method") == "subscription_closed":
                    raise RemoteError(-32000, params.get("reason", "subscription closed"),
                                      params)
                event = params["event"]
                next_seq = event["seq"] + 1
                yield event


class Client:
    """A blocking client over a plain socket, for scripts and bots without asyncio."""

    def __init__(self, path: str | Path, retry_for_s: float = 30.0,
                 timeout_s: float = 60.0) -> None:
        self.path = str(path)
        self.retry_for_s = retry_for_s
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._file: Any = None
        self._ids = itertools.count(1)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket, if open; the next call reconnects."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connect(self) -> None:
        self.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._file = sock.makefile("rb")

    def _call_once(self, method: str, params: dict[str, Any]) -> Any:
        if self._sock is None:
            self._connect()
        assert self._sock is not None
        request_id = next(self._ids)
        self._sock.sendall(dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                  "params": params}))
        while True:
            line = self._file.readline()
            if not line:
                self.close()
                raise EOFError("the daemon closed the connection")
            message = loads(line)
            if not isinstance(message, dict) or message.get("id") != request_id:
                continue
            if "error" in message:
                err = message["error"]
                raise RemoteError(err["code"], err["message"], err.get("data"))
            return message["result"]

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send one request, return its ``result``; retries as ``AsyncClient.call``."""
        for attempt in Retrying(retry=retry_if_exception(_retryable),
                                stop=stop_after_delay(self.retry_for_s),
                                wait=wait_random_exponential(multiplier=0.05, max=2.0),
                                reraise=True):
            with attempt:
                try:
                    return self._call_once(method, params or {})
                except (OSError, EOFError):
                    self.close()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def append(self, events: Sequence[dict[str, Any]],
               expected_version: tuple[str, int] | None = None) -> dict[str, Any]:
        """Append events atomically; returns ``{"results": [...], "last_seq": N}``.

        ``expected_version`` is ``(account, version)``, None for no check. Raises ``RemoteError``
        (``code`` -32602 invalid events, -32002 idempotency, -32003 version conflict, -32004,
        -32001 after retries) or, once ``retry_for_s`` is spent, ``OSError``/``EOFError``.
        """
        params: dict[str, Any] = {"events": list(events)}
        if expected_version is not None:
            params["expected_version"] = {"account": expected_version[0],
                                          "version": expected_version[1]}
        result: dict[str, Any] = self.call("append", params)
        return result

    def query(self, view: str, **filters: Any) -> dict[str, Any]:
        """A view's rows: ``{"view", "as_of_seq", "total", "rows"}``; filters and paging as
        PROTOCOL.md (``limit`` defaults to 1,000 rows, the most recent; ``total`` counts all).

        Filters given as None are left out. Raises ``RemoteError`` (``code`` -32602 bad view
        or filter, -32004 not permitted, -32001 after retries) or, once ``retry_for_s`` is
        spent, ``OSError``/``EOFError``.
        """
        result: dict[str, Any] = self.call("query", _params(view=view, **filters))
        return result

    def read(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
             types: list[str] | None = None) -> dict[str, Any]:
        """Stored events from ``from_seq``: ``{"events": [stored, ...], "next_seq": N}``.

        ``account``/``types`` of None do not filter. Raises ``RemoteError`` (``code`` -32602
        bad params, -32004 not permitted, -32001 after retries) or, once ``retry_for_s`` is
        spent, ``OSError``/``EOFError``.
        """
        result: dict[str, Any] = self.call(
            "read", _params(from_seq=from_seq, limit=limit, account=account, types=types))
        return result

    def health(self) -> dict[str, Any]:
        """The daemon's health: ``{"status", "version", "last_seq", "projection_seq", ...}``.

        The rest is ``uptime_s`` (seconds) and ``connections``. Raises ``OSError``/``EOFError``
        if the daemon cannot be reached within ``retry_for_s``.
        """
        result: dict[str, Any] = self.call("health")
        return result
