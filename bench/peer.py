"""(8) The peer: the ``eventsourcing`` library's SQLite application appending the same
events one per ``save`` (one transaction each), against tradelog over its socket with
one client sending the same events one per ``append``, in the same run."""

from __future__ import annotations

import argparse
import functools
import os
import time
from typing import Any

from bench.common import Daemon, closed_loop, median, temp_dir
from bench.events import append_line, events

__all__ = ["run"]


@functools.cache
def _classes() -> tuple[Any, Any]:
    """The peer's aggregate and application classes, made once (eventsourcing registers
    each class under its topic and refuses a second class with the same name)."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Ledger(Aggregate):  # type: ignore[misc]
        """One aggregate per trading account; each wire event is one domain event."""

        def __init__(self, account: str) -> None:
            self.account = account
            self.count = 0

        @event("Recorded")
        def record(self, wire: dict[str, Any]) -> None:
            self.count += 1

    class Ledgers(Application):  # type: ignore[misc]
        pass

    return Ledger, Ledgers


def _eventsourcing_rate(wires: list[dict[str, Any]], directory: str) -> float:
    ledger_class, app_class = _classes()
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
           "SQLITE_DBNAME": os.path.join(directory, "es.db"), "IS_SNAPSHOTTING_ENABLED": "n"}
    app = app_class(env=env)
    ledgers: dict[str, Any] = {}
    for wire in wires:
        if wire["account"] not in ledgers:
            ledger = ledger_class(wire["account"])
            app.save(ledger)
            ledgers[wire["account"]] = ledger
    started = time.perf_counter()
    for wire in wires:
        ledger = ledgers[wire["account"]]
        ledger.record(wire)
        app.save(ledger)
    elapsed = time.perf_counter() - started
    app.close()
    return len(wires) / elapsed


def run(args: argparse.Namespace) -> dict[str, Any]:
    count = 1000 if args.quick else 3000
    es_rates, tl_rates = [], []
    for repeat in range(args.repeats):
        wires = events(count, seed=300 + repeat, prefix=f"q{repeat}")
        with temp_dir() as directory:
            es_rates.append(_eventsourcing_rate(wires, str(directory)))
        with temp_dir() as directory, Daemon(directory / "t.db", directory) as daemon:
            lines = [[append_line(i, [w]) for i, w in enumerate(wires)]]
            tl_rates.append(closed_loop(daemon.socket, lines, 1).rate)
    es, tl = median(es_rates), median(tl_rates)
    print(f"eventsourcing (SQLite, one save per event, WAL, synchronous=FULL default): "
          f"{es:,.0f} events/s")
    print(f"tradelog (socket, 1 client, one append per event, views on):      "
          f"{tl:,.0f} events/s  ratio {tl / es:.2f}")
    return {"eventsourcing": es, "tradelog": tl, "ratio": tl / es, "events": count}
