"""Helpers for the HTTP API's tests: a real daemon serving HTTP, seeded with the demo bot.

Everything goes through ``tradelog serve --http`` (``tests.support.DaemonProcess``), its
Unix socket and its HTTP port; nothing imports the daemon's internals.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from examples.sma_bot import ACCOUNT, read_bars, run
from tests.support import DaemonProcess, daemon_on

__all__ = ["ACCOUNT", "HttpDaemon", "http_daemon", "seed"]


class HttpDaemon:
    """A started daemon with HTTP: ``proc`` and ``base`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, proc: DaemonProcess, base: str) -> None:
        self.proc = proc
        self.base = base

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        """``GET base + path`` with the params that are not None."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.base + path, headers=headers, timeout=30.0,
                         params={k: v for k, v in params.items() if v is not None})

    def json(self, path: str, **params: Any) -> Any:
        """The JSON of a 200 answer (fails the test on any other status)."""
        answer = self.get(path, **params)
        assert 200 == answer.status_code, answer.text
        return answer.json()


def ready_url(log: Path) -> str:
    """The HTTP base URL from the daemon's ``daemon_ready`` log record."""
    for line in log.read_text().splitlines():
        if '"daemon_ready"' in line:
            url: str = json.loads(line)["http"]
            return url.rstrip("/")
    raise AssertionError(f"no daemon_ready in {log}")


@contextlib.contextmanager
def http_daemon(directory: Path, listen: str = "127.0.0.1:0",
                extra_args: list[str] | None = None,
                env: dict[str, str] | None = None,
                store: str = "sqlite") -> Iterator[HttpDaemon]:
    """A daemon in ``directory`` serving HTTP on ``listen`` (port 0: a free one), its log
    on ``store`` (``tests.support.daemon_on``: ``sqlite`` or ``postgresql``)."""
    with daemon_on(store, directory, env=env,
                   extra_args=["--http", listen, *(extra_args or [])]) as proc:
        yield HttpDaemon(proc, ready_url(proc.log))


def seed(socket_path: Path, bars: int = 700) -> int:
    """The demo's SMA bot over the first ``bars`` EUR/USD bars; returns the events sent."""
    return run(socket_path, read_bars(limit=bars))


def sse_blocks(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-Sent Events from the lines of a stream: one dict per event (``event``,
    ``id``, ``data``; comments left out)."""
    block: dict[str, str] = {}
    for line in lines:
        if not line:
            if block:
                yield block
            block = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        block[name] = value[1:] if value.startswith(" ") else value
