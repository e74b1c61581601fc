"""The writer process: the daemon's one SQLite writer, in a process of its own.

The daemon's event loop reads sockets, decodes and validates requests and answers
them; the group commits (hash chain, ``INSERT``, the views' fold and row writes,
``COMMIT``) run in this second process, so the two use both cores and never wait
for each other's interpreter lock. They talk over a socketpair with pickled messages
(each framed by its length), one request and one answer per group:

    parent -> child   {"db", "busy_timeout_s", "max_page_count", "log_format", "log_level"}
    child  -> parent  ("ready", views_position, last_seq, folded, applied_page_cap)
                      or ("error", exception) and exit
    parent -> child   ("append", [AppendRequest, ...])
    child  -> parent  ("ok", [AppendOutcome, ...], views_position) or ("error", exception)
    parent -> child   ("close",): the child closes the file (checkpointing the WAL) and exits

The child ignores SIGINT/SIGTERM/SIGHUP (the daemon decides when to stop) and exits when
the parent goes: at once with ``PR_SET_PDEATHSIG`` on Linux, else at the next read.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from eventstore.errors import StorageCorruptError, StorageUnavailableError
from eventstore.record import AppendOutcome, AppendRequest

if TYPE_CHECKING:
    from eventstore.recorder import Recorder
    from projections.runner import ViewRunner

__all__ = ["LocalWriter", "Writer", "WriterProcess", "main"]

_PR_SET_PDEATHSIG = 1


class Writer(Protocol):
    """What the service needs of its writer: group commits and the views' position."""

    @property
    def position(self) -> int:
        """The seq of the last event folded into the views (as of the last commit)."""
        ...

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """Commit the requests in one transaction (``Recorder.append_groups``)."""
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

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """``Recorder.append_groups`` (same outcomes and errors)."""
        return await self.recorder.append_groups(requests)

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

    def __init__(self, proc: subprocess.Popen[bytes], pipe: _Pipe, ready: tuple[Any, ...]
                 ) -> None:
        self._proc = proc
        self._pipe = pipe
        _, self.position, self.last_seq, self.folded, self.page_cap = ready
        self._closed = False

    @classmethod
    async def start(cls, db: Path, *, busy_timeout_s: float = 5.0,
                    max_page_count: int | None = None, log_format: str = "auto",
                    log_level: str = "info") -> WriterProcess:
        """Start the child, let it open (create, migrate) ``db`` and bring the views up
        to date (a rebuild if the projection version changed), and wait until it is ready.

        Raises:
            DatabaseFileError, StorageUnavailableError: what opening the file raised in
                the child (which has exited); StorageUnavailableError also if the child
                died before it was ready.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.writer", str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        loop = asyncio.get_running_loop()
        pipe = await _Pipe.open(ours)
        try:
            await pipe.send({"db": str(db), "busy_timeout_s": busy_timeout_s,
                             "max_page_count": max_page_count, "log_format": log_format,
                             "log_level": log_level})
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
        if self._closed:
            raise StorageUnavailableError("the writer process is closed; nothing was stored")
        try:
            await self._pipe.send(("append", list(requests)))
            reply = await self._pipe.recv()
        except (EOFError, OSError, asyncio.IncompleteReadError, pickle.PickleError) as exc:
            raise StorageCorruptError(
                f"the writer process is gone ({exc!r}); the last group's outcome is unknown"
            ) from exc
        if reply[0] == "ok":
            outcomes: list[AppendOutcome] = reply[1]
            self.position = reply[2]
            return outcomes
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


class _Pipe:
    """Pickled messages over a stream socket, each framed by its 8-byte length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> _Pipe:
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    async def send(self, message: Any) -> None:
        payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        self.writer.write(_LENGTH.pack(len(payload)) + payload)
        await self.writer.drain()

    async def recv(self) -> Any:
        header = await self.reader.readexactly(_LENGTH.size)
        return pickle.loads(await self.reader.readexactly(_LENGTH.unpack(header)[0]))

    def close(self) -> None:
        self.writer.close()


_LENGTH = struct.Struct("!Q")


# ---------------------------------------------------------------- the child


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


async def _open(settings: dict[str, Any]) -> tuple[Any, Any, tuple[Any, ...]]:
    from eventstore.recorder import Recorder
    from projections.startup import open_views

    recorder = await Recorder.open(settings["db"], busy_timeout_s=settings["busy_timeout_s"])
    try:
        runner, folded = await open_views(recorder)
        pages = settings["max_page_count"]
        applied = None
        if pages is not None:
            def cap(conn: Any) -> int:
                return int(conn.execute(f"PRAGMA max_page_count = {int(pages):d}").fetchone()[0])

            applied = await recorder._on_writer(cap)
        last_seq = await recorder.last_seq()
    except BaseException:
        await recorder.close()
        raise
    return recorder, runner, ("ready", runner.position, last_seq, folded, applied)


async def _serve(fd: int) -> int:
    pipe = await _Pipe.open(socket.socket(fileno=fd))
    try:
        settings: dict[str, Any] = await pipe.recv()
        from daemon.logs import configure_logging

        configure_logging(settings["log_format"], settings["log_level"])
        try:
            recorder, runner, ready = await _open(settings)
        except Exception as exc:
            await pipe.send(("error", _sendable(exc)))
            return 1
        await pipe.send(ready)
        try:
            while True:
                try:
                    message = await pipe.recv()
                except (EOFError, OSError, asyncio.IncompleteReadError):
                    return 0  # the daemon is gone: close the file and go
                if message[0] != "append":
                    return 0
                try:
                    outcomes = await recorder.append_groups(message[1])
                except Exception as exc:
                    await pipe.send(("error", _sendable(exc)))
                else:
                    await pipe.send(("ok", outcomes, runner.position))
        finally:
            await recorder.close()
    finally:
        pipe.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The child's entry point: ``python -m daemon.writer FD PARENT_PID`` (FD: its end of
    the socketpair)."""
    args = list(sys.argv[1:] if argv is None else argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    _die_with_parent()
    if len(args) > 1 and os.getppid() != int(args[1]):
        return 0  # the parent died before we could ask to follow it
    return asyncio.run(_serve(int(args[0])))


if __name__ == "__main__":
    sys.exit(main())
