"""The watched inbox of ``tradelog serve --inbox DIR``, through the real daemon."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.client import Client
from tests.daemon_support import read_all
from tests.support import DaemonProcess, daemon_on

DATA = Path(__file__).parents[1] / "data"
SETTLE = {"TRADELOG_INBOX_SETTLE_S": "0.3", "TRADELOG_INBOX_QUANTITY": "100000"}


def wait_for(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def events_jsonl(path: Path, count: int, account: str = "jsonl-acct", start: int = 0) -> None:
    lines = [json.dumps({"id": f"mk-{i}", "source": "bot/files", "type": "mark",
                         "time": "2024-01-01T00:00:00Z", "account": account,
                         "data": {"prices": {"EURUSD": f"1.{1000 + i}"}}})
             for i in range(start, start + count)]
    path.write_text("\n".join(lines) + "\n")


def stored_ids(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM events ORDER BY seq")]


def inbox_daemon(tmp_path: Path) -> DaemonProcess:
    return DaemonProcess(tmp_path, ["--inbox", str(tmp_path / "inbox")], env=SETTLE)


@pytest.mark.both_stores
def test_good_files_are_imported_and_moved_to_done(tmp_path: Path, store: str) -> None:
    """A trades CSV and a daily P&L JSON under account folders and a JSONL at the top are
    imported (views match the files' totals) and moved to done/ (on a SQLite file and on
    PostgreSQL)."""
    inbox = tmp_path / "inbox"
    (inbox / "legacy-csv").mkdir(parents=True)
    (inbox / "legacy-json").mkdir(parents=True)
    with daemon_on(store, tmp_path, SETTLE, ["--inbox", str(inbox)]) as daemon:
        shutil.copy(DATA / "trades.csv", inbox / "legacy-csv" / "trades.csv")
        shutil.copy(DATA / "daily_pnl.json", inbox / "legacy-json" / "daily_pnl.json")
        events_jsonl(inbox / "marks.jsonl", 20)
        wait_for(lambda: len(list((inbox / "done").rglob("*.*"))) == 3)
        with Client(daemon.socket) as client:
            csv_balance = client.query("balances", account="legacy-csv")["rows"][0]
            json_balance = client.query("balances", account="legacy-json")["rows"][0]
            closed = client.query("trades", account="legacy-csv")["rows"]
    assert Decimal("936") == Decimal(csv_balance["realized_pnl"])
    assert Decimal("-13940.35734") == Decimal(json_balance["realized_pnl"])
    assert 262 == len(closed)
    assert (inbox / "done" / "legacy-csv" / "trades.csv").exists()
    assert [] == [p for p in inbox.rglob("*") if p.is_file() and "done" not in p.parts]


def test_bad_file_goes_to_failed_with_the_reason(tmp_path: Path) -> None:
    """A CSV with a bad row is stored not at all, moved to failed/, and its .error.txt
    names the line; a CSV outside an account folder is refused the same way."""
    inbox = tmp_path / "inbox"
    (inbox / "acct").mkdir(parents=True)
    lines = (DATA / "trades.csv").read_text().splitlines()
    lines[3] = lines[3].replace("2017-04-24T17:00:00", "not-a-date", 1)
    with inbox_daemon(tmp_path) as daemon:
        (inbox / "acct" / "bad.csv").write_text("\n".join(lines) + "\n")
        shutil.copy(DATA / "trades.csv", inbox / "loose.csv")
        wait_for(lambda: len(list((inbox / "failed").rglob("*.error.txt"))) == 2)
        with Client(daemon.socket) as client:
            assert 0 == client.health()["last_seq"]
    note = (inbox / "failed" / "acct" / "bad.csv.error.txt").read_text()
    assert "line 4: entry_date 'not-a-date' is not a date and time" in note
    assert "subfolder named after the account" in (
        inbox / "failed" / "loose.csv.error.txt").read_text()


def test_slowly_written_file_is_imported_whole(tmp_path: Path) -> None:
    """A JSONL file written line by line over more than a second is imported only once
    complete: every line is stored and the file is moved to done/, not failed/."""
    inbox = tmp_path / "inbox"
    with inbox_daemon(tmp_path) as daemon:
        wait_for((inbox / "done").exists)
        target = inbox / "slow.jsonl"
        events_jsonl(tmp_path / "all.jsonl", 12)
        with target.open("w") as handle:
            for line in (tmp_path / "all.jsonl").read_text().splitlines(keepends=True):
                handle.write(line[:20])
                handle.flush()
                time.sleep(0.06)
                handle.write(line[20:])
                handle.flush()
                time.sleep(0.06)
        wait_for((inbox / "done" / "slow.jsonl").exists)
        daemon.stop()
    assert [f"mk-{i}" for i in range(12)] == stored_ids(tmp_path / "tradelog.db")
    assert not (inbox / "failed" / "slow.jsonl").exists()


def test_half_processed_file_is_finished_on_start_without_duplicates(tmp_path: Path) -> None:
    """A file whose first part was stored before the daemon died is processed again on
    start: the rest is stored, nothing twice, and the file ends in done/."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    events_jsonl(tmp_path / "first.jsonl", 700)
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "import",
                           str(tmp_path / "first.jsonl"), "--format", "events-jsonl",
                           "--db", str(tmp_path / "tradelog.db")],
                          capture_output=True, text=True, check=False)
    assert 0 == done.returncode, done.stderr
    events_jsonl(inbox / "big.jsonl", 1500)
    with inbox_daemon(tmp_path):
        wait_for((inbox / "done" / "big.jsonl").exists)
    ids = stored_ids(tmp_path / "tradelog.db")
    assert sorted(f"mk-{i}" for i in range(1500)) == sorted(ids)


