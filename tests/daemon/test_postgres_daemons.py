"""Three daemons (``tradelog serve --store postgresql://...``) on three sockets, one
PostgreSQL log; clients append to each at once, and one daemon is killed with SIGKILL
mid-run. Every acknowledged event is stored once, seq is gapless, the chain verifies,
a subscriber on a surviving daemon gets every daemon's events once in seq order, and
each surviving daemon's views equal those a fresh daemon folds from a copy of the log."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.daemon_support import RawConnection, all_views, read_all, tradelog
from tests.eventstore.test_store_contract import PG_URL, PgLog
from tests.support import DaemonProcess

BATCHES = 40


def _batch(client: str, number: int) -> list[dict[str, Any]]:
    """A deposit, a buy and (every third batch) a sell: positions, trades, balances and
    daily rows move in each client's account."""
    account = f"acct-{client}"

    def event(kind: str, index: int, data: dict[str, Any]) -> dict[str, Any]:
        return {"specversion": "1.0", "id": f"{client}-{number}-{index}",
                "source": f"bot/{client}", "type": kind, "account": account,
                "time": f"2024-03-01T12:{number % 60:02d}:00Z", "data": data}

    events = [event("cash", 0, {"amount": "100", "kind": "deposit"}),
              event("fill", 1, {"symbol": "XYZ", "side": "buy", "quantity": "2",
                                "price": f"{10 + number % 7}"})]
    if number % 3 == 2:
        events.append(event("fill", 2, {"symbol": "XYZ", "side": "sell", "quantity": "3",
                                        "price": "12"}))
    return events


class Client(threading.Thread):
    """Appends ``BATCHES`` batches to one daemon, one at a time, keeping what each
    answer acknowledged; stops at the first connection failure (its daemon killed)."""

    def __init__(self, name: str, socket_path: Path, started: threading.Event) -> None:
        super().__init__(name=f"client-{name}", daemon=True)
        self.client = name
        self.socket_path = socket_path
        self.started = started
        self.acked: list[tuple[str, str, int]] = []
        self.failures: list[Any] = []

    def run(self) -> None:
        try:
            with RawConnection(self.socket_path, timeout_s=120) as conn:
                for number in range(BATCHES):
                    answer = conn.call("append", {"events": _batch(self.client, number)})
                    if "error" in answer:
                        self.failures.append(answer["error"])
                        continue
                    self.acked.extend((f"bot/{self.client}", r["id"], r["seq"])
                                      for r in answer["result"]["results"])
                    self.started.set()
        except (OSError, EOFError, json.JSONDecodeError) as exc:
            self.failures.append(repr(exc))


