"""Bad input over the socket: each gets its PROTOCOL.md error, the daemon stays up,
other clients are unaffected and nothing partial is stored."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_support import RawConnection, health, limits_env, line, read_all, running
from tests.support import DaemonProcess, fill

pytestmark = pytest.mark.both_stores

_APPEND = b'{"jsonrpc":"2.0","id":7,"method":"append","params":{"events":[%s]}}'
_FILL = (b'{"id":"nan","source":"t","type":"fill","time":"2024-03-01T12:00:00Z",'
         b'"account":"a","data":{"symbol":"X","side":"buy","quantity":"1","price":%s}}')


def _append_with_price(price: bytes) -> bytes:
    return _APPEND % (_FILL % price)


def _nested(depth: int) -> bytes:
    inner = b"[" * (depth - 2) + b"]" * (depth - 2)  # inside two objects
    return b'{"jsonrpc":"2.0","id":7,"method":"read","params":{"x":' + inner + b"}}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One daemon for the battery (each case checks it is unharmed afterwards)."""
    with running(tmp_path_factory.mktemp("badinput")) as proc:
        with RawConnection(proc.socket) as conn:
            conn.result("append", {"events": [fill("buy", "1", "1")]})
        yield proc


CASES: list[tuple[str, bytes, int, Any]] = [
    ("malformed JSON", b'{"jsonrpc": "2.0", "method": ', -32700, None),
    ("a number, not an object", b"42", -32600, None),
    ("a string, not an object", b'"health"', -32600, None),
    ("wrong jsonrpc", b'{"jsonrpc":"1.0","id":7,"method":"health"}', -32600, 7),
    ("missing jsonrpc", b'{"id":7,"method":"health"}', -32600, 7),
    ("method not a string", b'{"jsonrpc":"2.0","id":7,"method":5}', -32600, 7),
    ("id an object", b'{"jsonrpc":"2.0","id":{},"method":"health"}', -32600, None),
    ("unknown member", b'{"jsonrpc":"2.0","id":7,"method":"health","x":1}', -32600, 7),
    ("unknown method", b'{"jsonrpc":"2.0","id":7,"method":"drop_table"}', -32601, 7),
    ("params a list", b'{"jsonrpc":"2.0","id":7,"method":"read","params":[1]}', -32602, 7),
    ("from_seq a string", b'{"jsonrpc":"2.0","id":7,"method":"read","params":{"from_seq":"1"}}',
     -32602, 7),
    ("limit a float", b'{"jsonrpc":"2.0","id":7,"method":"read","params":{"limit":1.5}}',
     -32602, 7),
    ("unknown view", b'{"jsonrpc":"2.0","id":7,"method":"query","params":{"view":"x"}}',
     -32602, 7),
    ("unknown param", b'{"jsonrpc":"2.0","id":7,"method":"query","params":{"view":"trades",'
     b'"acount":"a"}}', -32602, 7),
    ("events not a list", b'{"jsonrpc":"2.0","id":7,"method":"append","params":{"events":{}}}',
     -32602, 7),
    ("empty events", b'{"jsonrpc":"2.0","id":7,"method":"append","params":{"events":[]}}',
     -32602, 7),
    ("unknown type filter", b'{"jsonrpc":"2.0","id":7,"method":"read","params":'
     b'{"types":["trade"]}}', -32602, 7),
    ("NaN", _append_with_price(b"NaN"), -32700, None),
    ("Infinity", _append_with_price(b"Infinity"), -32700, None),
    ("-Infinity", _append_with_price(b"-Infinity"), -32700, None),
    ("duplicate keys", b'{"jsonrpc":"2.0","id":7,"id":8,"method":"health"}', -32700, None),
    ("nesting over 64", _nested(65), -32700, None),
    ("invalid UTF-8", b'{"jsonrpc":"2.0","id":7,"method":"\xff\xfe"}', -32700, None),
    ("lone surrogate", b'{"jsonrpc":"2.0","id":"\\ud800","method":"health"}', -32700, None),
    ("binary garbage", bytes(range(256)).replace(b"\n", b""), -32700, None),
]


@pytest.mark.parametrize(("raw", "code", "request_id"),
                         [pytest.param(raw, code, rid, id=name) for name, raw, code, rid in CASES])
