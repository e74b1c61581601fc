"""``query`` through the real daemon: filters, paging, ``total``, ``as_of_time``, refusals
and the bound on every param; and ``tradelog show`` with the filter flags."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_support import RawConnection, health, tradelog
from tests.query_support import history, matches
from tests.support import DaemonProcess, daemon_on

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[DaemonProcess]:
    """One daemon for the module (per store), holding ``history()``."""
    with daemon_on(store, tmp_path_factory.mktemp("qd")) as proc:
        wires = history()
        with RawConnection(proc.socket) as conn:
            for start in range(0, len(wires), 40):
                conn.result("append", {"events": wires[start:start + 40]})
        yield proc


def query(daemon: DaemonProcess, **params: Any) -> dict[str, Any]:
    with RawConnection(daemon.socket) as conn:
        result: dict[str, Any] = conn.result("query", params)
        return result


def refused(daemon: DaemonProcess, params: dict[str, Any]) -> dict[str, Any]:
    """The error of a refused ``query``."""
    with RawConnection(daemon.socket) as conn:
        answer = conn.call("query", params)
    assert "error" in answer, answer
    error: dict[str, Any] = answer["error"]
    return error


@pytest.mark.parametrize(("view", "params"), [
    ("signals", {"account": "a1", "status": "active"}),
    ("signals", {"strategy": "rsi", "since": "2024-03-02T09:00:00+01:00"}),
    ("trades", {"symbol_prefix": "NIFTY2"}),
    ("orders", {"status": "rejected", "updated_since": "2024-03-03"}),
    ("journal", {"account": "a2", "symbol": "N%X"}),
    ("positions", {"symbol": "ÉTé"}),
    ("daily", {"account": "a1", "until": "2024-03-03"}),
])
def test_filters_keep_exactly_their_rows(daemon: DaemonProcess, view: str,
                                         params: dict[str, Any]) -> None:
    """Over the socket, filters keep exactly the rows they name (worked out in Python
    from the whole view), and ``total`` counts them."""
    whole = query(daemon, view=view, order="asc", limit=100_000)
    expected = [r for r in whole["rows"]
                if all(matches(view, r, k, v) for k, v in params.items())]
    assert expected
    answer = query(daemon, view=view, order="asc", **params)
    assert (expected, len(expected)) == (answer["rows"], answer["total"])


def test_paging_over_the_socket_gives_every_row_once(daemon: DaemonProcess) -> None:
    """Pages of 7 trades newest first, by ``offset``, give every trade once."""
    whole = query(daemon, view="trades", order="asc", limit=100_000)["rows"]
    pages: list[dict[str, Any]] = []
    while len(pages) < len(whole):
        page = query(daemon, view="trades", order="desc", offset=len(pages), limit=7)
        assert len(whole) == page["total"]
        assert page["rows"]
        pages += page["rows"]
    assert list(reversed(whole)) == pages


def test_limit_alone_keeps_the_most_recent_oldest_first(daemon: DaemonProcess) -> None:
    """As in version 1: ``limit`` without ``order``/``offset`` gives the last N rows,
    oldest first."""
    whole = query(daemon, view="signals", order="asc", limit=100_000)["rows"]
    answer = query(daemon, view="signals", limit=4)
    assert (whole[-4:], len(whole)) == (answer["rows"], answer["total"])


def test_as_of_time_over_the_socket(daemon: DaemonProcess) -> None:
    """``as_of_time`` after every event's time gives today's rows; before them all, none."""
    now = query(daemon, view="positions", limit=100_000)
    later = query(daemon, view="positions", limit=100_000, as_of_time="2100-01-01T00:00:00Z")
    before = query(daemon, view="positions", as_of_time="2000-01-01T00:00:00Z")
    assert now["rows"] == later["rows"]
    assert ([], 0, now["as_of_seq"]) == (before["rows"], before["total"], before["as_of_seq"])


@pytest.mark.parametrize(("view", "name", "value"), [
    ("balances", "symbol", "NIFTY"), ("positions", "status", "active"),
    ("daily", "symbol_prefix", "N"), ("trades", "updated_since", "2024-03-01"),
    ("signals", "entity", "signal"), ("orders", "strategy", "sma"),
    ("journal", "status", "x"), ("balances", "since", "2024-03-01"),
])
def test_a_filter_the_view_lacks_is_refused(daemon: DaemonProcess, view: str, name: str,
                                            value: Any) -> None:
    """-32602 naming the filter and the view; never an answer that ignored it."""
    error = refused(daemon, {"view": view, name: value})
    assert (-32602, True, True) == (error["code"], f"'{name}'" in error["message"],
                                    f"'{view}'" in error["message"])


BAD = [
    ({"limit": 0}, "limit"), ({"limit": 100_001}, "limit"), ({"limit": "10"}, "limit"),
    ({"offset": -1}, "offset"), ({"offset": 10_000_001}, "offset"),
    ({"offset": True}, "offset"), ({"order": "up"}, "order"),
    ({"symbol": "x" * 257}, "symbol"), ({"symbol": ""}, "symbol"), ({"symbol": 5}, "symbol"),
    ({"symbol_prefix": "N" * 257}, "symbol_prefix"), ({"symbol_prefix": ""}, "symbol_prefix"),
    ({"symbol": "A\u0000B"}, "symbol"), ({"status": "s" * 300}, "status"),
    ({"entity": "fill"}, "entity"), ({"entity_id": "e" * 257}, "entity_id"),
    ({"attrs": {}}, "attrs"), ({"attrs": {f"k{i}": 1 for i in range(33)}}, "attrs"),
    ({"attrs": {"bad key": 1}}, "attrs"), ({"attrs": {"k": {"nested": 1}}}, "attrs.k"),
    ({"attrs": {"k": [1]}}, "attrs.k"), ({"attrs": {"k": "v" * 257}}, "attrs.k"),
    ({"attrs": "segment=NSE"}, "attrs"), ({"since": "yesterday"}, "since"),
    ({"until": "2024-13-01"}, "until"), ({"updated_since": "x" * 100}, "updated_since"),
    ({"as_of_time": "2024-03-01"}, "as_of_time"), ({"as_of_time": 5}, "as_of_time"),
    ({"as_of": -1}, "as_of"), ({"as_of": 2, "as_of_time": "2024-03-01T00:00:00Z"}, "as_of"),
    ({"symbols": "NIFTY"}, "symbols"), ({"account": "a b"}, "account"),
]


@pytest.mark.parametrize(("params", "name"), BAD)
def test_every_param_is_bounded(daemon: DaemonProcess, params: dict[str, Any],
                                name: str) -> None:
    """A param past its bound or of the wrong type is refused with -32602 naming it, on
    a view that has the filter, and the daemon goes on serving."""
    error = refused(daemon, {"view": "signals", **params})
    assert (-32602, True) == (error["code"], name in error["message"]), error
    assert "ok" == health(daemon.socket)["status"]


def test_a_huge_view_name_is_refused_short(daemon: DaemonProcess) -> None:
    """An unknown view of 100 KB is refused (-32602) without echoing it back whole."""
    error = refused(daemon, {"view": "v" * 100_000})
    assert (-32602, True) == (error["code"], len(error["message"]) < 1000)


def show(*args: str) -> Any:
    done = tradelog("show", *args, "--json")
    assert 0 == done.returncode, done.stderr
    return json.loads(done.stdout)


def test_show_flags_ask_the_daemon_and_the_file_alike(daemon: DaemonProcess) -> None:
    """``tradelog show`` passes every filter flag: through the socket and read-only from
    the file it prints what ``query`` answers."""
    flags = ["--account", "a1", "--status", "active", "--symbol-prefix", "NIFTY",
             "--since", "2024-03-01", "--order", "desc", "--offset", "1", "--limit", "3"]
    expected = query(daemon, view="signals", account="a1", status="active",
                     symbol_prefix="NIFTY", since="2024-03-01", order="desc", offset=1,
                     limit=3)
    assert expected["rows"]
    assert expected == show("signals", "--socket", str(daemon.socket), *flags)
    assert expected == show("signals", *daemon.log_args(), *flags)


def test_show_as_of_time_and_updated_since(daemon: DaemonProcess) -> None:
    """``--as-of-time`` and ``--updated-since`` reach ``query`` as ``as_of_time`` and
    ``updated_since``."""
    expected = query(daemon, view="orders", as_of_time="2024-03-02T12:00:00Z",
                     updated_since="2024-03-01T09:30:00Z")
    assert expected["rows"]
    got = show("orders", "--socket", str(daemon.socket), "--as-of-time",
               "2024-03-02T12:00:00Z", "--updated-since", "2024-03-01T09:30:00Z")
    assert expected == got


def test_show_refuses_a_filter_the_view_lacks(daemon: DaemonProcess, tmp_path: Path) -> None:
    """``show balances --symbol X`` exits 1 with the reason, from the daemon or the file."""
    for where in (["--socket", str(daemon.socket)],
                  daemon.log_args()):
        done = tradelog("show", "balances", *where, "--symbol", "NIFTY")
        assert (1, True) == (done.returncode, b"'symbol'" in done.stderr), done.stderr
