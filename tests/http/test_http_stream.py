"""``GET /api/v1/stream``: committed events as Server-Sent Events, resumable by
``Last-Event-ID``, with a ``views`` event after each burst, bounded per client."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.client import Client
from tests.http_support import ACCOUNT, HttpDaemon, http_daemon, seed, sse_blocks
from tests.support import fill

pytestmark = pytest.mark.both_stores

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[HttpDaemon]:
    """A daemon with HTTP, its log on ``store``, holding the demo bot's first 300 bars."""
    with http_daemon(tmp_path_factory.mktemp("http-stream"), store=store) as daemon:
        seed(daemon.proc.socket, bars=300)
        yield daemon


def _events(daemon: HttpDaemon, count: int, headers: dict[str, str] | None = None,
            **params: Any) -> list[dict[str, str]]:
    """The first ``count`` ``event`` blocks of a stream (other kinds kept in order too)."""
    got: list[dict[str, str]] = []
    with httpx.stream("GET", daemon.base + "/api/v1/stream", params=params,
                      headers=headers or {}, timeout=20.0) as answer:
        assert 200 == answer.status_code
        assert answer.headers["content-type"].startswith("text/event-stream")
        for block in sse_blocks(answer.iter_lines()):
            got.append(block)
            if sum(1 for b in got if b.get("event") == "event") >= count:
                break
    return got


def test_catch_up_in_seq_order_with_ids(served: HttpDaemon) -> None:
    """From ``from_seq`` 1, events come in seq order, each with ``id`` = its seq and its
    stored form as data."""
    blocks = [b for b in _events(served, 60, from_seq=1, account=ACCOUNT)
              if b.get("event") == "event"]
    ids = [int(b["id"]) for b in blocks]
    assert list(range(1, 61)) == ids
    first = json.loads(blocks[0]["data"])
    assert (1, ACCOUNT) == (first["seq"], first["account"])
    assert "hash" in first


def test_last_event_id_resumes_without_a_gap(served: HttpDaemon) -> None:
    """A reconnect with ``Last-Event-ID: N`` starts at N + 1, whatever ``from_seq`` says."""
    blocks = [b for b in _events(served, 5, headers={"Last-Event-ID": "41"}, from_seq=1)
              if b.get("event") == "event"]
    assert [42, 43, 44, 45, 46] == [int(b["id"]) for b in blocks]


def test_a_new_event_arrives_live_then_views(served: HttpDaemon) -> None:
    """Without ``from_seq`` the stream starts at the next commit: a fill appended over
    the socket arrives, followed by ``views`` naming its seq and account."""
    got: list[dict[str, str]] = []
    opened = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", served.base + "/api/v1/stream",
                          params={"account": ACCOUNT}, timeout=20.0) as answer:
            lines = answer.iter_lines()
            opened.set()
            for block in sse_blocks(lines):
                got.append(block)
                if block.get("event") == "views":
                    return

    reader = threading.Thread(target=listen)
    reader.start()
    assert opened.wait(10)
    with Client(served.proc.socket) as client:
        # The stream starts at the commit after the subscription: send until it is seen.
        seq = client.append([fill("buy", "1000", "1.1", symbol="GBPUSD", account=ACCOUNT,
                                  time_="2017-06-01T00:00:00Z")])["last_seq"]
    reader.join(20)
    assert not reader.is_alive()
    events = [b for b in got if b.get("event") == "event"]
    assert [seq] == [int(b["id"]) for b in events]
    assert {"seq": seq, "accounts": [ACCOUNT]} == json.loads(got[-1]["data"])


def test_unknown_type_is_refused_before_streaming(served: HttpDaemon) -> None:
    """A bad ``types`` is a 400 answer, not a stream."""
    answer = served.get("/api/v1/stream", types="fill,nonsense")
    assert 400 == answer.status_code
    assert "nonsense" in answer.json()["error"]["message"]


def test_sigterm_with_a_stream_open_exits_cleanly(tmp_path: Path, store: str) -> None:
    """The daemon owns SIGTERM: with a client streaming, it still drains and exits 0
    within its shutdown budget, and the stream ends."""
    with http_daemon(tmp_path, store=store) as daemon:
        ended = threading.Event()
        opened = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", daemon.base + "/api/v1/stream",
                              timeout=30.0) as answer:
                opened.set()
                for _ in answer.iter_lines():
                    pass
            ended.set()

        reader = threading.Thread(target=listen, daemon=True)
        reader.start()
        assert opened.wait(10)
        code = daemon.proc.stop(signal.SIGTERM, timeout_s=10.0)
        assert 0 == code
        assert ended.wait(5)


def _connections_become(daemon: HttpDaemon, count: int) -> int:
    """The daemon's connection count, once it is ``count`` (or after 5 s)."""
    import time

    for _ in range(100):
        found: int = daemon.json("/api/v1/health")["connections"]
        if found == count:
            return found
        time.sleep(0.05)
    return found


def test_a_closed_stream_is_forgotten(served: HttpDaemon) -> None:
    """A stream counts as a connection while open; once its client goes, its
    subscription and its count are dropped (the earlier tests' streams included)."""
    assert 0 == _connections_become(served, 0)
    with httpx.stream("GET", served.base + "/api/v1/stream", timeout=20.0) as answer:
        lines = answer.iter_lines()  # kept: a dropped iterator closes the response
        assert "retry: 2000" == next(lines)
        assert 1 == served.json("/api/v1/health")["connections"]
    assert 0 == _connections_become(served, 0)
