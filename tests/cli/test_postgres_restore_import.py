"""``restore --store`` and ``import --store`` on a PostgreSQL log, through the installed
``tradelog`` command: a backup restored into an empty schema to a seq holds what the
SQLite restore to that seq holds (events and every view) and verifies; a schema holding
events is refused, left as it was; an import straight into the log beside a daemon
serving it stores the file once, and the views show it as a SQLite import does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from daemon.cli.restore import restore, restore_store
from eventstore import ddl
from eventstore.backup import backup_file
from eventstore.errors import ValidationError
from eventstore.store import open_reader, open_store, parse_store
from projections.query import ViewQuery, query_view
from tests.cli.first_hour import clean_env, run
from tests.daemon_support import RawConnection
from tests.eventstore.test_store_contract import PgLog
from tests.ops_support import every_type_log, make_log, stored_rows
from tests.support import DaemonProcess, fill

VIEWS = ["positions", "trades", "balances", "daily", "signals", "orders", "journal",
         "history", "instruments", "accounts", "strategies"]
TRADES = Path(__file__).parents[1] / "data" / "trades.csv"
IMPORT = ["--format", "trades-csv", "--account", "legacy", "--quantity", "100000"]


def _backup(tmp_path: Path, events: list[dict[str, Any]], name: str) -> Path:
    """A backup (``tradelog backup``'s copy) of a log of ``events``, one commit each."""
    db = tmp_path / f"{name}.db"
    asyncio.run(make_log(db, [[e] for e in events]))
    copy = tmp_path / f"{name}-backup.db"
    backup_file(db, copy)
    return copy


def _pg_rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(f"SELECT {ddl.EVENT_COLUMNS} FROM events ORDER BY seq"))


def _views(target: Path | str) -> dict[str, list[dict[str, Any]]]:
    """Every view's rows as ``query`` answers them, read-only, from a SQLite file or a
    PostgreSQL log."""

    async def read() -> dict[str, list[dict[str, Any]]]:
        reader = await open_reader(target if isinstance(target, Path) else parse_store(target))
        try:
            return {view: (await query_view(reader, ViewQuery(view=view, limit=1000)))["rows"]
                    for view in VIEWS}
        finally:
            await reader.close()

    return asyncio.run(read())


def _verified(url: str) -> int:
    """The events ``verify`` checks in the log at ``url``, once it finds it clean."""

    async def check() -> int:
        store = await open_store(url, readonly=True)
        try:
            report = await store.verify()
        finally:
            await store.close()
        assert report.ok, report.reason
        return report.checked

    return asyncio.run(check())


