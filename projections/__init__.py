"""The views folded from the event log: positions, trades, balances, daily, signals,
orders, journal, history, instruments, accounts and strategies, kept as plain SQLite
tables in the same file.

Importing the package loads nothing: the folds (``projections.fold`` and the modules
it uses) are pure, and the modules that read or write SQLite (``projections.runner``,
``projections.query``, ``projections.startup``) load only when first named.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from projections.fold import PROJECTION_VERSION, apply, fold
    from projections.query import ViewQuery, query_view
    from projections.runner import ViewRunner
    from projections.state import State
    from projections.tables import VIEWS

_LAZY = {"PROJECTION_VERSION": "projections.fold", "apply": "projections.fold",
         "fold": "projections.fold", "ViewQuery": "projections.query",
         "query_view": "projections.query", "ViewRunner": "projections.runner",
         "State": "projections.state", "VIEWS": "projections.tables"}

__all__ = ["PROJECTION_VERSION", "VIEWS", "State", "ViewQuery", "ViewRunner", "apply", "fold",
           "query_view"]


def __getattr__(name: str) -> Any:
    """The package's names, imported on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'projections' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
