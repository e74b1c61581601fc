"""A bounded cache of view rows that loads a missing row on demand (signals, orders).

Signals and orders are looked up by key (a fill's order and signal, a status event's
entity) but never scanned, and most are long finished: the daemon keeps only the
recently used ones in memory and loads any other from its table. Pure: the loader is
a plain function handed in by whoever owns the database connection.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any, TypeVar

__all__ = ["RowCache"]

K = TypeVar("K")
V = TypeVar("V")


class RowCache(dict[K, V]):
    """A dict of the rows in memory; ``get``/``[]``/``in`` fall back to ``loader(key)``
    (None: no such row). Iteration and ``len`` see only the rows in memory.

    ``trim(keep)`` forgets rows beyond ``limit``, oldest loaded first, except ``keep``:
    call it only when every row in memory is also in the table (after a commit), and
    keep the rows changed since.
    """

    def __init__(self, loader: Callable[[K], V | None], limit: int) -> None:
        super().__init__()
        self.loader = loader
        self.limit = limit

    def get(self, key: K, default: Any = None) -> Any:
        """The row in memory, else ``loader(key)`` (kept in memory if found), else ``default``."""
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        found = self.loader(key)
        if found is None:
            return default
        dict.__setitem__(self, key, found)
        return found

    def __missing__(self, key: K) -> V:
        found = self.loader(key)
        if found is None:
            raise KeyError(key)
        dict.__setitem__(self, key, found)
        return found

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self.get(key) is not None  # type: ignore[arg-type]

    def trim(self, keep: set[K]) -> None:
        """Forget the oldest-loaded rows beyond ``limit`` (and a quarter more), except ``keep``."""
        excess = len(self) - self.limit
        if excess <= 0:
            return
        for key in list(islice(iter(self), excess + self.limit // 4)):
            if key not in keep:
                dict.__delitem__(self, key)
