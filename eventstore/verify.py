"""Walking the hash chain: the check behind ``tradelog verify``."""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from eventstore import ddl
from eventstore.canonical import GENESIS_HASH, canonical_event, chain_hash
from eventstore.errors import StorageDamagedError

__all__ = ["VerifyReport", "check_rows", "first_seq_after", "rows_after", "stored_canonical",
           "unreadable_reason",
           "verify_chain", "verify_tail"]

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


def unreadable_reason(exc: BaseException) -> str:
    """How a failed read of a stored row is described: the driver's words (without the
    damaged text it may quote, control characters escaped), or the exception's."""
    text = str(exc).split(" with text ", 1)[0][:300]
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if isinstance(exc, sqlite3.Error):
        return f"the row cannot be read ({text})"
    return f"the row cannot be decoded ({type(exc).__name__}: {text})"


def first_seq_after(conn: sqlite3.Connection, after: int) -> int:
    """The seq of the first stored row past ``after``, read from the seq column alone;
    ``after + 1`` (where it should be in a log without gaps) when even that cannot be read."""
    try:
        row = conn.execute("SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT 1",
                           (after,)).fetchone()
    except sqlite3.Error:
        return after + 1
    return int(row[0]) if row and isinstance(row[0], int) else after + 1


def rows_after(conn: sqlite3.Connection, after: int, before: int | None = None
               ) -> Generator[tuple[Any, ...], None, None]:
    """Every stored row (``ddl.EVENT_COLUMNS``) with ``after < seq`` (and ``< before``)
    in seq order, read 4096 at a time. Once the driver fails (a damaged page, text that
    is not UTF-8), the rest is read one row at a time, so that every readable row before
    the damage is still given.

    Raises:
        StorageDamagedError: the first row that cannot be read, by its seq.
    """
    last = after
    bound = "" if before is None else " AND seq < ?"
    extra: tuple[int, ...] = () if before is None else (before,)
    cursor = conn.cursor()
    try:
        cursor.execute(f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE seq > ?{bound} "
                       "ORDER BY seq", (after, *extra))
        while rows := cursor.fetchmany(4096):
            yield from rows
            last = rows[-1][0]
    except sqlite3.Error:
        pass
    else:
        return
    finally:
        cursor.close()  # a failed statement left open fails the read's COMMIT
    one = (f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE seq > ?{bound} "
           "ORDER BY seq LIMIT 1")
    while True:
        try:
            row = conn.execute(one, (last, *extra)).fetchone()
        except sqlite3.Error as exc:
            raise StorageDamagedError(first_seq_after(conn, last),
                                      unreadable_reason(exc)) from exc
        if row is None:
            return
        yield row
        last = row[0]


def check_rows(rows: Iterator[tuple[Any, ...]], previous: str, expected_seq: int
               ) -> tuple[int, str, int | None, str]:
    """Re-hash ``rows`` (``ddl.EVENT_COLUMNS`` order, e.g. from ``rows_after``) from
    ``expected_seq`` on ``previous`` (hex SHA-256): ``(checked, last good hash, first bad
    seq or None, reason)``. A row that cannot be read or decoded is a bad seq, never
    raised; the one rule of the chain, for every store and every checker."""
    checked = 0
    try:
        for row in rows:
            seq = row[0]
            if seq != expected_seq:
                return (checked, previous, expected_seq,
                        f"seq {expected_seq} is missing (next stored is {seq})")
            try:
                digest = chain_hash(previous, stored_canonical(row))
            except (TypeError, ValueError) as exc:
                return checked, previous, seq, unreadable_reason(exc)
            if digest != row[12]:
                return (checked, previous, seq,
                        "hash does not match: the event was altered, removed or reordered")
            previous = digest
            expected_seq += 1
            checked += 1
    except StorageDamagedError as exc:
        return checked, previous, exc.seq, exc.why
    return checked, previous, None, ""


def verify_chain(conn: sqlite3.Connection) -> VerifyReport:
    """Check the chain on an open connection (see ``Recorder.verify``), then that the
    append-only triggers are ours and the per-account event counts match the log.

    A row the driver cannot read (a damaged page) or decode is reported as the first
    bad seq, never raised.
    """
    try:
        present: dict[str, str] = dict(conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND tbl_name = 'events'"))
    except sqlite3.Error as exc:
        return VerifyReport(0, GENESIS_HASH, None,
                            f"storage corrupt: the schema cannot be read ({exc})")
    missing = sorted(
        name for name, sql in ddl.EVENT_TRIGGERS.items()
        if _squeezed(present.get(name) or "") != _squeezed(sql)
    )
    checked, previous, bad_seq, reason = check_rows(rows_after(conn, 0), GENESIS_HASH, 1)
    if bad_seq is not None:
        return VerifyReport(checked, previous, bad_seq, reason)
    if missing:
        return VerifyReport(checked, previous, None,
                            f"append-only triggers removed or altered: {', '.join(missing)}")
    try:
        drift = _version_drift(conn)
    except sqlite3.Error as exc:
        drift = f"storage corrupt: the accounts table cannot be read ({exc})"
    if drift:
        return VerifyReport(checked, previous, None, drift)
    return VerifyReport(checked, previous, None, "")


def verify_tail(conn: sqlite3.Connection, count: int) -> VerifyReport:
    """Re-hash the last ``count`` events against their stored hashes, each chained on the
    stored hash of the event before them (the check ``serve`` makes at start).

    ``checked`` counts the events re-hashed; ``bad_seq`` is the first that fails (its
    row unreadable, its hash wrong, or a seq missing). When even the last seq cannot be
    read, ``bad_seq`` is None and ``reason`` says so.
    """
    try:
        last = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    except sqlite3.Error as exc:
        return VerifyReport(0, GENESIS_HASH, None,
                            f"storage corrupt: the last seq cannot be read ({exc})")
    first = max(1, int(last) - count + 1)
    previous = GENESIS_HASH
    if first > 1:
        try:
            row = conn.execute("SELECT hash FROM events WHERE seq = ?", (first - 1,)).fetchone()
        except sqlite3.Error as exc:
            return VerifyReport(0, GENESIS_HASH, first - 1, unreadable_reason(exc))
        if row is None or not isinstance(row[0], str):
            return VerifyReport(0, GENESIS_HASH, first - 1,
                                f"seq {first - 1} is missing or its hash unreadable")
        previous = row[0]
    checked, previous, bad_seq, reason = check_rows(
        rows_after(conn, first - 1), previous, first)
    return VerifyReport(checked, previous, bad_seq, reason)


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
