"""Shared test helpers: event factories and a real daemon in a subprocess."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from daemon.process import ServeProcess

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
    """``tradelog serve`` as a subprocess on ``directory``/tradelog.db and .sock; ``with``
    starts it and kills it at the end if it is still running."""

    def __init__(self, directory: Path, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        super().__init__(directory / "tradelog.db", directory / "tradelog.sock",
                         directory / "daemon.log", extra_args=extra_args, env=env)
        self.directory = directory

    def start(self, timeout_s: float = 30.0) -> float:
        return super().start(timeout_s)

    def __enter__(self) -> DaemonProcess:
        self.start()
        return self
