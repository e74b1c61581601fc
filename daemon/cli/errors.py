"""How the ``tradelog`` command fails: one plain line on stderr and a documented exit code.

    0    success
    1    refused or failed: the daemon or a check refused the input (an invalid event, a
         bad row, a file in use or already there, a broken hash chain)
    2    usage: a bad flag or flag value (argparse's convention)
    3    the daemon cannot be reached on its socket
    4    not found: a file, folder, database or account that does not exist
    5    not permitted: the system refused to read or write a path
    70   the daemon stopped on a storage fault (``serve`` only; systemd restarts it)
    130  interrupted (Ctrl-C)

Every message names the path, account or socket concerned and says what to do; a
traceback is shown only with ``TRADELOG_DEBUG=1`` in the environment.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

__all__ = ["EXIT_DENIED", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_NOT_FOUND",
           "EXIT_UNREACHABLE", "EXIT_USAGE", "CliError", "DaemonUnreachableError",
           "debug_wanted", "os_error", "quiet_broken_pipe"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_FOUND = 4
EXIT_DENIED = 5
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the command reports as ``tradelog: <message>`` and exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class DaemonUnreachableError(CliError):
    """No daemon answers on ``socket`` (exit 3); ``why`` is the system's reason."""

    def __init__(self, socket: Path | str, why: str) -> None:
        super().__init__(
            f"cannot reach the daemon at {socket} ({why}); start it with `tradelog serve "
            f"--socket {socket}`, or give the socket of the running one with --socket",
            EXIT_UNREACHABLE)
        self.socket = socket


def os_error(exc: OSError, doing: str = "", advice: str = "") -> CliError:
    """``exc`` as a ``CliError`` naming its path: ``not found`` (exit 4) for a missing
    file or folder, ``not permitted`` (exit 5) for a refused one, 1 otherwise.

    ``doing``: what was tried (e.g. ``"write the report"``); ``advice``: what to do."""
    where = exc.filename if exc.filename is not None else "?"
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        code = EXIT_NOT_FOUND
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        code = EXIT_DENIED
    else:
        code = EXIT_FAILED
    text = f"{where}: {reason}"
    if doing:
        text = f"cannot {doing}: {text}"
    if advice:
        text += f"; {advice}"
    return CliError(text, code)


def debug_wanted() -> bool:
    """Whether ``TRADELOG_DEBUG`` asks for tracebacks (any value but empty or ``0``)."""
    return os.environ.get("TRADELOG_DEBUG", "") not in ("", "0")


def quiet_broken_pipe() -> None:
    """After the reader of stdout went away (``tradelog ... | head``): point stdout at
    /dev/null, so that the interpreter's final flush does not complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
