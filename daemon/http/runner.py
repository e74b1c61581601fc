"""Serving the app with uvicorn inside the daemon's own event loop.

The socket is bound here (a clear error before the daemon reports ready); uvicorn's
``Server.serve`` then runs as a task of the daemon's loop without signal handlers of
its own: the daemon owns SIGTERM and stops the HTTP side within its shutdown budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from daemon.http.address import Listen
from daemon.logs import get_logger
from eventstore.errors import ValidationError as ConfigError

__all__ = ["HttpServer", "bind"]

log = get_logger("tradelog.http")


class _Server(uvicorn.Server):
    """uvicorn without its signal handling (the daemon's loop has its own)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        return


def bind(listen: Listen) -> socket.socket:
    """A listening TCP socket on ``listen``.

    Raises:
        ConfigError: the address cannot be bound (in use, not on this machine, ...).
    """
    host = "127.0.0.1" if listen.host == "localhost" else listen.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, so that asyncio sets TCP_NODELAY on the accepted sockets (it
    # checks the protocol): with Nagle on, a keep-alive client's delayed ACK held each
    # answer's body back by 40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, listen.port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen for HTTP on {host}:{listen.port}: "
                          f"{exc.strerror or exc}; change http_listen or --http") from None
    return sock


class HttpServer:
    """uvicorn serving ``app`` on ``sock``, started with ``start()``, ended with ``stop()``."""

    def __init__(self, app: Any, sock: socket.socket, grace_s: float = 2.0) -> None:
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                                proxy_headers=False, server_header=False,
                                timeout_graceful_shutdown=max(int(grace_s), 1),
                                timeout_keep_alive=5, limit_concurrency=1000,
                                h11_max_incomplete_event_size=64 << 10)
        self.server = _Server(config)
        self.sock = sock
        self.task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port bound (the system's choice when asked for port 0)."""
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        """Serve in a task; return once uvicorn listens.

        Raises:
            ConfigError: uvicorn failed to start.
        """
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name="http")
        while not self.server.started:
            if self.task.done():
                raise ConfigError(f"the HTTP server did not start: {self.task.exception()!r}")
            await asyncio.sleep(0.01)

    async def stop(self, timeout_s: float) -> None:
        """Stop taking requests, end the open ones within ``timeout_s``, then cut off the
        rest."""
        if self.task is None:
            return
        self.server.should_exit = True
        done, _ = await asyncio.wait([self.task], timeout=timeout_s)
        if not done:
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            log.warning("http_stop_timed_out", timeout_s=timeout_s)
        self.sock.close()
