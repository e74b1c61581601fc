"""structlog set-up: JSON lines under systemd or when piped, readable lines on a terminal."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from eventstore.logger import structlog

__all__ = ["Tally", "Throttle", "configure_logging", "get_logger"]


def _wants_json(fmt: str) -> bool:
    if fmt != "auto":
        return fmt == "json"
    return bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID")) or (
        not sys.stdout.isatty())


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    """Configure structlog for the process: ``fmt`` auto/json/console, ``level`` name."""
    renderer: Any = (structlog.processors.JSONRenderer() if _wants_json(fmt)
                     else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A lazy structlog logger carrying ``component=name``, configured at first use."""
    return structlog.get_logger(component=name)


class Throttle:
    """At most ``burst`` log records per ``interval_s`` for a kind of event that clients
    can cause at will (a refused request, a refused connection): the records held back
    meanwhile are counted, and the next record logged says how many (``held_back``).

    ``clock`` returns seconds (monotonic); tests may pass their own.
    """

    def __init__(self, interval_s: float, burst: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.burst = burst
        self.held_back = 0
        self._clock = clock
        self._window_end = float("-inf")
        self._logged = 0

    def allow(self) -> int | None:
        """None: hold this record back (it is counted). Otherwise log it now, with the
        returned count of records held back since the last one logged."""
        now = self._clock()
        if now >= self._window_end:
            self._window_end = now + self.interval_s
            self._logged = 0
        if self._logged >= self.burst:
            self.held_back += 1
            return None
        self._logged += 1
        held, self.held_back = self.held_back, 0
        return held

    def log(self, logger: Any, level: str, event: str, **fields: Any) -> None:
        """``logger.<level>(event, **fields, held_back=N)`` unless held back."""
        held = self.allow()
        if held is not None:
            getattr(logger, level)(event, **fields, held_back=held)


class Tally:
    """One info record per ``interval_s`` of activity instead of one per operation: the
    operations ``add``-ed meanwhile are summed (``sums``), their largest values kept
    (``most``, logged as ``max_<name>``) and their latest values kept (``last``); the
    record is logged ``interval_s`` after the first operation of the interval (by the
    running event loop), or at ``flush()``. ``count_name`` (e.g. ``groups``) names the
    number of ``add`` calls.
    Nothing is logged for an interval without activity.
    """

    def __init__(self, logger: Any, event: str, interval_s: float = 1.0,
                 count_name: str = "operations") -> None:
        self.logger = logger
        self.event = event
        self.interval_s = interval_s
        self.count_name = count_name
        self._sums: dict[str, float] = {}
        self._most: dict[str, float] = {}
        self._last: dict[str, Any] = {}
        self._operations = 0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, sums: dict[str, float], most: dict[str, float] | None = None,
            last: dict[str, Any] | None = None) -> None:
        """Count one operation; the first of an interval schedules the record (when an
        event loop runs; else the record waits for ``flush()``)."""
        self._operations += 1
        for name, value in sums.items():
            self._sums[name] = self._sums.get(name, 0) + value
        for name, value in (most or {}).items():
            self._most[name] = max(self._most.get(name, value), value)
        self._last.update(last or {})
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._timer = loop.call_later(self.interval_s, self.flush)

    def flush(self) -> None:
        """Log the record of the operations counted so far, if any, and start afresh."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._operations:
            return
        fields: dict[str, Any] = {self.count_name: self._operations, **self._sums}
        fields.update({f"max_{name}": value for name, value in self._most.items()})
        fields.update(self._last)
        self._sums, self._most, self._last, self._operations = {}, {}, {}, 0
        self.logger.info(self.event, interval_s=self.interval_s,
                         **{k: round(v, 3) if isinstance(v, float) else v
                            for k, v in fields.items()})
