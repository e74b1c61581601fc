"""The wire protocol state machine (daemon/wire/protocol.py): lines in, requests and
answers out, with its limits and budgets as counters; no daemon, no socket."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from daemon.wire.methods import METHODS
from daemon.wire.protocol import (
    LineTooLong,
    Refusal,
    Requests,
    ServerProtocol,
    Slot,
    Wait,
    unfinished_line_error,
)


@dataclass
class _Limits:
    max_line_bytes: int = 1024
    max_batch_requests: int = 4
    max_inflight_per_connection: int = 3
    max_answer_bytes: int = 1000
    partial_line_timeout_s: float = 10.0


def _protocol(**limits: Any) -> ServerProtocol:
    chosen = _Limits(**limits)
    return ServerProtocol(lambda: chosen)


def _line(message: Any) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _call(method: str, request_id: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, **extra}


def _requests(protocol: ServerProtocol, data: bytes) -> Requests:
    assert protocol.receive_data(data)
    event = protocol.next_event(0.0)
    assert isinstance(event, Requests)
    return event


def _answer_of(protocol: ServerProtocol, event: Requests) -> Any:
    """The decoded answer line of a group answered while dispatching (None: no line)."""
    line = protocol.dispatched(event.group)
    return None if line is None else json.loads(line)


def _ok(slot: Slot) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": slot.request.id, "result": slot.index}).encode()


def test_a_request_comes_out_as_one_call_with_its_method() -> None:
    """One request line gives one call carrying the method from the table, the params and
    the id as sent; nothing is refused."""
    protocol = _protocol()
    event = _requests(protocol, _line(_call("read", "r-1", params={"limit": 5})))
    [slot] = event.calls
    assert (METHODS["read"], {"limit": 5}, "r-1", []) == (
        slot.method, slot.request.params, slot.request.id, event.refusals)


@pytest.mark.parametrize(("data", "code", "answer_id"), [
    (b"{nope\n", -32700, None),
    (b'{"jsonrpc":"2.0","id":1,"id":2,"method":"health"}\n', -32700, None),
    (_line({"jsonrpc": "1.0", "id": 7, "method": "health"}), -32600, 7),
    (_line({"jsonrpc": "2.0", "id": True, "method": "health"}), -32600, None),
    (_line(_call("drop_table", 9)), -32601, 9),
    (_line(_call("read", 3, params=[1])), -32602, 3),
    (_line([]), -32600, None),
])
def test_bad_lines_are_answered_here_and_noted(data: bytes, code: int,
                                               answer_id: Any) -> None:
    """Parse errors, malformed requests, unknown methods and params that are not an
    object are answered by the protocol itself (with the id when it was valid) and
    listed as refusals for the log; no call is handed out."""
    protocol = _protocol()
    event = _requests(protocol, data)
    answer = _answer_of(protocol, event)
    assert ([], code, answer_id, [code]) == (
        event.calls, answer["error"]["code"], answer["id"],
        [r.code for r in event.refusals])


def test_unknown_method_message_lists_the_protocol_methods() -> None:
    """-32601 names the method (cut to 64 characters) and lists the methods PROTOCOL.md
    names, in the table's order."""
    protocol = _protocol()
    event = _requests(protocol, _line(_call("x" * 500)))
    message = _answer_of(protocol, event)["error"]["message"]
    assert (f"unknown method {'x' * 64!r}; methods are append, query, read, subscribe, "
            "unsubscribe, health, metrics") == message


def test_notifications_are_never_answered() -> None:
    """A request without an id gets no answer, in error or not, alone or in a batch."""
    protocol = _protocol()
    unknown = _requests(protocol, _line({"jsonrpc": "2.0", "method": "nope"}))
    assert None is _answer_of(protocol, unknown)
    bad_params = _requests(protocol, _line({"jsonrpc": "2.0", "method": "read",
                                            "params": 5}))
    assert (None, []) == (_answer_of(protocol, bad_params), bad_params.refusals)


def test_a_batch_is_answered_as_one_array_in_request_order() -> None:
    """Members are handed out in order; their answers, given in any order, go out as one
    array in request order once all are in, with errors found here in their place and
    notifications left out."""
    protocol = _protocol()
    event = _requests(protocol, _line([
        _call("read", "a"), {"jsonrpc": "2.0", "method": "health"}, _call("nope", "b"),
        _call("health", "c")]))
    first, notification, last = event.calls
    assert protocol.dispatched(event.group) is None
    assert (None, False) == protocol.answer(last, _ok(last))
    assert (None, False) == protocol.answer(notification, None)
    line, complete = protocol.answer(first, _ok(first))
    assert line is not None
    assert (True, ["a", "b", "c"]) == (complete, [m["id"] for m in json.loads(line)])


def test_a_batch_over_the_limit_is_one_error_naming_it() -> None:
    """More than ``max_batch_requests`` members: one -32600 naming the limit, no call."""
    protocol = _protocol(max_batch_requests=2)
    event = _requests(protocol, _line([_call("health", i) for i in range(3)]))
    answer = _answer_of(protocol, event)
    assert ([], -32600, True) == (event.calls, answer["error"]["code"],
                                  "limits.max_batch_requests" in answer["error"]["message"])


