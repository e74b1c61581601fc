"""Group commit: every append waiting at one moment stored in one transaction.

One task takes every append queued at that moment (up to ``max_group_events`` events)
as one group and hands it to the writer (``Writer.append_groups``: one transaction with
its view updates), up to ``IN_FLIGHT`` groups ahead; only once the group is stored is
each caller answered. While a group commits, the next is taken once it is half as big
as that one (at most ``GROW_EVENTS``), or once the writer is free, whichever comes
first. One caller's conflict
never fails another's request. A failure that leaves the outcome unknown sets
``fatal``: the daemon then exits for a restart; but for a commit in doubt on
PostgreSQL (``CommitInDoubtError``), which leaves only that group unknown: its callers'
futures get the error (the socket closes their connections unanswered, PROTOCOL.md's
"loses the connection before the answer"; a re-send settles it), and the daemon goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daemon.access import Peer
from daemon.logs import Tally, get_logger
from eventstore.errors import CommitInDoubtError, StorageUnavailableError
from eventstore.record import AppendOutcome, AppendRequest

if TYPE_CHECKING:
    from daemon.writer import Writer

__all__ = ["GROW_EVENTS", "IN_FLIGHT", "GroupCommits"]

log = get_logger("tradelog.service")

IN_FLIGHT = 2
"""Groups handed to the writer and not yet answered, at most: one committing and the
next already in the writer's pipe (the writer commits each group on its own)."""

GROW_EVENTS = 128
"""While a group commits, the next is taken once this many events are queued (or half
the committing group's, if fewer): a transaction costs about 0.3 ms of the writer's CPU
and an fsync whatever its size, so a group of single-event appends takes at most half
the one before it, and one of batches (100 events each) takes two or more of them
rather than one (16 made one group per 100-event append: 5-10 µs more of the writer's
CPU per event; docs/BENCHMARKS.md, section 15)."""

_STOP = object()


@dataclass(eq=False)
class _Pending:
    request: AppendRequest
    future: asyncio.Future[AppendOutcome]
    peer: Peer
    request_id: Any


