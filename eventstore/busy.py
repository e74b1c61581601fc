"""Retrying a unit of work that met a locked database, for synchronous and async callers.

SQLite waits ``busy_timeout`` itself; past it, the work is tried again with random
exponential backoff for as long again, then given up as ``StorageUnavailableError``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from eventstore.errors import StorageBusyError, StorageUnavailableError

__all__ = ["retry_busy", "retry_busy_async"]

T = TypeVar("T")


def retry_busy(work: Callable[[], T], busy_timeout_s: float) -> T:
    """``work()``, tried again while it raises ``StorageBusyError`` for up to twice
    ``busy_timeout_s`` seconds in all.

    Raises:
        StorageUnavailableError: still locked at the end (nothing was stored).
        What ``work`` raises otherwise.
    """
    started = time.monotonic()
    try:
        # The first attempt runs without the retry machinery: building it costs as much
        # as a small group's whole commit, and the file is rarely locked.
        return work()
    except StorageBusyError:
        pass
    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(StorageBusyError),
            stop=stop_after_delay(max(0.0, busy_timeout_s * 2 - (time.monotonic() - started))),
            wait=wait_random_exponential(multiplier=0.01, max=0.5),
            reraise=True,
        ):
            with attempt:
                return work()
    except StorageBusyError as exc:
        raise StorageUnavailableError(
            f"{exc}; still locked after retrying, nothing was stored") from exc
    raise AssertionError("unreachable")  # pragma: no cover


async def retry_busy_async(work: Callable[[], Awaitable[T]], busy_timeout_s: float) -> T:
    """``await work()`` under the same policy as ``retry_busy`` (a first attempt without
    the retry machinery, then random exponential backoff for up to twice
    ``busy_timeout_s`` seconds in all).

    Raises:
        StorageUnavailableError: still locked at the end (nothing was stored).
        What ``work`` raises otherwise.
    """
    started = time.monotonic()
    try:
        return await work()
    except StorageBusyError:
        pass
    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(StorageBusyError),
            stop=stop_after_delay(max(0.0, busy_timeout_s * 2 - (time.monotonic() - started))),
            wait=wait_random_exponential(multiplier=0.01, max=0.5),
            reraise=True,
        ):
            with attempt:
                return await work()
    except StorageBusyError as exc:
        raise StorageUnavailableError(
            f"{exc}; still locked after retrying, nothing was stored") from exc
    raise AssertionError("unreachable")  # pragma: no cover
