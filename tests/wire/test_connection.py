"""The connection shell (daemon/connection.py) on a fake transport and a service on
fakes: bytes in, answer lines out, flow control, limits and closing, without a daemon
process or a socket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from daemon.connection import Connection
from daemon.service import Service
from daemon.wire.framing import TURN_MEMBERS
from tests.server_fakes import FakeRecorder, FakeTransport, make_service, stored_event
from tests.support import wire_event


async def _settle() -> None:
    """Let the loop run what is ready, and the worker threads that reads encode on."""
    for _ in range(20):
        await asyncio.sleep(0.002)


def _line(method: str, request_id: Any = 1, **params: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                       "params": params}).encode() + b"\n"


def _append(request_id: Any) -> bytes:
    return _line("append", request_id, events=[wire_event("journal", {"text": "t"})])


def _connect(service: Service) -> tuple[Connection, FakeTransport]:
    connection = Connection(service)
    transport = FakeTransport()
    connection.connection_made(transport)
    return connection, transport


async def test_requests_split_anywhere_are_answered_in_order(tmp_path: Path) -> None:
    """A request cut across reads is taken once its line ends; answers of methods
    answered at once go out in line order; health counts the connection."""
    service = make_service(tmp_path)
    connection, transport = _connect(service)
    data = _line("health", "a") + _line("subscribe", "b") + _line("nope", "c")
    connection.data_received(data[:10])
    assert b"" == bytes(transport.written)
    connection.data_received(data[10:])
    answers = transport.messages()
    assert (["a", "b", "c"], 1, -32601) == (
        [m["id"] for m in answers], answers[0]["result"]["connections"],
        answers[2]["error"]["code"])
    connection.connection_lost(None)


async def test_an_append_is_answered_after_its_commit(tmp_path: Path) -> None:
    """An append's answer comes when the group commit stored it, with its seq."""
    service = make_service(tmp_path)
    service.start()
    connection, transport = _connect(service)
    connection.data_received(_append("x"))
    await _settle()
    await service.stop_commits()
    [answer] = transport.messages()
    assert ("x", 1) == (answer["id"], answer["result"]["last_seq"])
    connection.connection_lost(None)


async def test_in_flight_requests_pause_reading(tmp_path: Path) -> None:
    """At ``max_inflight_per_connection`` requests waiting for answers the socket is not
    read and later lines wait; once answers go out they are taken."""
    service = make_service(tmp_path, max_inflight_per_connection=2)
    connection, transport = _connect(service)
    connection.data_received(_append(1) + _append(2) + _append(3))
    assert (False, 2, b"") == (transport.reading, connection.wire.inflight,
                               bytes(transport.written))
    service.start()
    await _settle()
    await _settle()
    await service.stop_commits()
    assert ([1, 2, 3], True) == ([m["id"] for m in transport.messages()], transport.reading)
    connection.connection_lost(None)


async def test_answers_past_the_budget_pause_until_taken(tmp_path: Path) -> None:
    """With more than ``max_answer_bytes`` waiting after a write no line is taken; once
    the transport drains (``resume_writing``), the lines that waited are answered."""
    service = make_service(tmp_path, max_answer_bytes=64 << 10, max_line_bytes=1024)
    connection, transport = _connect(service)
    transport.buffered = (64 << 10) + 1
    connection.data_received(_line("health", 1) + _line("health", 2))
    assert ([1], False) == ([m["id"] for m in transport.messages()], transport.reading)
    transport.buffered = 0
    connection.pause_writing()
    connection.resume_writing()
    await _settle()
    assert ([1, 2], True) == ([m["id"] for m in transport.messages()], transport.reading)
    connection.connection_lost(None)


async def test_a_long_line_is_answered_and_closes(tmp_path: Path) -> None:
    """A line over ``max_line_bytes``: -32600 naming the limit, then the connection
    closes."""
    service = make_service(tmp_path, max_line_bytes=1024)
    connection, transport = _connect(service)
    connection.data_received(b"x" * 2000)
    [answer] = transport.messages()
    assert (-32600, True, True) == (answer["error"]["code"],
                                    "limits.max_line_bytes" in answer["error"]["message"],
                                    transport.closing)
    connection.connection_lost(None)