@pytest.mark.both_stores
@pytest.mark.slow(seconds=4)
def test_daemon_killed_mid_file_then_restarted_stores_every_event_once(
        tmp_path: Path, store: str) -> None:
    """kill -9 while a large file is being imported; after a restart the file is done and
    every one of its events is stored exactly once (on a SQLite file and on PostgreSQL)."""
    inbox = tmp_path / "inbox"
    with daemon_on(store, tmp_path, SETTLE, ["--inbox", str(inbox)]) as daemon:
        wait_for((inbox / "done").exists)
        events_jsonl(tmp_path / "big.jsonl", 6000)
        shutil.move(str(tmp_path / "big.jsonl"), str(inbox / "big.jsonl"))
        with Client(daemon.socket) as client:
            wait_for(lambda: client.health()["last_seq"] > 0, timeout_s=60)
        assert -9 == daemon.kill()
        assert not (inbox / "done" / "big.jsonl").exists()
        daemon.start()
        wait_for((inbox / "done" / "big.jsonl").exists, timeout_s=60)
        ids = [event["id"] for event in read_all(daemon.socket)]
    assert len(ids) == len(set(ids))
    assert sorted(f"mk-{i}" for i in range(6000)) == sorted(ids)


def test_csv_without_quantities_is_refused_unless_inbox_quantity_is_set(
        tmp_path: Path) -> None:
    """With no inbox_quantity configured, a trades CSV without a quantity column is
    refused to failed/ saying what to add, instead of taking quantity 1; nothing stored."""
    inbox = tmp_path / "inbox"
    (inbox / "acct").mkdir(parents=True)
    env = {"TRADELOG_INBOX_SETTLE_S": "0.3"}
    with DaemonProcess(tmp_path, ["--inbox", str(inbox)], env=env) as daemon:
        shutil.copy(DATA / "trades.csv", inbox / "acct" / "trades.csv")
        note = inbox / "failed" / "acct" / "trades.csv.error.txt"
        wait_for(note.exists)
        with Client(daemon.socket) as client:
            assert 0 == client.health()["last_seq"]
    assert "line 1: the file has no quantity column; add one" in note.read_text()


def test_overlong_lines_and_records_are_refused_whole(tmp_path: Path) -> None:
    """A JSONL with one line over 1 MiB and a daily P&L JSON with one record over 1 MiB
    are refused (the line or record named), and none of their other rows are stored."""
    inbox = tmp_path / "inbox"
    (inbox / "acct").mkdir(parents=True)
    events_jsonl(tmp_path / "long.jsonl", 3)
    with (tmp_path / "long.jsonl").open("a") as handle:
        handle.write('{"id": "' + "x" * (1 << 20) + '"}\n')
    document = json.loads((DATA / "daily_pnl.json").read_text())
    document["records"][1]["padding"] = "y" * (1 << 20)
    with inbox_daemon(tmp_path) as daemon:
        wait_for((inbox / "failed").exists)
        shutil.move(str(tmp_path / "long.jsonl"), str(inbox / "long.jsonl"))
        (tmp_path / "daily.json").write_text(json.dumps(document))
        shutil.move(str(tmp_path / "daily.json"), str(inbox / "acct" / "daily.json"))
        wait_for(lambda: len(list((inbox / "failed").rglob("*.error.txt"))) == 2)
        with Client(daemon.socket) as client:
            assert 0 == client.health()["last_seq"]
    assert "line 4: longer than 1048576 bytes" in (
        inbox / "failed" / "long.jsonl.error.txt").read_text()
    assert "record 1 is longer than 1048576 characters" in (
        inbox / "failed" / "acct" / "daily.json.error.txt").read_text()


def test_csv_values_beyond_any_real_size_are_refused_by_line(tmp_path: Path) -> None:
    """Dates at the edge of the calendar and numbers of huge exponent or length in a
    trades CSV are each named by line in the .error.txt; nothing is stored and the
    daemon goes on importing the next file."""
    inbox = tmp_path / "inbox"
    (inbox / "acct").mkdir(parents=True)
    header = "trade_id,symbol,entry_date,entry_price,trade_type,status,quantity\n"
    rows = ["T1,EURUSD,0001-01-01T00:00:00+01:00,1.1,LONG,OPEN,1",
            "T2,EURUSD,2020-01-01T00:00:00,1e999999999,LONG,OPEN,1",
            "T3,EURUSD,2020-01-01T00:00:00," + "1" * 50 + ",LONG,OPEN,1",
            "T4,EURUSD,9999-12-31T23:59:59-01:00,1.1,LONG,OPEN,1"]
    with inbox_daemon(tmp_path) as daemon:
        wait_for((inbox / "failed").exists)
        (tmp_path / "edge.csv").write_text(header + "\n".join(rows) + "\n")
        shutil.move(str(tmp_path / "edge.csv"), str(inbox / "acct" / "edge.csv"))
        note = inbox / "failed" / "acct" / "edge.csv.error.txt"
        wait_for(note.exists)
        events_jsonl(inbox / "after.jsonl", 1)
        wait_for((inbox / "done" / "after.jsonl").exists)
        with Client(daemon.socket) as client:
            assert 1 == client.health()["last_seq"]
    assert ["edge.csv was not imported:",
            "line 2: entry_date '0001-01-01T00:00:00+01:00' is out of the range of dates",
            "line 3: entry_price '1e999999999' is beyond 10^\u00b140",
            "line 4: entry_price has 50 characters; a number has at most 40",
            "line 5: entry_date '9999-12-31T23:59:59-01:00' is out of the range of dates",
            "nothing was stored"] == note.read_text().splitlines()
