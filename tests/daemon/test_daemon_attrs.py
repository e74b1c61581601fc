"""``attrs`` through a real daemon: numbers come back as the exact JSON numbers sent (in
``read`` and in the views), and an ``attrs`` outside its rules is refused naming it."""

from __future__ import annotations

import pytest

from tests.daemon_support import RawConnection
from tests.support import DaemonProcess

pytestmark = pytest.mark.both_stores

FILL = (b'{"id":"f1","source":"b","type":"fill","time":"2024-03-01T12:00:00Z",'
        b'"account":"a","data":{"symbol":"X","side":"buy","quantity":"1","price":"2",'
        b'"attrs":ATTRS}}')


def _append(conn: RawConnection, attrs: bytes) -> bytes:
    conn.send(b'{"jsonrpc":"2.0","id":1,"method":"append","params":{"events":['
              + FILL.replace(b"ATTRS", attrs) + b']}}\n')
    answer = conn.read_line()
    assert answer is not None
    return answer


def test_attrs_numbers_come_back_exactly_as_sent(daemon: DaemonProcess) -> None:
    """A decimal, a large integer, a tiny number, a string, a boolean and a null in
    ``attrs`` read back from ``read`` and from the positions view with the same digits."""
    sent = b'{"big":0.1234567890123,"delta":0.45,"flag":true,"n":12345678901234,"none":null}'
    with RawConnection(daemon.socket) as conn:
        assert b'"duplicate":false' in _append(conn, sent)
        conn.send(b'{"jsonrpc":"2.0","id":2,"method":"query","params":{"view":"positions"}}\n')
        view = conn.read_line()
        conn.send(b'{"jsonrpc":"2.0","id":3,"method":"read","params":{}}\n')
        stored = conn.read_line()
    assert view is not None
    assert stored is not None
    assert b'"attrs":' + sent in view
    assert b'"attrs":' + sent in stored


def test_attrs_outside_the_rules_are_refused_naming_them(daemon: DaemonProcess) -> None:
    """A nested object, a 33rd member, a bad key and a number with more digits than JSON
    keeps are each -32602 at data.attrs, and nothing is stored."""
    with RawConnection(daemon.socket) as conn:
        cases = [b'{"greeks":{"delta":0.4}}', b'{"bad key":1}',
                 b'{"p":0.12345678901234567}',
                 b"{" + b",".join(b'"k%d":1' % n for n in range(33)) + b"}"]
        for attrs in cases:
            answer = _append(conn, attrs)
            assert b'"code":-32602' in answer, answer
            assert b'"path":"data.attrs"' in answer, answer
        conn.send(b'{"jsonrpc":"2.0","id":4,"method":"read","params":{}}\n')
        assert b'"events":[]' in (conn.read_line() or b"")
