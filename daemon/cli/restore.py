"""``tradelog restore SRC (--db DEST | --store URL) [--to-seq N | --to-time T] [--force]``.

Into a SQLite file (``--db DEST``, or ``--store sqlite:///DEST``): verify ``SRC`` first;
then build the new database in a 0600 temporary file beside ``DEST``: the whole copy of
``SRC`` (online backup API), or for point-in-time recovery a new log holding events 1..N
of ``SRC`` exactly as stored (ids, times, seqs, ``recorded_at``, metadata and hashes:
the chain is the same prefix). Every view is rebuilt from that log, the result is
verified, flushed to disk and only then renamed to ``DEST``. ``DEST``'s lock
(``daemon.lockfile``) is held throughout, so a database a daemon is serving is never
overwritten; an existing ``DEST`` needs ``--force``.

Into a PostgreSQL log (``--store postgresql://...``, ``restore_store``): verify ``SRC``
first; then, in one transaction under the log's append lock (the one each daemon's
commit takes), check that the log holds no events, copy events 1..N of ``SRC`` exactly
as stored (``eventstore.migrate.copy_into_postgresql``), rebuild every view there
(``projections.pgviews.rebuild_views``) and verify the result (``verify_chain``); it
commits only when all of that holds, so a refusal or a failure leaves the log as it
was (a schema without a log gets its empty tables first, as any first open makes them).
Daemons already serving the empty log wait for the lock meanwhile (their appends are
answered -32001, retryable, past their ``busy_timeout_s``), then go on from the rebuilt
views as after ``tradelog rebuild``.
A log is append-only: restore never removes an event. ``--force`` does not replace a
log that holds events; it takes one that holds the first events of ``SRC`` already
(same seqs and hashes: a restore whose commit was cut off, or one to a lower
``--to-seq``) and copies the rest after them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.lockfile import hold_lock
from eventstore import ddl
from eventstore.backup import (
    discard,
    private_file,
    publish,
    snapshot_to_temp,
    verify_file,
)
from eventstore.errors import (
    DatabaseFileError,
    StorageCorruptError,
    ValidationError,
    map_sqlite_error,
)
from eventstore.recorder import Recorder
from eventstore.sqlitefile import open_sqlite
from projections.query import as_of_seq
from projections.startup import rebuild_views

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.locations import Locations
    from eventstore.store import StoreURL
    from eventstore.verify import VerifyReport

__all__ = ["RESTORE_LOCK_WAIT_S", "RestoreReport", "restore", "restore_command",
           "restore_store", "target_seq"]

RESTORE_LOCK_WAIT_S = 30.0
"""How long a restore into PostgreSQL waits for the log's lock (a daemon's commit holds
it for milliseconds)."""


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What ``restore`` made: ``events`` in ``dest`` (its last seq is the same number),
    its ``last_hash``, ``views_folded`` events folded into the rebuilt views,
    ``source_last_seq`` of ``SRC``, and ``to_seq`` (None: the whole log). ``dest`` is
    the file, or the PostgreSQL log's URL (a password in it shown as ``***``)."""

    dest: Path | str
    events: int
    last_hash: str
    views_folded: int
    source_last_seq: int
    to_seq: int | None

    def summary(self) -> str:
        """The lines ``tradelog restore`` prints."""
        scope = ("the whole log" if self.to_seq is None
                 else f"events 1..{self.to_seq} of {self.source_last_seq} (point in time)")
        return (f"restore: {self.dest}: {scope}; {self.events} events, last seq "
                f"{self.events}, last hash {self.last_hash}\n"
                f"restore: views rebuilt from the log ({self.views_folded} events folded); "
                "verify ok")


async def target_seq(src: Path, to_seq: int | None, to_time: str | None) -> tuple[int, int]:
    """``(N, last)``: the last seq to keep (``to_seq``; the last event recorded at or
    before ``to_time``, as ``query``'s ``as_of`` reads a time; else the last) and the
    source's last seq.

    Raises:
        ValidationError: ``to_seq`` < 0 or past the log's end, or ``to_time`` malformed.
    """
    recorder = await Recorder.open(src, readonly=True)
    try:
        last = await recorder.last_seq()
        if to_seq is not None:
            if to_seq < 0 or to_seq > last:
                raise ValidationError(
                    f"--to-seq {to_seq} is outside the log: {src} holds seqs 1..{last}")
            return to_seq, last
        if to_time is not None:
            return await as_of_seq(recorder, to_time), last
        return last, last
    finally:
        await recorder.close()


