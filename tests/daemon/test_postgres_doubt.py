"""A commit in doubt on PostgreSQL, through a real daemon and socket: the connection to
the server lost during a group's ``COMMIT``, once before the server committed (the
session ended while the commit waits in a deferred trigger) and once after (a proxy
between the daemon and the server drops the server's answer to ``COMMIT`` and cuts
the connection). Each time the daemon answers nothing for the group and closes its
client's connection, logs ``commit_in_doubt`` and goes on (same process, no exit 70);
the re-send is stored once, or answered ``duplicate``; seq is gapless, ``verify``
clean, and the views equal a rebuild."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from daemon.client import Client
from tests.daemon_support import RawConnection, all_views, log_records, read_all, request, tradelog
from tests.eventstore.test_postgres_faults import SLEEP_AT_COMMIT, NamedPgLog, _terminate
from tests.support import DaemonProcess

COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"
"""The server's CommandComplete for ``COMMIT``: the transaction is committed."""
ROWS_WRITTEN = b"INSERT 0 "
"""A CommandComplete of an ``INSERT``: the session's transaction wrote rows."""


class CommitCutter:
    """A TCP proxy in front of the PostgreSQL server. Once ``armed``, the first session
    whose server answers ``COMMIT`` to a transaction that wrote rows (the daemon's
    append) loses that answer and its connection: the commit is durable, and the daemon
    cannot know it. ``cut`` is set when that happened."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.cut = threading.Event()
        threading.Thread(target=self._accept, name="commit-cutter", daemon=True).start()

    def close(self) -> None:
        """Take no more sessions (those open go on until either side closes)."""
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for source, sink, from_server in ((client, server, False),
                                              (server, client, True)):
                threading.Thread(target=self._pump, args=(source, sink, from_server),
                                 daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        wrote = False
        tail = b""
        try:
            while chunk := source.recv(1 << 16):
                if from_server and self.armed.is_set():
                    seen = tail + chunk
                    wrote = wrote or ROWS_WRITTEN in seen
                    if wrote and COMMIT_DONE in seen:
                        self.armed.clear()
                        self.cut.set()
                        return
                    tail = seen[-32:]
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _through(url: str, port: int) -> str:
    """``url`` pointed at 127.0.0.1:``port`` (the proxy), without TLS (it reads the bytes)."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}")) + "&sslmode=disable"


def _batch(number: int) -> list[dict[str, Any]]:
    """A deposit of 100 and a buy of 2 XYZ: each batch moves the balance and position."""
    def event(index: int, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"specversion": "1.0", "id": f"d-{number}-{index}", "source": "bot/doubt",
                "type": kind, "account": "acct-doubt",
                "time": f"2024-03-01T12:{number:02d}:00Z", "data": data}

    return [event(0, "cash", {"amount": "100", "kind": "deposit"}),
            event(1, "fill", {"symbol": "XYZ", "side": "buy", "quantity": "2",
                              "price": "10"})]


def _sorted(views: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {name: sorted(json.dumps(row, sort_keys=True) for row in rows)
            for name, rows in views.items()}


def _unanswered(daemon: DaemonProcess, events: list[dict[str, Any]]) -> None:
    """Send one append and require that the daemon closes the connection unanswered."""
    with RawConnection(daemon.socket, timeout_s=30) as conn:
        conn.send_json(request("append", {"events": events}))
        assert conn.read_line() is None, "the group in doubt was answered"


def test_a_commit_in_doubt_is_settled_by_a_resend_without_a_restart(
        named_pg: NamedPgLog, tmp_path: Path) -> None:
    """COMMIT cut before and after the server committed: no answer, the connection
    closed, the daemon goes on in the same process; the re-sends are stored once
    (not committed) and answered duplicate (committed); seq gapless, verify clean,
    the views equal a rebuild and count every batch once."""
    server = urlsplit(named_pg.url)
    cutter = CommitCutter(server.hostname or "127.0.0.1", server.port or 5432)
    url = _through(named_pg.url, cutter.port)
    try:
        with DaemonProcess(tmp_path, extra_args=["--store", url]) as daemon:
            assert daemon.proc is not None
            pid = daemon.proc.pid
            with RawConnection(daemon.socket) as conn:
                conn.result("append", {"events": _batch(0)})

            # 1. Not committed: the session ended while COMMIT waits in a trigger.
            named_pg.intrude(SLEEP_AT_COMMIT)

            def end_the_commit() -> None:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not _terminate(named_pg.name, waiting=True):
                    time.sleep(0.02)

            ender = threading.Thread(target=end_the_commit)
            ender.start()
            _unanswered(daemon, _batch(1))
            ender.join()
            named_pg.intrude("DROP TRIGGER test_sleep_at_commit ON events")
            with RawConnection(daemon.socket) as conn:
                resent = conn.result("append", {"events": _batch(1)})["results"]
            assert [(3, False), (4, False)] == [(r["seq"], r["duplicate"]) for r in resent]

            # 2. Committed, the answer lost: the bundled client's append re-sends by
            # itself when the connection closes, and is answered duplicate.
            cutter.armed.set()
            with Client(daemon.socket, retry_for_s=20, timeout_s=20) as client:
                settled = client.append(_batch(2))["results"]
            assert cutter.cut.is_set()
            assert [(5, True), (6, True)] == [(r["seq"], r["duplicate"]) for r in settled]

            with RawConnection(daemon.socket) as conn:
                after = conn.result("append", {"events": _batch(3)})["results"]
            assert [(7, False), (8, False)] == [(r["seq"], r["duplicate"]) for r in after]

            assert daemon.alive()
            assert pid == daemon.proc.pid
            logged = [r.get("event") for r in log_records(daemon)]
            assert "daemon_exiting" not in logged
            assert "storage_in_doubt" not in logged
            assert 2 == logged.count("commit_in_doubt")

            stored = read_all(daemon.socket)
            assert list(range(1, 9)) == [e["seq"] for e in stored]
            assert [f"d-{n}-{i}" for n in range(4) for i in range(2)] == [
                e["id"] for e in stored]
            verified = tradelog("verify", "--store", named_pg.url)
            assert 0 == verified.returncode, verified.stderr

            views = _sorted(all_views(daemon.socket))
            balances = json.loads(views["balances"][0])
            assert "400" == balances["cash"], views["balances"]
            rebuilt = tradelog("rebuild", "--store", named_pg.url)
            assert 0 == rebuilt.returncode, rebuilt.stderr
            assert views == _sorted(all_views(daemon.socket))
            assert 0 == daemon.stop()
    finally:
        cutter.close()
