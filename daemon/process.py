"""``tradelog serve`` as a child process: for the demo, the tests and the benchmarks.

Readiness is the daemon's own systemd notification: the child gets a private
``NOTIFY_SOCKET`` and is ready when it sends ``READY=1`` (after its socket accepts and
its views have caught up), exactly as under ``Type=notify``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol

__all__ = ["Child", "ServeProcess"]


class Child(Protocol):
    """What ``ServeProcess`` needs of a started child: ``subprocess.Popen``'s own."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


class ServeProcess:
    """One ``tradelog serve --db DB --socket SOCKET`` child, its output appended to ``log``.

    ``extra_args`` go after the paths; ``env`` is added to this process's environment
    (``TRADELOG_LOG_FORMAT`` defaults to json). ``with`` kills a child still running.
    """

    def __init__(self, db: Path, socket_path: Path, log: Path, *,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.db = db
        self.socket = socket_path
        self.log = log
        self.extra_args = list(extra_args or [])
        self.env = dict(env or {})
        self.cwd = cwd
        self.proc: Child | None = None

    def launch(self, argv: list[str], env: dict[str, str]) -> Child:
        """Start ``tradelog ARGV`` as a new interpreter (``python -m daemon.cli``) with
        ``env``, its output appended to ``log``, in ``cwd``."""
        with self.log.open("ab") as out:
            return subprocess.Popen([sys.executable, "-m", "daemon.cli", *argv],
                                    stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=self.cwd)

    def start(self, timeout_s: float = 60.0) -> float:
        """Start the child and wait for READY=1; returns the seconds it took.

        Raises:
            RuntimeError: the child exited first (the log's tail is in the message).
            TimeoutError: no READY=1 within ``timeout_s`` (the child is killed).
        """
        folder = Path(tempfile.mkdtemp(prefix="tl-notify-"))
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            notify.bind(str(folder / "n"))
            notify.settimeout(0.05)
            env = dict(os.environ)
            env["TRADELOG_LOG_FORMAT"] = "json"
            env.update(self.env)
            env["NOTIFY_SOCKET"] = str(folder / "n")
            started = time.perf_counter()
            self.proc = self.launch(["serve", "--db", str(self.db),
                                     "--socket", str(self.socket), *self.extra_args], env)
            while time.perf_counter() - started < timeout_s:
                with contextlib.suppress(TimeoutError):
                    if b"READY=1" in notify.recv(4096):
                        return time.perf_counter() - started
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    self.proc = None
                    raise RuntimeError(f"daemon exited {code}: {self.tail()}")
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            raise TimeoutError(f"daemon not ready in {timeout_s} s: {self.tail()}")
        finally:
            notify.close()
            shutil.rmtree(folder, ignore_errors=True)

    def tail(self, chars: int = 2000) -> str:
        """The end of the child's log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        """True while the child daemon is started and has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        """Send ``sig`` and wait; returns the exit code (negative: killed by that signal)."""
        assert self.proc is not None, "the daemon is not running"
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout_s)
        self.proc = None
        return code

    def kill(self) -> int:
        """``stop`` with SIGKILL (no clean shutdown); returns the exit code (-9 if killed)."""
        return self.stop(signal.SIGKILL)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
