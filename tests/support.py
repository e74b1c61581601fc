"""Shared test helpers: event factories and a real daemon in a subprocess."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_ids = itertools.count(1)


def wire_event(event_type: str, data: dict[str, Any], *, account: str = "acct-1",
               event_id: str | None = None, source: str = "test/bot",
               time_: str = "2024-03-01T12:00:00Z") -> dict[str, Any]:
    """A wire event (PROTOCOL.md) as a bot would send it."""
    return {"id": event_id or f"ev-{next(_ids)}", "source": source, "type": event_type,
            "time": time_, "account": account, "data": data}


def fill(side: str, quantity: str, price: str, *, symbol: str = "EURUSD",
         **extra: Any) -> dict[str, Any]:
    """A ``fill`` wire event; ``extra`` may hold data fields and envelope keywords."""
    envelope = {k: extra.pop(k) for k in ("account", "event_id", "source", "time_")
                if k in extra}
    data = {"symbol": symbol, "side": side, "quantity": quantity, "price": price, **extra}
    return wire_event("fill", data, **envelope)


class DaemonProcess:
    """``tradelog serve`` as a subprocess on a temp socket and database."""

    def __init__(self, directory: Path, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.db = directory / "tradelog.db"
        self.socket = directory / "tradelog.sock"
        self.log = directory / "daemon.log"
        self.extra_args = extra_args or []
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> DaemonProcess:
        """Start and wait until the socket accepts connections."""
        env = dict(os.environ)
        env.update(self.env or {})
        env.setdefault("TRADELOG_LOG_FORMAT", "json")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "serve", "--db", str(self.db),
                 "--socket", str(self.socket), *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.socket))
                return self
            except OSError:
                time.sleep(0.02)
            finally:
                probe.close()
        raise TimeoutError(f"daemon not ready: {self.log.read_text()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``sig`` and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout_s)
        self.proc = None
        return code

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop(signal.SIGKILL)
        elif self.proc is not None:
            self.proc.wait()