def _copy_prefix(src: Path, temp: Path, last: int) -> None:
    """Create a tradelog file at ``temp`` holding the events 1..``last`` of ``src``,
    every column as stored, and the matching per-account counts."""
    source = open_sqlite(src, readonly=True, busy_timeout_s=5.0)
    target = open_sqlite(temp, readonly=False, busy_timeout_s=5.0)
    try:
        source.execute("BEGIN")
        target.execute("BEGIN IMMEDIATE")
        cursor = source.execute(
            f"SELECT {ddl.EVENT_COLUMNS} FROM events WHERE seq <= ? ORDER BY seq", (last,))
        insert = (f"INSERT INTO events ({ddl.EVENT_COLUMNS}) VALUES "
                  "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        while rows := cursor.fetchmany(4096):
            target.executemany(insert, rows)
        target.execute("INSERT INTO accounts (account, version) "
                       "SELECT account, count(*) FROM events GROUP BY account")
        target.execute("COMMIT")
        source.execute("COMMIT")
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, f"copying events 1..{last} of {src}") from exc
    finally:
        source.close()
        target.close()


def _single_file(path: Path) -> None:
    """Fold any write-ahead log into ``path`` and leave it in rollback-journal mode."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()


async def _build(src: Path, temp: Path, keep: int, last: int) -> int:
    if keep != last:
        await asyncio.to_thread(_copy_prefix, src, temp, keep)
    recorder = await Recorder.open(temp)
    try:
        _, folded = await rebuild_views(recorder)
    finally:
        await recorder.close()
    await asyncio.to_thread(_single_file, temp)
    return folded


def _retire(dest: Path) -> None:
    """Before ``dest`` is replaced: fold its write-ahead log in (so nothing stale is
    left beside the new file), then remove what is left of it."""
    with contextlib.suppress(sqlite3.Error):
        conn = sqlite3.connect(dest, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{dest}{suffix}").unlink()


async def _checked_source(src: Path, to_seq: int | None, to_time: str | None
                          ) -> tuple[int, int]:
    """``target_seq``'s ``(N, last)`` for ``src``, once it verifies up to N.

    Raises:
        DatabaseFileError: no file at ``src``, or not a tradelog file.
        StorageCorruptError: ``src`` fails verify at or below N.
        ValidationError: a bad ``to_seq``/``to_time``.
    """
    if not src.exists():
        raise DatabaseFileError(f"{src}: no such database file")
    checked = await asyncio.to_thread(verify_file, src)
    keep, last = await target_seq(src, to_seq, to_time)
    if not checked.ok and (checked.bad_seq is None or keep >= checked.bad_seq):
        where = f"at seq {checked.bad_seq}: " if checked.bad_seq is not None else ""
        raise StorageCorruptError(
            f"{src} fails verify {where}{checked.reason}; nothing restored"
            + (f" (--to-seq below {checked.bad_seq} restores the intact part)"
               if checked.bad_seq is not None else ""))
    return keep, last


async def restore(src: Path, dest: Path, *, to_seq: int | None = None,
                  to_time: str | None = None, force: bool = False) -> RestoreReport:
    """Restore ``src`` (a backup or any tradelog file) into ``dest`` (module docstring).

    Raises:
        ValidationError: ``src`` and ``dest`` are the same file, or ``dest`` is a
            symlink (its lock would not be the daemon's); both ``to_seq`` and
            ``to_time``; a bad ``to_seq``/``to_time``; ``dest`` exists without ``force``.
        StorageCorruptError: ``src`` fails verify (below the point asked for), or the
            result does; ``dest`` is untouched.
        DatabaseFileError: ``src`` is not a tradelog file, or a daemon (or another
            tradelog process) holds ``dest``'s lock.
        StorageUnavailableError: ``dest``'s directory cannot be written.
    """
    if to_seq is not None and to_time is not None:
        raise ValidationError("give --to-seq or --to-time, not both")
    src, dest = src.absolute(), dest.absolute()
    if dest.is_symlink():
        raise ValidationError(f"{dest} is a symlink; give the path of the file itself")
    if dest.exists() and src.exists() and src.samefile(dest):
        raise ValidationError(f"{src} is the file to restore into; give another --db")
    keep, last = await _checked_source(src, to_seq, to_time)
    with hold_lock(dest):
        if (dest.exists() or dest.is_symlink()) and not force:
            raise ValidationError(
                f"{dest} exists; give --force to replace it (back it up first), or "
                "restore into a new path")
        if keep == last:
            temp = await asyncio.to_thread(snapshot_to_temp, src, dest.parent, dest.name)
        else:
            temp = private_file(dest.parent, dest.name)
        try:
            folded = await _build(src, temp, keep, last)
            result = await asyncio.to_thread(verify_file, temp)
        except BaseException:
            discard(temp)
            raise
        if not result.ok or result.checked != keep:
            discard(temp)
            raise StorageCorruptError(
                f"the restored copy fails verify ({result.reason or 'event count'}); "
                f"{dest} is untouched")
        if dest.exists():
            _retire(dest)
        publish(temp, dest, replace=True)
    return RestoreReport(dest, result.checked, result.last_hash, folded, last,
                         None if keep == last and to_seq is None and to_time is None
                         else keep)


def _not_empty(where: str, held: int, force: bool) -> ValidationError:
    """The refusal of a restore into a log that holds ``held`` events."""
    why = ("they are not the first events of SRC, or more of them than asked for"
           if force else "restore writes only into a log with no events")
    return ValidationError(
        f"{where} holds a log of {held} events ({why}); nothing was restored. A log is "
        "append-only and restore never removes events: restore into a new schema "
        "(CREATE SCHEMA name; add ?options=-csearch_path%3Dname to the URL) and point the "
        "daemons at it, or back this log up (`tradelog backup FILE --store URL`), stop "
        "its daemons and drop its tables yourself. --force only goes on after events "
        "that are already SRC's first ones (docs/POSTGRESQL.md)")


def _into_postgresql(src: Path, store: StoreURL, keep: int, force: bool
                     ) -> tuple[int, VerifyReport]:
    """Events 1..``keep`` of ``src`` into the PostgreSQL log ``store``, its views rebuilt
    and the result verified, in one transaction (module docstring); returns the events
    folded into the views and the verify report."""
    import psycopg

    from eventstore.migrate import copy_into_postgresql
    from eventstore.postgres import reads
    from eventstore.postgres.connect import connect, map_pg_error, prepare
    from eventstore.postgres.verify import verify_chain
    from eventstore.store import StoreURL
    from projections import pgviews

    assert store.conninfo is not None
    conn = connect(store.conninfo, lock_timeout_s=RESTORE_LOCK_WAIT_S)
    try:
        key = prepare(conn, create=True)
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
                held = reads.last_seq(conn)
                if held and not force:
                    raise _not_empty(store.redacted(), held, force)
                try:
                    copy_into_postgresql(StoreURL("sqlite", path=src), conn, key,
                                         to_seq=keep)
                except DatabaseFileError:
                    if not held:
                        raise
                    raise _not_empty(store.redacted(), held, force) from None
                folded = pgviews.rebuild_views(conn, key)
                result = verify_chain(conn)
                if not result.ok or result.checked != keep:
                    raise StorageCorruptError(
                        f"the restored log fails verify ({result.reason or 'event count'});"
                        f" nothing was restored into {store.redacted()}")
        except psycopg.Error as exc:
            raise map_pg_error(exc, "restoring into the PostgreSQL log") from exc
    finally:
        conn.close()
    return folded, result


async def restore_store(src: Path, store: StoreURL, *, to_seq: int | None = None,
                        to_time: str | None = None, force: bool = False) -> RestoreReport:
    """Restore ``src`` (a backup or any tradelog SQLite file) into the PostgreSQL log
    ``store`` names (module docstring); on any refusal or failure the log is as it was.

    Raises:
        ValidationError: both ``to_seq`` and ``to_time``; a bad ``to_seq``/``to_time``;
            the log holds events (with ``force``: other than ``src``'s first ones, or
            more than N of them).
        StorageCorruptError: ``src`` fails verify (below the point asked for), or the
            result does.
        DatabaseFileError: ``src`` is not a tradelog file; the schema holds tables that
            are not a tradelog log.
        StorageUnavailableError: the server cannot be reached or refuses.
        StorageBusyError: the log's lock was not had within ``RESTORE_LOCK_WAIT_S``.
    """
    if to_seq is not None and to_time is not None:
        raise ValidationError("give --to-seq or --to-time, not both")
    src = src.absolute()
    keep, last = await _checked_source(src, to_seq, to_time)
    folded, result = await asyncio.to_thread(_into_postgresql, src, store, keep, force)
    return RestoreReport(store.redacted(), result.checked, result.last_hash, folded, last,
                         None if keep == last and to_seq is None and to_time is None
                         else keep)


def restore_command(args: argparse.Namespace, config: Config | Locations) -> int:
    """``tradelog restore``: into the SQLite file ``--db`` (or ``--store sqlite:///``)
    or the PostgreSQL log ``--store`` names; prints ``RestoreReport.summary``; exit 2
    without either (or with both), 1 on a refusal."""
    del config
    if args.db is not None and args.store is not None:
        print("tradelog restore: give --db DEST (a SQLite file) or --store URL (a "
              "PostgreSQL log), not both", file=sys.stderr)
        return 2
    dest: Path | None = args.db
    if args.store is not None:
        from eventstore.store import parse_store

        store = parse_store(args.store)
        if store.kind != "sqlite":
            report = asyncio.run(restore_store(args.src, store, to_seq=args.to_seq,
                                               to_time=args.to_time, force=args.force))
            print(report.summary())
            return 0
        dest = store.path
    if dest is None:
        print("tradelog restore: give --db DEST (the database file to create) or --store "
              "URL (an empty PostgreSQL log)", file=sys.stderr)
        return 2
    report = asyncio.run(restore(args.src, dest, to_seq=args.to_seq, to_time=args.to_time,
                                 force=args.force))
    print(report.summary())
    return 0
