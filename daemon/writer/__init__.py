"""The writer: the daemon's one SQLite connection that appends, and its views.

- ``messages``: the typed messages between the daemon and the writer process;
- ``pipe``: their framing over a socketpair (the daemon's async end, the writer's
  blocking end);
- ``core``: ``WriterCore``, synchronous commits around one sqlite3 connection;
- ``child``: the writer process's main loop, around a ``WriterCore``;
- ``process``: ``WriterProcess``, the daemon's handle on that process;
- ``local``: ``LocalWriter``, the same core on a thread of the daemon
  (``writer_process = false``);
- ``launch``: starting the process early (standard library only).

Importing the package loads nothing (``daemon.writer.launch`` must stay light); the
names below load on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from daemon.writer.local import LocalWriter
    from daemon.writer.process import WriterProcess
    from eventstore.record import AppendOutcome, AppendRequest

__all__ = ["LocalWriter", "Writer", "WriterProcess"]

_LAZY = {"LocalWriter": "daemon.writer.local", "WriterProcess": "daemon.writer.process"}


class Writer(Protocol):
    """What the service needs of its writer: group commits and the views' checkpoint."""

    @property
    def checkpoint(self) -> int:
        """The views' checkpoint: seq of the last event folded (as of the last commit)."""
        ...

    @property
    def flushed(self) -> int:
        """The seq up to which the views' tables are written (as of the last answer)."""
        ...

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """Commit the requests in one transaction; one outcome per request, in order."""
        ...

    async def flush_views(self) -> None:
        """Write the views' rows held back so far."""
        ...

    async def close(self) -> None:
        """Release the writer (after the last append)."""
        ...


def __getattr__(name: str) -> Any:
    """``LocalWriter`` and ``WriterProcess``, imported on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'daemon.writer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
