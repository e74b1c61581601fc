"""PostgreSQL failover under load with daemons: ``python -m bench.faults pg_failover
--daemons`` (docs/FAULTS.md).

The clusters of ``pg_failover`` (a primary and a synchronous hot standby), and two
``tradelog serve`` daemons, each with its own socket, both on the multi-host URI
``host=primary,standby target_session_attrs=read-write``, views on. Clients (threads,
``--clients`` per daemon) append batches of 4 events (``bench.events``) through the
daemons' sockets, one at a time, and log every acknowledged event with its seq. A batch
answered -32001 (retryable) is sent again; so is one whose connection ended without an
answer (its daemon gone, or the group in doubt: a connection to the server lost during
``COMMIT`` closes its clients' connections, the daemon going on), once the daemon is
back: idempotency settles it. A daemon that exits is started again at once, as
systemd's ``Restart=on-failure`` would. Midway the primary is killed
(``pg_ctl stop -m immediate``) and the standby promoted. At the end, on the new primary:
every acknowledged event stored once at the seq it was answered with, seq gapless,
``verify`` clean, each daemon appending after the failover, and the view tables equal
those a fresh SQLite daemon folds from a ``tradelog migrate`` copy of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.events import EventStream, append_line
from bench.faults.common import Daemon, cli
from bench.faults.pg_failover import _check, _longest_pause, failover_pair
from projections import tables as t

__all__ = ["run"]

BATCH = 4


class Client(threading.Thread):
    """Appends batches to one daemon's socket until ``stop``, one at a time; ``acked``
    holds (source, id, seq, time) of every acknowledged event."""

    def __init__(self, name: str, path: Path, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.path, self.stop = path, stop
        self.stream = EventStream(seed=len(name) * 7 + ord(name[-1]), prefix=name)
        self.acked: list[tuple[str, str, int, float]] = []
        self.resent = 0
        self.problems: list[str] = []

    def _call(self, line: bytes) -> dict[str, Any] | None:
        """The answer to ``line``, or None when the daemon could not be reached or the
        connection ended first."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(120)
                sock.connect(str(self.path))
                sock.sendall(line)
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        return None
                    buf += chunk
        except OSError:
            return None
        answer: dict[str, Any] = json.loads(buf)
        return answer

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            line = append_line(number, [next(self.stream) for _ in range(BATCH)])
            while True:  # the same batch until it is answered
                answer = self._call(line)
                if answer is not None and "result" in answer:
                    break
                if answer is not None and answer["error"]["code"] != -32001:
                    self.problems.append(json.dumps(answer["error"])[:300])
                    break
                self.resent += 1
                time.sleep(0.2)
            if "result" in answer:
                now = time.time()
                self.acked.extend((r["source"], r["id"], r["seq"], now)
                                  for r in answer["result"]["results"])


class Keeper(threading.Thread):
    """Starts a daemon again whenever it has exited (``Restart=on-failure``)."""

    def __init__(self, daemons: list[Daemon], stop: threading.Event) -> None:
        super().__init__(name="keeper", daemon=True)
        self.daemons, self.stop = daemons, stop
        self.exits: list[tuple[int, int | None]] = []

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for n, daemon in enumerate(self.daemons):
                code = daemon.proc.poll() if daemon.proc is not None else None
                if code is not None:
                    self.exits.append((n, code))
                if (daemon.proc is None or code is not None) and not self.stop.is_set():
                    with contextlib.suppress(RuntimeError, TimeoutError):
                        daemon.start(timeout_s=60)  # a failed start leaves proc None


