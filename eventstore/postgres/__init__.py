"""The event log on PostgreSQL: the recorder contract of the SQLite log (one gapless
global ``seq``, one SHA-256 chain, idempotency by source+id, ``expected_version``, an
answer only after a durable commit, append-only triggers) for any number of daemons
appending to one database. Needs the ``postgres`` extra (psycopg 3).

- ``ddl``: tables, triggers, identity;
- ``connect``: connections, the schema's creation and checks, error mapping;
- ``writes``: the group commit under the log's advisory lock;
- ``voids``: the void rules on this store;
- ``reads``, ``verify``: reading by seq, and the chain and triggers checked;
- ``recorder``: ``PgRecorder``, the async face;
- ``migrate``: copying a log between stores, seqs, times and hashes kept.

``docs/POSTGRESQL.md`` says what runs on it and how.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventstore.postgres.recorder import PgRecorder

__all__ = ["PgRecorder"]


def __getattr__(name: str) -> Any:
    """``PgRecorder``, imported on first use (PEP 562), so that naming the package does
    not load psycopg."""
    if name == "PgRecorder":
        return importlib.import_module("eventstore.postgres.recorder").PgRecorder
    raise AttributeError(f"module 'eventstore.postgres' has no attribute {name!r}")
