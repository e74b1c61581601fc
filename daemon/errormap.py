"""Our error tree mapped to JSON-RPC error codes (PROTOCOL.md), in one place.

Kept out of ``daemon.wire`` so the wire layer imports nothing of the storage packages.
"""

from __future__ import annotations

from daemon.wire.rpc import (
    IDEMPOTENCY_CONFLICT,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    NOT_PERMITTED,
    STORAGE_UNAVAILABLE,
    VERSION_CONFLICT,
    RpcError,
)
from eventstore.errors import (
    IdempotencyConflictError,
    NotPermittedError,
    StorageCorruptError,
    StorageDamagedError,
    StorageUnavailableError,
    TradelogError,
    ValidationError,
    VersionConflictError,
)

__all__ = ["error_from_exception"]


def error_from_exception(exc: BaseException) -> RpcError:
    """Map our error tree to PROTOCOL.md codes; anything unexpected is -32603.

    Damaged or corrupt storage is -32603 with ``error.data`` ``{"storage": "corrupt",
    "seq": N or null}`` (docs/PROTOCOL-NOTES.md, "Damage"): never -32001, which says
    "retry later".
    """
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, ValidationError):
        return RpcError(INVALID_PARAMS, str(exc),
                        {"errors": exc.problems} if exc.problems else None)
    if isinstance(exc, StorageUnavailableError):
        return RpcError(STORAGE_UNAVAILABLE, str(exc))
    if isinstance(exc, StorageDamagedError):
        # Damage is not "retry later" (-32001): -32603, marked so a client can tell it
        # from a bug, with the first damaged seq (null when unknown).
        return RpcError(INTERNAL_ERROR, str(exc), {"storage": "corrupt", "seq": exc.seq})
    if isinstance(exc, StorageCorruptError):
        return RpcError(INTERNAL_ERROR, str(exc), {"storage": "corrupt", "seq": None})
    if isinstance(exc, IdempotencyConflictError):
        return RpcError(IDEMPOTENCY_CONFLICT, str(exc),
                        {"source": exc.source, "id": exc.event_id, "seq": exc.seq})
    if isinstance(exc, VersionConflictError):
        return RpcError(VERSION_CONFLICT, str(exc),
                        {"account": exc.account, "version": exc.version})
    if isinstance(exc, NotPermittedError):
        return RpcError(NOT_PERMITTED, str(exc))
    if isinstance(exc, TradelogError):
        return RpcError(STORAGE_UNAVAILABLE, str(exc))
    return RpcError(INTERNAL_ERROR, "internal error; the daemon logged it")
