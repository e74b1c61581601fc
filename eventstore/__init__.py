"""The append-only SQLite event log: canonical JSON, stored records and the recorder.

The stored-event types (``eventstore.record``, ``eventstore.canonical``) are pure; the
recorder and the write transaction, which do I/O, load only when first named here
(``eventstore.Recorder``), so that the folds can use the records without SQLite.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from eventstore.canonical import GENESIS_HASH, canonical_data, canonical_event, chain_hash
from eventstore.errors import (
    DatabaseFileError,
    EventStoreError,
    IdempotencyConflictError,
    NotPermittedError,
    StorageCorruptError,
    StorageUnavailableError,
    TradelogError,
    ValidationError,
    VersionConflictError,
)
from eventstore.record import AppendOutcome, AppendRequest, EventResult, NewEvent, StoredEvent

if TYPE_CHECKING:
    from eventstore.follow import Follower, Statement
    from eventstore.recorder import Recorder
    from eventstore.verify import VerifyReport

_LAZY = {"Follower": "eventstore.follow", "Recorder": "eventstore.recorder",
         "Statement": "eventstore.follow", "VerifyReport": "eventstore.verify"}

__all__ = [
    "GENESIS_HASH",
    "AppendOutcome",
    "AppendRequest",
    "DatabaseFileError",
    "EventResult",
    "EventStoreError",
    "Follower",
    "IdempotencyConflictError",
    "NewEvent",
    "NotPermittedError",
    "Recorder",
    "Statement",
    "StorageCorruptError",
    "StorageUnavailableError",
    "StoredEvent",
    "TradelogError",
    "ValidationError",
    "VerifyReport",
    "VersionConflictError",
    "canonical_data",
    "canonical_event",
    "chain_hash",
]


def __getattr__(name: str) -> Any:
    """The I/O-doing names, imported on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventstore' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