def _everything(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the schema, to see that nothing changed."""
    with psycopg.connect(url) as conn:
        tables = [str(r[0]) for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"'), key=repr) for t in tables}


def test_restore_into_an_empty_schema_equals_the_sqlite_restore(pg: PgLog,
                                                                tmp_path: Path) -> None:
    """``restore BACKUP --store URL --to-seq 9`` into an empty schema holds events 1..9
    exactly as the SQLite ``restore --to-seq 9`` holds them (seqs, times, hashes), every
    view answers the same rows, and ``verify --store`` is clean."""
    backup = _backup(tmp_path, every_type_log(), "source")
    done = run("restore", str(backup), "--store", pg.url, "--to-seq", "9")
    assert 0 == done.returncode, done.stderr
    assert f"events 1..9 of {len(every_type_log())} (point in time); 9 events" in done.stdout
    assert "postgresql://" in done.stdout
    assert "verify ok" in done.stdout
    lite = tmp_path / "restored.db"
    asyncio.run(restore(backup, lite, to_seq=9))
    assert 9 == len(stored_rows(lite))
    assert stored_rows(lite) == _pg_rows(pg.url)
    expected = _views(lite)
    assert sum(1 for rows in expected.values() if rows) >= 5
    assert expected == _views(pg.url)
    checked = run("verify", "--store", pg.url)
    assert 0 == checked.returncode, checked.stdout
    assert "ok: 9 events" in checked.stdout


def test_restore_to_a_time_keeps_what_the_sqlite_restore_keeps(pg: PgLog,
                                                                tmp_path: Path) -> None:
    """``--to-time T`` keeps the events recorded at or before T, on both stores alike."""
    backup = _backup(tmp_path, every_type_log(), "source")
    moment = stored_rows(backup)[6][9]  # recorded_at of seq 7
    report = asyncio.run(restore_store(backup, parse_store(pg.url), to_time=moment))
    lite = tmp_path / "then.db"
    asyncio.run(restore(backup, lite, to_time=moment))
    assert report.events == len(stored_rows(lite)) >= 7
    assert stored_rows(lite) == _pg_rows(pg.url)
    assert _views(lite) == _views(pg.url)


def test_restore_into_a_schema_holding_events_is_refused(pg: PgLog, tmp_path: Path) -> None:
    """Into a log holding events, ``restore --store`` exits 1 saying so and what to do,
    and the schema is as it was; with ``--force`` too when they are another log's.
    ``--force`` goes on only after events that are the backup's first ones: the log
    then holds the backup to the seq asked for, as the SQLite restore does."""
    backup = _backup(tmp_path, every_type_log(), "source")
    other = _backup(tmp_path, every_type_log()[:4] + every_type_log()[5:], "other")
    asyncio.run(restore_store(backup, parse_store(pg.url), to_seq=5))
    before = _everything(pg.url)
    assert 5 == len(before["events"])
    assert before["positions"]
    refused = run("restore", str(backup), "--store", pg.url)
    assert 1 == refused.returncode, refused.stdout
    assert "holds a log of 5 events" in refused.stderr
    assert "nothing was restored" in refused.stderr
    assert "new schema" in refused.stderr
    assert "never removes events" in refused.stderr
    assert before == _everything(pg.url)
    for src, to_seq in ((other, None), (backup, 3)):
        with pytest.raises(ValidationError, match=r"holds a log of 5 events \(they are not"):
            asyncio.run(restore_store(src, parse_store(pg.url), to_seq=to_seq, force=True))
        assert before == _everything(pg.url)
    more = run("restore", str(backup), "--store", pg.url, "--to-seq", "12", "--force")
    assert 0 == more.returncode, more.stderr
    assert "12 events, last seq 12" in more.stdout
    lite = tmp_path / "twelve.db"
    asyncio.run(restore(backup, lite, to_seq=12))
    assert stored_rows(lite) == _pg_rows(pg.url)
    assert _views(lite) == _views(pg.url)
    assert _verified(pg.url) == 12


def test_import_store_beside_a_daemon_stores_the_file_once(pg: PgLog, tmp_path: Path) -> None:
    """``import FILE --store URL`` with a daemon serving the log, between two of its
    appends: the file's events are stored once (a second import answers them all as
    already stored), the reconciliation reads them in the views, the daemon's views show
    them, and every view equals that of a SQLite file holding the same events (the
    same imports with ``--db``, the daemon's fills appended around them)."""
    (tmp_path / "d").mkdir()
    with DaemonProcess(tmp_path / "d", extra_args=["--store", pg.url]) as daemon, \
            RawConnection(daemon.socket, timeout_s=60) as conn:
        conn.result("append", {"events": [fill("buy", "3", "10", event_id="f1",
                                                account="bot")]})
        outputs = [run("import", str(TRADES), *IMPORT, "--store", pg.url,
                       env=clean_env(TRADELOG_SOCKET=str(daemon.socket)))
                   for _ in range(2)]
        conn.result("append", {"events": [fill("sell", "1", "12", event_id="f2",
                                                account="bot")]})
        served = {view: conn.result("query", {"view": view, "limit": 1000})["rows"]
                  for view in VIEWS}
    first, second = outputs
    assert 0 == first.returncode, first.stderr
    assert "789 new events, 0 already stored" in first.stdout
    assert "in the views: 262 round trips, realized P&L 936  (match)" in first.stdout
    assert 0 == second.returncode, second.stderr
    assert "0 new events, 789 already stored" in second.stdout
    assert 791 == _verified(pg.url)
    lite = tmp_path / "lite.db"
    asyncio.run(make_log(lite, [[fill("buy", "3", "10", event_id="f1", account="bot")]]))
    assert 0 == run("import", str(TRADES), *IMPORT, "--db", str(lite)).returncode
    asyncio.run(make_log(lite, [[fill("sell", "1", "12", event_id="f2", account="bot")]]))
    expected = _views(lite)
    assert len(expected["trades"]) > 200
    assert expected == _views(pg.url)
    assert expected == served


def test_import_with_db_and_store_is_refused() -> None:
    """``--db`` and ``--store`` name two logs: exit 2, before anything is read."""
    for store in ("postgresql://nobody@127.0.0.1:1/none", "sqlite:///other.db"):
        done = run("import", str(TRADES), *IMPORT, "--db", "x.db", "--store", store)
        assert 2 == done.returncode
        assert "not both" in done.stderr
