"""Starting the writer process early, before the daemon's event loop and threads.

``fork_writer`` forks this process once the writer's code is imported: the writer
then costs neither an interpreter start nor imports of its own, and shares the pages of
the modules with the daemon (copy-on-write). It is taken only while this process has a
single thread (a fork copies no other thread and may copy a lock another one held);
otherwise, and for ``WriterProcess.start`` without an early launch, ``launch`` starts
``python -m daemon.writer.child`` instead. The module itself imports the standard
library only.

The child waits for its ``Settings`` (``daemon.writer.messages``) before it touches any
file, so starting it before the database lock is taken is harmless: if the daemon does
not go on, ``Launched.kill`` ends it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ChildProcess", "Forked", "Launched", "fork_writer", "launch"]


class ChildProcess(Protocol):
    """What the daemon uses of its writer process (``subprocess.Popen`` or ``Forked``)."""

    @property
    def pid(self) -> int:
        """The process id."""

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code once it has ended; ``subprocess.TimeoutExpired`` past ``timeout``."""

    def kill(self) -> None:
        """SIGKILL it (nothing if it has ended)."""


class Forked:
    """A child made by ``os.fork`` in this process, with ``Popen``'s ``pid``, ``wait``
    and ``kill``."""

    POLL_S = 0.005
    """How often ``wait`` looks whether it has ended (used at the daemon's stop only)."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._pid

    def poll(self) -> int | None:
        """The exit code (negative: the signal that ended it), or None while it runs."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:
                # Reaped elsewhere (or SIGCHLD ignored): it has ended, its status is
                # lost. As ``Popen`` does, say 0 rather than wait for it forever.
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; its exit code.

        Raises:
            subprocess.TimeoutExpired: still running after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"writer process {self._pid}", timeout or 0.0)
            time.sleep(self.POLL_S)
        return code

    def kill(self) -> None:
        """SIGKILL the child unless it has already been waited for."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)


@dataclass
class Launched:
    """A started writer process and the daemon's end of their socketpair."""

    proc: ChildProcess
    sock: socket.socket

    def kill(self) -> None:
        """End the child unused (it has not opened anything) and close the socket."""
        self.sock.close()
        self.proc.kill()
        self.proc.wait()


def launch() -> Launched:
    """Start ``python -m daemon.writer.child FD PARENT_PID`` on one end of a socketpair.

    Raises:
        OSError: the process could not be started.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.writer.child", str(theirs.fileno()),
             str(os.getpid())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return Launched(proc, ours)


def fork_writer() -> Launched:
    """The writer process as a fork of this one, or ``launch()``'s when this process
    runs more than one thread (or cannot fork).

    Call it before starting an event loop or any thread. The fork runs
    ``daemon.writer.child.main`` and leaves with ``os._exit`` (none of this process's
    ``finally`` blocks or exit handlers run in it).

    Raises:
        OSError: neither a fork nor a new process could be made.
    """
    if threading.active_count() != 1 or not hasattr(os, "fork"):
        return launch()
    from daemon import heap
    from daemon.writer import child  # everything the writer runs, before the fork

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    parent = os.getpid()
    sys.stdout.flush()  # else the fork would write what this process had buffered again
    sys.stderr.flush()
    heap.freeze_before_fork()
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        return launch()
    if pid == 0:  # the writer process
        code = 70
        try:
            ours.close()
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.close(devnull)
            code = child.main([str(theirs.detach()), str(parent)])
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    theirs.close()
    return Launched(Forked(pid), ours)
