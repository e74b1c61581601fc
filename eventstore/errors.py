"""The error tree of tradelog, grouped by what the caller can do.

    TradelogError
    ├── ValidationError               bad input: fix it, do not retry as is
    ├── NotPermittedError             this peer may not touch that account: do not retry
    └── EventStoreError
        ├── IdempotencyConflictError  source+id stored with other content: do not retry
        ├── VersionConflictError      expected_version differs: re-read, then retry
        ├── StorageUnavailableError   disk full, read-only, locked too long: retry later
        │                             (nothing of the batch was stored)
        ├── StorageCorruptError       the file is in doubt: stop, restart, run verify
        │   └── CommitInDoubtError    (PostgreSQL) the connection went during COMMIT:
        │                             the group may or may not be stored; re-send it
        ├── StorageDamagedError       a stored event cannot be read or fails its hash
        │                             ("storage corrupt at seq N"): never retry, run verify,
        │                             restore from a backup; other events still serve
        └── DatabaseFileError         not a tradelog file, or from a newer tradelog

``map_sqlite_error`` is the one place where driver errors become ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "CommitInDoubtError",
    "DatabaseFileError",
    "EventStoreError",
    "IdempotencyConflictError",
    "NotPermittedError",
    "StorageBusyError",
    "StorageCorruptError",
    "StorageDamagedError",
    "StorageUnavailableError",
    "TradelogError",
    "ValidationError",
    "VersionConflictError",
    "map_sqlite_error",
]


class TradelogError(Exception):
    """Base of every error tradelog raises on purpose."""


class ValidationError(TradelogError):
    """Input that does not fit the contract; ``problems`` lists what to fix."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.problems))


class NotPermittedError(TradelogError):
    """The peer may not write or read that account (PROTOCOL.md -32004)."""


class EventStoreError(TradelogError):
    """An append or read the event store could not do."""


class IdempotencyConflictError(EventStoreError):
    """``source``+``id`` is already stored with different content (-32002).

    Attributes: ``source``, ``event_id``, ``seq`` (the stored event's position) and
    ``account`` (the stored event's account; None when not known). The daemon answers
    -32004 instead, telling nothing of the stored event, when the peer may not read
    ``account``.
    """

    def __init__(self, source: str, event_id: str, seq: int,
                 account: str | None = None) -> None:
        super().__init__(
            f"event id {event_id!r} from source {source!r} is already stored at seq {seq} "
            "with different content; send a new id for a new event"
        )
        self.source = source
        self.event_id = event_id
        self.seq = seq
        self.account = account

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.event_id, self.seq, self.account))


class VersionConflictError(EventStoreError):
    """``expected_version`` did not match the account's event count (-32003)."""

    def __init__(self, account: str, expected: int, actual: int) -> None:
        super().__init__(
            f"account {account!r} has {actual} events, not the expected {expected}; "
            "re-read the account and decide again"
        )
        self.account = account
        self.expected = expected
        self.version = actual

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.account, self.expected, self.version))


class StorageUnavailableError(EventStoreError):
    """The database cannot take writes now (full, read-only, locked too long). Retryable.

    Nothing of the batch was stored (-32001).
    """


class StorageBusyError(StorageUnavailableError):
    """SQLITE_BUSY / locked: retried with backoff before it reaches a caller."""


class StorageCorruptError(EventStoreError):
    """The database is in doubt (corrupt, or a rollback failed): the process must stop."""


class CommitInDoubtError(StorageCorruptError):
    """The connection to PostgreSQL was lost while a group's ``COMMIT`` was under way: it
    may or may not have committed. Nothing is answered for the group; sending the same
    events again settles it (each is then stored, or answered ``duplicate``).

    The log itself is not in doubt, only that group: the daemon closes its callers'
    connections, reloads its views from the tables and goes on (docs/POSTGRESQL.md,
    "Faults"); a caller of the store alone (``PgRecorder``) may re-send at once.
    """


class StorageDamagedError(EventStoreError):
    """Damage found in the stored log: ``seq`` is the first event that could not be read
    or whose hash does not match (None when even its position could not be read).

    Not retryable, and not a reason to stop serving: the other events still read. The
    message says "storage corrupt at seq N", why, and to run ``tradelog verify``.
    """

    def __init__(self, seq: int | None, why: str) -> None:
        where = f"at seq {seq}" if seq is not None else "(position unknown)"
        super().__init__(
            f"storage corrupt {where}: {why}; this is damage to the database file, not "
            "a passing fault: do not retry, run `tradelog verify` and restore the file "
            "from a backup")
        self.seq = seq
        self.why = why

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.seq, self.why))


class DatabaseFileError(EventStoreError):
    """The file is not a tradelog database, or was written by a newer tradelog."""


_UNAVAILABLE = {
    "SQLITE_FULL",
    "SQLITE_IOERR",
    "SQLITE_READONLY",
    "SQLITE_CANTOPEN",
    "SQLITE_PERM",
    "SQLITE_NOLFS",
    "SQLITE_PROTOCOL",
}
_CORRUPT = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


def map_sqlite_error(exc: sqlite3.Error, doing: str) -> EventStoreError:
    """Turn a sqlite3 error into the tree above; ``doing`` names the operation for the message.

    SQLITE_BUSY/LOCKED -> ``StorageBusyError``; FULL, IOERR, READONLY and similar ->
    ``StorageUnavailableError``; CORRUPT/NOTADB -> ``StorageCorruptError``; anything else
    -> ``EventStoreError``. The caller raises the result ``from exc``.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    base = "_".join(name.split("_")[:2])
    text = str(exc)
    if base in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in text:
        return StorageBusyError(f"{doing}: the database is locked by another connection ({text})")
    if base in _UNAVAILABLE or "disk is full" in text or "disk I/O" in text:
        return StorageUnavailableError(f"{doing}: storage unavailable: {text}; nothing was stored")
    if base in _CORRUPT:
        return StorageCorruptError(f"{doing}: the database file is damaged: {text}")
    return EventStoreError(f"{doing}: {text}")