async def test_an_unfinished_line_runs_out_of_time(tmp_path: Path) -> None:
    """A line left unfinished past ``partial_line_timeout_s`` is answered with -32600
    naming the limit and the connection closes."""
    service = make_service(tmp_path, partial_line_timeout_s=0.01)
    connection, transport = _connect(service)
    connection.data_received(b'{"jsonrpc":')
    await asyncio.sleep(0.05)
    [answer] = transport.messages()
    assert (-32600, True, True) == (
        answer["error"]["code"], "limits.partial_line_timeout_s" in answer["error"]["message"],
        transport.closing)
    connection.connection_lost(None)


async def test_connections_past_the_per_uid_limit_are_refused(tmp_path: Path) -> None:
    """Past ``max_connections_per_uid`` a new connection gets -32600 naming the limit and
    is closed, uncounted; once one closes, a new one is taken."""
    service = make_service(tmp_path, max_connections_per_uid=1)
    first, _ = _connect(service)
    second, refused = _connect(service)
    [answer] = refused.messages()
    assert ("limits.max_connections_per_uid" in answer["error"]["message"], True, 1) == (
        True, refused.closing, len(service.connections))
    second.connection_lost(None)
    first.connection_lost(None)
    third, taken = _connect(service)
    assert (b"", 1) == (bytes(taken.written), len(service.connections))
    third.connection_lost(None)


async def test_a_lost_connection_leaves_nothing_behind(tmp_path: Path) -> None:
    """When the connection goes, it is uncounted and its subscriptions are dropped."""
    service = make_service(tmp_path)
    connection, _ = _connect(service)
    connection.data_received(_line("subscribe", 1))
    await _settle()
    assert (1, 1) == (len(service.connections), len(service.subscriptions))
    connection.connection_lost(None)
    await _settle()
    assert (0, 0) == (len(service.connections), len(service.subscriptions))


async def test_after_eof_the_answers_still_go_out_then_it_closes(tmp_path: Path) -> None:
    """A client that shut its sending half gets the answers of its complete lines (its
    unfinished one is dropped); then the connection closes."""
    service = make_service(tmp_path)
    connection, transport = _connect(service)
    connection.data_received(_append(1) + b'{"unfinished"')
    connection.eof_received()
    assert (False, []) == (transport.closing, transport.messages())
    service.start()
    await _settle()
    await service.stop_commits()
    assert ([1], True) == ([m["id"] for m in transport.messages()], transport.closing)
    connection.connection_lost(None)


async def test_a_batch_of_reads_shares_one_answer_budget(tmp_path: Path) -> None:
    """A batch's read answers together take at most ``max_answer_bytes``: members past
    it get -32600 naming the limit, in their place in the one array answered."""
    recorder = FakeRecorder([stored_event(seq, text="t" * 20_000) for seq in range(1, 6)])
    service = make_service(tmp_path, recorder, max_answer_bytes=64 << 10,
                           max_line_bytes=1024)
    connection, transport = _connect(service)
    batch = [{"jsonrpc": "2.0", "id": seq, "method": "read",
              "params": {"from_seq": seq, "limit": 1}} for seq in range(1, 6)]
    connection.data_received(json.dumps(batch).encode() + b"\n")
    await _settle()
    [answers] = transport.messages()
    refused = [a["id"] for a in answers
               if "limits.max_answer_bytes" in a.get("error", {}).get("message", "")]
    assert ([1, 2, 3, 4, 5], [4, 5], [1, 2, 3]) == (
        [a["id"] for a in answers], refused,
        [a["result"]["events"][0]["seq"] for a in answers if "result" in a])
    connection.connection_lost(None)


async def test_a_big_batch_is_started_over_several_turns_in_order(tmp_path: Path) -> None:
    """A batch of 200 appends is started ``TURN_MEMBERS`` at a time, one turn each (the
    loop serves others between), and before any later line of the connection: its
    members are stored in batch order and the next line's append after them."""
    service = make_service(tmp_path)
    service.start()
    connection, transport = _connect(service)
    batch = [{"jsonrpc": "2.0", "id": i, "method": "append",
              "params": {"events": [wire_event("journal", {"text": "t"})]}}
             for i in range(200)]
    connection.data_received(json.dumps(batch).encode() + b"\n" + _append("after"))
    assert TURN_MEMBERS == len(connection.calls.pending)
    for _ in range(10):
        await _settle()
    await service.stop_commits()
    [answers, after] = transport.messages()
    assert list(range(1, 201)) == [a["result"]["results"][0]["seq"] for a in answers]
    assert ("after", 201) == (after["id"], after["result"]["last_seq"])
    connection.connection_lost(None)
