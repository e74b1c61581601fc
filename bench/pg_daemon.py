"""The daemon on each store against the peer, in one run (docs/BENCHMARKS.md,
"The daemon on PostgreSQL against the peer").

    python -m bench pg-daemon [--dsn postgresql://postgres@127.0.0.1/test] [--repeats 3]

Through the real daemon (``tradelog serve``, its socket, the views on, the writer in its
own process): each client appends one event at a time and waits for its answer (closed
loop, ``bench.common.closed_loop``), the events of ``bench.events`` (fills, marks,
signals, orders, status, journal, cash over 20 accounts). Loads of 1, 8 and 64 clients
on: a SQLite daemon (WAL, ``synchronous=FULL``); a PostgreSQL daemon (a fresh schema of
``--dsn``); the ``eventsourcing`` library's PostgreSQL application, one domain event
per save (``bench.pg_peer.peer_rate``: no daemon, socket or views on its side). Then
three PostgreSQL daemons on one log, each with its own clients, appending at once. In
each repeat the contenders take turns, so the machine's other load falls on all; a
measurement into which a stop of this process or its children fell (``Stalls``) is
taken again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from bench.common import Daemon, closed_loop, temp_dir
from bench.events import append_line, events
from bench.pg_peer import peer_rate
from bench.pg_store import drop_schema, schema_url

__all__ = ["run"]

DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _client_lines(count: int, clients: int, seed: int, prefix: str) -> list[list[bytes]]:
    """``count`` events as one-event append lines, dealt round-robin to ``clients``."""
    per_client: list[list[bytes]] = [[] for _ in range(clients)]
    for rid, wire in enumerate(events(count, seed=seed, prefix=prefix), 1):
        per_client[rid % clients].append(append_line(rid, [wire]))
    return per_client


def _through_daemons(lines: list[list[bytes]], daemons: int, store: str | None
                     ) -> dict[str, float]:
    """Events per second and CPU (cores, all daemons and writers) with ``daemons``
    daemons (on SQLite: one) and the clients dealt round-robin among them."""
    with temp_dir() as directory:
        env = {"TRADELOG_WRITER_PROCESS": "true"}
        if store is not None:
            env["TRADELOG_STORE"] = store
        running: list[Daemon] = []
        try:
            for n in range(daemons):
                folder = directory / f"d{n}"
                folder.mkdir()
                daemon = Daemon(folder / "t.db", folder, env=env)
                daemon.start()
                running.append(daemon)
            paths: list[Path] = [running[n % daemons].socket for n in range(len(lines))]
            cpu0 = sum(d.cpu_s() for d in running)
            stats = closed_loop(paths, lines, 1)
            cpu = sum(d.cpu_s() for d in running) - cpu0
            if stats.errors:
                raise RuntimeError(f"{stats.errors} error answers: {running[0].log_tail()}")
        finally:
            for daemon in running:
                daemon.stop()
    return {"rate": stats.rate, "cpu_us_per_event": cpu / stats.events * 1e6}


class Stalls(threading.Thread):
    """Watches for this process or its children being stopped (SIGSTOP, as a tool that
    quiets the machine for its own measurement does to others): a tick of this thread
    late by over ``LATE_S``, or a child in state T. ``seen`` is set when one was."""

    LATE_S = 0.5

    def __init__(self) -> None:
        super().__init__(name="stalls", daemon=True)
        self.seen = False
        self.me = psutil.Process()

    def run(self) -> None:
        last = time.monotonic()
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            if now - last > self.LATE_S:
                self.seen = True
            last = now
            with contextlib.suppress(psutil.Error):
                if any(child.status() == psutil.STATUS_STOPPED
                       for child in self.me.children(recursive=True)):
                    self.seen = True


STALLS = Stalls()


def _unstalled(measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """``measure()``, taken again (up to 5 times) while a stop fell into it."""
    if not STALLS.is_alive():
        STALLS.start()
    for _ in range(5):
        STALLS.seen = False
        try:
            figures = measure()
        except (TimeoutError, RuntimeError):
            if not STALLS.seen:
                raise  # not for a stop (a daemon not ready in time while stopped)
        else:
            if not STALLS.seen:
                return figures
        print("(a process was stopped during a measurement: taken again)", flush=True)
    raise RuntimeError("stopped during five measurements in a row")


def _pg(dsn: str, lines: list[list[bytes]], daemons: int) -> dict[str, float]:
    schema, url = schema_url(dsn)
    try:
        return _through_daemons(lines, daemons, url)
    finally:
        drop_schema(dsn, schema)


def _peer(dsn: str, clients: int, per_client: int) -> dict[str, float]:
    return {"rate": peer_rate(dsn, clients, per_client), "cpu_us_per_event": float("nan")}


def _count(clients: int, events_per_load: int) -> int:
    """Events for a load: ``events_per_load``, at least 20 per client, a multiple of
    ``clients``."""
    per_client = max(20, events_per_load // clients)
    return per_client * clients


def _row(name: str, samples: list[dict[str, float]]) -> dict[str, Any]:
    return {"name": name, "rate": statistics.median(s["rate"] for s in samples),
            "cpu_us_per_event": statistics.median(s["cpu_us_per_event"] for s in samples),
            "samples": [round(s["rate"]) for s in samples]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The figures of every load (``args``: ``repeats``, ``quick``, ``events``, ``dsn``;
    ``only``: ``loads`` (one daemon, 1, 8, 64 clients), ``daemons3`` or both)."""
    dsn = getattr(args, "dsn", None) or os.environ.get("TRADELOG_BENCH_PG", DSN)
    per_load = 300 if args.quick else min(args.events, 3000)
    results: dict[str, Any] = {"loads": [], "daemons3": []}
    print(f"{'clients':>7} {'SQLite daemon':>13} {'PG daemon':>10} {'peer':>7} "
          f"{'PG/peer':>8} {'SQLite/peer':>11} {'SQLite us/ev':>12} {'PG us/ev':>9} "
          f"{'load':>5}", flush=True)
    only = (args.only or "loads,daemons3").split(",")
    for clients in (1, 8, 64) if "loads" in only else ():
        count = _count(clients, per_load if clients > 1 else per_load // 3)
        lite, pg, peer = [], [], []
        for repeat in range(args.repeats):
            lines = _client_lines(count, clients, 300 + repeat, f"d{repeat}c{clients}")
            lite.append(_unstalled(partial(_through_daemons, lines, 1, None)))
            pg.append(_unstalled(partial(_pg, dsn, lines, 1)))
            peer.append(_unstalled(partial(_peer, dsn, clients, count // clients)))
        row = {"clients": clients, "events": count, "sqlite": _row("sqlite", lite),
               "postgresql": _row("postgresql", pg), "peer": _row("eventsourcing", peer)}
        row["pg_over_peer"] = row["postgresql"]["rate"] / row["peer"]["rate"]
        row["sqlite_over_peer"] = row["sqlite"]["rate"] / row["peer"]["rate"]
        results["loads"].append(row)
        print(f"{clients:>7} {row['sqlite']['rate']:>13,.0f} {row['postgresql']['rate']:>10,.0f} "
              f"{row['peer']['rate']:>7,.0f} {row['pg_over_peer']:>8.2f} "
              f"{row['sqlite_over_peer']:>11.2f} {row['sqlite']['cpu_us_per_event']:>12,.0f} "
              f"{row['postgresql']['cpu_us_per_event']:>9,.0f} {os.getloadavg()[0]:>5.1f}",
              flush=True)
    print(f"\n{'clients per daemon':>18} {'1 PG daemon':>11} {'3 PG daemons':>12} "
          f"{'1 us/ev':>8} {'3 us/ev':>8} {'load':>5}", flush=True)
    for each in (1, 8) if "daemons3" in only else ():
        count = _count(3 * each, per_load)
        one, three = [], []
        for repeat in range(args.repeats):
            lines = _client_lines(count, 3 * each, 400 + repeat, f"m{repeat}c{each}")
            one.append(_unstalled(partial(_pg, dsn, lines, 1)))
            three.append(_unstalled(partial(_pg, dsn, lines, 3)))
        row = {"clients_per_daemon": each, "events": count, "one": _row("1 daemon", one),
               "three": _row("3 daemons", three)}
        results["daemons3"].append(row)
        print(f"{each:>18} {row['one']['rate']:>11,.0f} {row['three']['rate']:>12,.0f} "
              f"{row['one']['cpu_us_per_event']:>8,.0f} "
              f"{row['three']['cpu_us_per_event']:>8,.0f} {os.getloadavg()[0]:>5.1f}",
              flush=True)
    return results
