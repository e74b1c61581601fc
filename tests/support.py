"""Shared test helpers: event factories and a real daemon in a subprocess."""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from daemon.process import Child, ServeProcess
from tests.warm import EXECUTABLE, start_warm

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


class DaemonProcess(ServeProcess):
    """``tradelog serve`` as a process of its own on ``directory``/tradelog.db and .sock;
    ``with`` starts it and kills it at the end if it is still running.

    It is forked from a warm interpreter (``tests.warm``). A new interpreter is started
    instead (``python -m daemon.cli serve``) with ``fresh=True``, for the tests of what a
    start from nothing does, and whenever what the test changes acts at an interpreter's
    start: ``env`` setting ``PYTHON*`` (a ``sitecustomize`` hook) or ``LD_*``, or
    ``sys.executable`` replaced (a wrapper that lowers a limit first)."""

    def __init__(self, directory: Path, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None, *, fresh: bool = False) -> None:
        super().__init__(directory / "tradelog.db", directory / "tradelog.sock",
                         directory / "daemon.log", extra_args=extra_args, env=env)
        self.directory = directory
        self.fresh = fresh

    def log_args(self) -> list[str]:
        """The CLI flags that name this daemon's log for reading without it: its
        ``--store`` when it was given one, else ``--db`` of its file."""
        if "--store" in self.extra_args:
            return self.extra_args[self.extra_args.index("--store"):][:2]
        return ["--db", str(self.db)]

    def launch(self, argv: list[str], env: dict[str, str]) -> Child:
        at_start = any(name.startswith(("PYTHON", "LD_")) for name in self.env)
        if self.fresh or at_start or sys.executable != EXECUTABLE:
            return super().launch(argv, env)
        return start_warm(argv, env, self.cwd, self.log)

    def start(self, timeout_s: float = 30.0) -> float:
        return super().start(timeout_s)

    def __enter__(self) -> DaemonProcess:
        self.start()
        return self


@contextlib.contextmanager
def daemon_on(store: str, directory: Path, env: dict[str, str] | None = None,
              extra_args: list[str] | None = None) -> Iterator[DaemonProcess]:
    """A started ``DaemonProcess`` in ``directory`` whose log is, by ``store``, the
    SQLite file there (``sqlite``) or a PostgreSQL schema of its own (``postgresql``,
    dropped after); killed on the way out if still running."""
    if store == "sqlite":
        with DaemonProcess(directory, extra_args=extra_args, env=env) as proc:
            yield proc
        return
    from tests.eventstore.test_store_contract import PgLog

    log = PgLog()
    try:
        with DaemonProcess(directory, extra_args=[*(extra_args or []), "--store", log.url],
                           env=env) as proc:
            yield proc
    finally:
        log.drop()
