"""The daemon's handle on the writer process (``WriterProcess``).

The daemon's event loop reads sockets, decodes and validates requests and answers
them; the commits (hash chain, ``INSERT``, the views' fold and row writes, ``COMMIT``)
run in the writer process (``daemon.writer.child``), so the two use both cores and
never wait for each other's interpreter lock. The pipe is read and written by the
event loop itself: no thread sits between a group's answer and the next group.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import subprocess
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from daemon.writer.launch import ChildProcess, Launched, launch
from daemon.writer.messages import (
    Append,
    Close,
    Done,
    Failed,
    Flush,
    Ready,
    Reply,
    Settings,
)
from daemon.writer.pipe import Pipe
from eventstore.errors import StorageCorruptError, StorageUnavailableError
from eventstore.record import AppendOutcome, AppendRequest

__all__ = ["IDLE_FLUSH_S", "WriterProcess"]

IDLE_FLUSH_S = 0.5
"""Seconds without a message after which the writer writes the view rows it holds back.
Not shorter: under load the daemon's next group can be late by tens of ms, and a flush
then (every dirty row built and written, 10-20 ms of the writer's CPU) delays that group
and writes again, soon after, rows a later flush writes anyway (at 50 ms, one commit in
five of 64 single-event clients on a loaded machine was followed by one)."""


class WriterProcess:
    """``append_groups`` like a ``Recorder``, committed in the writer process.

    Create with ``await WriterProcess.start(...)``; ``await close()`` when done.
    ``checkpoint`` is the views' checkpoint and ``flushed`` the seq their tables are
    written up to (as of the last answer); ``ready`` is what the process found at start.
    """

    def __init__(self, proc: ChildProcess, pipe: Pipe, ready: Ready) -> None:
        self._proc = proc
        self._pipe = pipe
        self.ready = ready
        self.checkpoint = ready.checkpoint
        self.flushed = ready.checkpoint
        self._closed = False
        self._waiting: deque[asyncio.Future[Reply]] = deque()
        self._replies = asyncio.create_task(self._read_replies(), name="writer-replies")

    async def _read_replies(self) -> None:
        """Hand each reply to the oldest waiting message (the process answers in order)."""
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
    async def start(cls, db: Path | str, *, busy_timeout_s: float = 5.0,
                    max_page_count: int | None = None, log_format: str = "auto",
                    log_level: str = "info", defer_view_events: int = 4096,
                    idle_flush_s: float = IDLE_FLUSH_S, launched: Launched | None = None
                    ) -> WriterProcess:
        """Start the process (or take one ``launched`` earlier), let it open (create,
        migrate) ``db`` and bring the views up to date (a rebuild if the projection
        version changed), and wait until it is ready.

        Raises:
            DatabaseFileError, StorageUnavailableError: what opening the file raised in
                the process (which has exited); StorageUnavailableError also if it died
                before it was ready.
        """
        started = launched or launch()
        proc = started.proc
        loop = asyncio.get_running_loop()
        pipe = await Pipe.open(started.sock)
        try:
            await pipe.send(Settings(str(db), busy_timeout_s, max_page_count, log_format,
                                     log_level, defer_view_events, idle_flush_s))
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
        if isinstance(reply, Failed):
            pipe.close()
            await loop.run_in_executor(None, proc.wait)
            raise reply.error
        return cls(proc, pipe, reply)

    @property
    def pid(self) -> int:
        """The writer process's pid."""
        return self._proc.pid

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """Commit several callers' batches in one transaction in the writer process;
        one outcome per request, in order.

        Raises:
            StorageUnavailableError: nothing of the group was stored (retryable).
            StorageCorruptError: the writer process died or answered nonsense; the
                outcome of this group is unknown (the daemon must stop).
            Other errors the process raised, re-raised here (outcome unknown).
        """
        done = await self._ask(Append(list(requests)))
        return done.outcomes

    async def flush_views(self) -> None:
        """Have the process write the views' rows it holds back, in a transaction of
        its own. Raises what ``append_groups`` raises (StorageUnavailableError: not
        written now)."""
        await self._ask(Flush())

    async def _ask(self, message: Append | Flush) -> Done:
        if self._closed:
            raise StorageUnavailableError("the writer process is closed; nothing was stored")
        if self._replies.done():
            raise StorageCorruptError("the writer process is gone; nothing more can be stored")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)  # before sending: replies come in the order of sends
        try:
            await self._pipe.send(message)
        except (OSError, pickle.PickleError) as exc:
            raise StorageCorruptError(
                f"the writer process is gone ({exc!r}); the outcome is unknown") from exc
        reply = await future
        if isinstance(reply, Done):
            self.checkpoint = max(self.checkpoint, reply.checkpoint)
            self.flushed = max(self.flushed, reply.flushed)
            return reply
        if isinstance(reply, Failed):
            raise reply.error
        raise StorageCorruptError(f"the writer process answered {type(reply).__name__}")

    async def close(self, timeout_s: float = 30.0) -> None:
        """Ask the process to write the views, close the file and exit; kill it past
        ``timeout_s`` (idempotent)."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError, EOFError, ConnectionError):
            await self._pipe.send(Close())
        try:
            await loop.run_in_executor(None, self._proc.wait, timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            await loop.run_in_executor(None, self._proc.wait)
        finally:
            self._pipe.close()
            self._replies.cancel()
