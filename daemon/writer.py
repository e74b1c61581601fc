"""The writer process: the daemon's one SQLite writer, in a process of its own.

The daemon's event loop reads sockets, decodes and validates requests and answers
them; the group commits (hash chain, ``INSERT``, the views' fold and row writes,
``COMMIT``) run in a second process (``daemon.writer_child``), so the two use both
cores and never wait for each other's interpreter lock. They talk over a socketpair
with pickled messages, each framed by its length:

    parent -> child   {"db", "busy_timeout_s", "max_page_count", "log_format",
                       "log_level", "max_group_events", "defer_view_events", "idle_flush_s"}
    child  -> parent  ("ready", views_position, last_seq, folded, applied_page_cap)
                      or ("error", exception) and exit
    parent -> child   ("append", [AppendRequest, ...])   any number ahead of the answers
    parent -> child   ("flush",)                         write the views' rows now
    child  -> parent  ("ok", [AppendOutcome, ...], views_position, views_flushed)
                      or ("error", exception): one answer per message, in order
    parent -> child   ("close",): the child writes the views, closes the file and exits

The child commits every "append" waiting for it in one transaction (group commit across
the parent's groups) and writes the views' rows once per ``defer_view_events`` events,
when idle for ``idle_flush_s``, before it closes, and when asked (``flush_views``, which
the daemon does before a query reads the tables).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import socket
import struct
import subprocess
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from daemon.logs import get_logger
from daemon.writer_launch import Launched, launch
from eventstore.errors import StorageCorruptError, StorageUnavailableError
from eventstore.writes import ViewsRefusedError

if TYPE_CHECKING:
    from eventstore.record import AppendOutcome, AppendRequest
    from eventstore.recorder import Recorder
    from projections.runner import ViewRunner

__all__ = ["LocalWriter", "Pipe", "Writer", "WriterProcess", "log_views_refusals"]

log = get_logger("tradelog.writer")


def log_views_refusals(outcomes: Sequence[AppendOutcome]) -> None:
    """Log, once each, the requests refused because the views could not fold one of
    their events (``ViewsRefusedError``: nothing of them stored, the daemon goes on)."""
    for outcome in outcomes:
        if isinstance(outcome.error, ViewsRefusedError):
            log.error("append_refused_by_views", error=str(outcome.error),
                      last_seq=outcome.last_seq)


class Writer(Protocol):
    """What the service needs of its writer: group commits and the views' position."""

    @property
    def position(self) -> int:
        """The seq of the last event folded into the views (as of the last commit)."""
        ...

    @property
    def flushed(self) -> int:
        """The seq up to which the views' tables are written (as of the last answer)."""
        ...

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """Commit the requests in one transaction (``Recorder.append_groups``)."""
        ...

    async def flush_views(self) -> None:
        """Write the views' rows held back so far (``Recorder.flush_views``)."""
        ...

    async def close(self) -> None:
        """Release the writer (after the last append)."""
        ...


class LocalWriter:
    """Commits on the recorder's own worker thread, in the daemon's process."""

    def __init__(self, recorder: Recorder, runner: ViewRunner) -> None:
        self.recorder = recorder
        self.runner = runner

    @property
    def position(self) -> int:
        """The runner's position: the seq of the last event folded into the views."""
        return self.runner.position

    @property
    def flushed(self) -> int:
        """The runner's last written position (it holds nothing back unless deferring)."""
        return self.runner.flushed

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """``Recorder.append_groups`` (same outcomes and errors); a request the views
        could not fold is refused in its outcome and logged (``log_views_refusals``)."""
        outcomes = await self.recorder.append_groups(requests)
        log_views_refusals(outcomes)
        return outcomes

    async def flush_views(self) -> None:
        """``Recorder.flush_views``."""
        await self.recorder.flush_views()

    async def close(self) -> None:
        """Nothing to release: the recorder is closed by its owner."""