def test_requests_in_flight_pause_the_reading_until_answered() -> None:
    """Each request waiting for its answer counts one (batch members one each); at
    ``max_inflight_per_connection`` no line is taken and no data wanted until one is
    answered."""
    protocol = _protocol(max_inflight_per_connection=3)
    protocol.receive_data(_line([_call("read", 1), _call("read", 2)]) + _line(_call("read", 3))
                          + _line(_call("read", 4)))
    batch = protocol.next_event(0.0)
    assert isinstance(batch, Requests)
    protocol.dispatched(batch.group)
    single = protocol.next_event(0.0)
    assert isinstance(single, Requests)
    protocol.dispatched(single.group)
    assert (3, Wait.PAUSED, False) == (protocol.inflight, protocol.next_event(0.0),
                                       protocol.wants_data())
    [slot] = single.calls
    protocol.answer(slot, _ok(slot))
    assert (2, True) == (protocol.inflight, protocol.can_take())
    assert isinstance(protocol.next_event(0.0), Requests)


def test_answers_given_while_dispatching_go_out_at_once_uncounted() -> None:
    """A call answered before ``dispatched`` (a NOW method) is never counted in flight;
    ``dispatched`` gives its line."""
    protocol = _protocol()
    event = _requests(protocol, _line(_call("health", "h")))
    [slot] = event.calls
    assert (None, False) == protocol.answer(slot, _ok(slot))
    assert ("h", 0) == (_answer_of(protocol, event)["id"], protocol.inflight)


def test_a_cancelled_member_leaves_its_batch_unanswered() -> None:
    """Work cancelled (connection gone, daemon stopping) leaves its group without an
    answer; its requests no longer count in flight."""
    protocol = _protocol()
    event = _requests(protocol, _line([_call("read", 1), _call("append", 2)]))
    protocol.dispatched(event.group)
    read, append = event.calls
    protocol.answer(append, _ok(append))
    assert ((None, True), 0) == (protocol.cancel(read), protocol.inflight)


def test_answers_waiting_past_the_budget_pause_until_drained() -> None:
    """More than ``max_answer_bytes`` waiting after a write: no line is taken until the
    socket drains; the budget is passed once, not at every write."""
    protocol = _protocol(max_answer_bytes=1000)
    protocol.receive_data(_line(_call("health")))
    assert (False, True, False) == (protocol.note_waiting(1000), protocol.note_waiting(1001),
                                    protocol.note_waiting(5000))
    assert (Wait.PAUSED, False) == (protocol.next_event(0.0), protocol.wants_data())
    assert (True, False) == (protocol.drained(), protocol.drained())
    assert isinstance(protocol.next_event(0.0), Requests)


def test_the_bytes_taken_are_counted() -> None:
    """``taken`` is what was written less what still waits."""
    protocol = _protocol()
    protocol.sent(300)
    protocol.sent(200)
    assert 380 == protocol.taken(120)


def test_a_long_line_is_refused_with_the_limit() -> None:
    """A line over ``max_line_bytes`` (or that many bytes without a line end) gives
    ``LineTooLong`` with a -32600 answer naming the limit, and the buffer is dropped."""
    for data in (b"x" * 2000 + b"\n", b"x" * 2000):
        protocol = _protocol(max_line_bytes=1024)
        protocol.receive_data(data)
        event = protocol.next_event(0.0)
        assert isinstance(event, LineTooLong)
        answer = json.loads(event.data)
        assert (1024, -32600, True, 0) == (
            event.limit, answer["error"]["code"],
            "longer than 1024 bytes (limits.max_line_bytes)" in answer["error"]["message"],
            len(protocol.lines))


def test_blank_lines_are_skipped_and_partial_lines_get_a_deadline() -> None:
    """Empty lines are no requests; an unfinished line gets the deadline
    ``partial_line_timeout_s`` from now, and its error line names that limit."""
    protocol = _protocol(partial_line_timeout_s=7.5)
    protocol.receive_data(b"\n  \n{\"jsonrpc\"")
    assert (Wait.NEED_DATA, 107.5) == (protocol.next_event(100.0),
                                       protocol.lines.partial_deadline)
    assert b"limits.partial_line_timeout_s" in unfinished_line_error()


def test_after_stop_or_close_nothing_is_taken() -> None:
    """Draining (``stop``) drops what is buffered and takes no bytes; so does a closed
    protocol."""
    protocol = _protocol()
    protocol.receive_data(_line(_call("health")))
    protocol.stop()
    assert (False, Wait.STOPPED, False) == (
        protocol.receive_data(b"x\n"), protocol.next_event(0.0), protocol.wants_data())
    closed = _protocol()
    closed.close()
    assert (False, Wait.STOPPED) == (closed.receive_data(b"x\n"), closed.next_event(0.0))


def test_refusals_carry_the_method_of_an_unknown_one() -> None:
    """The refusal of an unknown method names it, for the log."""
    protocol = _protocol()
    event = _requests(protocol, _line(_call("frobnicate", 5)))
    assert [Refusal(5, -32601, event.refusals[0].message, "frobnicate")] == event.refusals
