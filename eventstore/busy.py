"""Retrying a unit of work that met a locked database, for synchronous callers.

SQLite waits ``busy_timeout`` itself; past it, the work is tried again with random
exponential backoff for as long again, then given up as ``StorageUnavailableError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from eventstore.errors import StorageBusyError, StorageUnavailableError

__all__ = ["retry_busy"]

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
