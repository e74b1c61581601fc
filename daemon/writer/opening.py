"""Opening the writer's core on the store its ``Settings`` name: a SQLite file
(``WriterCore``) or a PostgreSQL URI (``PgWriterCore``)."""

from __future__ import annotations

from pathlib import Path

from daemon.writer.core import CoreBase, WriterCore
from daemon.writer.messages import Ready

__all__ = ["is_postgresql", "open_core"]


def is_postgresql(store: str | Path) -> bool:
    """True when ``store`` is a PostgreSQL URI rather than a file's path."""
    return isinstance(store, str) and store.startswith(("postgresql://", "postgres://"))


def open_core(store: str | Path, *, busy_timeout_s: float = 5.0, defer_view_events: int = 0,
              max_page_count: int | None = None) -> tuple[CoreBase, Ready]:
    """``WriterCore.open`` on a file, ``PgWriterCore.open`` on a PostgreSQL URI (where
    the views' rows go with every commit and there is no page cap: ``defer_view_events``
    and ``max_page_count`` are for SQLite). Raises what those raise."""
    if is_postgresql(store):
        from daemon.writer.pgcore import PgWriterCore

        return PgWriterCore.open(str(store), busy_timeout_s=busy_timeout_s)
    return WriterCore.open(store, busy_timeout_s=busy_timeout_s,
                           defer_view_events=defer_view_events, max_page_count=max_page_count)
