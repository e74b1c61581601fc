"""The writer process's side (``python -m daemon.writer_child FD PARENT_PID``).

Everything it needs is imported as it starts, while the daemon finishes its own
imports (``daemon.writer_launch``), before the daemon sends the settings.

It opens the log (creating or migrating it), brings the views up to date, then serves
the daemon's messages (``daemon.writer`` describes them) until the daemon closes the
pipe or goes away. It ignores SIGINT/SIGTERM/SIGHUP (the daemon decides when to stop)
and dies with the daemon: ``PR_SET_PDEATHSIG`` on Linux, else at its next read.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pickle
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from daemon.logs import configure_logging, get_logger
from daemon.writer import Pipe, log_views_refusals
from eventstore.errors import StorageCorruptError, StorageUnavailableError
from eventstore.recorder import Recorder
from projections.startup import open_views

if TYPE_CHECKING:
    from eventstore.record import AppendRequest
    from projections.runner import ViewRunner

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1
_SLOW_MS = 50.0
"""A commit taking this long is logged (``slow_commit``), with whether it wrote the views."""
log = get_logger("tradelog.writer")


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL us when the parent exits (best effort; a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _sendable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a ``StorageCorruptError`` naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return StorageCorruptError(f"the writer process failed: {exc!r}")
    return exc


async def _open(settings: dict[str, Any]) -> tuple[Recorder, ViewRunner, tuple[Any, ...]]:
    recorder = await Recorder.open(settings["db"], busy_timeout_s=settings["busy_timeout_s"])
    try:
        runner, folded = await open_views(recorder)
        runner.defer(settings["defer_view_events"])
        pages = settings["max_page_count"]
        applied = None if pages is None else await recorder.cap_pages(pages)
        last_seq = await recorder.last_seq()
    except BaseException:
        await recorder.close()
        raise
    return recorder, runner, ("ready", runner.position, last_seq, folded, applied)


class _Server:
    """The child's loop: take the daemon's messages in order, commit, answer."""

    def __init__(self, recorder: Recorder, runner: ViewRunner, pipe: Pipe,
                 settings: dict[str, Any]) -> None:
        self.recorder = recorder
        self.runner = runner
        self.pipe = pipe
        self.limit: int = settings["max_group_events"]
        self.idle_s: float = settings["idle_flush_s"]
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.held: list[Any] = []

    async def read(self) -> None:
        """Queue every message from the daemon; None once it is gone."""
        try:
            while True:
                await self.inbox.put(await self.pipe.recv())
        except (EOFError, OSError, asyncio.IncompleteReadError):
            await self.inbox.put(None)

    def _ok(self, outcomes: list[Any]) -> tuple[Any, ...]:
        return ("ok", outcomes, self.runner.position, self.runner.flushed)

    async def _next(self) -> Any:
        """The next message; while the views hold rows back, write them after
        ``idle_s`` without one."""
        if self.held:
            return self.held.pop()
        if self.runner.flushed >= self.runner.position:
            return await self.inbox.get()
        try:
            return await asyncio.wait_for(self.inbox.get(), self.idle_s)
        except TimeoutError:
            await self._flush_quietly()
            return await self.inbox.get()

    async def _flush_quietly(self) -> None:
        try:
            await self.recorder.flush_views()
        except StorageUnavailableError as exc:
            log.warning("views_not_written", error=str(exc))

    async def run(self) -> None:
        """Serve until "close" or the daemon's end of the pipe closes; then write the
        views (so a restart has nothing to fold again)."""
        while True:
            message = await self._next()
            if message is None or message[0] == "close":
                break
            if message[0] == "flush":
                try:
                    await self.recorder.flush_views()
                except Exception as exc:
                    await self.pipe.send(("error", _sendable(exc)))
                else:
                    await self.pipe.send(self._ok([]))
                continue
            await self._commit(message[1])
        await self._flush_quietly()

    async def _commit(self, first: list[AppendRequest]) -> None:
        """Commit ``first`` and every further group waiting (up to ``limit`` events) in one
        transaction; answer each group on its own."""
        groups = [first]
        size = sum(len(r.events) for r in first)
        while size < self.limit and not self.inbox.empty():
            message = self.inbox.get_nowait()
            if message is None or message[0] != "append":
                self.held.append(message)
                break
            groups.append(message[1])
            size += sum(len(r.events) for r in message[1])
        flushed_before = self.runner.flushed
        started = time.perf_counter()
        try:
            outcomes = await self.recorder.append_groups([r for g in groups for r in g])
        except Exception as exc:
            failed = ("error", _sendable(exc))
            for _ in groups:
                await self.pipe.send(failed)
            return
        took_ms = (time.perf_counter() - started) * 1000
        log_views_refusals(outcomes)
        if took_ms >= _SLOW_MS:
            log.info("slow_commit", events=size, groups=len(groups), duration_ms=round(took_ms, 1),
                     views_written=self.runner.flushed != flushed_before,
                     snapshot_seq=self.runner.snapshot_seq)
        start = 0
        for group in groups:
            await self.pipe.send(self._ok(outcomes[start:start + len(group)]))
            start += len(group)


async def _serve(fd: int) -> int:
    pipe = await Pipe.open(socket.socket(fileno=fd))
    try:
        try:
            settings: dict[str, Any] = await pipe.recv()
        except (EOFError, OSError, asyncio.IncompleteReadError):
            return 0  # the daemon did not go on (e.g. another one holds the file)
        configure_logging(settings["log_format"], settings["log_level"])
        try:
            recorder, runner, ready = await _open(settings)
        except Exception as exc:
            await pipe.send(("error", _sendable(exc)))
            return 1
        await pipe.send(ready)
        server = _Server(recorder, runner, pipe, settings)
        reading = asyncio.create_task(server.read())
        try:
            await server.run()
            return 0
        finally:
            reading.cancel()
            await recorder.close()
    finally:
        pipe.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point: ``FD`` is this end of the socketpair, ``PARENT_PID`` the daemon."""
    args = list(sys.argv[1:] if argv is None else argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    _die_with_parent()
    if len(args) > 1 and os.getppid() != int(args[1]):
        return 0  # the daemon died before we could ask to follow it
    return asyncio.run(_serve(int(args[0])))


if __name__ == "__main__":
    sys.exit(main())