def _sorted(views: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {name: sorted(json.dumps(row, sort_keys=True) for row in rows)
            for name, rows in views.items()}


def test_three_daemons_one_killed(pg: PgLog, tmp_path: Path) -> None:
    """Clients append to three daemons at once; one daemon is SIGKILLed once its clients
    have had answers. The log and every surviving daemon's views are whole."""
    folders = [tmp_path / name for name in "abc"]
    for folder in folders:
        folder.mkdir()
    daemons = [DaemonProcess(folder, extra_args=["--store", pg.url]) for folder in folders]
    try:
        for daemon in daemons:
            daemon.start()
        watcher = RawConnection(daemons[0].socket, timeout_s=60)
        watcher.result("subscribe", {"from_seq": 1})
        started = [threading.Event() for _ in daemons]
        clients = [Client(f"{folder.name}{i}", daemon.socket, started[n])
                   for n, (folder, daemon) in enumerate(zip(folders, daemons, strict=True))
                   for i in range(2)]
        for client in clients:
            client.start()
        assert started[2].wait(120), daemons[2].tail()
        assert daemons[2].stop(signal.SIGKILL) == -signal.SIGKILL
        for client in clients:
            client.join(120)
            assert not client.is_alive()
        survivors = [c for c in clients if not c.client.startswith("c")]
        assert all(not c.failures and len(c.acked) > 2 * BATCHES for c in survivors), \
            [c.failures for c in survivors]
        assert any(c.failures for c in clients if c.client.startswith("c"))

        stored = read_all(daemons[1].socket)
        seqs = [event["seq"] for event in stored]
        assert list(range(1, len(stored) + 1)) == seqs
        keys = [(event["source"], event["id"]) for event in stored]
        assert len(set(keys)) == len(keys)
        at = dict(zip(keys, seqs, strict=True))
        for client in clients:
            for source, event_id, seq in client.acked:
                assert at[(source, event_id)] == seq

        # The subscriber on daemon a sees every daemon's events once, in seq order.
        got: list[int] = []
        deadline = time.monotonic() + 30
        while len(got) < len(stored) and time.monotonic() < deadline:
            message = watcher.read(timeout_s=30)
            if message.get("method") == "event":
                got.append(message["params"]["event"]["seq"])
        assert seqs == got
        watcher.close()

        verified = tradelog("verify", "--store", pg.url)
        assert 0 == verified.returncode, verified.stderr

        copy = tmp_path / "fresh"
        copy.mkdir()
        copied = tradelog("migrate", "--from", pg.url,
                          "--to", f"sqlite:///{copy / 'tradelog.db'}")
        assert 0 == copied.returncode, copied.stderr
        with DaemonProcess(copy) as fresh:
            rebuilt = _sorted(all_views(fresh.socket))
        assert any(rebuilt.values())
        for daemon in daemons[:2]:
            assert rebuilt == _sorted(all_views(daemon.socket))
    finally:
        for daemon in daemons:
            if daemon.alive():
                daemon.stop(signal.SIGKILL)


@pytest.fixture
def own_role(pg: PgLog) -> Iterator[tuple[str, str]]:
    """A login role of its own that may create the log in the test's schema, and the
    URL that connects as it: (role, url)."""
    role = f"{pg.schema}_daemon"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE, CREATE ON SCHEMA {pg.schema} TO {role}")
    url = pg.url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    try:
        yield role, url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")  # the log it made, and its grants
            conn.execute(f"DROP ROLE {role}")


def _shut_out(role: str, shut: bool) -> None:
    """Refuse (or allow again) the role's logins, ending its sessions when refusing."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {role} {'NOLOGIN' if shut else 'LOGIN'}")
        if shut:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE usename = %s", (role,))


def test_postgresql_unreachable_is_retryable_and_the_daemon_reconnects(
        own_role: tuple[str, str], tmp_path: Path) -> None:
    """With the daemon's sessions ended and no new one allowed, an append is answered
    -32001 (retryable) and nothing of it is stored; once the server takes the daemon
    again, the same append is stored as new, and the views have it."""
    role, url = own_role
    with DaemonProcess(tmp_path, extra_args=["--store", url]) as daemon, \
            RawConnection(daemon.socket, timeout_s=60) as conn:
        conn.result("append", {"events": _batch("a", 0)})
        _shut_out(role, True)
        try:
            answer = conn.call("append", {"events": _batch("a", 1)})
        finally:
            _shut_out(role, False)
        assert -32001 == answer["error"]["code"], answer
        assert [] == [e for e in read_all(daemon.socket) if e["id"].startswith("a-1-")]
        results = conn.result("append", {"events": _batch("a", 1)})["results"]
        assert [False, False] == [r["duplicate"] for r in results]
        balances = conn.result("query", {"view": "balances"})["rows"]
        assert ["200"] == [row["cash"] for row in balances]


def test_backup_dir_on_postgresql_is_refused_at_start(pg: PgLog, tmp_path: Path) -> None:
    """The daemon's scheduled backups copy a SQLite file: on a PostgreSQL log a
    ``backup_dir`` is refused at start, naming it (``as_of``, once refused here too,
    is served: ``tests/daemon/test_postgres_as_of.py``)."""
    refused = DaemonProcess(tmp_path, extra_args=["--store", pg.url],
                            env={"TRADELOG_BACKUP_DIR": str(tmp_path / "backups")})
    with pytest.raises(RuntimeError, match="backup_dir"):
        refused.start()
