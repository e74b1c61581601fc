"""Starting the writer process early: standard library only, so ``tradelog serve`` can
start it before importing the rest of the daemon and the two imports overlap.

The child waits for its ``Settings`` (``daemon.writer.messages``) before it touches any file, so
starting it before the database lock is taken is harmless: if the daemon does not go
on, ``Launched.kill`` ends it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["Launched", "launch"]


@dataclass
class Launched:
    """A started writer process and the daemon's end of their socketpair."""

    proc: subprocess.Popen[bytes]
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
