"""Connecting to a PostgreSQL log: the connection, the schema's identity and creation, and
the one place where psycopg's errors become tradelog's (``map_pg_error``).

A log lives in one schema of one database: the first in the connection's
``search_path`` (``public`` unless the URI says ``?options=-csearch_path%3DNAME``).
It is created on first use by whichever daemon comes first, under an advisory lock, so
that daemons starting together on an empty database make it once.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors as pg
from psycopg.conninfo import conninfo_to_dict

from eventstore.errors import (
    CommitInDoubtError,
    DatabaseFileError,
    EventStoreError,
    StorageBusyError,
    StorageCorruptError,
    StorageUnavailableError,
    ValidationError,
)
from eventstore.postgres import ddl

__all__ = ["CommitInDoubtError", "Connection", "connect", "map_pg_error", "prepare",
           "session_lost"]

Connection = psycopg.Connection[tuple[Any, ...]]


_UNAVAILABLE = (
    pg.DiskFull, pg.OutOfMemory, pg.InsufficientResources, pg.TooManyConnections,
    pg.ReadOnlySqlTransaction, pg.AdminShutdown, pg.CrashShutdown, pg.CannotConnectNow,
    pg.QueryCanceled, pg.IdleInTransactionSessionTimeout, pg.ConfigurationLimitExceeded,
    pg.InvalidSqlStatementName,
)
_BUSY = (pg.SerializationFailure, pg.DeadlockDetected, pg.LockNotAvailable)
_CORRUPT = (pg.DataCorrupted, pg.IndexCorrupted)


def map_pg_error(exc: psycopg.Error, doing: str) -> EventStoreError:
    """Turn a psycopg error into tradelog's tree; ``doing`` names the operation.

    A lost or refused connection, a full disk, a read-only server (a standby) or a
    server shutting down -> ``StorageUnavailableError`` (retryable, nothing stored); a
    lock waited for past ``lock_timeout``, a serialisation failure or a deadlock ->
    ``StorageBusyError`` (retried); damaged data or index -> ``StorageCorruptError``;
    anything else -> ``EventStoreError``. The caller raises the result ``from exc``.
    """
    text = " ".join(str(exc).split())[:500]
    if isinstance(exc, _BUSY):
        return StorageBusyError(f"{doing}: the log is locked by another writer ({text})")
    if isinstance(exc, _CORRUPT):
        return StorageCorruptError(f"{doing}: PostgreSQL reports damaged data: {text}")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, *_UNAVAILABLE)):
        return StorageUnavailableError(
            f"{doing}: PostgreSQL unavailable: {text}; nothing was stored")
    return EventStoreError(f"{doing}: {text}")


def session_lost(conn: Connection, exc: StorageUnavailableError) -> bool:
    """Whether ``exc`` (nothing stored) calls for running the operation once more on a
    new connection: ``conn`` is dead (a server restart, a failover), its server no
    longer takes writes (demoted), or the server does not know a statement psycopg
    believes it prepared on this session.

    The last happens with psycopg 3.3's automatic prepared statements in pipeline mode:
    a statement run for the sixth time (``prepare_threshold``) in a pipeline that the
    server aborts at an earlier statement (a one-flight group whose guess failed,
    ``eventstore.postgres.tail``) is remembered as prepared although the server skipped
    its ``Parse``, and every later use of it on this session fails. Only a new session
    starts psycopg's cache afresh.
    """
    return conn.broken or isinstance(
        exc.__cause__, (pg.ReadOnlySqlTransaction, pg.InvalidSqlStatementName))


def connect(conninfo: str, *, readonly: bool = False, lock_timeout_s: float = 5.0,
            connect_timeout_s: float = 10.0) -> Connection:
    """A new autocommit connection (transactions are opened explicitly).

    The appending connection asks libpq for a read-write server
    (``target_session_attrs=read-write``, unless the URI names another), so that with
    several hosts in the URI it finds the primary. Commits wait for durability as the
    server is configured, never less: a ``synchronous_commit`` of ``off`` is raised to
    ``on`` for this connection.

    Raises:
        ValidationError: ``conninfo`` is not a URI or key=value string libpq can read.
        StorageUnavailableError: no server (or no read-write one) could be reached.
    """
    given = _params(conninfo)
    extra: dict[str, Any] = {}
    if "connect_timeout" not in given:
        extra["connect_timeout"] = max(1, round(connect_timeout_s))
    if "application_name" not in given:
        extra["application_name"] = "tradelog"
    if not readonly and "target_session_attrs" not in given:
        extra["target_session_attrs"] = "read-write"
    try:
        conn = psycopg.connect(conninfo, autocommit=True, **extra)
    except psycopg.Error as exc:
        raise map_pg_error(exc, "connecting to PostgreSQL") from exc
    try:
        conn.execute(f"SET lock_timeout = {max(1, round(lock_timeout_s * 1000)):d}")
        row = conn.execute("SHOW synchronous_commit").fetchone()
        if row is not None and row[0] == "off":
            conn.execute("SET synchronous_commit = on")
        if readonly:
            conn.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        conn.close()
        raise map_pg_error(exc, "preparing the PostgreSQL connection") from exc
    return conn


def _params(conninfo: str) -> dict[str, str]:
    """The parameters a URI or key=value string gives (libpq's parser).

    Raises:
        ValidationError: libpq cannot parse it (its words say where).
    """
    try:
        return conninfo_to_dict(conninfo)  # type: ignore[return-value]
    except psycopg.Error as exc:
        raise ValidationError(f"not a PostgreSQL URI libpq can read: "
                              f"{' '.join(str(exc).split())}") from None


def prepare(conn: Connection, *, create: bool) -> int:
    """Check (and with ``create``, make on first use) the log in the connection's schema;
    returns the log's advisory-lock key.

    Raises:
        DatabaseFileError: the schema holds tables that are not a tradelog log, a newer
            tradelog's log, no log at all (``create`` false), or the database's encoding
            is not UTF8.
        StorageUnavailableError: the server cannot be reached or refuses.
    """
    try:
        with conn.transaction():
            encoding = _one(conn, "SHOW server_encoding")
            if encoding != "UTF8":
                raise DatabaseFileError(
                    f"the database's encoding is {encoding}, not UTF8: tradelog stores "
                    "event text as sent; create the database WITH ENCODING 'UTF8'")
            if create:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (ddl.SETUP_LOCK,))
            schema = _one(conn, "SELECT current_schema()")
            if schema is None:
                raise DatabaseFileError(
                    "no schema to hold the log: the search_path names none that exists; "
                    "create it or set ?options=-csearch_path%3DNAME in the URI")
            meta = _one(conn, "SELECT to_regclass('tradelog_meta')")
            if meta is None:
                if _one(conn, "SELECT to_regclass('events')") is not None:
                    raise DatabaseFileError(
                        f"schema {schema!r} has an events table that is not a tradelog "
                        "log; give tradelog a schema or database of its own")
                if not create:
                    raise DatabaseFileError(f"schema {schema!r} holds no tradelog log")
                for statement in ddl.SETUP:
                    conn.execute(statement)
                conn.execute("INSERT INTO tradelog_meta (key, value) VALUES "
                             "('application', %s), ('schema_version', %s)",
                             (ddl.APPLICATION, str(ddl.SCHEMA_VERSION)))
            _check_meta(conn, schema)
            oid = _one(conn, "SELECT 'events'::regclass::oid::bigint")
    except psycopg.Error as exc:
        raise map_pg_error(exc, "opening the PostgreSQL log") from exc
    return (ddl.LOCK_CLASS << 32) | int(oid)


def _check_meta(conn: Connection, schema: str) -> None:
    meta: dict[str, str] = {str(key): str(value) for key, value in conn.execute(
        "SELECT key, value FROM tradelog_meta").fetchall()}
    if meta.get("application") != ddl.APPLICATION:
        raise DatabaseFileError(f"schema {schema!r} is not a tradelog log")
    version = meta.get("schema_version", "")
    if not version.isdigit() or int(version) > ddl.SCHEMA_VERSION:
        raise DatabaseFileError(
            f"the log in schema {schema!r} was written by a newer tradelog (schema "
            f"version {version}, this one knows {ddl.SCHEMA_VERSION}); upgrade tradelog")


def _one(conn: Connection, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return None if row is None else row[0]
