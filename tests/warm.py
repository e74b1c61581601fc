"""``tradelog serve`` for the tests, forked from a warm interpreter.

About 200 tests each need a daemon of their own. Started as a new interpreter, most of
a daemon's start is importing its modules (about 0.4 s of CPU; the daemon is ready
about 20 ms after that). Here a ``multiprocessing`` fork server per test worker imports
the daemon's modules once (``PRELOAD``) and forks a child per daemon, which takes the
test's environment, working directory and log, and runs ``daemon.cli.main(["serve",
...])``: the same code as the ``tradelog`` command, in a process of its own, on a real
socket and database, stopped by real signals. What only a new interpreter shows (the
console script, the imports a start makes, the command line the writer process
inherits) is tested with ``DaemonProcess(..., fresh=True)`` and through the installed
``tradelog`` command (``tests/daemon/test_install.py``, ``tests/cli``).

The fork server is a new interpreter started once, single-threaded, that imports only
``PRELOAD`` (not this worker's modules): forking it is safe where forking a test
worker, with its threads, would not be.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
from multiprocessing.context import ForkServerContext, ForkServerProcess
from pathlib import Path

__all__ = ["EXECUTABLE", "PRELOAD", "WarmChild", "start_warm"]

EXECUTABLE = sys.executable
"""The interpreter the fork server runs (``sys.executable`` when the tests started)."""

PRELOAD = ["daemon.cli.main", "daemon.cli.dispatch", "daemon.server", "daemon.writer.child",
           "daemon.http.address"]
"""What the fork server imports: with what these import, every module a SQLite daemon
loads before it is ready (``python -X importtime -m daemon.cli serve``); the PostgreSQL
driver and the HTTP server load in the child when it needs them."""

_context: ForkServerContext | None = None


def _forkserver() -> ForkServerContext:
    global _context  # noqa: PLW0603 - one fork server per test worker
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _context = context
    return _context


def _serve(argv: list[str], env: dict[str, str], cwd: str | None, log: str) -> None:
    """The child: the test's environment, folder and log, then the command's ``main``."""
    os.environ.clear()
    os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    from daemon.cli.main import main

    sys.argv = [str(Path(sys.executable).parent / "tradelog"), *argv]
    raise SystemExit(main(argv))


class WarmChild:
    """A forked daemon with the parts of ``subprocess.Popen`` that ``ServeProcess`` uses;
    ``returncode`` is negative when a signal ended it, as with ``Popen``."""

    def __init__(self, process: ForkServerProcess) -> None:
        self._process = process
        assert process.pid is not None
        self.pid: int = process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired("tradelog serve", timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        # As ``Popen.send_signal``: a child that has already ended (its exit code not
        # collected yet; the fork server reaps it) has nothing to signal.
        if self._process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start_warm(argv: list[str], env: dict[str, str], cwd: Path | None,
               log: Path) -> WarmChild:
    """``tradelog ARGV`` forked from the warm interpreter (module docstring)."""
    process = _forkserver().Process(target=_serve,
                                    args=(argv, env, None if cwd is None else str(cwd),
                                          str(log)),
                                    daemon=False)
    process.start()
    return WarmChild(process)
