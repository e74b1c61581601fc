"""The writer's core on a PostgreSQL log: one synchronous psycopg connection that
appends, the views folded into each group's transaction (their rows written with every
commit: the view tables are shared by every daemon on the log, so none may hold rows
back that another would then overwrite).

A connection found broken (a server restart, a failover) is replaced at the next
commit: a new connection (through the multi-host URI, to the host that takes writes
now), the views reloaded from their tables, tried with random exponential backoff
(tenacity) for up to ``busy_timeout_s``; meanwhile, and after, each group is answered
``StorageUnavailableError`` (-32001, nothing stored).

A connection lost during ``COMMIT`` leaves that group in doubt (``CommitInDoubtError``):
the in-memory state of the views, which folded the group, may be ahead of what is
committed, so it is discarded with the connection, and the next group connects again
and loads the views from their tables (which hold the group exactly when it committed).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from daemon.logs import get_logger
from daemon.writer.core import CoreBase
from daemon.writer.messages import Ready
from eventstore.busy import retry_busy
from eventstore.errors import CommitInDoubtError, StorageUnavailableError
from eventstore.postgres import reads
from eventstore.postgres.connect import Connection, connect, prepare, session_lost
from eventstore.postgres.dialect import SqliteSpelling
from eventstore.postgres.tail import Tail
from eventstore.postgres.writes import append_group
from eventstore.record import AppendOutcome, AppendRequest
from projections.lifecycle import log_left_out
from projections.pgviews import open_views
from projections.runner import ViewRunner

__all__ = ["PgWriterCore", "open_log"]

log = get_logger("tradelog.writer")


def open_log(conninfo: str, busy_timeout_s: float
          ) -> tuple[Connection, int, ViewRunner, int, SqliteSpelling]:
    """Connect, check (create on first use) the log and bring its views up to date:
    the connection, the lock key, the runner, the events folded and the spelling. What
    any writer of the log opens with (this core, ``tradelog import --store``)."""
    conn = connect(conninfo, lock_timeout_s=busy_timeout_s)
    try:
        key = prepare(conn, create=True)
        runner, folded, spelling = retry_busy(lambda: open_views(conn, key), busy_timeout_s)
    except BaseException:
        conn.close()
        raise
    log_left_out(runner)
    return conn, key, runner, folded, spelling


class PgWriterCore(CoreBase):
    """``WriterCore`` on a PostgreSQL log (``conninfo``, a libpq URI)."""

    def __init__(self, conninfo: str, conn: Connection, key: int, runner: ViewRunner,
                 spelling: SqliteSpelling, busy_timeout_s: float) -> None:
        super().__init__(runner, busy_timeout_s)
        self.conninfo = conninfo
        self.conn: Connection | None = conn
        self.key = key
        self.spelling = spelling
        self.tail = Tail(origin=secrets.token_hex(8))
        """Where this writer's last commit left the log, and its name in the log's
        notifications (``eventstore.postgres.tail``)."""

    @classmethod
    def open(cls, conninfo: str, *, busy_timeout_s: float = 5.0) -> tuple[PgWriterCore, Ready]:
        """Connect, create or check the log, bring the views up to date.

        Raises:
            DatabaseFileError: the schema holds something else, or a newer tradelog's log.
            StorageUnavailableError: no server could be reached.
        """
        conn, key, runner, folded, spelling = open_log(conninfo, busy_timeout_s)
        try:
            last_seq = reads.last_seq(conn)
        except BaseException:
            conn.close()
            raise
        core = cls(conninfo, conn, key, runner, spelling, busy_timeout_s)
        return core, Ready(runner.checkpoint, last_seq, folded, None, core.tail.origin)

    def _connection(self) -> Connection:
        """The live connection, made again (with backoff) when found broken."""
        if self.conn is not None and not (self.conn.broken or self.conn.closed):
            return self.conn
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        for attempt in Retrying(stop=stop_after_delay(self.busy_timeout_s),
                                wait=wait_random_exponential(multiplier=0.05, max=1.0),
                                retry=retry_if_exception_type(StorageUnavailableError),
                                reraise=True):
            with attempt:
                conn, self.key, self.runner, folded, self.spelling = open_log(
                    self.conninfo, self.busy_timeout_s)
        log.info("log_reconnected", caught_up_events=folded)
        self.conn = conn
        self.tail.forget()
        return conn

    def _append(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """``eventstore.postgres.writes.append_group`` with the views, retried while
        the lock is busy; once more on a new connection when this one was found dead
        before anything was committed. A commit in doubt drops the connection and the
        views' state (``_forget``) and raises ``CommitInDoubtError``."""
        try:
            return self._append_on_live(requests)
        except CommitInDoubtError:
            self._forget()
            raise

    def _forget(self) -> None:
        """After a commit in doubt: discard the views' in-memory state (it folded the
        group, which may not be committed) and the lost connection; the next group
        connects again and loads the views from their tables."""
        self.runner.discard()
        self.tail.forget()
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _append_on_live(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        conn = self._connection()
        try:
            return retry_busy(
                lambda: append_group(conn, self.key, requests, self.runner, self.spelling,
                                     self.tail),
                self.busy_timeout_s)
        except StorageUnavailableError as exc:
            if not session_lost(conn, exc):
                raise
            conn.close()  # dead, demoted, or its statement cache wrong (session_lost)
        conn = self._connection()
        return retry_busy(
            lambda: append_group(conn, self.key, requests, self.runner, self.spelling,
                                     self.tail),
            self.busy_timeout_s)

    def _flush(self) -> None:
        """Nothing is held back on PostgreSQL (the rows go with every commit)."""

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
