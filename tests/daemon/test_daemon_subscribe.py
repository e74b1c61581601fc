"""Clients that do not keep up: a subscriber falling too far behind is told why and
disconnected, a client never reading its answers is cut off after the write timeout,
and nobody else notices."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.daemon_support import (
    RawConnection,
    health,
    limits_env,
    log_records,
    read_all,
    running,
    wait_for_log,
)
from tests.support import DaemonProcess, wire_event

pytestmark = pytest.mark.both_stores


def _logged(proc: DaemonProcess, event: str) -> bool:
    return any(r.get("event") == event for r in log_records(proc))


def test_too_slow_subscriber_gets_subscription_closed(tmp_path: Path, store: str) -> None:
    """A subscriber that stops reading and falls more than subscriber_max_lag events
    behind gets every event it was sent in order, then `subscription_closed` with the
    reason and where to resume, then the connection closes; writers are unaffected."""
    env = limits_env(subscriber_max_lag=50, write_timeout_s=30)
    with running(tmp_path, env=env, store=store) as proc, RawConnection(proc.socket) as writer:
        slow = RawConnection(proc.socket)
        try:
            sid = slow.result("subscribe", {"from_seq": 1})["subscription"]
            batches = 0
            while not _logged(proc, "subscriber_disconnected") and batches < 60:
                answer = writer.call("append", {"events": [
                    wire_event("journal", {"text": "n" * 400}) for _ in range(100)]})
                assert "error" not in answer
                batches += 1
            wait_for_log(proc, "subscriber_disconnected")
            messages = slow.read_until_eof(timeout_s=20)
        finally:
            slow.close()
        closed = messages[-1]
        assert "subscription_closed" == closed["method"]
        assert sid == closed["params"]["subscription"]
        assert "too slow" in closed["params"]["reason"]
        events = [m["params"]["event"]["seq"] for m in messages[:-1]]
        assert list(range(1, closed["params"]["next_seq"])) == events
        assert batches * 100 == writer.result("health")["last_seq"]


def _drain_raw(sock: socket.socket, timeout_s: float) -> bool:
    """Read and discard until the daemon closes; True if it did within the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            if not sock.recv(1 << 16):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def test_client_never_reading_is_disconnected(tmp_path: Path, store: str) -> None:
    """A client that sends requests but never reads the answers is disconnected once its
    answers have waited write_timeout_s; other clients keep being served."""
    with running(tmp_path, env=limits_env(write_timeout_s=0.5), store=store) as proc, \
            RawConnection(proc.socket) as bystander:
        deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            deaf.connect(str(proc.socket))
            deaf.setblocking(False)
            request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "read",
                                  "params": {"limit": 50}}).encode() + b"\n"
            bystander.result("append", {"events": [
                wire_event("journal", {"text": "t" * 200}) for _ in range(50)]})
            blocked_since = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _logged(proc, "client_not_reading"):
                try:
                    deaf.send(request * 20)
                    blocked_since = None
                except BlockingIOError:
                    blocked_since = blocked_since or time.monotonic()
                    time.sleep(0.02)
                except (BrokenPipeError, ConnectionResetError):
                    break
                assert "ok" == bystander.result("health")["status"]
            wait_for_log(proc, "client_not_reading")
            assert _drain_raw(deaf, timeout_s=10)
        finally:
            deaf.close()
        assert 50 == len(read_all(proc.socket))
        assert "ok" == bystander.result("health")["status"]
        deadline = time.monotonic() + 5
        while health(proc.socket)["connections"] > 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert 2 == health(proc.socket)["connections"]


def test_subscriber_reading_late_is_told_where_to_resume(tmp_path: Path, store: str) -> None:
    """A subscriber that stops reading for longer than write_timeout_s finds, when it
    reads again, the events in seq order up to a ``subscription_closed`` whose
    ``next_seq`` follows the last event it got, then the end of the stream."""
    with running(tmp_path, env=limits_env(write_timeout_s=0.5), store=store) as proc, \
            RawConnection(proc.socket) as writer:
        for _ in range(8):
            writer.result("append", {"events": [
                wire_event("journal", {"text": "t" * 5000}) for _ in range(100)]})
        slow = RawConnection(proc.socket, timeout_s=30)
        try:
            slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                            "params": {"from_seq": 1}})
            wait_for_log(proc, "client_not_reading")
            time.sleep(1.5)  # three write timeouts more: a late reader, not a slow one
            messages = slow.read_until_eof(timeout_s=30)
        finally:
            slow.close()
    seqs = [m["params"]["event"]["seq"] for m in messages if m.get("method") == "event"]
    closed = [m["params"] for m in messages if m.get("method") == "subscription_closed"]
    assert seqs == list(range(1, len(seqs) + 1))
    assert 0 < len(seqs) < 800
    assert [seqs[-1] + 1] == [c["next_seq"] for c in closed]
    assert "subscription_closed" == messages[-1]["method"]


def test_unsubscribed_connection_keeps_working(tmp_path: Path, store: str) -> None:
    """Unsubscribing stops notifications but the connection serves requests as before."""
    with running(tmp_path, store=store) as proc, RawConnection(proc.socket) as conn:
        sid = conn.result("subscribe", {"types": ["journal"]})["subscription"]
        conn.send_json({"jsonrpc": "2.0", "id": "a", "method": "append",
                        "params": {"events": [wire_event("journal", {"text": "x"})]}})
        first, second = conn.read(), conn.read()
        kinds = sorted([first.get("method", "answer"), second.get("method", "answer")])
        assert ["answer", "event"] == kinds
        assert {"unsubscribed": True} == conn.result("unsubscribe", {"subscription": sid})
        conn.result("append", {"events": [wire_event("journal", {"text": "y"})]})
        assert conn.nothing_more()
        assert 2 == conn.result("health")["last_seq"]
