"""Helpers for the daemon's integration tests: raw socket clients, log reading, views.

Everything here talks to a real ``tradelog serve`` (``tests.support.DaemonProcess``)
over its Unix socket; nothing imports the daemon's internals.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.support import DaemonProcess, daemon_on

VIEWS = ["positions", "trades", "balances", "daily", "signals", "orders", "journal"]
_ids = itertools.count(1)


def limits_env(**limits: Any) -> dict[str, str]:
    """``TRADELOG_LIMITS__<NAME>`` environment variables for the given limits."""
    return {f"TRADELOG_LIMITS__{name.upper()}": str(value) for name, value in limits.items()}


@contextlib.contextmanager
def running(directory: Path, env: dict[str, str] | None = None,
            extra_args: list[str] | None = None,
            store: str = "sqlite") -> Iterator[DaemonProcess]:
    """A started daemon in ``directory`` on ``store`` (``tests.support.daemon_on``);
    killed on the way out if still running."""
    with daemon_on(store, directory, env=env, extra_args=extra_args) as proc:
        yield proc


def request(method: str, params: Any = None, request_id: Any = None) -> dict[str, Any]:
    """A JSON-RPC request object (a fresh integer id unless one is given)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method,
                               "id": next(_ids) if request_id is None else request_id}
    if params is not None:
        message["params"] = params
    return message


def line(value: Any) -> bytes:
    """One NDJSON line."""
    return json.dumps(value).encode() + b"\n"


class RawConnection:
    """A blocking client on the daemon's socket that sends exactly the bytes it is given."""

    def __init__(self, path: Path, timeout_s: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        self.timeout_s = timeout_s
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise
        self.buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_json(self, value: Any) -> None:
        self.send(line(value))

    def read_line(self, timeout_s: float | None = None) -> bytes | None:
        """The next line (without ``\\n``); None at end of stream. Raises TimeoutError."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete line from the daemon in time")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        found, _, self.buffer = self.buffer.partition(b"\n")
        return found

    def read(self, timeout_s: float | None = None) -> Any:
        """The next message, decoded; raises EOFError at end of stream."""
        found = self.read_line(timeout_s)
        if found is None:
            raise EOFError("the daemon closed the connection")
        return json.loads(found)

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
        """Send one request and return its whole answer (skipping notifications)."""
        message = request(method, params)
        self.send_json(message)
        while True:
            answer = self.read()
            if isinstance(answer, dict) and "method" not in answer:
                assert message["id"] == answer["id"]
                return answer

    def result(self, method: str, params: Any = None) -> Any:
        """The ``result`` of one request; fails the test on an error answer."""
        answer = self.call(method, params)
        assert "error" not in answer, answer
        return answer["result"]

    def read_until_eof(self, timeout_s: float = 10.0) -> list[Any]:
        """Every message until the daemon closes the connection."""
        messages: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.read_line(max(deadline - time.monotonic(), 0.001))
            if found is None:
                return messages
            messages.append(json.loads(found))

    def nothing_more(self, wait_s: float = 0.2) -> bool:
        """True when no message arrives within ``wait_s`` (and the stream is still open)."""
        try:
            self.read_line(wait_s)
        except TimeoutError:
            return True
        return False


def call_as(path: Path, calls: list[tuple[str, dict[str, Any]]], uid: int,
            gid: int | None = None, groups: Sequence[int] = ()
            ) -> tuple[int, list[dict[str, Any]]]:
    """Run ``calls`` over one connection from a forked child that has ``uid``, primary
    ``gid`` (default: ``uid``) and supplementary ``groups``; returns the child's pid and
    its answers. Fails the test if the child could not connect or call."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(reader)
            os.setgroups(list(groups))
            os.setgid(uid if gid is None else gid)
            os.setuid(uid)
            with RawConnection(path) as conn:
                answers = [conn.call(method, params) for method, params in calls]
            payload: dict[str, Any] = {"answers": answers}
        except BaseException as exc:
            payload = {"error": repr(exc)}
        os.write(writer, json.dumps(payload).encode())
        os._exit(0)
    os.close(writer)
    chunks = []
    while chunk := os.read(reader, 1 << 16):
        chunks.append(chunk)
    os.close(reader)
    os.waitpid(pid, 0)
    result = json.loads(b"".join(chunks))
    assert "error" not in result, result
    return pid, result["answers"]


def refused(path: Path, count: int, timeout_s: float = 5.0) -> list[list[Any]]:
    """Open ``count`` connections at once and read each until the daemon closes it: the
    messages each got (a refused connection gets one error line, then EOF)."""
    conns = [RawConnection(path, timeout_s=timeout_s) for _ in range(count)]
    try:
        return [conn.read_until_eof(timeout_s=timeout_s) for conn in conns]
    finally:
        for conn in conns:
            conn.close()


def health(path: Path) -> dict[str, Any]:
    """``health`` over a fresh connection."""
    with RawConnection(path) as conn:
        result: dict[str, Any] = conn.result("health")
        return result


def read_all(path: Path, **filters: Any) -> list[dict[str, Any]]:
    """Every stored event (``read`` paged through ``next_seq``)."""
    events: list[dict[str, Any]] = []
    next_seq = 1
    with RawConnection(path) as conn:
        while True:
            page = conn.result("read", {"from_seq": next_seq, "limit": 1000, **filters})
            events.extend(page["events"])
            if not page["events"]:
                return events
            next_seq = page["next_seq"]


def all_views(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of every view, from the daemon's ``query``."""
    with RawConnection(path) as conn:
        return {view: conn.result("query", {"view": view, "limit": 100_000})["rows"]
                for view in VIEWS}


def log_records(proc: DaemonProcess) -> list[dict[str, Any]]:
    """The daemon's JSON log lines so far (other lines, e.g. tracebacks, skipped)."""
    records = []
    for text in proc.log.read_text().splitlines():
        if text.startswith("{"):
            with contextlib.suppress(ValueError):
                records.append(json.loads(text))
    return records


def wait_for_log(proc: DaemonProcess, event: str, timeout_s: float = 10.0,
                 **match: Any) -> dict[str, Any]:
    """Wait until the daemon logs ``event`` (with the ``match`` keys); return the record."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for record in log_records(proc):
            if record.get("event") == event and all(
                    record.get(k) == v for k, v in match.items()):
                return record
        time.sleep(0.02)
    raise TimeoutError(f"the daemon did not log {event!r}: {proc.log.read_text()[-2000:]}")


def sqlite_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on the database file, read-only."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def log_rows(proc: DaemonProcess, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the daemon's log, read directly (the daemon may be stopped):
    its SQLite file, or its PostgreSQL schema when it was given ``--store``."""
    flag, where = proc.log_args()
    if flag == "--db":
        return sqlite_rows(Path(where), sql)
    import psycopg

    with psycopg.connect(where) as conn:
        return [tuple(row) for row in conn.execute(sql)]


def tradelog(*args: str, stdin: bytes | None = None,
             timeout_s: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """Run the ``tradelog`` command line; returns the completed process (not checked)."""
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], input=stdin,
                          capture_output=True, timeout=timeout_s, check=False)
