"""JSON-RPC framing helpers (daemon/rpc.py)."""

from __future__ import annotations

from daemon.jsonread import dumps, loads
from daemon.rpc import error_answer, result_answer


def test_ids_are_echoed_as_sent() -> None:
    """A string, an integer and a fractional id come back as the same JSON value."""
    for raw in (b'"abc"', b"7", b"1.5"):
        request_id = loads(raw)
        answered = loads(dumps(result_answer(request_id, True)))
        refused = loads(dumps(error_answer(request_id, -32601, "no")))
        assert request_id == answered["id"]
        assert request_id == refused["id"]
        assert raw.decode() in dumps(result_answer(request_id, True)).decode()
