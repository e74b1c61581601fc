"""``tradelog import --void FILE``: undoing an import, into the file and through the daemon."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from daemon.client import Client
from daemon.importers import read_file
from tests.importers.test_import_keys import views
from tests.support import DaemonProcess

DATA = Path(__file__).parents[1] / "data"
CSV_ARGS = ["--format", "trades-csv", "--account", "bot", "--quantity", "100000"]


def tradelog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, check=False)


def test_void_undoes_an_import_by_content_whatever_the_file_is_called(tmp_path: Path) -> None:
    """A renamed copy of the imported file, given to --void, voids each of the 789
    events the import stored: the views show none of its round trips and a realized
    P&L of 0, the log keeps all; a second --void stores nothing new; --dry-run says
    what it would void and stores nothing. Another file's trades in the account stay,
    and are left out of this file's reconciliation."""
    db = tmp_path / "t.db"
    other = tmp_path / "other.csv"
    lines = (DATA / "trades.csv").read_text().splitlines()
    other.write_text("\n".join([lines[0], lines[1].replace("T00001", "X1")]) + "\n")
    assert 0 == tradelog("import", str(other), *CSV_ARGS, "--db", str(db)).returncode
    imported = tradelog("import", str(DATA / "trades.csv"), *CSV_ARGS, "--db", str(db))
    assert 0 == imported.returncode, imported.stderr
    # the reconciliation counts this file's round trips, not X1 of the other file
    assert "in the views: 262 round trips, realized P&L 936  (match)" in imported.stdout
    renamed = tmp_path / "renamed.csv"
    shutil.copy(DATA / "trades.csv", renamed)
    dry = tradelog("import", str(renamed), *CSV_ARGS, "--void", "--dry-run", "--db", str(db))
    assert ("void: 789 events in this file: 789 would be voided (dry run: nothing stored), "
            "0 voided before, 0 never stored") in dry.stdout
    undo = tradelog("import", str(renamed), *CSV_ARGS, "--void", "--db", str(db))
    assert 0 == undo.returncode, undo.stderr
    assert "void: 789 events in this file: 789 voided, 0 voided before, 0 never stored" in (
        undo.stdout)
    assert "in the views: 0 round trips of this file, realized P&L 0" in undo.stdout
    got = views(db, "bot")
    assert ["X1"] == [t["position_key"] for t in got["trades"]]
    assert Decimal(-1821) == Decimal(got["balances"][0]["realized_pnl"])
    assert [] == got["positions"]
    again = tradelog("import", str(renamed), *CSV_ARGS, "--void", "--db", str(db))
    assert "0 voided, 789 voided before, 0 never stored" in again.stdout
    never = tradelog("import", str(DATA / "daily_pnl.json"), "--format", "daily-pnl-json",
                     "--account", "bot", "--void", "--db", str(db))
    assert "void: 526 events in this file: 0 voided, 0 voided before, 526 never stored" in (
        never.stdout)


def test_void_finds_events_an_earlier_release_stored_under_the_files_name(
        tmp_path: Path) -> None:
    """Events imported before ids left the file's name (source
    ``import/trades-csv/trades.csv``) are found and voided by --void of that file."""
    read = read_file(DATA / "trades.csv", "trades-csv", "bot", Decimal(100000))
    old = tmp_path / "old.jsonl"
    with old.open("w") as handle:
        for event in read.events:
            handle.write(json.dumps({**event, "source": "import/trades-csv/trades.csv"}) + "\n")
    db = tmp_path / "t.db"
    assert 0 == tradelog("import", str(old), "--format", "events-jsonl", "--db",
                         str(db)).returncode
    undo = tradelog("import", str(DATA / "trades.csv"), *CSV_ARGS, "--void", "--db", str(db))
    assert "789 voided, 0 voided before, 0 never stored" in undo.stdout
    got = views(db, "bot")
    assert ([], []) == (got["balances"], got["trades"])  # as if never imported


def test_void_through_the_running_daemon(tmp_path: Path) -> None:
    """With a daemon serving, --void goes through its socket: the Kite day file's
    events are voided and the account's views are as if it had never been imported."""
    with DaemonProcess(tmp_path) as daemon:
        base = [str(DATA / "kite_daily_pnl.json"), "--format", "daily-pnl-json",
                "--account", "kite", "--socket", str(daemon.socket)]
        first = tradelog("import", *base)
        assert 0 == first.returncode, first.stderr
        undo = tradelog("import", *base, "--void")
        assert 0 == undo.returncode, undo.stderr
        assert "void: 82 events in this file: 82 voided" in undo.stdout
        with Client(daemon.socket) as client:
            balances = client.query("balances", account="kite")["rows"]
            trades = client.query("trades", account="kite")["rows"]
            voids = client.read(account="kite", types=["void"])["events"]
    assert ([], []) == (balances, trades)  # as if the file had never been imported
    assert 82 == len(voids)
    assert {"import/void"} == {v["source"] for v in voids}
    assert voids[0]["data"]["reason"] == ("undoing the import of kite_daily_pnl.json "
                                         "(tradelog import --void)")


def test_a_wrong_import_is_voided_then_imported_again_as_a_revision(tmp_path: Path) -> None:
    """Imported with the wrong quantity, the file cannot be imported again with another
    (its rows' ids are stored with other content: refused, saying how to replace it);
    after --void, --revision 2 imports the corrected rows under a new source and the
    views reconcile to 936; --void with --revision 2 finds those."""
    db = tmp_path / "t.db"
    wrong = ["--format", "trades-csv", "--account", "bot", "--quantity", "1000"]
    assert 0 == tradelog("import", str(DATA / "trades.csv"), *wrong, "--db", str(db)).returncode
    again = tradelog("import", str(DATA / "trades.csv"), *CSV_ARGS, "--db", str(db))
    assert 1 == again.returncode
    assert "is already stored at seq 2 with different content" in again.stderr
    assert "then import this file with --revision 2" in again.stderr
    assert 0 == tradelog("import", str(DATA / "trades.csv"), *wrong, "--void", "--db",
                         str(db)).returncode
    fixed = tradelog("import", str(DATA / "trades.csv"), *CSV_ARGS, "--revision", "2",
                     "--db", str(db))
    assert 0 == fixed.returncode, fixed.stderr
    assert ("789 new events, 0 already stored; this file: 262 round trips, realized P&L "
            "936.00000; in the views: 262 round trips, realized P&L 936  (match)"
            ) in fixed.stdout
    read = read_file(DATA / "trades.csv", "trades-csv", "bot", Decimal(100000), revision=2)
    assert {"import/trades-csv/bot/r2"} == {e["source"] for e in read.events}
    undo = tradelog("import", str(DATA / "trades.csv"), *CSV_ARGS, "--revision", "2",
                    "--void", "--dry-run", "--db", str(db))
    assert "789 would be voided" in undo.stdout
