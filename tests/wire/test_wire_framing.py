"""NDJSON input framing (daemon/wire/framing.py): lines, turns, the line limit and the
deadline of an unfinished line, without a socket or an event loop."""

from __future__ import annotations

from daemon.wire.framing import TURN_BYTES, TURN_LINES, LineBuffer, Stop

LIMIT = 1024


def _lines(buffer: LineBuffer) -> list[bytes | Stop]:
    """Every line of one turn, then why it stopped."""
    out: list[bytes | Stop] = []
    while True:
        got = buffer.next_line(LIMIT)
        out.append(got)
        if isinstance(got, Stop):
            return out


def test_complete_lines_come_out_in_order_and_a_partial_one_waits() -> None:
    """Bytes split anywhere give the same lines, in order, without their line ends; the
    unfinished tail waits for more."""
    buffer = LineBuffer()
    buffer.feed(b'{"a":1}\n{"b"')
    assert [b'{"a":1}', Stop.PARTIAL] == _lines(buffer)
    assert buffer.end_turn(True, LIMIT, now=0.0, timeout_s=10.0)
    buffer.feed(b':2}\n')
    assert [b'{"b":2}', Stop.PARTIAL] == _lines(buffer)


def test_a_turn_hands_out_at_most_turn_lines() -> None:
    """After TURN_LINES lines the turn is over; the rest wait as a backlog (no deadline)
    and come out in the next turn."""
    buffer = LineBuffer()
    buffer.feed(b"x\n" * (TURN_LINES + 3))
    first = _lines(buffer)
    assert (TURN_LINES, Stop.TURN_OVER) == (len(first) - 1, first[-1])
    assert buffer.end_turn(False, LIMIT, now=0.0, timeout_s=10.0)
    assert (True, None) == (buffer.backlog, buffer.partial_deadline)
    assert [b"x", b"x", b"x", Stop.PARTIAL] == _lines(buffer)


def test_a_turn_hands_out_about_turn_bytes() -> None:
    """Once TURN_BYTES bytes of lines are handed out, the turn is over, before
    TURN_LINES lines when the lines are long."""
    buffer = LineBuffer()
    size = 20_000
    buffer.feed((b"y" * size + b"\n") * TURN_LINES)
    got = []
    while isinstance(item := buffer.next_line(1 << 20), bytes):
        got.append(item)
    assert (-(-TURN_BYTES // (size + 1)), Stop.TURN_OVER) == (len(got), item)


def test_a_line_over_the_limit_is_refused_complete_or_not() -> None:
    """A complete line longer than the limit is TOO_LONG; so are more bytes than the
    limit without a line end, at the turn's end; a line of exactly the limit passes."""
    exact = LineBuffer()
    exact.feed(b"z" * LIMIT + b"\n")
    assert [b"z" * LIMIT, Stop.PARTIAL] == _lines(exact)
    complete = LineBuffer()
    complete.feed(b"z" * (LIMIT + 1) + b"\n")
    assert Stop.TOO_LONG == complete.next_line(LIMIT)
    partial = LineBuffer()
    partial.feed(b"z" * (LIMIT + 1))
    assert Stop.PARTIAL == partial.next_line(LIMIT)
    assert not partial.end_turn(True, LIMIT, now=0.0, timeout_s=10.0)


def test_the_deadline_runs_from_when_the_unfinished_line_began() -> None:
    """More bytes of the same unfinished line do not move its deadline; taking a complete
    line restarts it; the line's end clears it."""
    buffer = LineBuffer()
    buffer.feed(b'{"slow"')
    _lines(buffer)
    buffer.end_turn(True, LIMIT, now=100.0, timeout_s=10.0)
    assert 110.0 == buffer.partial_deadline
    buffer.feed(b":")
    _lines(buffer)
    buffer.end_turn(True, LIMIT, now=105.0, timeout_s=10.0)
    assert 110.0 == buffer.partial_deadline
    buffer.feed(b'1}\n{"next"')
    _lines(buffer)
    buffer.end_turn(True, LIMIT, now=107.0, timeout_s=10.0)
    assert 117.0 == buffer.partial_deadline
    buffer.feed(b":2}\n")
    _lines(buffer)
    buffer.end_turn(True, LIMIT, now=108.0, timeout_s=10.0)
    assert None is buffer.partial_deadline


def test_end_of_input_drops_only_the_unfinished_line() -> None:
    """After the peer's EOF its complete lines are still handed out; the tail without a
    line end is dropped, has no deadline, and later bytes are ignored."""
    buffer = LineBuffer()
    buffer.feed(b"a\nb\nunfinished")
    buffer.end_input()
    buffer.feed(b"\n")
    assert (True, None, True) == (buffer.ended, buffer.partial_deadline, buffer.backlog)
    assert [b"a", b"b", Stop.PARTIAL] == _lines(buffer)
    assert buffer.end_turn(True, LIMIT, now=0.0, timeout_s=10.0)
    assert (0, None) == (len(buffer), buffer.partial_deadline)


def test_clear_drops_everything() -> None:
    """``clear`` leaves no bytes, no backlog and no deadline."""
    buffer = LineBuffer()
    buffer.feed(b"a\n" * 100 + b"tail")
    _lines(buffer)
    buffer.end_turn(False, LIMIT, now=0.0, timeout_s=1.0)
    buffer.clear()
    assert (0, False, None) == (len(buffer), buffer.backlog, buffer.partial_deadline)
    assert Stop.PARTIAL == buffer.next_line(LIMIT)
