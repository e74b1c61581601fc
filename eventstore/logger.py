"""structlog for every package that logs, imported once without its optional extras.

structlog imports rich's tracebacks (and through them pygments) for its console
renderer, and greenlet for its deprecated thread-local context, whenever they are
installed; rich is, for the CLI's tables. tradelog uses neither feature, and they cost
about 40 ms of every daemon start and CLI command. So ``structlog`` here is imported with
them hidden (unless they are loaded already); they import as usual afterwards, and the
console renderer prints plain tracebacks. Import ``structlog`` from here, never directly.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

__all__ = ["structlog"]

_OPTIONAL_FOR_STRUCTLOG = ("rich", "rich.traceback", "greenlet")
"""Modules structlog imports when they are installed, for features tradelog does not
use: rich's tracebacks (and through them pygments) for its console renderer, and
greenlet for its deprecated thread-local context. ``rich.traceback`` is named apart
for a process that has loaded rich already (the CLI's tables)."""


def _import_structlog() -> ModuleType:
    """structlog, imported without its optional integrations (``_OPTIONAL_FOR_STRUCTLOG``)
    unless they are loaded already: about 40 ms of every daemon start and CLI command.
    Each is hidden only while structlog is imported (structlog checks for them once,
    then); later imports of them, e.g. the CLI's tables importing rich, work as usual.
    The console renderer then prints plain tracebacks."""
    hidden = [name for name in _OPTIONAL_FOR_STRUCTLOG if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # "not installed" to import
    try:
        return importlib.import_module("structlog")
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]


structlog = _import_structlog()
