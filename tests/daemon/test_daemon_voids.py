"""``void`` through a real daemon: a voided event leaves every view as if it had never
been sent (EVENTS.md invariant 5), ``as_of`` before the void still shows it, and a
void that names no event of its account, a void, or an event already voided is refused
(-32602 at ``data.target_id``) with nothing stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.daemon_support import RawConnection, read_all
from tests.support import DaemonProcess, fill, wire_event

pytestmark = pytest.mark.both_stores

VIEWS = ["positions", "trades", "balances", "daily", "signals", "orders", "journal",
         "history", "instruments", "accounts", "strategies"]


def _history() -> list[dict[str, Any]]:
    """A history with a wrong fill in the middle of a round trip, and later events."""
    return [
        wire_event("account", {"name": "paper", "kind": "paper"}),
        wire_event("instrument", {"symbol": "NIFTY24JUN22500CE", "multiplier": "50",
                                  "asset_class": "option", "venue": "NSE"}),
        wire_event("cash", {"amount": "100000", "kind": "deposit"}),
        wire_event("signal", {"signal_id": "s1", "strategy": "strangle",
                              "symbol": "NIFTY24JUN22500CE", "side": "short"}),
        fill("sell", "2", "100", symbol="NIFTY24JUN22500CE", signal_id="s1",
             attrs={"segment": "NFO-OPT"}),
        fill("sell", "1", "130", symbol="NIFTY24JUN22500CE", event_id="wrong-fill",
             attrs={"segment": "NFO-OPT", "bad": True}),
        fill("buy", "1", "90", symbol="NIFTY24JUN22500CE", exit_detail="auto_trailing_sl",
             time_="2024-03-02T10:00:00Z"),
        wire_event("mark", {"prices": {"NIFTY24JUN22500CE": "95"}},
                   time_="2024-03-02T11:00:00Z"),
        wire_event("status", {"entity": "signal", "entity_id": "s1", "status": "triggered"},
                   time_="2024-03-02T11:00:00Z"),
    ]


def _views(conn: RawConnection, **params: Any) -> dict[str, list[dict[str, Any]]]:
    return {view: conn.result("query", {"view": view, **params})["rows"] for view in VIEWS}


def _error(conn: RawConnection, events: list[dict[str, Any]]) -> dict[str, Any]:
    answer = conn.call("append", {"events": events})
    assert "error" in answer, answer
    error: dict[str, Any] = answer["error"]
    return error


def test_a_voided_fill_leaves_every_view_as_if_never_sent(tmp_path: Path) -> None:
    """After a void of a fill in the middle of a round trip, every view equals that of
    a store fed the same events without the fill and the void; ``as_of`` the seq before
    the void still shows the fill."""
    events = _history()
    void = wire_event("void", {"target_source": "test/bot", "target_id": "wrong-fill",
                               "reason": "the venue busted this fill"})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with DaemonProcess(tmp_path / "a") as voided, DaemonProcess(tmp_path / "b") as clean:
        with RawConnection(voided.socket) as conn:
            conn.result("append", {"events": events})
            before = _views(conn)
            conn.result("append", {"events": [void]})
            after = _views(conn)
            as_of_before = _views(conn, as_of=len(events))
        kept = [e for e in events if e["id"] != "wrong-fill"]
        with RawConnection(clean.socket) as conn:
            conn.result("append", {"events": kept})
            expected = _views(conn)
    seq_of = {e["id"]: n for n, e in enumerate(events, 1)}
    renumber = {n: seq_of[e["id"]] for n, e in enumerate(kept, 1)}
    for row in expected["history"]:
        row["seq"] = renumber[row["seq"]]
    accounts = expected["accounts"][0]
    assert 8 == accounts["events"]
    assert expected == after
    assert before == as_of_before
    assert ["2"] == [p["quantity"] for p in before["positions"]]
    assert ["1"] == [p["quantity"] for p in after["positions"]]


def test_void_refusals_say_why_and_store_nothing(daemon: DaemonProcess) -> None:
    """A void naming no stored event, an event of another account, a void, or an event
    already voided (stored or earlier in the same append) is -32602 at data.target_id
    with a message saying why; nothing of that append is stored. Sending the accepted
    void again is a duplicate."""
    target = fill("buy", "1", "10", event_id="t1")
    other = fill("buy", "1", "10", event_id="o1", account="acct-2")
    with RawConnection(daemon.socket) as conn:
        conn.result("append", {"events": [target, other]})

        def void(target_id: str, **extra: Any) -> dict[str, Any]:
            return wire_event("void", {"target_source": "test/bot", "target_id": target_id,
                                       "reason": "wrong"}, **extra)

        first = void("t1", event_id="v1")
        cases = [
            ([void("nothing")], "no event of account 'acct-1'"),
            ([void("o1")], "no event of account 'acct-1'"),
            ([first, void("t1")], "already voided"),
        ]
        for events, phrase in cases:
            error = _error(conn, events)
            assert -32602 == error["code"]
            problem = error["data"]["errors"][0]
            assert "data.target_id" == problem["path"]
            assert phrase in problem["message"]
        assert 2 == len(read_all(daemon.socket))
        conn.result("append", {"events": [first]})
        again = conn.result("append", {"events": [first]})
        assert [True] == [r["duplicate"] for r in again["results"]]
        for events, phrase in [([void("t1")], "already voided (by the void at seq 3)"),
                               ([void("v1")], "itself a void")]:
            error = _error(conn, events)
            assert phrase in error["data"]["errors"][0]["message"]
    assert 3 == len(read_all(daemon.socket))


@pytest.mark.parametrize("kind", ["cash", "mark", "signal", "order"])
def test_voids_of_other_types_leave_the_views_as_if_never_sent(tmp_path: Path,
                                                               kind: str) -> None:
    """A voided cash, mark, signal or order event is out of every view, as if never sent."""
    base = [
        wire_event("cash", {"amount": "500", "kind": "deposit"}),
        wire_event("signal", {"signal_id": "s1", "strategy": "sma", "symbol": "EURUSD",
                              "side": "long", "stop_loss": "1.0"}),
        wire_event("order", {"order_id": "o1", "symbol": "EURUSD", "side": "buy",
                             "quantity": "2", "order_type": "market", "signal_id": "s1"}),
        fill("buy", "2", "1.1", order_id="o1"),
        wire_event("mark", {"prices": {"EURUSD": "1.2"}}),
    ]
    wrong = next(e for e in base if e["type"] == kind)
    void = wire_event("void", {"target_source": "test/bot", "target_id": wrong["id"],
                               "reason": "sent by mistake"})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with DaemonProcess(tmp_path / "a") as voided, DaemonProcess(tmp_path / "b") as clean:
        with RawConnection(voided.socket) as conn:
            conn.result("append", {"events": [*base, void]})
            after = _views(conn)
        with RawConnection(clean.socket) as conn:
            conn.result("append", {"events": [e for e in base if e is not wrong]})
            expected = _views(conn)
    assert expected == after