def test_bad_line_answered_and_harmless(shared: DaemonProcess, raw: bytes, code: int,
                                        request_id: Any) -> None:
    """A bad line gets its error code (with the request's id where it can be read); the
    same connection, another client and the log are unharmed."""
    before = health(shared.socket)["last_seq"]
    with RawConnection(shared.socket) as bystander, RawConnection(shared.socket) as conn:
        conn.send(raw + b"\n")
        answer = conn.read()
        assert (code, request_id) == (answer["error"]["code"], answer["id"])
        assert isinstance(answer["error"]["message"], str)
        assert "ok" == conn.result("health")["status"]
        assert "ok" == bystander.result("health")["status"]
    assert before == health(shared.socket)["last_seq"]


def test_nesting_of_64_is_allowed(shared: DaemonProcess) -> None:
    """Nesting of exactly 64 levels is read (the request then fails on its params)."""
    with RawConnection(shared.socket) as conn:
        conn.send(_nested(64) + b"\n")
        answer = conn.read()
    assert -32602 == answer["error"]["code"]


def test_invalid_events_list_every_problem(shared: DaemonProcess) -> None:
    """Invalid events are -32602 with error.data.errors [{index, path, message}] for each
    problem of each event, and nothing of the batch is stored."""
    good = fill("buy", "1", "1")
    bad_price = fill("buy", "1", "-3")
    no_symbol = fill("buy", "1", "1")
    del no_symbol["data"]["symbol"]
    typo = dict(fill("buy", "1", "1"), acount="x")
    before = health(shared.socket)["last_seq"]
    with RawConnection(shared.socket) as conn:
        answer = conn.call("append", {"events": [good, bad_price, no_symbol, typo]})
    error = answer["error"]
    assert -32602 == error["code"]
    problems = error["data"]["errors"]
    assert all(set(p) == {"index", "path", "message"} for p in problems)
    assert {(1, "data.price"), (2, "data.symbol")} <= {(p["index"], p["path"]) for p in problems}
    assert 3 in {p["index"] for p in problems}
    assert before == health(shared.socket)["last_seq"]


def test_notification_errors_are_not_answered(shared: DaemonProcess) -> None:
    """A notification (no id) is never answered, even when its params are wrong."""
    with RawConnection(shared.socket) as conn:
        conn.send(b'{"jsonrpc":"2.0","method":"read","params":[1]}\n'
                  b'{"jsonrpc":"2.0","method":"read","params":{"limit":"x"}}\n'
                  b'{"jsonrpc":"2.0","method":"nope"}\n')
        answer = conn.call("health")
    assert "ok" == answer["result"]["status"]


def test_last_line_without_newline_is_not_processed(shared: DaemonProcess) -> None:
    """A final line with no newline before the client stops sending is dropped; answers
    to complete lines still arrive, then the daemon closes the connection."""
    before = health(shared.socket)["last_seq"]
    with RawConnection(shared.socket) as conn:
        conn.send(b'{"jsonrpc":"2.0","id":1,"method":"health"}\n'
                  + line({"jsonrpc": "2.0", "id": 2, "method": "append",
                          "params": {"events": [fill("buy", "1", "1")]}}).rstrip(b"\n"))
        conn.sock.shutdown(socket.SHUT_WR)
        messages = conn.read_until_eof()
    assert [1] == [m["id"] for m in messages]
    assert before == health(shared.socket)["last_seq"]


def test_half_closed_client_gets_pending_answers(shared: DaemonProcess) -> None:
    """A client that shuts its sending half right after an append still gets the answer."""
    with RawConnection(shared.socket) as conn:
        conn.send(line({"jsonrpc": "2.0", "id": 1, "method": "append",
                        "params": {"events": [fill("buy", "1", "1")]}}))
        conn.sock.shutdown(socket.SHUT_WR)
        messages = conn.read_until_eof()
    assert [False] == [r["duplicate"] for r in messages[0]["result"]["results"]]


def test_closed_connections_are_released(shared: DaemonProcess) -> None:
    """Connections the clients closed no longer count (health.connections)."""
    for _ in range(20):
        with RawConnection(shared.socket) as conn:
            conn.result("health")
    deadline = time.monotonic() + 5
    while health(shared.socket)["connections"] != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 1 == health(shared.socket)["connections"]


def _send_ignoring_close(conn: RawConnection, data: bytes) -> None:
    # The daemon may close the connection part-way: expected for oversized lines.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        conn.send(data)


