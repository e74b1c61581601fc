"""structlog set-up: JSON lines under systemd or when piped, readable lines on a terminal."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger"]


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
