"""Importing legacy files: formats, validation, idempotency, resumption."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from daemon.importers import read_file
from daemon.importers.run import append_rows, chunks
from eventstore.record import NewEvent
from eventstore.recorder import Recorder
from projections.query import ViewQuery, query_view
from projections.startup import open_views
from schemas import parse_event

DATA = Path(__file__).parents[1] / "data"
LOT = Decimal(100000)


def tradelog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, check=False)


def test_trades_csv_rows_become_a_bots_events() -> None:
    """Each closed row gives a signal, an opening fill and a closing fill with its exit
    reason; the open row gives its opening fill and a mark; ids come from trade_id."""
    read = read_file(DATA / "trades.csv", "trades-csv", "legacy", LOT)
    assert [] == read.problems
    assert 263 == len(read.rows)
    first = read.rows[0].events
    assert ["signal", "fill", "fill"] == [e["type"] for e in first]
    assert ["T00001:signal", "T00001:open", "T00001:close"] == [e["id"] for e in first]
    assert "sell" == first[1]["data"]["side"]
    assert "signal" == first[2]["data"]["exit_reason"]
    assert ["signal", "fill", "mark"] == [e["type"] for e in read.rows[-1].events]
    assert Decimal("0.00936") * LOT == read.realized


def test_daily_pnl_json_positions_become_round_trips() -> None:
    """Each position of a daily record is a round trip whose P&L is the file's pnl."""
    read = read_file(DATA / "daily_pnl.json", "daily-pnl-json", "legacy")
    assert [] == read.problems
    first = read.rows[0]
    assert Decimal("-16959.99276") == first.realized
    assert ["sell", "buy"] == [e["data"]["side"] for e in first.events]
    assert Decimal("-13940.35734") == read.realized


@pytest.mark.parametrize(("text", "reason"), [
    ("T1,EURUSD,2017-04-20T22:00:00,abc,,,,,SHORT,,CLOSED,,,2017-04-21T00:00:00,1.1,,,,,,",
     "entry_price 'abc' is not a number"),
    ("T1,EURUSD,2017-04-20T22:00:00,1.1,,,,,SIDEWAYS,,CLOSED,,,2017-04-21T00:00:00,1.1,,,,,,",
     "trade_type 'SIDEWAYS' is neither LONG nor SHORT"),
    ("T1,EURUSD,yesterday,1.1,,,,,LONG,,CLOSED,,,2017-04-21T00:00:00,1.1,,,,,,",
     "entry_date 'yesterday' is not a date and time"),
    ("T1,EURUSD,2017-04-20T22:00:00,1.1,,,,,LONG,,CLOSED,,,2017-04-21T00:00:00,,,,,,,",
     "exit_price is empty"),
    (",EURUSD,2017-04-20T22:00:00,1.1,,,,,LONG,,CLOSED,,,2017-04-21T00:00:00,1.2,,,,,,",
     "trade_id is empty"),
    ("T1,EURUSD,2017-04-20T22:00:00,0,,,,,LONG,,CLOSED,,,2017-04-21T00:00:00,1.2,,,,,,",
     "entry_price must be > 0"),
    ("T1,EURUSD,2017-04-20T22:00:00,1.1,,,,,LONG,,MAYBE,,,2017-04-21T00:00:00,1.2,,,,,,",
     "status 'MAYBE' is not ACTIVE, OPEN or CLOSED"),
])
def test_bad_trade_rows_are_reported_with_line_and_reason(tmp_path: Path, text: str,
                                                          reason: str) -> None:
    """Every kind of bad row is reported with its line number and what is wrong."""
    header = (DATA / "trades.csv").read_text().splitlines()[0]
    good = (DATA / "trades.csv").read_text().splitlines()[1]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([header, good, text, good.replace("T00001", "T00002")]) + "\n")
    read = read_file(path, "trades-csv", "legacy", LOT)
    assert [(3, reason)] == [(p.line, p.reason) for p in read.problems]


def test_cli_import_validates_whole_file_before_storing(tmp_path: Path) -> None:
    """A file with one bad row stores nothing at all and names the row."""
    lines = (DATA / "trades.csv").read_text().splitlines()
    lines[5] = lines[5].replace("LONG", "UP").replace("SHORT", "UP")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    db = tmp_path / "t.db"
    done = tradelog("import", str(bad), "--format", "trades-csv", "--account", "legacy",
                    "--quantity", "100000", "--db", str(db))
    assert 1 == done.returncode
    assert "line 6: trade_type 'UP' is neither LONG nor SHORT" in done.stderr
    assert not db.exists()