def test_oversized_line_closes_the_connection(tmp_path: Path) -> None:
    """A line over max_line_bytes gets -32600 and the connection is closed: the rest of
    it and the lines after it are never read; other clients are unaffected."""
    with running(tmp_path, env=limits_env(max_line_bytes=4096)) as proc, \
            RawConnection(proc.socket) as bystander:
        follow = line({"jsonrpc": "2.0", "id": 2, "method": "append",
                       "params": {"events": [fill("buy", "1", "1")]}})
        with RawConnection(proc.socket) as conn:
            _send_ignoring_close(conn, b'{"jsonrpc":"2.0","id":1,"x":"' + b"a" * 5000
                                 + b'"}\n' + follow)
            messages = conn.read_until_eof()
        assert [(None, -32600)] == [(m["id"], m["error"]["code"]) for m in messages]
        with RawConnection(proc.socket) as conn:
            _send_ignoring_close(conn, b"x" * 6000)
            assert [-32600] == [m["error"]["code"] for m in conn.read_until_eof()]
        assert 0 == bystander.result("health")["last_seq"]
        assert [] == read_all(proc.socket)


def test_default_line_limit_is_one_mebibyte(daemon: DaemonProcess) -> None:
    """With the default config a line just under 1 MiB is read, one over it is refused
    with -32600 and the connection closed."""

    def append_line(size: int) -> bytes:
        head = b'{"jsonrpc":"2.0","id":1,"method":"append","params":{"events":[' + json.dumps(
            fill("buy", "1", "1")).encode()[:-1] + b',"pad":"'
        tail = b'"}]}}'
        return head + b"p" * (size - len(head) - len(tail)) + tail + b"\n"

    with RawConnection(daemon.socket) as conn:
        conn.send(append_line((1 << 20) - 10))
        assert -32602 == conn.read()["error"]["code"]
        _send_ignoring_close(conn, append_line((1 << 20) + 10))
        assert [-32600] == [m["error"]["code"] for m in conn.read_until_eof()]
    assert 0 == health(daemon.socket)["last_seq"]


def test_half_line_then_silence_is_cut_off(tmp_path: Path) -> None:
    """A partial line left unfinished past partial_line_timeout_s gets -32600 and the
    connection is closed; trickling bytes of the same line does not extend the deadline."""
    with running(tmp_path, env=limits_env(partial_line_timeout_s=0.3)) as proc:
        with RawConnection(proc.socket) as conn:
            conn.send(b'{"jsonrpc":"2.0","id":1,')
            assert [-32600] == [m["error"]["code"] for m in conn.read_until_eof()]
        with RawConnection(proc.socket) as conn:
            closed = False
            for _ in range(40):
                try:
                    conn.send(b" ")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.05)
            assert closed
        assert "ok" == health(proc.socket)["status"]


def test_connection_flood_is_refused_clearly(tmp_path: Path) -> None:
    """Past max_connections a new client gets a clear -32600 and is closed, while the
    clients already connected keep working; a freed slot is usable again."""
    limit = 6
    with running(tmp_path, env=limits_env(max_connections=limit)) as proc:
        deadline = time.monotonic() + 5
        while health(proc.socket)["connections"] > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        conns = [RawConnection(proc.socket) for _ in range(limit)]
        try:
            for conn in conns:
                conn.result("health")
            extra = [RawConnection(proc.socket) for _ in range(5)]
            try:
                refusals = [c.read_until_eof() for c in extra]
            finally:
                for conn in extra:
                    conn.close()
            assert [[-32600]] * 5 == [[m["error"]["code"] for m in r] for r in refusals]
            assert "too many connections" in refusals[0][0]["error"]["message"]
            assert 1 == conns[0].result("append", {"events": [fill("buy", "1", "1")]})[
                "last_seq"]
            assert limit == conns[-1].result("health")["connections"]
        finally:
            conns.pop().close()
            time.sleep(0.1)
        try:
            assert 1 == health(proc.socket)["last_seq"]
        finally:
            for conn in conns:
                conn.close()


def test_number_with_too_many_digits_gets_a_plain_parse_error() -> None:
    """A JSON number over 40 characters is -32700 with our message, not Python's advice."""
    from daemon.jsonread import JSONReadError, loads

    line = b'{"jsonrpc":"2.0","id":9,"method":"read","params":{"limit":' + b"9" * 5000 + b"}}"
    with pytest.raises(JSONReadError) as refused:
        loads(line)
    assert "more than 40 characters" in str(refused.value)
    assert "sys.set_int_max_str_digits" not in str(refused.value)