def _acks_since(clients: list[Client], count: int, since: float, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(sum(1 for a in c.acked if a[3] > since) >= count for c in clients):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the clients did not each have {count} events acknowledged")


def _tables(rows_of: Any) -> dict[str, list[str]]:
    return {table.name: sorted(repr(tuple(row)) for row in rows_of(table.select_sql()))
            for table in t.TABLES}


def _views_against_rebuild(url: str, scratch: Path) -> list[str]:
    """Differences between the log's view tables (once their checkpoint is the last seq)
    and those a fresh SQLite daemon folds from a copy of the log."""
    deadline = time.monotonic() + 30
    with psycopg.connect(url) as conn:
        while True:
            last = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
            mark = conn.execute("SELECT last_seq FROM projection_checkpoint").fetchone()
            conn.rollback()
            if last and mark and last[0] == mark[0]:
                break
            if time.monotonic() > deadline:
                return [f"views at {mark} while the log is at {last}"]
            time.sleep(0.2)
        live = _tables(lambda sql: conn.execute(sql).fetchall())
    copy = scratch / "copy.db"
    copied = cli("migrate", "--from", url, "--to", f"sqlite:///{copy}")
    if copied.returncode != 0:
        return [f"migrate: {copied.stderr.decode()[-300:]}"]
    fresh = Daemon(copy, scratch / "fresh.sock", scratch / "fresh.log")
    fresh.start(timeout_s=120)  # folds every view from the log
    fresh.stop()  # and writes the rows it held back
    lite = sqlite3.connect(copy)
    try:
        rebuilt = _tables(lambda sql: lite.execute(sql).fetchall())
    finally:
        lite.close()
    return [f"{name}: {len(live[name])} rows live, {len(rebuilt[name])} rebuilt"
            for name in live if live[name] != rebuilt[name]]


def run(seconds: float, clients_each: int, keep: Path | None) -> dict[str, Any]:
    """Run the failover with two daemons; the figures and checks (see the module)."""
    base, primary, standby, url = failover_pair()
    work = Path(tempfile.mkdtemp(prefix="tradelog-failover-d-"))
    daemons = [Daemon(work / f"d{n}.db", work / f"d{n}.sock", work / f"d{n}.log",
                      env={"TRADELOG_STORE": url}) for n in range(2)]
    stop, keeping = threading.Event(), threading.Event()
    keeper = Keeper(daemons, keeping)
    clients: list[Client] = []
    try:
        for daemon in daemons:
            daemon.start(timeout_s=120)
        keeper.start()
        clients = [Client(f"d{n}c{i}", daemon.socket, stop)
                   for n, daemon in enumerate(daemons) for i in range(clients_each)]
        for client in clients:
            client.start()
        _acks_since(clients, 40, 0.0, 120)
        time.sleep(seconds / 2)
        killed_at = time.time()
        primary.pg_ctl("stop", "-m", "immediate")
        standby.pg_ctl("promote")
        promoted_at = time.time()
        _acks_since(clients, 40, killed_at, 180)  # every client, so each daemon, goes on
        time.sleep(seconds / 2)
        stop.set()
        for client in clients:
            client.join(180)
        keeping.set()
        keeper.join(10)
        acked = {(s, i): q for c in clients for s, i, q, _ in c.acked}
        times = sorted(a[3] for c in clients for a in c.acked)
        result: dict[str, Any] = {
            "daemons": 2, "clients_per_daemon": clients_each, "seconds": seconds,
            "acknowledged": len(acked),
            "acknowledged_after_failover": sum(1 for x in times if x > killed_at),
            "resent_batches": sum(c.resent for c in clients),
            "daemon_restarts": [{"daemon": n, "exit_code": code} for n, code in keeper.exits],
            "promote_s": round(promoted_at - killed_at, 2),
            "longest_pause_s": _longest_pause(times, killed_at - 1.0),
            "client_problems": [p for c in clients for p in c.problems][:5],
            **asyncio.run(_check(standby.url(), acked)),
        }
        result["views_differences"] = _views_against_rebuild(standby.url(), work)
        result["daemon_exit_codes"] = [d.stop() for d in daemons]
    finally:
        stop.set()
        keeping.set()
        for daemon in daemons:
            with contextlib.suppress(Exception):
                daemon.kill()
        for cluster in (standby, primary):
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.pg_ctl("stop", "-m", "fast")
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.move(str(base), keep)
            shutil.move(str(work), keep / "daemons")
    return result


def ok(result: dict[str, Any]) -> bool:
    """True when the run found no problem."""
    return (result["acknowledged_lost_or_moved"] == 0 and result["gapless"]
            and result["verify_ok"] and result["acknowledged_after_failover"] > 0
            and not result["views_differences"] and not result["client_problems"]
            and set(result["daemon_exit_codes"]) <= {0})

