"""``tradelog restore``: verify first, never over a served database, point-in-time recovery."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from daemon.cli.restore import restore
from daemon.lockfile import hold_lock
from eventstore.backup import verify_file
from eventstore.errors import DatabaseFileError, StorageCorruptError, ValidationError
from tests.daemon_support import tradelog
from tests.ops_support import every_type_log, make_log, stored_rows, views_of
from tests.support import DaemonProcess


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A log of every event type, one commit per event (so each has its recorded_at)."""
    path = tmp_path / "source.db"
    asyncio.run(make_log(path, [[e] for e in every_type_log()]))
    return path


@pytest.mark.parametrize("to_seq", [0, 1, 5, 9, 12, 14])
async def test_to_seq_equals_as_of_for_every_view(source: Path, tmp_path: Path,
                                                  to_seq: int) -> None:
    """restore --to-seq N holds events 1..N exactly as stored (ids, times, seqs,
    recorded_at, hashes) and every view equals the source's view as_of N."""
    dest = tmp_path / "pitr.db"
    report = await restore(source, dest, to_seq=to_seq)
    assert stored_rows(source)[:to_seq] == stored_rows(dest)
    assert await views_of(source, as_of=to_seq) == await views_of(dest)
    assert (to_seq, to_seq) == (report.events, report.to_seq)
    assert verify_file(dest).ok
    assert 0o600 == stat.S_IMODE(os.stat(dest).st_mode)


async def test_to_time_keeps_events_recorded_up_to_then(source: Path, tmp_path: Path) -> None:
    """restore --to-time T keeps exactly the events whose recorded_at <= T."""
    rows = stored_rows(source)
    moment = rows[6][9]  # recorded_at of seq 7
    report = await restore(source, tmp_path / "t.db", to_time=moment)
    expected = [r for r in rows if r[9] <= moment]
    assert expected == stored_rows(tmp_path / "t.db")
    assert len(expected) == report.events


async def test_whole_restore_rebuilds_views(source: Path, tmp_path: Path) -> None:
    """Without a point, the restored file holds the whole log and the same views."""
    report = await restore(source, tmp_path / "all.db")
    assert stored_rows(source) == stored_rows(tmp_path / "all.db")
    assert await views_of(source) == await views_of(tmp_path / "all.db")
    assert (19, None, 19) == (report.events, report.to_seq, report.views_folded)


async def test_refuses_a_database_a_daemon_holds(source: Path, tmp_path: Path) -> None:
    """A file whose lock is held (the daemon holds it while serving) is never replaced,
    even with --force."""
    dest = tmp_path / "served.db"
    dest.write_bytes(b"")
    with hold_lock(dest), pytest.raises(DatabaseFileError, match="in use"):
        await restore(source, dest, force=True)
    assert b"" == dest.read_bytes()


def test_cli_refuses_the_running_daemons_database(source: Path, tmp_path: Path) -> None:
    """`tradelog restore SRC --db DB --force` with a daemon serving DB exits 1, saying
    the file is in use, and the daemon's log is untouched."""
    (tmp_path / "d").mkdir()
    with DaemonProcess(tmp_path / "d") as proc:
        before = stored_rows(proc.db)
        done = tradelog("restore", str(source), "--db", str(proc.db), "--force")
        assert 1 == done.returncode
        assert "in use" in done.stderr.decode()
        assert before == stored_rows(proc.db)


async def test_existing_destination_needs_force(source: Path, tmp_path: Path) -> None:
    """An existing --db is replaced only with --force."""
    dest = tmp_path / "old.db"
    await restore(source, dest, to_seq=3)
    with pytest.raises(ValidationError, match="--force"):
        await restore(source, dest)
    await restore(source, dest, force=True)
    assert 19 == len(stored_rows(dest))


async def test_a_source_failing_verify_is_refused(source: Path, tmp_path: Path) -> None:
    """A source whose chain is broken at seq K is refused, unless the point asked for is
    before K; nothing is written."""
    conn = sqlite3.connect(source, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET data = replace(data, '100000', '100001') WHERE seq = 5")
    conn.close()
    with pytest.raises(StorageCorruptError, match="seq 5"):
        await restore(source, tmp_path / "bad.db")
    assert not (tmp_path / "bad.db").exists()
    report = await restore(source, tmp_path / "prefix.db", to_seq=4)
    assert 4 == report.events


def test_cli_prints_what_was_restored(source: Path, tmp_path: Path) -> None:
    """The command names the events, the last seq and hash, and the rebuilt views."""
    done = tradelog("restore", str(source), "--db", str(tmp_path / "x.db"), "--to-seq", "9")
    assert 0 == done.returncode, done.stderr
    out = done.stdout.decode()
    last_hash = stored_rows(source)[8][12]
    assert f"9 events, last seq 9, last hash {last_hash}" in out
    assert "views rebuilt" in out


async def test_a_symlinked_destination_is_refused(source: Path, tmp_path: Path) -> None:
    """DEST as a symlink (whose lock file would not be the real file's) is refused and
    the file it points to is untouched."""
    real = tmp_path / "real.db"
    await restore(source, real, to_seq=2)
    link = tmp_path / "link.db"
    link.symlink_to(real)
    with pytest.raises(ValidationError, match="symlink"):
        await restore(source, link, force=True)
    assert 2 == len(stored_rows(real))
