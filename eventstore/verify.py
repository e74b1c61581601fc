"""Walking the hash chain: the check behind ``tradelog verify``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from eventstore import ddl
from eventstore.canonical import GENESIS_HASH, canonical_event, chain_hash

__all__ = ["VerifyReport", "stored_canonical", "verify_chain"]

class VerifyReport:
    """The result of ``Recorder.verify``: ``ok``, events checked, first bad seq and why."""

    def __init__(self, checked: int, last_hash: str, bad_seq: int | None, reason: str) -> None:
        self.checked = checked
        self.last_hash = last_hash
        self.bad_seq = bad_seq
        self.reason = reason

    @property
    def ok(self) -> bool:
        """True when the chain and triggers checked out: no ``bad_seq`` and no ``reason``."""
        return self.bad_seq is None and not self.reason


def stored_canonical(row: Sequence[Any]) -> bytes:
    """Canonical bytes of a stored row in ``ddl.EVENT_COLUMNS`` order."""
    return canonical_event(
        account=row[5], data_json=row[8], datacontenttype=row[7], event_id=row[2],
        source=row[1], specversion=row[6], time=row[4], event_type=row[3],
    )


def _squeezed(sql: str) -> str:
    return " ".join(sql.split())


def verify_chain(conn: sqlite3.Connection) -> VerifyReport:
    """Check the chain on an open connection (see ``Recorder.verify``), then that the
    append-only triggers are ours and the per-account event counts match the log."""
    present: dict[str, str] = dict(conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"))
    missing = sorted(
        name for name, sql in ddl.EVENT_TRIGGERS.items()
        if _squeezed(present.get(name) or "") != _squeezed(sql)
    )
    previous = GENESIS_HASH
    expected_seq = 1
    checked = 0
    cursor = conn.execute(f"SELECT {ddl.EVENT_COLUMNS} FROM events ORDER BY seq")
    while rows := cursor.fetchmany(4096):
        for row in rows:
            seq = row[0]
            if seq != expected_seq:
                return VerifyReport(checked, previous, expected_seq,
                                    f"seq {expected_seq} is missing (next stored is {seq})")
            digest = chain_hash(previous, stored_canonical(row))
            if digest != row[12]:
                return VerifyReport(checked, previous, seq,
                                    "hash does not match: the event was altered, removed "
                                    "or reordered")
            previous = digest
            expected_seq += 1
            checked += 1
    if missing:
        return VerifyReport(checked, previous, None,
                            f"append-only triggers removed or altered: {', '.join(missing)}")
    drift = _version_drift(conn)
    if drift:
        return VerifyReport(checked, previous, None, drift)
    return VerifyReport(checked, previous, None, "")


def _version_drift(conn: sqlite3.Connection) -> str:
    """Why the ``accounts`` table (the counts behind ``expected_version``) disagrees with
    the log, or "" when every account's version equals its number of events."""
    counts = dict(conn.execute("SELECT account, count(*) FROM events GROUP BY account"))
    versions = dict(conn.execute("SELECT account, version FROM accounts"))
    for account in sorted(set(counts) | set(versions)):
        if counts.get(account, 0) != versions.get(account, 0):
            return (f"account {account!r} holds {counts.get(account, 0)} events but the "
                    f"accounts table says {versions.get(account, 0)}: expected_version "
                    "checks would be wrong")
    return ""
