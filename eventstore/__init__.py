"""The append-only SQLite event log: canonical JSON, stored records and the recorder."""

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
from eventstore.recorder import Recorder, Statement, VerifyReport, ViewUpdater

__all__ = [
    "GENESIS_HASH",
    "AppendOutcome",
    "AppendRequest",
    "DatabaseFileError",
    "EventResult",
    "EventStoreError",
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
    "ViewUpdater",
    "canonical_data",
    "canonical_event",
    "chain_hash",
]
