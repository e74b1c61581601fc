"""``query`` with ``as_of`` (a seq or a recorded time) and ``as_of_time`` through a daemon
on PostgreSQL (``tradelog serve --store postgresql://...``, its socket): for one history,
every view at every past point answers what a daemon on SQLite answers for the same log
(a ``migrate``d copy, so the recorded times are the same too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from tests.daemon_support import RawConnection, read_all, tradelog
from tests.eventstore.test_store_contract import PgLog
from tests.support import DaemonProcess, fill, wire_event

VIEWS = ["positions", "trades", "balances", "daily", "signals", "orders", "journal",
         "history", "instruments", "accounts", "strategies"]
CUT_VIEWS = ["positions", "trades", "balances", "orders", "history"]


def _batches() -> list[list[dict[str, Any]]]:
    """Two accounts; signals, orders and their statuses, round trips, marks, a journal
    entry, event times out of seq order (a fill sent late), and a void mid-history."""
    day1, day2 = "2024-03-01T10:00:00Z", "2024-03-02T09:30:00.250Z"
    return [
        [wire_event("account", {"name": "paper", "kind": "paper"}, time_=day1),
         wire_event("cash", {"amount": "10000", "kind": "deposit"}, time_=day1),
         wire_event("cash", {"amount": "5000", "kind": "deposit"}, account="acct-2",
                    time_=day1)],
        [wire_event("instrument", {"symbol": "ES", "multiplier": "50"},
                    time_="2024-03-01T10:01:00Z"),
         wire_event("strategy", {"strategy": "trend", "parameters": {"n": 20}},
                    time_="2024-03-01T10:01:00Z"),
         wire_event("signal", {"signal_id": "s1", "strategy": "trend", "symbol": "ES",
                               "side": "long"}, time_="2024-03-01T10:02:00Z"),
         wire_event("order", {"order_id": "o1", "symbol": "ES", "side": "buy",
                              "quantity": "2", "order_type": "market", "signal_id": "s1"},
                    time_="2024-03-01T10:02:30Z")],
        [fill("buy", "2", "5000", symbol="ES", order_id="o1", signal_id="s1",
              time_="2024-03-01T10:03:00Z"),
         wire_event("status", {"entity": "order", "entity_id": "o1", "status": "filled"},
                    time_="2024-03-01T10:03:00Z"),
         fill("buy", "10", "1.1", account="acct-2", time_="2024-03-01T11:00:00Z")],
        [fill("sell", "1", "5010", symbol="ES", event_id="wrong-fill",
              time_="2024-03-01T12:00:00Z"),
         wire_event("mark", {"prices": {"ES": "5020"}}, time_="2024-03-01T16:00:00Z"),
         wire_event("journal", {"text": "held through the close", "tags": ["es"]},
                    time_="2024-03-01T16:05:00Z")],
        [wire_event("void", {"target_source": "test/bot", "target_id": "wrong-fill",
                             "reason": "busted by the venue"}, time_=day2),
         fill("sell", "2", "5030", symbol="ES", exit_reason="take_profit", time_=day2),
         wire_event("status", {"entity": "signal", "entity_id": "s1", "status": "closed"},
                    time_=day2)],
        [fill("sell", "10", "1.2", account="acct-2", time_="2024-03-01T13:00:00Z"),  # late
         wire_event("cash", {"amount": "-100", "kind": "withdrawal"},
                    time_="2024-03-02T12:00:00Z")],
    ]


def _answer(conn: RawConnection, view: str, **params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = conn.result("query", {"view": view, "limit": 1000, **params})
    return answer


def _points(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every past point of the log: each seq (and 0, and past the end), each batch's
    recorded time, and event times around each event's (with and without an account)."""
    last = len(stored)
    points: list[dict[str, Any]] = [{"as_of": seq} for seq in range(last + 2)]
    points += [{"as_of": recorded} for recorded in
               sorted({event["recorded_at"] for event in stored})]
    points.append({"as_of": "2000-01-01T00:00:00Z"})
    times = sorted({event["time"] for event in stored})
    points += [{"as_of_time": moment} for moment in times]
    points += [{"as_of_time": "2024-03-01T12:30:00+01:00"},
               {"as_of_time": "2024-03-02T09:30:00.249999Z"},
               {"as_of_time": "2024-03-01T13:00:00Z", "account": "acct-2"},
               {"as_of_time": "2024-03-01T12:59:59Z", "account": "acct-2"},
               {"as_of_time": "2024-03-01T16:00:00Z", "account": "acct-1"}]
    return points


