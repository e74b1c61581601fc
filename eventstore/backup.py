"""Consistent copies of a tradelog file, taken while it is in use, written atomically.

A copy is made with SQLite's online backup API from a read-only connection, in one
step: one read transaction, so the copy is the log exactly as some commit left it, and
(the file being in WAL mode) the daemon's appends go on while it is taken. The copy is
written to a temporary file in the destination's directory (created 0600, never
following a symlink), switched out of WAL mode so that it is one self-contained file,
checked with ``verify_chain``, flushed to disk (``fsync``) and only then given its final
name: a reader never finds a half-written copy under that name.

    snapshot_to_temp(db, directory, name) -> temp path    (the copy, not yet published)
    verify_file(path) -> VerifyReport                     (the chain of any tradelog file)
    publish(temp, dest, replace=False)                    (fsync, final name, fsync dir)
    discard(temp)                                         (remove a temp file and its journals)
    backup_file(db, dest) -> CopyReport                   (all of the above)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from eventstore.errors import StorageCorruptError, StorageUnavailableError, map_sqlite_error
from eventstore.sqlitefile import open_sqlite
from eventstore.verify import VerifyReport, verify_chain

__all__ = ["CopyReport", "backup_file", "discard", "private_file", "publish", "publish_verified",
           "refuse_existing",
           "snapshot_to_temp", "verify_file"]

FILE_MODE = 0o600
"""Mode of every copy and temporary file: the log holds every account's trades."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    """A verified copy: where it is, its event count, last ``seq`` (0: empty), last
    ``hash`` (the genesis hash when empty) and size in bytes."""

    path: Path
    events: int
    last_seq: int
    last_hash: str
    bytes: int

    def to_wire(self) -> dict[str, object]:
        """As JSON: ``{"path", "events", "last_seq", "last_hash", "bytes"}``."""
        return {"path": str(self.path), "events": self.events, "last_seq": self.last_seq,
                "last_hash": self.last_hash, "bytes": self.bytes}


def private_file(directory: Path, name: str) -> Path:
    """Create an empty file ``.<name>.<random>.tmp`` in ``directory``, mode 0600,
    refusing to follow or reuse anything already there; returns its path.

    Raises:
        StorageUnavailableError: the directory is missing or not writable (errno named).
    """
    path = directory / f".{name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        raise StorageUnavailableError(
            f"cannot create a file in {directory}: {exc.strerror}; check that the "
            "directory exists and is writable") from None
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def discard(temp: Path) -> None:
    """Remove ``temp`` and any journal SQLite left beside it; missing files are fine."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{temp}{suffix}")


def snapshot_to_temp(db: Path, directory: Path, name: str) -> Path:
    """Copy the log at ``db`` as one consistent snapshot into a new 0600 temp file in
    ``directory`` (``private_file``); returns the temp path, which the caller publishes
    or discards. The copy is in rollback-journal mode, one file with nothing beside it.

    Raises:
        DatabaseFileError: ``db`` is missing, not a tradelog file, or needs migrating.
        StorageUnavailableError: the copy cannot be written (disk full, permissions).
    """
    source = open_sqlite(db, readonly=True, busy_timeout_s=5.0)
    try:
        temp = private_file(directory, name)
        try:
            target = sqlite3.connect(temp, isolation_level=None)
            try:
                source.backup(target)
                target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
        except sqlite3.Error as exc:
            discard(temp)
            raise map_sqlite_error(exc, f"copying {db} to {directory}") from exc
        except BaseException:
            discard(temp)
            raise
        return temp
    finally:
        source.close()


def verify_file(path: Path) -> VerifyReport:
    """Walk the hash chain of the tradelog file at ``path`` (read-only, ``verify_chain``).

    Raises:
        DatabaseFileError: not a tradelog file (or missing).
        StorageUnavailableError: it cannot be read.
    """
    conn = open_sqlite(path, readonly=True, busy_timeout_s=5.0)
    try:
        conn.execute("BEGIN")
        try:
            return verify_chain(conn)
        finally:
            conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, f"verifying {path}") from exc
    finally:
        conn.close()


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, (os.O_RDONLY | os.O_DIRECTORY) if directory else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(temp: Path, dest: Path, replace: bool = False) -> None:
    """Give the finished copy ``temp`` its final name ``dest`` (same directory), durably:
    fsync the file, link it (or, with ``replace``, rename it over ``dest``), fsync the
    directory. Without ``replace`` an existing ``dest`` is never touched.

    Raises:
        StorageUnavailableError: ``dest`` exists (without ``replace``), or the file
            system refused (errno named); ``temp`` is then removed.
    """
    try:
        _fsync_path(temp)
        if replace:
            os.replace(temp, dest)
        else:
            os.link(temp, dest, follow_symlinks=False)
            os.unlink(temp)
        _fsync_path(dest.parent, directory=True)
    except FileExistsError:
        discard(temp)
        raise StorageUnavailableError(
            f"{dest} already exists; choose another name (a copy never overwrites "
            "a file)") from None
    except OSError as exc:
        discard(temp)
        raise StorageUnavailableError(f"cannot write {dest}: {exc.strerror}") from None


def backup_file(db: Path, dest: Path) -> CopyReport:
    """A verified, atomically published copy of the log at ``db`` at the new path ``dest``.

    Raises:
        DatabaseFileError: ``db`` is not a tradelog file.
        StorageUnavailableError: ``dest`` exists, or cannot be written.
        StorageCorruptError: the copy fails ``verify`` (the source is in doubt: run
            ``tradelog verify`` on it); nothing is left under ``dest``.
    """
    refuse_existing(dest)
    temp = snapshot_to_temp(db, dest.parent, dest.name)
    return publish_verified(temp, dest, str(db), f"--db {db}")


def refuse_existing(dest: Path) -> None:
    """Raise ``StorageUnavailableError`` when ``dest`` exists (a link included): a copy
    never overwrites a file."""
    if dest.exists() or dest.is_symlink():
        raise StorageUnavailableError(
            f"{dest} already exists; choose another name (a copy never overwrites a file)")


def publish_verified(temp: Path, dest: Path, source: str, verify_args: str) -> CopyReport:
    """Verify the finished copy ``temp`` of the log ``source`` and publish it at ``dest``;
    the report of what was copied. ``temp`` is discarded when it fails.

    Raises:
        StorageCorruptError: the copy fails ``verify`` (the source is in doubt: the
            message names ``tradelog verify verify_args``); nothing is left under ``dest``.
        StorageUnavailableError: ``dest`` cannot be written.
    """
    try:
        report = verify_file(temp)
    except BaseException:
        discard(temp)
        raise
    if not report.ok:
        discard(temp)
        raise StorageCorruptError(
            f"the copy of {source} fails verify ({report.reason}, seq {report.bad_seq}); "
            f"nothing was written to {dest}. Run `tradelog verify {verify_args}`")
    size = temp.stat().st_size
    publish(temp, dest)
    return CopyReport(dest, report.checked, report.checked, report.last_hash, size)
