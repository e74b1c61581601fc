"""Opening a tradelog SQLite file: identity checks, pragmas and migrations.

Used on the recorder's worker threads (and for read-only scratch readers). A foreign
file, or one written by a newer tradelog, is refused and never written.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path

from eventstore import ddl
from eventstore.errors import (
    DatabaseFileError,
    StorageBusyError,
    StorageUnavailableError,
    map_sqlite_error,
)

__all__ = ["open_sqlite"]

def open_sqlite(path: str | Path, *, readonly: bool, busy_timeout_s: float) -> sqlite3.Connection:
    """Open and check a tradelog file with the plain sqlite3 driver (used on the worker thread).

    A file another process is creating or migrating at the same moment is waited for
    (retried with backoff for up to twice ``busy_timeout_s``).

    Raises:
        DatabaseFileError: not a SQLite file, a foreign SQLite file, or a newer tradelog's;
            such a file is not written to.
        StorageUnavailableError: the file cannot be opened, or stays locked.
    """
    deadline = time.monotonic() + busy_timeout_s * 2
    delay_s = 0.01
    while True:
        try:
            return _open_once(Path(path), readonly=readonly, busy_timeout_s=busy_timeout_s)
        except StorageBusyError as exc:
            if time.monotonic() >= deadline:
                raise StorageUnavailableError(
                    f"{exc}; still locked after retrying") from exc
        time.sleep(random.uniform(0, delay_s))
        delay_s = min(delay_s * 2, 0.5)


def _open_once(target: Path, *, readonly: bool, busy_timeout_s: float) -> sqlite3.Connection:
    try:
        if readonly:
            if not target.exists():
                raise DatabaseFileError(f"{target}: no such database file")
            conn = sqlite3.connect(
                f"{target.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                check_same_thread=False, timeout=busy_timeout_s,
            )
        else:
            _create_private(target)
            conn = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, f"opening {target}") from exc
    try:
        _check_and_migrate(conn, target, readonly=readonly, busy_timeout_s=busy_timeout_s)
    except BaseException:
        conn.close()
        raise
    return conn


def _create_private(target: Path) -> None:
    """Create a missing database file empty and 0600 (SQLite takes an empty file as a
    new database and gives its -wal and -shm the file's mode); an existing one is left
    as it is."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StorageUnavailableError(
            f"cannot create {target}: {exc.strerror}; check the folder exists and is "
            "writable") from None
    os.close(fd)


# One statement, so the three values come from one snapshot even while another process
# is creating the file.
_IDENTITY_SQL = (
    "SELECT a.application_id, v.user_version, (SELECT count(*) FROM sqlite_master) "
    "FROM pragma_application_id() AS a, pragma_user_version() AS v"
)


def _file_version(conn: sqlite3.Connection, target: Path) -> int:
    """Check the file is (or may become) a tradelog file of a known format; its version."""
    try:
        app_id, version, tables = conn.execute(_IDENTITY_SQL).fetchone()
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith("SQLITE_NOTADB") or "not a database" in str(exc):
            raise DatabaseFileError(
                f"{target} is not a SQLite database file ({exc}); refusing to touch it. "
                "Point --db at a tradelog file or a new path."
            ) from exc
        raise map_sqlite_error(exc, f"reading {target}") from exc
    if app_id != ddl.APPLICATION_ID and (app_id != 0 or tables):
        raise DatabaseFileError(
            f"{target} is a SQLite file but not a tradelog database (application_id "
            f"{app_id:#x}); refusing to touch it. Point --db at a tradelog file or a new path."
        )
    if version > ddl.SCHEMA_VERSION:
        raise DatabaseFileError(
            f"{target} was written by a newer tradelog (file format {version}, this tradelog "
            f"knows up to {ddl.SCHEMA_VERSION}); upgrade tradelog to open it."
        )
    return int(version)


def _check_and_migrate(
    conn: sqlite3.Connection, target: Path, *, readonly: bool, busy_timeout_s: float
) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, f"opening {target}") from exc
    version = _file_version(conn, target)
    if readonly:
        if version < ddl.SCHEMA_VERSION:
            raise DatabaseFileError(
                f"{target} needs a format upgrade ({version} -> {ddl.SCHEMA_VERSION}); "
                "open it once with the daemon or `tradelog rebuild` to migrate it."
            )
        conn.execute("PRAGMA query_only = ON")
        return
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        if version < ddl.SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have created or migrated the file since we looked.
                version = _file_version(conn, target)
                for step in range(version, ddl.SCHEMA_VERSION):
                    for statement in ddl.MIGRATIONS[step]:
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {ddl.APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {ddl.SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    except sqlite3.Error as exc:
        raise map_sqlite_error(exc, f"preparing {target}") from exc