def test_cli_import_twice_into_file_reconciles_and_stores_nothing_again(tmp_path: Path) -> None:
    """Both sample files go in with totals matching the file; a second import is all
    duplicates; --dry-run stores nothing."""
    db = tmp_path / "t.db"
    dry = tradelog("import", str(DATA / "trades.csv"), "--format", "trades-csv",
                   "--account", "legacy-csv", "--quantity", "100000", "--db", str(db),
                   "--dry-run")
    assert 0 == dry.returncode, dry.stderr
    assert "263 rows -> 789 events" in dry.stdout
    assert not db.exists()
    for _ in range(2):
        csv_run = tradelog("import", str(DATA / "trades.csv"), "--format", "trades-csv",
                           "--account", "legacy-csv", "--quantity", "100000", "--db", str(db))
        json_run = tradelog("import", str(DATA / "daily_pnl.json"), "--format",
                            "daily-pnl-json", "--account", "legacy-json", "--db", str(db))
        assert 0 == csv_run.returncode, csv_run.stderr
        assert 0 == json_run.returncode, json_run.stderr
        assert ("this file: 262 round trips, realized P&L 936.00000; in the views: 262 "
                "round trips, realized P&L 936  (match)") in csv_run.stdout
        assert ("realized P&L -13940.35734; in the views: 263 round trips, realized P&L "
                "-13940.35734  (match)") in json_run.stdout
    assert "0 new events, 789 already stored" in csv_run.stdout
    assert "0 new events, 526 already stored" in json_run.stdout


async def _open(db: Path) -> Recorder:
    recorder = await Recorder.open(db)
    await open_views(recorder)
    return recorder


async def _append_with(recorder: Recorder, fail_after: int | None) -> Any:
    calls = 0

    async def append(batch: list[dict[str, Any]]) -> dict[str, Any]:
        nonlocal calls
        if fail_after is not None and calls >= fail_after:
            raise ConnectionError("connection lost")
        calls += 1
        outcome = await recorder.append([NewEvent.from_model(parse_event(e)) for e in batch])
        return {"results": [r.to_wire() for r in outcome.results]}

    return append


def test_interrupted_import_resumes_without_duplicates(tmp_path: Path) -> None:
    """An import cut off after some chunks, run again, ends with exactly the views of a
    single uninterrupted import; the resumed run counts the first part as duplicates."""
    read = read_file(DATA / "trades.csv", "trades-csv", "legacy", LOT)

    async def scenario(db: Path, fail_after: int | None) -> tuple[Any, list[Any]]:
        recorder = await _open(db)
        try:
            if fail_after is not None:
                append = await _append_with(recorder, fail_after)
                with pytest.raises(ConnectionError):
                    await append_rows(read, append, size=100)
            report = await append_rows(read, await _append_with(recorder, None), size=100)
            rows = [(await query_view(recorder, ViewQuery(v)))["rows"]
                    for v in ("trades", "positions", "balances", "daily", "signals")]
            return report, rows
        finally:
            await recorder.close()

    resumed, resumed_rows = asyncio.run(scenario(tmp_path / "a.db", 3))
    _, whole_rows = asyncio.run(scenario(tmp_path / "b.db", None))
    stored_first = sum(len(c) for c in chunks(read.rows, 100)[:3])
    assert stored_first == resumed.duplicates
    assert len(read.events) - stored_first == resumed.stored
    assert whole_rows == resumed_rows


def test_events_jsonl_import_checks_every_line(tmp_path: Path) -> None:
    """A JSONL file with an invalid event is refused with its line; a good one imports."""
    good = ('{"id":"e1","source":"s","type":"cash","time":"2024-01-01T00:00:00Z",'
            '"account":"a","data":{"amount":"5","kind":"deposit"}}')
    bad = good.replace('"e1"', '"e2"').replace('"5"', '"0"')
    path = tmp_path / "events.jsonl"
    path.write_text(good + "\n\n" + bad + "\n")
    read = read_file(path, "events-jsonl", None)
    assert [(3, "data.amount: amount must not be 0")] == [(p.line, p.reason) for p in read.problems]
    shutil.copy(path, tmp_path / "ok.jsonl")
    (tmp_path / "ok.jsonl").write_text(good + "\n")
    done = tradelog("import", str(tmp_path / "ok.jsonl"), "--format", "events-jsonl",
                    "--db", str(tmp_path / "t.db"))
    assert 0 == done.returncode, done.stderr
    assert "1 new events" in done.stdout


def test_cli_import_through_running_daemon_twice(tmp_path: Path) -> None:
    """Through the daemon's socket the sample trades file reconciles, a second import
    stores nothing, and `--db` on the served file is refused (one writer at a time)."""
    from tests.support import DaemonProcess

    with DaemonProcess(tmp_path) as daemon:
        args = ["import", str(DATA / "trades.csv"), "--format", "trades-csv", "--account",
                "legacy", "--quantity", "100000", "--socket", str(daemon.socket)]
        first = tradelog(*args)
        second = tradelog(*args)
        direct = tradelog(*args[:-2], "--db", str(daemon.db))
    assert 0 == first.returncode, first.stderr
    assert "789 new events, 0 already stored" in first.stdout
    assert ("realized P&L 936.00000; in the views: 262 round trips, realized P&L 936  "
            "(match)") in first.stdout
    assert "0 new events, 789 already stored" in second.stdout
    assert 1 == direct.returncode
    assert "in use by another tradelog process" in direct.stderr
