"""The view runner on a real recorder: checkpoints, restarts, version rebuilds, as_of."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from eventstore.recorder import Recorder, Statement
from projections import lifecycle
from projections.fold import PROJECTION_VERSION
from projections.query import ViewQuery, query_view
from projections.runner import ViewRunner
from projections.startup import open_views, rebuild_views
from tests.fold_support import dump_tables, ev, fold_rows, new_event, view_rows


def sample(account: str = "acct-1", start: int = 0) -> list[dict[str, Any]]:
    """A few events touching every view."""
    def at(minute: int) -> str:
        return f"2024-03-01T12:{start + minute:02d}:00Z"

    return [
        ev("cash", {"amount": "1000", "kind": "deposit"}, account=account, time=at(0)),
        ev("signal", {"signal_id": f"s{start}", "strategy": "sma", "symbol": "XYZ",
                      "side": "long"}, account=account, time=at(1)),
        ev("order", {"order_id": f"o{start}", "symbol": "XYZ", "side": "buy",
                     "quantity": "3", "order_type": "market"}, account=account, time=at(2)),
        ev("fill", {"symbol": "XYZ", "side": "buy", "quantity": "3", "price": "10.5",
                    "fee": "0.3", "order_id": f"o{start}"}, account=account, time=at(3)),
        ev("mark", {"prices": {"XYZ": "11"}}, account=account, time=at(4)),
        ev("fill", {"symbol": "XYZ", "side": "sell", "quantity": "1", "price": "12"},
           account=account, time=at(5)),
        ev("journal", {"text": "took partial profit"}, account=account, time=at(6)),
    ]


def checkpoint(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT last_seq, version FROM projection_checkpoint WHERE name = 'views'"
        ).fetchone()
        return int(row[0]), int(row[1])
    finally:
        conn.close()


def execute(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(sql)
    finally:
        conn.close()


async def test_restart_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    """A normal restart folds nothing (the checkpoint is the log's end); events appended
    while no views were attached are exactly what the next ``open_views`` folds."""
    path = tmp_path / "t.db"
    recorder = await Recorder.open(path)
    try:
        assert 0 == (await open_views(recorder))[1]
        await recorder.append([new_event(w) for w in sample()])
    finally:
        await recorder.close()
    assert (7, PROJECTION_VERSION) == checkpoint(path)
    recorder = await Recorder.open(path)
    try:
        assert 0 == (await open_views(recorder))[1]
        recorder.follower = None
        await recorder.append([new_event(w) for w in sample(start=10)[:3]])
    finally:
        await recorder.close()
    assert (7, PROJECTION_VERSION) == checkpoint(path)
    recorder = await Recorder.open(path)
    try:
        assert 3 == (await open_views(recorder))[1]
        assert fold_rows(await recorder.read()) == await view_rows(recorder)
    finally:
        await recorder.close()
    assert (10, PROJECTION_VERSION) == checkpoint(path)


async def test_restart_does_not_refold_the_log(tmp_path: Path) -> None:
    """With the same projection version, ``open_views`` keeps the stored rows as they are
    (a row changed behind its back stays changed: nothing was refolded)."""
    path = tmp_path / "t.db"
    recorder = await Recorder.open(path)
    try:
        await open_views(recorder)
        await recorder.append([new_event(w) for w in sample()])
    finally:
        await recorder.close()
    execute(path, "UPDATE balances SET cash = '1' WHERE account = 'acct-1'")
    recorder = await Recorder.open(path)
    try:
        assert 0 == (await open_views(recorder))[1]
        [balance] = (await view_rows(recorder))["balances"]
        assert "1" == balance["cash"]
    finally:
        await recorder.close()


async def test_version_change_rebuilds_and_leaves_the_log_untouched(tmp_path: Path) -> None:
    """A stored projection version other than ``PROJECTION_VERSION`` makes ``open_views``
    rebuild every view from the log into new tables (a damaged row is gone), write the
    current version, and leave every event and hash as it was."""
    path = tmp_path / "t.db"
    recorder = await Recorder.open(path)
    try:
        await open_views(recorder)
        await recorder.append([new_event(w) for w in sample()])
        before = [(e.seq, e.hash, e.data) for e in await recorder.read()]
    finally:
        await recorder.close()
    execute(path, "UPDATE balances SET cash = '1' WHERE account = 'acct-1'")
    execute(path, f"UPDATE projection_checkpoint SET version = {PROJECTION_VERSION + 7}")
    recorder = await Recorder.open(path)
    try:
        runner, folded = await open_views(recorder)
        assert 7 == folded
        events = await recorder.read()
        assert before == [(e.seq, e.hash, e.data) for e in events]
        assert (await recorder.verify()).ok
        assert fold_rows(events) == await view_rows(recorder)
        assert runner is recorder.follower
        await recorder.append([new_event(w) for w in sample(start=10)])
        assert fold_rows(await recorder.read()) == await view_rows(recorder)
    finally:
        await recorder.close()
    assert (14, PROJECTION_VERSION) == checkpoint(path)
    conn = sqlite3.connect(path)
    try:
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert set() == {name for name in names if "__rebuild" in name}
    assert "trades_account_closed_seq" in names


async def test_rebuild_gives_identical_tables(tmp_path: Path) -> None:
    """``rebuild_views`` replaces every table with identical rows and reports the count."""
    path = tmp_path / "t.db"
    recorder = await Recorder.open(path)
    try:
        await open_views(recorder)
        await recorder.append([new_event(w) for w in sample()])
        await recorder.append([new_event(w) for w in sample("acct-2")])
        before = dump_tables(path)
        seen: list[int] = []
        _, folded = await rebuild_views(recorder, seen.append)
        assert 14 == folded
        assert 14 == sum(seen)
        assert before == dump_tables(path)
    finally:
        await recorder.close()


class FailingRebuild(ViewRunner):
    """A runner whose rebuild fails after folding, as a full disk would make it."""

    def rebuild_end(self) -> list[Statement]:
        raise RuntimeError("rebuild interrupted")


async def test_failed_rebuild_leaves_the_runner_writing_the_real_tables(
        tmp_path: Path) -> None:
    """After a rebuild rolls back, the same runner keeps folding appends into the real
    view tables with a checkpoint (not into the rolled-back ``__rebuild`` tables)."""
    path = tmp_path / "t.db"
    recorder = await Recorder.open(path)
    try:
        await open_views(recorder)
        await recorder.append([new_event(w) for w in sample()])
        runner = FailingRebuild()
        recorder.follower = runner
        with pytest.raises(RuntimeError, match="rebuild interrupted"):
            await recorder.on_appender(lambda conn: lifecycle.rebuild(conn, runner))
        await recorder.append([new_event(w) for w in sample(start=10)])
        assert fold_rows(await recorder.read()) == await view_rows(recorder)
    finally:
        await recorder.close()
    assert (14, PROJECTION_VERSION) == checkpoint(path)


async def test_two_writers_on_one_file_keep_the_views_whole(tmp_path: Path) -> None:
    """Two recorders with views on the same file: each folds what the other appended
    before its own group, so the views equal a pure fold of the log."""
    path = tmp_path / "t.db"
    first = await Recorder.open(path)
    second = await Recorder.open(path)
    try:
        await open_views(first)
        await open_views(second)
        one, two = sample("a"), sample("b", start=20)
        for left, right in zip(one, two, strict=True):
            await first.append([new_event(left)])
            await second.append([new_event(right)])
        events = await first.read()
        assert 14 == len(events)
        assert fold_rows(events) == await view_rows(first)
    finally:
        await first.close()
        await second.close()


async def test_as_of_a_time_names_the_last_event_recorded_by_then(tmp_path: Path) -> None:
    """``as_of`` an RFC 3339 time is the view after the last event with
    ``recorded_at`` <= that time; ``as_of`` a seq past the log's end is the log's end."""
    recorder = await Recorder.open(tmp_path / "t.db")
    try:
        await open_views(recorder)
        await recorder.append([new_event(w) for w in sample()[:4]])
        await recorder.append([new_event(w) for w in sample()[4:]])
        events = await recorder.read()
        moment = events[3].recorded_at
        expected_seq = max(e.seq for e in events if e.recorded_at <= moment)
        answer = await query_view(recorder, ViewQuery("positions", as_of=moment))
        assert expected_seq == answer["as_of_seq"]
        assert fold_rows(events[:expected_seq])["positions"] == answer["rows"]
        answer = await query_view(recorder, ViewQuery("balances", as_of=99))
        assert 7 == answer["as_of_seq"]
        assert (await view_rows(recorder))["balances"] == answer["rows"]
    finally:
        await recorder.close()


async def test_query_filters_by_account_now_and_as_of(tmp_path: Path) -> None:
    """``account`` keeps that account's rows, now and as of a past seq."""
    recorder = await Recorder.open(tmp_path / "t.db")
    try:
        await open_views(recorder)
        await recorder.append([new_event(w) for w in sample("a") + sample("b")])
        now = await query_view(recorder, ViewQuery("daily", account="b"))
        assert ["b"] == [r["account"] for r in now["rows"]]
        past = await query_view(recorder, ViewQuery("balances", account="b", as_of=11))
        assert [("b", "1000", "-0.3")] == [
            (r["account"], r["cash"], r["realized_pnl"]) for r in past["rows"]]
    finally:
        await recorder.close()


async def test_as_of_a_time_is_exact_to_the_microsecond(tmp_path: Path) -> None:
    """An event recorded one microsecond after the ``as_of`` time is not in the view
    (recorded_at is compared exactly, not at SQLite julianday's millisecond)."""
    recorder = await Recorder.open(tmp_path / "t.db")
    try:
        await open_views(recorder)
        await recorder.append([new_event(w) for w in sample()[:4]])
        await recorder.append([new_event(w) for w in sample()[4:]])
        events = await recorder.read()
        last = datetime.fromisoformat(events[-1].recorded_at)
        moment = (last - timedelta(microseconds=1)).astimezone(
            timezone(timedelta(hours=2))).isoformat()
        expected_seq = max((e.seq for e in events if e.recorded_at < events[-1].recorded_at),
                           default=0)
        answer = await query_view(recorder, ViewQuery("journal", as_of=moment))
        assert (expected_seq, []) == (answer["as_of_seq"], answer["rows"])
    finally:
        await recorder.close()


async def test_signals_and_orders_are_ordered_by_time_not_text(tmp_path: Path) -> None:
    """Rows of ``signals`` and ``orders`` come in creation-time order, also when one time
    has a fraction of a second (``12:00:00.5Z`` is after ``12:00:00Z``)."""
    def signal(signal_id: str, time: str) -> dict[str, Any]:
        return ev("signal", {"signal_id": signal_id, "strategy": "s", "symbol": "XYZ",
                             "side": "long"}, time=time)

    recorder = await Recorder.open(tmp_path / "t.db")
    try:
        await open_views(recorder)
        await recorder.append([new_event(w) for w in [
            signal("late", "2024-03-01T12:00:00.5Z"),
            signal("early", "2024-03-01T12:00:00Z"),
            signal("last", "2024-03-01T12:00:01Z"),
        ]])
        answer = await query_view(recorder, ViewQuery("signals"))
        assert ["early", "late", "last"] == [r["signal_id"] for r in answer["rows"]]
        answer = await query_view(recorder, ViewQuery("signals", limit=2))
        assert ["late", "last"] == [r["signal_id"] for r in answer["rows"]]
    finally:
        await recorder.close()