class GroupCommits:
    """The queue of appends and the task that commits them in groups.

    ``group_events`` gives the most events in one group (read as the task starts);
    ``as_seen_by(outcome, peer)`` gives an outcome as that peer may see it;
    ``on_stored()`` is called after a commit that stored new events.
    """

    def __init__(self, writer: Writer, last_seq: int, group_events: Callable[[], int],
                 as_seen_by: Callable[[AppendOutcome, Peer], AppendOutcome],
                 on_stored: Callable[[], None]) -> None:
        self.writer = writer
        self.last_seq = last_seq
        """The seq of the last event stored (0 for an empty log)."""
        self.fatal = asyncio.Event()
        """Set when the database is in doubt (``fatal_reason`` says why)."""
        self.fatal_reason = ""
        self._group_events = group_events
        self._as_seen_by = as_seen_by
        self._on_stored = on_stored
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._tally = Tally(log, "appends_committed", interval_s=1.0, count_name="groups")
        """One info record per second of appends (each group's at debug)."""
        self._queued = 0
        """Events queued and not yet taken into a group."""
        self._grown: asyncio.Future[None] | None = None
        self._want = 0
        """While the task waits for the next group to grow: resolve ``_grown`` once this
        many events are queued."""
        self._log: Any = log
        """The module's logger, bound once by ``start`` (the lazy one binds anew at every
        call, a debug record filtered out included: one per group)."""

    def start(self) -> None:
        """Start the group-commit task; call once, inside the running loop."""
        self._log = log.bind()
        self._task = asyncio.create_task(self._loop(), name="group-commits")

    def submit(self, request: AppendRequest, peer: Peer,
               request_id: Any) -> asyncio.Future[AppendOutcome]:
        """Queue one caller's request for the next group commit; the future is its outcome
        (cancelled when the outcome is unknown: the daemon is stopping on a storage fault;
        ``CommitInDoubtError`` when only its group's outcome is unknown: re-send it).

        Raises:
            StorageUnavailableError: the daemon is shutting down (nothing queued).
        """
        if self._stopping:
            raise StorageUnavailableError(
                "the daemon is shutting down and takes no more appends; nothing was stored, "
                "send it again once the daemon is back")
        future: asyncio.Future[AppendOutcome] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(request, future, peer, request_id))
        self._queued += len(request.events)
        if self._grown is not None and self._queued >= self._want and not self._grown.done():
            self._grown.set_result(None)
        return future

    async def stop(self) -> None:
        """Commit everything queued so far, then end the task."""
        self._stopping = True
        self._queue.put_nowait(_STOP)
        if self._task is not None:
            await self._task
        self._tally.flush()

    async def _loop(self) -> None:
        """Take what is queued as one group and hand it to the writer, up to
        ``IN_FLIGHT`` groups ahead: the one grouping stage. The next group waits in the
        writer's pipe while one commits (the writer never idles for a round trip).

        While a group commits, the next is taken only once half as many events are
        queued as that group holds (``GROW_EVENTS`` at most), or once the writer is
        done with it. Taken at once, it would hold only what came in since the last
        one was taken (often one append), and each group costs a commit (an fsync and
        about 0.3-0.5 ms of the writer's CPU whatever its size). Half and at most
        ``GROW_EVENTS``, not as many: with a closed set of clients the appends outside
        the committing group may never add up to its size, and the writer would then idle a round
        trip after every commit. Once taken, the group is no later than it would be in
        the pipe: the writer is busy until then. Measured: docs/BENCHMARKS.md,
        sections 11 and 15."""
        limit = self._group_events()
        stopping = False
        in_flight: dict[asyncio.Task[None], int] = {}
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                break
            if in_flight:
                await self._grow(in_flight, min(limit, GROW_EVENTS,
                                                max(in_flight.values()) // 2))
            group: list[_Pending] = [first]
            size = len(first.request.events)
            while size < limit and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
                size += len(item.request.events)
            self._queued -= size
            in_flight[asyncio.create_task(self._commit(group))] = size
            if len(in_flight) >= IN_FLIGHT:
                await self._settled(in_flight, set())
        if in_flight:
            await asyncio.wait(in_flight)

    async def _grow(self, in_flight: dict[asyncio.Task[None], int], want: int) -> None:
        """Return once ``want`` events are queued or a group in flight is answered."""
        if self._queued >= want:
            return
        self._want = want
        self._grown = asyncio.get_running_loop().create_future()
        try:
            await self._settled(in_flight, {self._grown})
        finally:
            self._grown = None

    @staticmethod
    async def _settled(in_flight: dict[asyncio.Task[None], int],
                       also: set[asyncio.Future[None]]) -> None:
        """Wait for a group in flight to be answered (or one of ``also`` to be done);
        forget the groups answered."""
        done, _ = await asyncio.wait({*in_flight, *also}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            in_flight.pop(task, None)  # type: ignore[call-overload]

    async def _commit(self, group: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            outcomes = await self.writer.append_groups([p.request for p in group])
        except StorageUnavailableError as exc:
            log.warning("batch_failed", requests=len(group), error=str(exc))
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        except CommitInDoubtError as exc:
            # This group's outcome is unknown, the log is not: answer nothing for it (the
            # callers re-send, and are answered stored or duplicate); the writer has
            # dropped its connection and views, and connects again for the next group.
            log.error("commit_in_doubt", error=str(exc), requests=len(group),
                      events=sum(len(p.request.events) for p in group),
                      last_seq=self.last_seq)
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        except Exception as exc:
            # The outcome is unknown: never answer "rejected"; stop so systemd restarts us.
            log.critical("storage_in_doubt", error=repr(exc), requests=len(group))
            self.fatal_reason = repr(exc)
            self.fatal.set()
            for pending in group:
                pending.future.cancel()
            return
        stored = duplicates = rejected = 0
        for pending, outcome in zip(group, outcomes, strict=True):
            if outcome.error is not None:
                rejected += 1  # logged by its connection, at a bounded rate
            for result in outcome.results:
                if result.duplicate:
                    duplicates += 1
                else:
                    stored += 1
            if not pending.future.done():
                pending.future.set_result(self._as_seen_by(outcome, pending.peer))
        if outcomes:
            self.last_seq = max(self.last_seq, outcomes[-1].last_seq)
        duration_ms = (time.perf_counter() - started) * 1000
        self._log.debug("batch_committed", requests=len(group), events=stored,
                        duplicates=duplicates, rejected=rejected, last_seq=self.last_seq,
                        duration_ms=round(duration_ms, 3))
        self._tally.add({"requests": len(group), "events": stored, "duplicates": duplicates,
                         "rejected": rejected, "commit_ms": duration_ms},
                        most={"group_requests": len(group), "commit_ms": duration_ms},
                        last={"last_seq": self.last_seq})
        if stored:
            self._on_stored()
