"""Hostile and careless clients on the wire (PROTOCOL.md 1.1, "Transport" and "Limits").

Each case drives the real daemon over its socket with one class of abuse and checks
that the abuser gets the error naming the limit (or back-pressure), that the daemon
stays alive, that another client is still served, and that the daemon's memory
(VmRSS) stays within a generous bound. Limits are set small through the config where a
case would otherwise need huge inputs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_support import (
    RawConnection,
    health,
    limits_env,
    line,
    log_records,
    log_rows,
    read_all,
    refused,
    running,
    wait_for_log,
)
from tests.support import DaemonProcess, fill, wire_event

pytestmark = pytest.mark.both_stores

MiB = 1 << 20


def _rss(proc: DaemonProcess) -> int:
    """The daemon's resident memory in bytes (/proc/<pid>/status VmRSS)."""
    assert proc.proc is not None
    for text in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        if text.startswith("VmRSS:"):
            return int(text.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _raw(method: str, request_id: bytes = b"1", params: bytes | None = None) -> bytes:
    body = b'{"jsonrpc":"2.0","id":' + request_id + b',"method":"' + method.encode() + b'"'
    if params is not None:
        body += b',"params":' + params
    return body + b"}\n"


def _alive_and_serving(proc: DaemonProcess) -> None:
    assert proc.alive()
    assert "ok" == health(proc.socket)["status"]


def _journal(count: int, size: int) -> list[dict[str, Any]]:
    return [wire_event("journal", {"text": "j" * size}) for _ in range(count)]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[DaemonProcess]:
    """One daemon at the default limits (per store), with a few events stored."""
    with running(tmp_path_factory.mktemp("hostile"), store=store) as proc:
        with RawConnection(proc.socket) as conn:
            conn.result("append", {"events": _journal(20, 100)})
        yield proc


# ---------------------------------------------------------------- numbers and ids

NUMBER_CASES = [
    ("id 1e1000000", _raw("health", b"1e1000000"), "exponent beyond +-40"),
    ("id 1e5000", _raw("health", b"1e5000"), "exponent beyond +-40"),
    ("id of 41 digits", _raw("health", b"9" * 41), "more than 40 characters"),
    ("id of 5000 digits", _raw("health", b"9" * 5000), "more than 40 characters"),
    ("limit of 100000 digits", _raw("read", params=b'{"limit":' + b"7" * 100_000 + b"}"),
     "more than 40 characters"),
    ("from_seq 1e-999999999", _raw("read", params=b'{"from_seq":1e-999999999}'),
     "exponent beyond +-40"),
    ("price 1e999999 deep in an append", _raw("append", params=json.dumps(
        {"events": [fill("buy", "1", "1")]}).replace('"price": "1"', '"price": 1e999999')
        .encode()), "exponent beyond +-40"),
    ("a long fraction", _raw("read", params=b'{"x":0.' + b"1" * 60 + b"}"),
     "more than 40 characters"),
]


@pytest.mark.parametrize(("raw", "names"), [pytest.param(r, n, id=i) for i, r, n in
                                             NUMBER_CASES])
def test_costly_numbers_are_refused_before_conversion(shared: DaemonProcess, raw: bytes,
                                                      names: str) -> None:
    """A number of more than 40 characters or with an exponent beyond +-40, wherever it
    stands, is -32700 naming the bound; nothing is stored and others are served."""
    before = health(shared.socket)["last_seq"]
    with RawConnection(shared.socket) as conn:
        conn.send(raw)
        answer = conn.read()
        assert (None, -32700) == (answer["id"], answer["error"]["code"])
        assert names in answer["error"]["message"]
        assert "ok" == conn.result("health")["status"]
    assert before == health(shared.socket)["last_seq"]
    _alive_and_serving(shared)


@pytest.mark.parametrize(("request_id", "why"), [
    (b"1.5", "fraction or an exponent"),
    (b"7.0", "fraction or an exponent"),
    (b"1e3", "fraction or an exponent"),
    (b"12345678901234567890", "this one has 20"),
    (b'"' + b"i" * 129 + b'"', "this one has 129"),
    (b"true", "not a boolean"),
])
def test_invalid_ids_are_refused_with_id_null(shared: DaemonProcess, request_id: bytes,
                                              why: str) -> None:
    """An id that is not a string <= 128 characters, an integer <= 19 digits or null is
    -32600, answered with id null, naming the rule."""
    with RawConnection(shared.socket) as conn:
        conn.send(_raw("health", request_id))
        answer = conn.read()
    assert (None, -32600) == (answer["id"], answer["error"]["code"])
    assert "at most 128 characters" in answer["error"]["message"]
    assert why in answer["error"]["message"]


@pytest.mark.parametrize("request_id", [b"1234567890123456789", b"-1234567890123456789",
                                        b'"' + "é".encode() * 128 + b'"', b"null", b"0"])
def test_valid_ids_are_echoed_byte_for_byte(shared: DaemonProcess, request_id: bytes) -> None:
    """Ids at the bounds come back exactly as sent, in results and in errors."""
    with RawConnection(shared.socket) as conn:
        conn.send(_raw("health", request_id) + _raw("no_such_method", request_id))
        answered = conn.read_line()
        refused = conn.read_line()
    assert answered is not None
    assert refused is not None
    assert b'"id":' + request_id + b',"result"' in answered
    assert b'"id":' + request_id + b',"error"' in refused


def test_long_method_name_is_not_echoed(shared: DaemonProcess) -> None:
    """An unknown method of 500 KB is -32601 with a short message; the log stays short."""
    with RawConnection(shared.socket) as conn:
        conn.send(_raw("m" * 500_000))
        answer = conn.read()
    assert -32601 == answer["error"]["code"]
    assert len(answer["error"]["message"]) < 300
    assert all(len(json.dumps(r)) < 2000 for r in log_records(shared))


# ---------------------------------------------------------------- batches

def test_batch_over_the_limit_is_refused_whole(shared: DaemonProcess) -> None:
    """A batch of 1,001 requests is one -32600 naming the limit; one of 1,000 is served."""
    with RawConnection(shared.socket) as conn:
        conn.send_json([{"jsonrpc": "2.0", "id": i, "method": "health"} for i in range(1001)])
        refused = conn.read()
        conn.send_json([{"jsonrpc": "2.0", "id": i, "method": "health"} for i in range(1000)])
        served = conn.read()
    assert (None, -32600) == (refused["id"], refused["error"]["code"])
    assert "at most 1000" in refused["error"]["message"]
    assert "max_batch_requests" in refused["error"]["message"]
    assert list(range(1000)) == [a["id"] for a in served]


@pytest.mark.parametrize("members", [
    pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"read","params":{"limit":10000}}',
                 id="15,886 reads in 1 MiB"),
    pytest.param(b"1", id="524,286 numbers"),
    pytest.param(b'{"jsonrpc":"2.0","id":1,"method":"subscribe"}', id="subscriptions"),
])
def test_megabyte_batches_are_refused_cheaply(shared: DaemonProcess, members: bytes) -> None:
    """A line just under 1 MiB holding as many batch members as fit is refused whole
    (-32600); the daemon's memory does not grow with it and others are served."""
    count = ((MiB - 3) // (len(members) + 1))
    batch = b"[" + b",".join([members] * count) + b"]\n"
    assert len(batch) < MiB
    rss = _rss(shared)
    with RawConnection(shared.socket) as conn, RawConnection(shared.socket) as other:
        for _ in range(3):
            conn.send(batch)
            answer = conn.read()
            assert (None, -32600) == (answer["id"], answer["error"]["code"])
            assert f"a batch of {count} requests" in answer["error"]["message"]
        assert "ok" == other.result("health")["status"]
    assert _rss(shared) - rss < 100 * MiB


def test_thousand_reads_of_ten_thousand_at_default_limits(shared: DaemonProcess) -> None:
    """A batch of 1,000 reads each asking for 10,000 events is answered, in order, while
    another connection is served meanwhile."""
    batch = [{"jsonrpc": "2.0", "id": i, "method": "read", "params": {"limit": 10_000}}
             for i in range(1000)]
    with RawConnection(shared.socket) as conn, RawConnection(shared.socket) as other:
        conn.send_json(batch)
        assert "ok" == other.result("health")["status"]
        answers = conn.read(timeout_s=60)
    assert list(range(1000)) == [a["id"] for a in answers]
    assert {20} == {len(a["result"]["events"]) for a in answers}


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[DaemonProcess]:
    """A daemon with small budgets: 16 KiB lines, 128 KiB of answers per connection,
    8 requests in flight, 4 subscriptions; and 400 events of about 1 KB stored."""
    env = limits_env(max_line_bytes=16 << 10, max_answer_bytes=128 << 10,
                     max_inflight_per_connection=8, max_subscriptions_per_connection=4,
                     write_timeout_s=30)
    with running(tmp_path_factory.mktemp("budgeted"), env=env, store=store) as proc:
        with RawConnection(proc.socket) as conn:
            for _ in range(40):
                conn.result("append", {"events": _journal(10, 1000)})
        yield proc


def test_batch_answers_are_bounded_by_the_answer_budget(budgeted: DaemonProcess) -> None:
    """A batch of reads whose answers would pass max_answer_bytes gets its first reads
    cut short (next_seq after the last event given) and the members past the budget
    -32600 naming the limit; the whole answer stays within the budget."""
    batch = [{"jsonrpc": "2.0", "id": i, "method": "read", "params": {"limit": 10_000}}
             for i in range(30)]
    with RawConnection(budgeted.socket) as conn:
        conn.send_json(batch)
        raw = conn.read_line()
    assert raw is not None
    answers = json.loads(raw)
    assert len(raw) < (128 << 10) + 30 * 300
    assert list(range(30)) == [a["id"] for a in answers]
    served = [a for a in answers if "result" in a]
    refused = [a for a in answers if "error" in a]
    assert served
    assert refused
    first = served[0]["result"]
    assert 0 < len(first["events"]) < 400
    assert first["events"][-1]["seq"] + 1 == first["next_seq"]
    assert {-32600} == {a["error"]["code"] for a in refused}
    assert "max_answer_bytes" in refused[-1]["error"]["message"]
    _alive_and_serving(budgeted)


def test_single_read_is_cut_to_the_answer_budget(budgeted: DaemonProcess) -> None:
    """A read of 10,000 events larger than max_answer_bytes returns the events that fit,
    and paging by next_seq reads every event exactly once."""
    with RawConnection(budgeted.socket) as conn:
        page = conn.result("read", {"limit": 10_000})
    assert 0 < len(page["events"]) < 400
    assert [e["seq"] for e in read_all(budgeted.socket)] == list(range(1, 401))


def test_pipelined_reads_never_read_are_bounded(budgeted: DaemonProcess) -> None:
    """1,100 pipelined reads whose answers are never read: the daemon stops reading the
    connection (the client's sends block), its memory stays bounded and others are
    served (SIGTERM with such a client: see the shutdown test)."""
    rss = _rss(budgeted)
    request = line({"jsonrpc": "2.0", "id": 1, "method": "read", "params": {"limit": 10_000}})
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        deaf.connect(str(budgeted.socket))
        deaf.setblocking(False)
        sent = blocked = 0
        while sent < 1100 and blocked < 25:
            try:
                deaf.send(request)
                sent += 1
            except BlockingIOError:
                blocked += 1
                time.sleep(0.02)
        assert blocked == 25  # the daemon stopped reading: back-pressure, not buffering
        assert sent < 1100
        for _ in range(5):
            _alive_and_serving(budgeted)
        assert _rss(budgeted) - rss < 64 * MiB
    finally:
        deaf.close()


def test_inflight_limit_holds_lines_in_the_buffer(budgeted: DaemonProcess) -> None:
    """Many pipelined lines in one write, past max_inflight_per_connection, are all
    answered in order once answers drain: none is lost or refused."""
    with RawConnection(budgeted.socket) as conn:
        conn.send(b"".join(line({"jsonrpc": "2.0", "id": i, "method": "read",
                                 "params": {"limit": 1, "from_seq": 1 + i % 400}})
                           for i in range(300)))
        answers = [conn.read() for _ in range(300)]
    assert list(range(300)) == [a["id"] for a in answers]
    assert [1 + i % 400 for i in range(300)] == [
        a["result"]["events"][0]["seq"] for a in answers]


# ---------------------------------------------------------------- subscriptions

def test_subscriptions_per_connection_are_capped(budgeted: DaemonProcess) -> None:
    """Past max_subscriptions_per_connection a subscribe is -32602 naming the limit; a
    new connection may subscribe again, and memory does not grow with the attempts."""
    rss = _rss(budgeted)
    with RawConnection(budgeted.socket) as conn:
        conn.send_json([{"jsonrpc": "2.0", "id": i, "method": "subscribe",
                         "params": {"from_seq": 401}} for i in range(100)])
        answers = conn.read()
        assert 4 == sum("result" in a for a in answers)
        refused = [a["error"] for a in answers if "error" in a]
        assert 96 == len(refused)
        assert {-32602} == {e["code"] for e in refused}
        assert "max_subscriptions_per_connection" in refused[0]["message"]
    with RawConnection(budgeted.socket) as conn:
        assert "subscription" in conn.result("subscribe", {"from_seq": 401})
    assert _rss(budgeted) - rss < 64 * MiB


def test_subscriber_past_the_answer_budget_is_told_where_to_resume(
        budgeted: DaemonProcess) -> None:
    """When answers waiting for a subscriber's connection pass max_answer_bytes, its
    subscription ends with `subscription_closed` carrying next_seq; the events before it
    are exactly seq 1 .. next_seq - 1, and the connection still answers afterwards."""
    with RawConnection(budgeted.socket) as conn:
        sid = conn.result("subscribe", {"from_seq": 1, "types": ["journal"]})["subscription"]
        conn.send(b"".join(line({"jsonrpc": "2.0", "id": f"r{i}", "method": "read",
                                 "params": {"limit": 10_000}}) for i in range(8)))
        wait_for_log(budgeted, "subscriber_disconnected")
        messages: list[Any] = []
        while not any(m.get("method") == "subscription_closed" for m in messages):
            messages.append(conn.read())
        events = [m["params"]["event"]["seq"] for m in messages if m.get("method") == "event"]
        closed = messages[-1]["params"]
        assert sid == closed["subscription"]
        assert "max_answer_bytes" in closed["reason"]
        assert list(range(1, closed["next_seq"])) == events
        conn.send_json({"jsonrpc": "2.0", "id": "h", "method": "health"})
        expected = {f"r{i}" for i in range(8)} | {"h"}
        answered = {m["id"] for m in messages if "result" in m}
        while answered != expected:
            message = conn.read()
            assert "result" in message
            assert "method" not in message
            answered.add(message["id"])


# ---------------------------------------------------------------- connections

def test_connections_stay_below_the_open_file_limit(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With an open-file limit of 160 (soft and hard) and reserved_fds 64, connections are
    capped at 96: those past it get -32600 and are closed (never left hanging), the
    accepted ones are served, and the log takes no flood of errors."""
    wrapper = tmp_path / "python-160"
    wrapper.write_text(f"#!{sys.executable}\nimport os, resource, sys\n"
                       "resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))\n"
                       f"os.execv({sys.executable!r}, [{sys.executable!r}, *sys.argv[1:]])\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(wrapper))
    with running(tmp_path, env=limits_env(reserved_fds=64)) as proc:
        monkeypatch.undo()
        conns: list[RawConnection] = []
        try:
            for _ in range(96):
                conns.append(RawConnection(proc.socket, timeout_s=5))
            # The server accepts in connect order: once the last one is served, all are in.
            assert 96 == conns[-1].result("health")["connections"]
            refusals = refused(proc.socket, 40)
            assert [[-32600]] * 40 == [[m["error"]["code"] for m in r] for r in refusals]
            assert "max_connections" in refusals[0][0]["error"]["message"]
            assert "ok" == conns[0].result("health")["status"]
        finally:
            for conn in conns:
                conn.close()
        _alive_and_serving(proc)
        records = log_records(proc)
    assert 5 > sum(r.get("event") == "connection_refused" for r in records)
    assert not [r for r in records if r.get("event") == "event_loop_error"]
    assert "Traceback" not in proc.log.read_text()


def test_soft_open_file_limit_is_raised_to_the_hard_one(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """A daemon started with a soft open-file limit below the hard one runs with the
    hard one."""
    wrapper = tmp_path / "python-soft"
    wrapper.write_text(f"#!{sys.executable}\nimport os, resource, sys\n"
                       "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
                       "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
                       f"os.execv({sys.executable!r}, [{sys.executable!r}, *sys.argv[1:]])\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(wrapper))
    with running(tmp_path) as proc:
        monkeypatch.undo()
        assert proc.proc is not None
        limits = Path(f"/proc/{proc.proc.pid}/limits").read_text()
    row = next(r for r in limits.splitlines() if r.startswith("Max open files")).split()
    assert row[3] == row[4]


# ---------------------------------------------------------------- logs and shutdown

def test_refused_requests_do_not_flood_the_log(tmp_path: Path, store: str) -> None:
    """5,000 refused requests on one connection log a handful of records; when the
    connection ends, `requests_refused` counts the ones held back."""
    with running(tmp_path, store=store) as proc:
        with RawConnection(proc.socket) as conn:
            conn.send(b"".join(_raw("no_such_method", str(i).encode()) for i in range(2500))
                      + b"{oops\n" * 2500)
            for _ in range(5000):
                assert "error" in conn.read()
        flushed = wait_for_log(proc, "requests_refused")
        records = [r for r in log_records(proc)
                   if r.get("event") in {"request_refused", "requests_refused"}]
    assert len(records) < 5
    logged = [r for r in records if r["event"] == "request_refused"]
    assert 5000 == len(logged) + sum(r["held_back"] for r in logged) + flushed["refused"]
    assert flushed["refused"] > 4000


def test_sigterm_stops_within_the_timeout_with_stuck_clients(tmp_path: Path,
                                                             store: str) -> None:
    """SIGTERM with a subscriber, a client never reading big answers and a half-sent
    line: the daemon exits 0 within shutdown_timeout_s (and a margin for process exit),
    and every acknowledged append is stored."""
    env = limits_env(max_line_bytes=16 << 10, max_answer_bytes=128 << 10)
    env["TRADELOG_SHUTDOWN_TIMEOUT_S"] = "2"
    with running(tmp_path, env=env, store=store) as proc:
        with RawConnection(proc.socket) as writer:
            for _ in range(20):
                writer.result("append", {"events": _journal(10, 1000)})
        sub = RawConnection(proc.socket)
        sub.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe"})
        deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deaf.connect(str(proc.socket))
        deaf.setblocking(False)
        try:
            for _ in range(200):
                try:
                    deaf.send(line({"jsonrpc": "2.0", "id": 1, "method": "read",
                                    "params": {"limit": 10_000}}))
                except BlockingIOError:
                    break
            half = RawConnection(proc.socket)
            half.send(b'{"jsonrpc":"2.0",')
            acked = RawConnection(proc.socket)
            acked.result("append", {"events": _journal(1, 10)})
            assert proc.proc is not None
            os.kill(proc.proc.pid, signal.SIGTERM)
            assert 0 == proc.proc.wait(timeout=2 + 5)
        finally:
            for closing in (sub, deaf, half, acked):
                closing.close()
        assert [(201,)] == log_rows(proc, "SELECT count(*) FROM events")


def test_every_limit_is_documented_with_its_default() -> None:
    """docs/CONFIG.md lists every `[limits]` key, and shutdown_timeout_s, with the default
    the code has."""
    from daemon.config import Config, Limits

    text = (Path(__file__).parents[2] / "docs" / "CONFIG.md").read_text()
    rows = {cells[1].strip("` "): [c.strip() for c in cells[2:]] for cells in
            (row.split("|") for row in text.splitlines() if row.startswith("| `"))}
    for name, field in Limits.model_fields.items():
        default = float(field.default)
        shown = str(int(default)) if default == int(default) else str(default)
        assert shown == rows[name][0], name
    assert 10 == Config.model_fields["shutdown_timeout_s"].default
    assert "10" == rows["shutdown_timeout_s"][1]