class WriterProcess:
    """The parent's handle on the writer process: ``append_groups`` like a ``Recorder``.

    Create with ``await WriterProcess.start(...)``; ``await close()`` when done.
    ``position`` is the seq of the last event folded into the views (as of the last
    answer); ``last_seq`` and ``folded`` are what the child found at start. The pipe is
    read and written by the event loop itself: no thread waits for the interpreter
    lock between a group's answer and the next group.
    """

    def __init__(self, proc: subprocess.Popen[bytes], pipe: Pipe, ready: tuple[Any, ...]
                 ) -> None:
        self._proc = proc
        self._pipe = pipe
        _, self.position, self.last_seq, self.folded, self.page_cap = ready
        self.flushed = self.position
        self._closed = False
        self._waiting: deque[asyncio.Future[tuple[Any, ...]]] = deque()
        self._replies = asyncio.create_task(self._read_replies(), name="writer-replies")

    async def _read_replies(self) -> None:
        """Hand each reply to the oldest waiting group (the child answers in order)."""
        try:
            while True:
                reply = await self._pipe.recv()
                if self._waiting:
                    future = self._waiting.popleft()
                    if not future.done():
                        future.set_result(reply)
        except (EOFError, OSError, asyncio.IncompleteReadError, pickle.PickleError) as exc:
            gone = StorageCorruptError(
                f"the writer process is gone ({exc!r}); the outcome of the groups it "
                "had not answered is unknown")
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(gone)

    @classmethod
    async def start(cls, db: Path, *, busy_timeout_s: float = 5.0,
                    max_page_count: int | None = None, log_format: str = "auto",
                    log_level: str = "info", max_group_events: int = 20_000,
                    defer_view_events: int = 4096, idle_flush_s: float = 0.05,
                    launched: Launched | None = None) -> WriterProcess:
        """Start the child (or take one ``launched`` earlier), let it open (create,
        migrate) ``db`` and bring the views up to date (a rebuild if the projection
        version changed), and wait until it is ready.

        Raises:
            DatabaseFileError, StorageUnavailableError: what opening the file raised in
                the child (which has exited); StorageUnavailableError also if the child
                died before it was ready.
        """
        started = launched or launch()
        proc = started.proc
        loop = asyncio.get_running_loop()
        pipe = await Pipe.open(started.sock)
        try:
            await pipe.send({"db": str(db), "busy_timeout_s": busy_timeout_s,
                             "max_page_count": max_page_count, "log_format": log_format,
                             "log_level": log_level, "max_group_events": max_group_events,
                             "defer_view_events": defer_view_events,
                             "idle_flush_s": idle_flush_s})
            reply = await pipe.recv()
        except (EOFError, OSError, asyncio.IncompleteReadError) as exc:
            pipe.close()
            code = await loop.run_in_executor(None, proc.wait)
            raise StorageUnavailableError(
                f"the writer process exited (code {code}) before it was ready: {exc!r}; "
                "see its messages in the log") from exc
        except BaseException:
            pipe.close()
            proc.kill()
            await loop.run_in_executor(None, proc.wait)
            raise
        if reply[0] == "error":
            pipe.close()
            await loop.run_in_executor(None, proc.wait)
            raise reply[1]
        return cls(proc, pipe, reply)

    @property
    def pid(self) -> int:
        """The writer process's pid."""
        return self._proc.pid

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """Commit several callers' batches in one transaction in the child
        (``Recorder.append_groups``); one outcome per request, in order.

        Raises:
            StorageUnavailableError: nothing of the group was stored (retryable).
            StorageCorruptError: the writer process died or answered nonsense; the
                outcome of this group is unknown (the daemon must stop).
            Other errors the child raised, re-raised here (outcome unknown).
        """
        reply = await self._ask(("append", list(requests)))
        outcomes: list[AppendOutcome] = reply[1]
        return outcomes

    async def flush_views(self) -> None:
        """Have the child write the views' rows it holds back, in a transaction of its own.

        Raises what ``append_groups`` raises (StorageUnavailableError: not written now).
        """
        await self._ask(("flush",))

    async def _ask(self, message: tuple[Any, ...]) -> tuple[Any, ...]:
        if self._closed:
            raise StorageUnavailableError("the writer process is closed; nothing was stored")
        if self._replies.done():
            raise StorageCorruptError("the writer process is gone; nothing more can be stored")
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)  # before sending: replies come in the order of sends
        try:
            await self._pipe.send(message)
        except (OSError, pickle.PickleError) as exc:
            raise StorageCorruptError(
                f"the writer process is gone ({exc!r}); the outcome is unknown") from exc
        reply = await future
        if reply[0] == "ok":
            self.position = max(self.position, reply[2])
            self.flushed = max(self.flushed, reply[3])
            return reply
        if reply[0] == "error" and isinstance(reply[1], BaseException):
            raise reply[1]
        raise StorageCorruptError(f"the writer process answered {reply[0]!r}")

    async def close(self, timeout_s: float = 30.0) -> None:
        """Ask the child to close the file and exit; kill it past ``timeout_s`` (idempotent)."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError, EOFError, ConnectionError):
            await self._pipe.send(("close",))
        try:
            await loop.run_in_executor(None, self._proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            await loop.run_in_executor(None, self._proc.wait)
        finally:
            self._pipe.close()
            self._replies.cancel()


class Pipe:
    """Pickled messages over a stream socket, each framed by its 8-byte length (both
    ends are tradelog's own processes: nothing from a client is unpickled)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> Pipe:
        """Wrap a connected stream socket in the running loop's streams."""
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    async def send(self, message: Any) -> None:
        """Pickle and write one message (queued in order before the first await)."""
        payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        self.writer.write(_LENGTH.pack(len(payload)) + payload)
        await self.writer.drain()

    async def recv(self) -> Any:
        """The next message. Raises ``asyncio.IncompleteReadError`` at end of stream."""
        header = await self.reader.readexactly(_LENGTH.size)
        return pickle.loads(await self.reader.readexactly(_LENGTH.unpack(header)[0]))

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


_LENGTH = struct.Struct("!Q")
