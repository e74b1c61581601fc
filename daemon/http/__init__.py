"""The read-only HTTP API and live dashboard (docs/HTTP.md), served by the daemon's loop.

Needs the ``http`` extra (FastAPI and uvicorn); ``start`` says so clearly when it is
missing. Nothing here is imported unless ``http_listen`` is set, so the daemon runs
without the extra.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventstore.errors import ValidationError as ConfigError

if TYPE_CHECKING:
    from daemon.http.context import Api
    from daemon.http.runner import HttpServer
    from daemon.service import Service

__all__ = ["Running", "start"]


@dataclass
class Running:
    """A started HTTP side: its ``url``, the server, the API state and its helpers."""

    url: str
    server: HttpServer
    api: Api
    verifier_task: asyncio.Task[None]

    async def stop(self, timeout_s: float) -> None:
        """End the live streams, stop the server within ``timeout_s``, stop the verifier."""
        self.api.stopping.set()
        await self.server.stop(timeout_s)
        self.verifier_task.cancel()


async def start(service: Service) -> Running:
    """Serve the API for ``service`` on its config's ``http_listen``.

    Raises:
        ConfigError: the ``http`` extra is missing, the tokens file is wrong, access
            rules are set with no tokens file, or the address cannot be bound.
    """
    config = service.config
    if config.http_listen is None:
        raise ConfigError("http_listen is not set: nothing to serve over HTTP")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"http_listen is set but {exc.name} is not installed: install the `http` extra "
            "(pip install 'tradelog[http]') or leave http_listen unset") from None
    from daemon.http.address import parse_listen
    from daemon.http.app import create_app
    from daemon.http.auth import TokenStore
    from daemon.http.context import Api
    from daemon.http.runner import HttpServer, bind
    from daemon.http.verify import Verifier

    listen = parse_listen(config.http_listen)
    tokens = TokenStore(config.http_tokens_file)
    tokens.load()
    if config.access and not tokens.required:
        raise ConfigError("access rules limit which accounts socket clients read, but the "
                          "HTTP API has no http_tokens_file: every local user could read "
                          "every account over HTTP. Set http_tokens_file (docs/HTTP.md)")
    verifier = Verifier(config.store_url())
    api = Api(service, tokens, verifier)
    sock = bind(listen)
    server = HttpServer(create_app(api, config.http_cors_origins), sock)
    try:
        await server.start()
    except BaseException:
        sock.close()
        raise
    task = asyncio.create_task(verifier.run(api.stopping), name="http-verify")
    from daemon.http.address import Listen

    url = Listen(listen.host, server.port).url
    return Running(url, server, api, task)