def test_as_of_on_postgresql_answers_what_sqlite_answers(pg: PgLog, tmp_path: Path) -> None:
    """Each view, at each seq, recorded time and event time of a history with a void and
    a late fill, answers the same ``as_of_seq``, ``total`` and rows from a daemon on the
    PostgreSQL log as from a daemon on a SQLite copy of it; and ``as_of`` a seq before
    the void still shows the voided fill on PostgreSQL."""
    (tmp_path / "pg").mkdir()
    (tmp_path / "lite").mkdir()
    with DaemonProcess(tmp_path / "pg", extra_args=["--store", pg.url]) as on_pg:
        with RawConnection(on_pg.socket, timeout_s=60) as conn:
            for batch in _batches():
                conn.result("append", {"events": batch})
        stored = read_all(on_pg.socket)
        copied = tradelog("migrate", "--from", pg.url,
                          "--to", f"sqlite:///{tmp_path / 'lite' / 'tradelog.db'}")
        assert 0 == copied.returncode, copied.stderr
        void_seq = next(e["seq"] for e in stored if e["type"] == "void")
        with DaemonProcess(tmp_path / "lite") as on_lite, \
                RawConnection(on_pg.socket, timeout_s=60) as pg_conn, \
                RawConnection(on_lite.socket, timeout_s=60) as lite_conn:
            compared = 0
            for point in _points(stored):
                # every view at each seq; at a time, the views that show where the
                # log was cut (the fold after the cut is the same code on both stores)
                views = VIEWS if isinstance(point.get("as_of"), int) else CUT_VIEWS
                for view in views:
                    expected = _answer(lite_conn, view, **point)
                    assert expected == _answer(pg_conn, view, **point), (view, point)
                    compared += bool(expected["rows"])
            assert compared > 100
            before_void = _answer(pg_conn, "positions", as_of=void_seq - 1)
            assert ["1"] == [row["quantity"] for row in before_void["rows"]
                             if row["symbol"] == "ES"]
            now = _answer(pg_conn, "positions")
            assert [] == [row for row in now["rows"] if row["symbol"] == "ES"]


def _bulk(start: int, count: int) -> list[dict[str, Any]]:
    """``count`` events over three accounts: fills on two symbols, a signal and an order
    every so often, so that snapshots hold positions, signals and orders."""
    events = []
    for n in range(start, start + count):
        account = f"acct-{n % 3}"
        moment = (datetime(2024, 4, 1, tzinfo=UTC) + timedelta(seconds=n)
                  ).isoformat().replace("+00:00", "Z")
        if n % 50 == 0:
            events.append(wire_event("signal", {"signal_id": f"s{n}", "strategy": "bulk",
                                                "symbol": "AAA", "side": "long"},
                                     account=account, event_id=f"bulk-{n}", time_=moment))
        elif n % 50 == 1:
            events.append(wire_event("order", {"order_id": f"o{n}", "symbol": "AAA",
                                               "side": "buy", "quantity": "1",
                                               "order_type": "market"},
                                     account=account, event_id=f"bulk-{n}", time_=moment))
        else:
            events.append(fill("buy" if n % 4 else "sell", "1", f"{10 + n % 9}",
                               symbol="AAA" if n % 2 else "BBB", account=account,
                               event_id=f"bulk-{n}", time_=moment))
    return events


def test_as_of_past_a_snapshot_on_postgresql(pg: PgLog, tmp_path: Path) -> None:
    """Past the views' first snapshot (10,000 events), ``as_of`` and ``as_of_time`` on
    PostgreSQL restore the state from the snapshot's rows in PostgreSQL and fold on:
    the keyed views answer what a daemon on a SQLite copy of the log answers."""
    (tmp_path / "pg").mkdir()
    (tmp_path / "lite").mkdir()
    with DaemonProcess(tmp_path / "pg", extra_args=["--store", pg.url]) as on_pg:
        with RawConnection(on_pg.socket, timeout_s=300) as conn:
            for start in range(0, 10_040, 2_008):
                conn.result("append", {"events": _bulk(start, 2_008)})
        with psycopg.connect(pg.url) as direct:
            snapshots = [row[0] for row in direct.execute("SELECT seq FROM view_snapshots")]
        assert [10_040] == snapshots
        with RawConnection(on_pg.socket, timeout_s=300) as conn:
            conn.result("append", {"events": _bulk(10_040, 60)})
        copied = tradelog("migrate", "--from", pg.url,
                          "--to", f"sqlite:///{tmp_path / 'lite' / 'tradelog.db'}")
        assert 0 == copied.returncode, copied.stderr
        points: list[dict[str, Any]] = [
            {"as_of": 10_041}, {"as_of": 10_077}, {"as_of": 10_100},
            {"as_of_time": "2024-04-01T02:47:50Z"},  # seq 10,071
            {"as_of_time": "2024-04-01T02:47:50Z", "account": "acct-1"}]
        with DaemonProcess(tmp_path / "lite") as on_lite, \
                RawConnection(on_pg.socket, timeout_s=300) as pg_conn, \
                RawConnection(on_lite.socket, timeout_s=300) as lite_conn:
            for point in points:
                for view in ["positions", "balances", "daily", "signals", "orders"]:
                    expected = _answer(lite_conn, view, **point)
                    assert expected["rows"], (view, point)
                    assert expected == _answer(pg_conn, view, **point), (view, point)
