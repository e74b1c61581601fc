"""``tradelog verify --db PATH`` as a user runs it: a subprocess, its exit code and output."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from eventstore import NewEvent, Recorder
from eventstore.ddl import EVENT_TRIGGERS
from schemas import parse_event
from tests.support import fill

REPO = Path(__file__).resolve().parents[2]


def _make_log(path: Path, count: int) -> None:
    async def run() -> None:
        recorder = await Recorder.open(path)
        try:
            await recorder.append([NewEvent.from_model(parse_event(
                fill("buy", "1", f"1.{i + 1}", event_id=f"v-{i}"))) for i in range(count)])
        finally:
            await recorder.close()

    asyncio.run(run())


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("TRADELOG_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "verify", "--db", str(path)],
        capture_output=True, text=True, check=False, timeout=60, env=env, cwd=path.parent)


def test_verify_good_file_exits_0_with_one_line_summary(tmp_path: Path) -> None:
    """On an untouched log ``verify`` exits 0 and prints one line saying it is ok and
    how many events it checked, and leaves the file as it was."""
    db = tmp_path / "good.db"
    _make_log(db, 5)
    before = db.read_bytes()
    done = _verify(db)
    assert 0 == done.returncode, done.stderr
    lines = done.stdout.strip().splitlines()
    assert 1 == len(lines)
    assert "ok" in lines[0]
    assert "5 events" in lines[0]
    assert before == db.read_bytes()


def test_verify_tampered_file_exits_1_naming_the_first_bad_seq(tmp_path: Path) -> None:
    """After triggers are dropped and event 3 is altered, ``verify`` exits 1 and names
    seq 3."""
    db = tmp_path / "tampered.db"
    _make_log(db, 5)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for trigger in EVENT_TRIGGERS:
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("UPDATE events SET data = replace(data, '\"1.3\"', '\"1.31\"') "
                     "WHERE seq = 3")
    done = _verify(db)
    assert 1 == done.returncode, done.stdout + done.stderr
    assert "seq 3" in done.stdout
    assert "FAILED" in done.stdout


def test_verify_removed_trigger_exits_1(tmp_path: Path) -> None:
    """A log whose chain is intact but lost a trigger fails verify, naming the trigger."""
    db = tmp_path / "open.db"
    _make_log(db, 2)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER events_no_update")
    done = _verify(db)
    assert 1 == done.returncode, done.stdout + done.stderr
    assert "events_no_update" in done.stdout


def test_verify_foreign_file_exits_1_without_touching_it(tmp_path: Path) -> None:
    """``verify`` on a file that is not a tradelog database says so and exits 1."""
    db = tmp_path / "notes.db"
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    before = db.read_bytes()
    done = _verify(db)
    assert 1 == done.returncode
    assert "not a tradelog database" in done.stderr
    assert before == db.read_bytes()


def test_verify_reports_an_altered_account_count(tmp_path: Path) -> None:
    """Someone changing the accounts table (the counts behind expected_version) makes
    verify fail and name the account, though the chain itself is intact."""
    db = tmp_path / "t.db"
    _make_log(db, 3)
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE accounts SET version = version + 5")
    done = _verify(db)
    assert 1 == done.returncode
    assert "account 'acct-1' holds 3 events but the accounts table says 8" in done.stdout


def test_verify_damaged_bytes_exit_1_saying_storage_corrupt_at_that_seq(
        tmp_path: Path) -> None:
    """Bytes of event 31's stored payload overwritten in the file (not through SQL):
    ``verify`` exits 1 with "storage corrupt at seq 31" and 30 events good before it,
    instead of a decode error without a seq."""
    db = tmp_path / "damaged.db"
    _make_log(db, 60)
    raw = bytearray(db.read_bytes())
    at = raw.find(b'"price":"1.31"')
    assert at > 0
    assert -1 == raw.find(b'"price":"1.31"', at + 1)
    raw[at + 9:at + 12] = b"\xff\xfe\xff"
    db.write_bytes(bytes(raw))
    done = _verify(db)
    assert 1 == done.returncode, done.stdout + done.stderr
    assert done.stdout.startswith("verify: FAILED: storage corrupt at seq 31: ")
    assert "(30 events good before it;" in done.stdout
    assert "" == done.stderr
