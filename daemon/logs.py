"""structlog set-up: JSON lines under systemd or when piped, readable lines on a terminal."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog

__all__ = ["Throttle", "configure_logging", "get_logger"]


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
