"""The HTTP API answers exactly what the socket answers for the same request.

One daemon serves both; the demo's SMA bot fills it through the socket. Each view
(with filters, paging and ``as_of``), ``metrics``, ``read`` and the errors are asked
both ways and compared as JSON.
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.client import Client, RemoteError
from tests.http_support import ACCOUNT, HttpDaemon, http_daemon, seed
from tests.support import wire_event

pytestmark = pytest.mark.both_stores

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[HttpDaemon]:
    """A daemon with HTTP on a free port, its log on ``store``, holding the demo bot's
    first 700 bars."""
    directory: Path = tmp_path_factory.mktemp("http-equal")
    with http_daemon(directory, store=store) as daemon:
        seed(daemon.proc.socket)
        yield daemon


REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("accounts", {}),
    ("instruments", {"account": ACCOUNT}),
    ("strategies", {"account": ACCOUNT}),
    ("balances", {}),
    ("positions", {"account": ACCOUNT}),
    ("trades", {"account": ACCOUNT}),
    ("trades", {"account": ACCOUNT, "order": "desc", "offset": 3, "limit": 5}),
    ("trades", {"account": ACCOUNT, "symbol": "EURUSD", "since": "2017-05-01",
                "until": "2017-05-20T00:00:00Z", "limit": 50}),
    ("trades", {"account": ACCOUNT, "as_of": 400}),
    ("trades", {"account": ACCOUNT, "attrs": {"risk_reward": "2"}, "limit": 3}),
    ("daily", {"account": ACCOUNT, "limit": 10}),
    ("daily", {"account": ACCOUNT, "as_of": 300}),
    ("signals", {"account": ACCOUNT, "status": "closed", "order": "asc", "limit": 7}),
    ("signals", {"account": ACCOUNT, "as_of_time": "2017-05-10T00:00:00Z"}),
    ("orders", {"account": ACCOUNT, "limit": 4}),
    ("journal", {"account": ACCOUNT, "symbol": "EURUSD", "limit": 6}),
    ("history", {"account": ACCOUNT, "entity": "signal", "limit": 9}),
    ("positions", {"account": ACCOUNT, "as_of": 250}),
]


def _http_params(params: dict[str, Any]) -> dict[str, Any]:
    import json

    return {k: json.dumps(v) if k == "attrs" else v for k, v in params.items()}


@pytest.mark.parametrize(("view", "params"), REQUESTS)
def test_view_equals_query(served: HttpDaemon, view: str, params: dict[str, Any]) -> None:
    """``GET /api/v1/views/<view>`` with the query's params is the socket's ``query``."""
    with Client(served.proc.socket) as client:
        expected = client.query(view, **params)
    actual = served.json(f"/api/v1/views/{view}", **_http_params(params))
    assert expected == actual
    assert expected["rows"] or view in ("positions",), "the request should find rows"


@pytest.mark.parametrize("params", [
    {"account": ACCOUNT, "now": "2017-06-02T12:00:00Z"},
    {"account": ACCOUNT, "since": "2017-05-01", "until": "2017-05-31",
     "now": "2017-05-31T20:00:00Z", "period": "week"},
    {"account": ACCOUNT, "symbol": "EURUSD", "strategy": "sma-10-30", "annualization": 252,
     "now": "2017-06-02T12:00:00Z", "period": "day"},
    {"account": ACCOUNT, "as_of": 500, "now": "2017-06-02T12:00:00Z"},
])
def test_metrics_equals_socket(served: HttpDaemon, params: dict[str, Any]) -> None:
    """``GET /api/v1/metrics`` is the socket's ``metrics`` for the same params (``now``
    given, since without it each answer reads the clock when it is computed)."""
    with Client(served.proc.socket) as client:
        expected = client.call("metrics", params)
    assert expected == served.json("/api/v1/metrics", **params)


def test_events_equal_read(served: HttpDaemon) -> None:
    """``GET /api/v1/events`` is the socket's ``read``: the same events, the same next seq."""
    with Client(served.proc.socket) as client:
        expected = client.read(from_seq=5, limit=40, account=ACCOUNT, types=["fill", "signal"])
    actual = served.json("/api/v1/events", from_seq=5, limit=40, account=ACCOUNT,
                         types="fill,signal")
    assert expected == actual
    assert 40 == len(actual["events"])


