"""The service: what the daemon does for its clients, put together.

``Service`` holds the shared state (config, access rules, the log's reader and writer,
the open connections) and composes the three parts: group commits
(``daemon.service.commits``), the request handlers (``daemon.service.handlers``) and the
subscriptions (``daemon.service.subscriptions``). It knows nothing of sockets: a
connection is counted here as an opaque object and reached through its ``Outbox``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from daemon.access import Access, Peer
from daemon.config import Config
from daemon.logs import Throttle, get_logger
from daemon.service.commits import GroupCommits
from daemon.service.handlers import Handlers, append_result
from daemon.service.subscriptions import Subscriptions
from daemon.version import VERSION
from eventstore.errors import IdempotencyConflictError, NotPermittedError, StorageUnavailableError
from eventstore.record import AppendOutcome, AppendRequest
from eventstore.store import ViewReader

if TYPE_CHECKING:
    from daemon.writer import Writer

__all__ = ["Connections", "Service"]

log = get_logger("tradelog.service")


class Connections:
    """The open connections, counted in all and per peer uid."""

    def __init__(self) -> None:
        self.open: set[Any] = set()
        self._per_uid: dict[int | None, int] = {}

    def __len__(self) -> int:
        return len(self.open)

    def refusal(self, uid: int | None, cap: int, per_uid: int) -> str | None:
        """Why one more connection from ``uid`` is refused (at most ``cap`` in all,
        ``per_uid`` from one uid); None when it is taken."""
        if len(self.open) >= cap:
            return (f"too many connections (limits.max_connections: at most {cap}); "
                    "retry later")
        if self._per_uid.get(uid, 0) >= per_uid:
            return (f"too many connections from uid {uid} "
                    f"(limits.max_connections_per_uid: at most {per_uid}); close some and "
                    "retry")
        return None

    def add(self, connection: Any, uid: int | None) -> None:
        """Count ``connection`` (of a peer with ``uid``)."""
        self.open.add(connection)
        self._per_uid[uid] = self._per_uid.get(uid, 0) + 1

    def remove(self, connection: Any, uid: int | None) -> None:
        """Uncount ``connection`` (added with ``uid``)."""
        self.open.discard(connection)
        self._per_uid[uid] -= 1
        if not self._per_uid[uid]:
            del self._per_uid[uid]


class Service:
    """Everything a connection asks of the daemon. Create, ``start()``, then
    ``stop_commits()`` when draining.

    ``recorder`` serves reads; ``writer`` makes the group commits (a ``WriterProcess``
    or, in one process, a ``LocalWriter`` on the same recorder).
    """

    def __init__(self, config: Config, recorder: ViewReader, writer: Writer,
                 last_seq: int) -> None:
        self.config = config
        self.recorder = recorder
        self.writer = writer
        self.access = Access(config.access)
        self.started = time.monotonic()
        self.connections = Connections()
        self.reads_running = asyncio.Semaphore(config.limits.max_reads_running)
        """Slots for ``read``/``query``/``metrics``/``backup`` and pumps' pages, daemon-wide."""
        self.connection_cap = config.limits.max_connections
        """Connections the open-file limit leaves room for (set by the server at start)."""
        self.refused_connections = Throttle(config.limits.refusals_log_interval_s)
        self._log_throttles: dict[str, Throttle] = {}
        self.subscriptions = Subscriptions(self)
        self.commits = GroupCommits(writer, last_seq,
                                    lambda: self.config.limits.max_group_events,
                                    self.as_seen_by, self.subscriptions.wake_all)
        self.handlers = Handlers(self)

    @property
    def last_seq(self) -> int:
        """The seq of the last event stored (0 for an empty log)."""
        return self.commits.last_seq

    @property
    def fatal(self) -> asyncio.Event:
        """Set when the database is in doubt: the daemon must exit non-zero."""
        return self.commits.fatal

    @property
    def fatal_reason(self) -> str:
        """Why ``fatal`` was set."""
        return self.commits.fatal_reason

    def throttle(self, event: str) -> Throttle:
        """The daemon-wide rate limit for log records of ``event`` that clients cause
        (20 per ``refusals_log_interval_s``), whichever connections they come from."""
        found = self._log_throttles.get(event)
        if found is None:
            found = Throttle(self.config.limits.refusals_log_interval_s, burst=20)
            self._log_throttles[event] = found
        return found

    def start(self) -> None:
        """Start the group-commit task; call once, inside the running loop."""
        self.commits.start()

    def reload(self, config: Config) -> None:
        """Apply a reloaded config: access rules and limits (paths need a restart)."""
        self.config = config.model_copy(update={"db": self.config.db,
                                                "socket": self.config.socket})
        self.access = Access(config.access)

    def submit(self, request: AppendRequest, peer: Peer,
               request_id: Any) -> asyncio.Future[AppendOutcome]:
        """Queue one caller's request for the next group commit (``GroupCommits.submit``).

        Raises:
            StorageUnavailableError: the daemon is shutting down.
        """
        return self.commits.submit(request, peer, request_id)

    async def stop_commits(self) -> None:
        """Commit everything queued so far, then end the group-commit task."""
        await self.commits.stop()

    async def append_internal(self, events: list[dict[str, Any]], peer: Peer,
                              metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append wire events from inside the daemon (the inbox) on behalf of ``peer`` (the
        owner of the file), checked by the access rules exactly as that peer's ``append``
        over the socket. ``metadata`` is added to the peer's in each stored event's
        metadata (e.g. the inbox file's name).

        Returns the ``append`` result. Raises ``ValidationError``, ``NotPermittedError``,
        the outcome's conflict error, or ``StorageUnavailableError``.
        """
        request = self.handlers.prepare_append({"events": events}, peer)
        if metadata:
            for event in request.events:
                event.metadata.update(metadata)
        outcome = await self.submit(request, peer, "inbox")
        if outcome.error is not None:
            raise outcome.error
        return append_result(outcome)

    def as_seen_by(self, outcome: AppendOutcome, peer: Peer) -> AppendOutcome:
        """``outcome`` as ``peer`` may see it: a conflict with a stored event of an account
        it may not read becomes -32004, telling nothing of that event (PROTOCOL.md
        ``append``). Nothing of such a request was stored. (A duplicate has the same
        canonical bytes, so the same account, which the peer was allowed to write.)"""
        error = outcome.error
        if not isinstance(error, IdempotencyConflictError) or error.account is None:
            return outcome
        try:
            self.access.check(peer, "read", error.account)
        except NotPermittedError:
            return AppendOutcome([], outcome.last_seq, NotPermittedError(
                f"event id {error.event_id!r} from source {error.source!r} is already "
                f"used by an event uid {peer.uid} may not read; nothing was stored: send "
                "a new id"))
        return outcome

    async def views_current(self) -> None:
        """Have the writer write the views' rows it holds back, so that a query sees every
        event acknowledged before it arrived. If that write fails (disk full), the query
        reads the tables as they are: its ``as_of_seq`` says how far they go."""
        if self.writer.flushed >= self.last_seq:
            return
        try:
            await self.writer.flush_views()
        except StorageUnavailableError as exc:
            log.warning("views_not_written", error=str(exc))

    def health(self) -> dict[str, Any]:
        """The ``health`` method's result (PROTOCOL.md); never raises.

        ``uptime_s`` is seconds since the service was created (3 decimals); ``connections``
        counts open connections.
        """
        return {
            "status": "ok",
            "version": VERSION,
            "last_seq": self.last_seq,
            "projection_seq": self.writer.checkpoint,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "connections": len(self.connections),
        }
