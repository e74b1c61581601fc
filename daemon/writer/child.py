"""The writer process (``python -m daemon.writer.child FD PARENT_PID``): plain
synchronous code around one SQLite connection (``WriterCore``).

Everything it needs is imported as it starts, while the daemon finishes its own
imports (``daemon.writer.launch``), before the daemon sends the ``Settings``.

It opens the log (creating or migrating it), brings the views up to date, answers
``Ready``, then takes the daemon's messages (``daemon.writer.messages``) one at a time,
in order: each ``Append`` is one transaction, answered ``Done`` or ``Failed``. While the
views hold rows back it writes them after ``idle_flush_s`` without a message, and
before it exits (on ``Close``, or when the daemon's end of the pipe closes). It ignores
SIGINT/SIGTERM/SIGHUP (the daemon decides when to stop) and dies with the daemon:
``PR_SET_PDEATHSIG`` on Linux, else at its next read.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import socket
import sys
from collections.abc import Sequence

from daemon import heap
from daemon.logs import configure_logging
from daemon.writer.core import CoreBase
from daemon.writer.messages import Append, Close, Done, Failed, Flush, Reply, Settings
from daemon.writer.opening import open_core
from daemon.writer.pipe import BlockingPipe
from eventstore.errors import StorageCorruptError

__all__ = ["main", "serve"]

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
NAME = b"tradelog-writer"
"""The process's name in ``ps -o comm``, ``top`` and ``/proc/PID/comm`` (15 bytes at most)."""


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL us when the parent exits, and name us ``NAME`` (best effort;
    a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        libc.prctl(_PR_SET_NAME, NAME, 0, 0, 0)


def _sendable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a ``StorageCorruptError`` naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return StorageCorruptError(f"the writer process failed: {exc!r}")
    return exc


def answer(core: CoreBase, message: Append | Flush) -> Reply:
    """Do what ``message`` asks; ``Done`` with the outcomes, or ``Failed`` with the error
    (nothing of the group stored, or its outcome unknown: the error says which)."""
    try:
        if isinstance(message, Append):
            outcomes = core.commit(message.requests)
        else:
            core.flush()
            outcomes = []
    except Exception as exc:
        return Failed(_sendable(exc))
    return Done(outcomes, core.checkpoint, core.flushed)


def serve(pipe: BlockingPipe) -> int:
    """Open the file with the daemon's ``Settings`` and answer its messages until
    ``Close`` or the end of the pipe; returns the exit code."""
    try:
        settings: Settings = pipe.recv()
    except (EOFError, OSError):
        return 0  # the daemon did not go on (e.g. another one holds the file)
    configure_logging(settings.log_format, settings.log_level)
    try:
        core, ready = open_core(
            settings.db, busy_timeout_s=settings.busy_timeout_s,
            defer_view_events=settings.defer_view_events,
            max_page_count=settings.max_page_count)
    except Exception as exc:
        pipe.send(Failed(_sendable(exc)))
        return 1
    try:
        heap.settle()
        pipe.send(ready)
        while True:
            if core.flushed < core.checkpoint and not pipe.wait(settings.idle_flush_s):
                core.flush_quietly()
                continue
            message = pipe.recv()
            if isinstance(message, Close):
                break
            pipe.send(answer(core, message))
    except (EOFError, OSError):
        pass  # the daemon is gone: write the views and exit
    finally:
        core.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point: ``FD`` is this end of the socketpair, ``PARENT_PID`` the daemon."""
    args = list(sys.argv[1:] if argv is None else argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    _die_with_parent()
    if len(args) > 1 and os.getppid() != int(args[1]):
        return 0  # the daemon died before we could ask to follow it
    pipe = BlockingPipe(socket.socket(fileno=int(args[0])))
    try:
        return serve(pipe)
    finally:
        pipe.close()


if __name__ == "__main__":
    sys.exit(main())