def test_errors_are_the_sockets(served: HttpDaemon) -> None:
    """A filter the view lacks is 400 with the socket's code and message; an account
    with no events is 400 for metrics, as -32602 on the socket."""
    with Client(served.proc.socket) as client:
        with pytest.raises(RemoteError) as view_error:
            client.query("accounts", since="2017-01-01")
        with pytest.raises(RemoteError) as metrics_error:
            client.call("metrics", {"account": "nobody"})
    bad_view = served.get("/api/v1/views/trades", account=ACCOUNT, until="not a time")
    no_account = served.get("/api/v1/metrics", account="nobody")
    assert 400 == bad_view.status_code
    assert -32602 == bad_view.json()["error"]["code"]
    assert 400 == no_account.status_code
    assert {"code": metrics_error.value.code, "message": metrics_error.value.message} == {
        k: no_account.json()["error"][k] for k in ("code", "message")}
    assert -32602 == view_error.value.code
    # The view without that filter does not take the parameter at all.
    paths = served.json("/api/v1/openapi.json")["paths"]

    def names(view: str) -> set[str]:
        return {p["name"] for p in paths[f"/api/v1/views/{view}"]["get"]["parameters"]}

    assert "since" not in names("accounts")
    assert {"since", "until", "symbol", "strategy", "as_of"} <= names("trades")


def test_health_and_verify(served: HttpDaemon) -> None:
    """``health`` is the socket's (but for uptime and connections); ``verify`` reports
    the chain intact once its background walk has run."""
    with Client(served.proc.socket) as client:
        expected = client.health()
    actual = served.json("/api/v1/health")
    drop = ("uptime_s", "connections")
    assert {k: v for k, v in expected.items() if k not in drop} == {
        k: v for k, v in actual.items() if k not in drop}
    status = served.json("/api/v1/verify")
    assert status["last_seq"] == expected["last_seq"]
    # Asking while the walk is behind wakes it: soon it has re-hashed every event.
    for _ in range(100):
        status = served.json("/api/v1/verify")
        if status["verified_seq"] == expected["last_seq"]:
            break
        time.sleep(0.05)
    assert ("intact", expected["last_seq"]) == (status["status"], status["verified_seq"])
    assert status["checked_at"] is not None


def test_answer_size_limit_is_the_sockets(tmp_path: Path, store: str) -> None:
    """An answer past ``limits.max_answer_bytes`` is refused over HTTP as on the socket:
    400 with the socket's -32602 and its advice (fewer rows)."""
    env = {"TRADELOG_LIMITS__MAX_ANSWER_BYTES": str(64 << 10),
           "TRADELOG_LIMITS__MAX_LINE_BYTES": str(32 << 10)}
    notes = [wire_event("journal", {"text": f"note {i}: " + "x" * 300}, account=ACCOUNT)
             for i in range(300)]
    with http_daemon(tmp_path, env=env, store=store) as daemon:
        with Client(daemon.proc.socket) as client:
            for start in range(0, len(notes), 50):
                client.append(notes[start:start + 50])
            with pytest.raises(RemoteError) as refused:
                client.query("journal", account=ACCOUNT)
            small = client.query("journal", account=ACCOUNT, limit=5)
        answer = daemon.get("/api/v1/views/journal", account=ACCOUNT)
        assert small == daemon.json("/api/v1/views/journal", account=ACCOUNT, limit=5)
    assert 400 == answer.status_code
    error = answer.json()["error"]
    assert refused.value.code == error["code"]
    assert "ask for fewer rows" in error["message"]
    assert refused.value.message.split(" bytes")[1] == error["message"].split(" bytes")[1]
