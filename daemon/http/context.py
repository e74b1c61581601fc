"""What every HTTP route shares: the service, the tokens, and the read calls.

The reads are the socket's own: ``query`` and ``metrics`` go through the same param
models (``daemon.service.params``), the same access check (by token here, by uid
there), the same ``views_current`` and the same ``query_view`` / ``compute_metrics``,
in one of the daemon's ``limits.max_reads_running`` read slots, so an HTTP answer is
the socket's answer for the same request and HTTP clients cannot starve socket clients.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from daemon.http.auth import Reader, TokenStore, check_read
from daemon.service.params import MetricsParams, QueryParams, check_params
from projections.metrics import compute_metrics
from projections.query import ViewQuery, query_view

if TYPE_CHECKING:
    from daemon.http.verify import Verifier
    from daemon.service import Service

__all__ = ["Api", "clock"]

_CACHED = 8
"""Metrics answers kept (each is a whole account's figures and curves)."""


def clock() -> datetime:
    """Now, UTC, to the minute: "today" and the period starts of the dashboard's figures
    come from it (in the account's time zone), not from the last event."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


class Api:
    """The HTTP side's state: ``service`` (read at each use: a reload changes its
    config), ``tokens``, the chain ``verifier``, and ``stopping`` (set at shutdown: live
    streams end)."""

    def __init__(self, service: Service, tokens: TokenStore, verifier: Verifier) -> None:
        self.service = service
        self.tokens = tokens
        self.verifier = verifier
        self.stopping = asyncio.Event()
        self._metrics: OrderedDict[tuple[Any, ...], asyncio.Task[dict[str, Any]]] = (
            OrderedDict())

    async def query(self, reader: Reader, params: dict[str, Any]) -> dict[str, Any]:
        """The socket's ``query`` for ``reader``: ``{"view", "as_of_seq", "total", "rows"}``.

        Raises:
            ValidationError, NotPermittedError, StorageUnavailableError.
        """
        checked = check_params(QueryParams, params)
        check_read(reader, checked.account)
        async with self.service.reads_running:
            await self.service.views_current()
            return await query_view(self.service.recorder, ViewQuery(**checked.model_dump()))

    async def metrics(self, reader: Reader, params: dict[str, Any],
                      now: datetime | None = None) -> dict[str, Any]:
        """The socket's ``metrics`` for ``reader``. ``now`` (the dashboard passes
        ``clock()``) overrides ``params["now"]``; with neither, "today" and the period
        starts come from the daemon's clock, as on the socket.

        Answers are shared by equal requests while no event is appended and within
        the minute.

        Raises:
            ValidationError, NotPermittedError, StorageUnavailableError.
        """
        checked = check_params(MetricsParams, params)
        check_read(reader, checked.account)
        values = checked.model_dump()
        # Without a ``now`` the answer follows the wall clock: shared within the minute.
        key = (tuple(sorted(values.items())), self.service.last_seq, now or clock())
        task = self._metrics.get(key)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(self._compute(values, now))
            task.add_done_callback(_retrieved)
            self._metrics[key] = task
            while len(self._metrics) > _CACHED:
                self._metrics.popitem(last=False)
        else:
            self._metrics.move_to_end(key)
        return await asyncio.shield(task)

    async def _compute(self, values: dict[str, Any], now: datetime | None) -> dict[str, Any]:
        account = values.pop("account")
        if now is not None:
            values["now"] = now
        async with self.service.reads_running:
            await self.service.views_current()
            return await compute_metrics(self.service.recorder, account, **values)


def _retrieved(task: asyncio.Task[dict[str, Any]]) -> None:
    """Mark a cached computation's failure as seen (every waiter got it already)."""
    if not task.cancelled():
        task.exception()
