"""``rebuild``, ``show``, ``export`` and ``report`` on a PostgreSQL store, through the
installed ``tradelog`` command: each answers what it answers on a SQLite file holding
the same log (a ``migrate``d copy: the same seqs, recorded times and hashes); ``rebuild``
runs beside a daemon on the log; ``backup`` writes a SQLite copy (``restore --store`` and
``import --store``: ``test_postgres_restore_import.py``)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from daemon.cli.source import ReadSource
from eventstore.store import parse_store
from projections.query import ViewQuery
from tests.cli.first_hour import clean_env, run
from tests.daemon.test_postgres_as_of import _bulk
from tests.daemon_support import RawConnection
from tests.eventstore.test_store_contract import PgLog
from tests.ops_support import every_type_log, make_log
from tests.support import DaemonProcess, fill

VIEWS = ["positions", "trades", "balances", "daily", "signals", "orders", "journal",
         "history", "instruments", "accounts", "strategies"]


@pytest.fixture
def both(pg: PgLog, tmp_path: Path) -> tuple[str, Path]:
    """A log of every event type (one commit per event) in a SQLite file with its views,
    copied to the PostgreSQL schema by ``migrate`` (the events only: no view tables
    there yet). Returns (the PostgreSQL URL, the file)."""
    db = tmp_path / "lite.db"
    asyncio.run(make_log(db, [[e] for e in every_type_log()]))
    copied = run("migrate", "--from", f"sqlite:///{db}", "--to", pg.url)
    assert 0 == copied.returncode, copied.stderr
    return pg.url, db


def _away(socket: Path) -> dict[str, str]:
    """The environment with the daemon's socket at ``socket`` (where none answers)."""
    return clean_env(TRADELOG_SOCKET=str(socket))


def _show(where: list[str], view: str, socket: Path, *extra: str) -> dict[str, Any]:
    shown = run("show", view, "--format", "json", "--limit", "1000", *where, *extra,
                env=_away(socket))
    assert 0 == shown.returncode, shown.stderr
    answer: dict[str, Any] = json.loads(shown.stdout)
    return answer


def _query(source: ReadSource, view: str, point: dict[str, Any]) -> dict[str, Any]:
    """The answer of ``view`` at ``point`` (``as_of``/``as_of_time``) read without a
    daemon through ``ReadSource``, the reader ``show`` prints from."""
    return source.query(ViewQuery(view=view, limit=1000, **point))


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {str(row[0]) for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}


def test_rebuild_then_show_answer_what_sqlite_answers(both: tuple[str, Path],
                                                     tmp_path: Path) -> None:
    """Before any, ``show`` of a view now says the log has none yet, naming ``rebuild``.
    ``rebuild --store URL`` folds the migrated log into view tables in PostgreSQL, ending
    with a snapshot at the last seq; ``show --store URL`` with no daemon reads them (and
    ``--as-of``), answering each view as ``show --db`` answers it from the SQLite file,
    saying where it read."""
    url, db = both
    assert "positions" not in _tables(url)
    nobody = tmp_path / "no-daemon.sock"
    before = run("show", "balances", "--store", url, env=_away(nobody))
    assert 1 == before.returncode
    assert "has no views yet" in before.stderr
    assert "tradelog rebuild" in before.stderr
    rebuilt = run("rebuild", "--store", url)
    assert 0 == rebuilt.returncode, rebuilt.stderr
    assert f"rebuild: {len(every_type_log())} events folded" in rebuilt.stdout
    assert {"positions", "trades", "projection_checkpoint", "view_snapshots"} <= _tables(url)
    with psycopg.connect(url) as conn:  # whole at the last seq, for daemons running on
        ends = [row[0] for row in conn.execute("SELECT seq FROM view_snapshots")]
    assert [len(every_type_log())] == ends
    points: list[dict[str, Any]] = [{}, {"as_of": 7}, {"as_of_time": "2024-03-01T12:00:00Z"}]
    with ReadSource("file", db=db) as lite, \
            ReadSource("postgresql", store=parse_store(url)) as on_pg:
        for view, point, flags in (("positions", points[0], []),  # the command, both stores
                                   ("orders", points[1], ["--as-of", "7"]),
                                   ("balances", points[2],
                                    ["--as-of-time", "2024-03-01T12:00:00Z"])):
            expected = _show(["--db", str(db)], view, nobody, *flags)
            assert expected["rows"], (view, flags)
            assert expected == _show(["--store", url], view, nobody, *flags), (view, flags)
            assert expected == _query(lite, view, point)
        compared = 0
        for view in VIEWS:  # every view at each point, through what ``show`` reads with
            for point in points:
                answer = _query(lite, view, point)
                assert answer == _query(on_pg, view, point), (view, point)
                compared += len(answer["rows"])
    assert compared > 30
    said = run("show", "balances", "--store", url, env=_away(nobody))
    assert "read-only (no daemon at" in said.stderr
    assert "postgresql://" in said.stderr


def test_rebuild_beside_a_running_daemon(pg: PgLog, tmp_path: Path) -> None:
    """``rebuild --store URL`` while a daemon appends to the log: it takes the log's
    lock for its one transaction, and after it the daemon appends on and its views equal
    what ``show --store`` reads from the tables; ``show`` asks the daemon when it runs."""
    (tmp_path / "d").mkdir()
    with DaemonProcess(tmp_path / "d", extra_args=["--store", pg.url]) as daemon:
        with RawConnection(daemon.socket, timeout_s=60) as conn:
            conn.result("append", {"events": [fill("buy", "3", "10", event_id="f1"),
                                              fill("sell", "1", "12", event_id="f2")]})
            rebuilt = run("rebuild", "--store", pg.url)
            assert 0 == rebuilt.returncode, rebuilt.stderr
            assert "rebuild: 2 events folded" in rebuilt.stdout
            conn.result("append", {"events": [fill("sell", "2", "13", event_id="f3"),
                                              fill("buy", "5", "9", event_id="f4")]})
            served = {view: conn.result("query", {"view": view, "limit": 1000})
                      for view in VIEWS}
        from_daemon = run("show", "positions", "--format", "json", "--store", pg.url,
                          "--socket", str(daemon.socket))
        assert 0 == from_daemon.returncode, from_daemon.stderr
        assert "from the daemon" in from_daemon.stderr
        assert served["positions"] == json.loads(from_daemon.stdout)
        nobody = tmp_path / "no-daemon.sock"
        assert served["trades"] == _show(["--store", pg.url], "trades", nobody)
        with ReadSource("postgresql", store=parse_store(pg.url)) as tables:
            for view in VIEWS:
                assert served[view] == _query(tables, view, {}), view
        assert ["5"] == [row["quantity"] for row in served["positions"]["rows"]]


def test_export_reads_the_postgresql_log(both: tuple[str, Path], tmp_path: Path) -> None:
    """``export --store URL`` writes the same events.jsonl and view CSVs, byte for byte,
    as ``export --db`` of the SQLite file, now and ``--to-seq`` a past seq."""
    url, db = both
    assert 0 == run("rebuild", "--store", url).returncode
    for extra in ([], ["--to-seq", "9"]):
        out_pg, out_lite = tmp_path / f"pg{len(extra)}", tmp_path / f"lite{len(extra)}"
        done = run("export", str(out_pg), "--store", url, *extra)
        assert 0 == done.returncode, done.stderr
        assert 0 == run("export", str(out_lite), "--db", str(db), *extra).returncode
        names = sorted(p.name for p in out_lite.iterdir())
        assert names == sorted(p.name for p in out_pg.iterdir())
        assert {"events.jsonl", "positions.csv", "trades.csv"} <= set(names)
        for name in names:
            assert (out_lite / name).read_bytes() == (out_pg / name).read_bytes(), name
        assert (out_pg / "trades.csv").read_text().count("\n") > 1


def test_report_reads_the_postgresql_log(both: tuple[str, Path], tmp_path: Path) -> None:
    """``report --store URL --json`` with no daemon gives every account's metrics as
    ``report --db`` gives them from the SQLite file (the same ``--now``)."""
    url, db = both
    assert 0 == run("rebuild", "--store", url).returncode
    away = _away(tmp_path / "no-daemon.sock")
    common = ["--json", "--now", "2024-03-05T00:00:00Z"]
    on_pg = run("report", "--store", url, *common, env=away)
    assert 0 == on_pg.returncode, on_pg.stderr
    on_lite = run("report", "--db", str(db), *common, env=away)
    assert 0 == on_lite.returncode, on_lite.stderr
    expected = json.loads(on_lite.stdout)
    assert len(expected["accounts"]) == 2
    assert expected == json.loads(on_pg.stdout)
    one = run("report", "--store", url, "--account", "acct-2", *common, env=away)
    assert 0 == one.returncode, one.stderr
    assert "acct-2" == json.loads(one.stdout)["account"]


def test_backup_of_a_postgresql_log_is_a_verified_sqlite_file(both: tuple[str, Path],
                                                              tmp_path: Path) -> None:
    """``backup DEST --store URL`` writes a new 0600 SQLite file holding the log with its
    seqs and hashes (``verify`` of it gives the PostgreSQL log's last hash), which
    ``restore`` takes as any backup; an existing DEST is refused, left as it was."""
    url, _ = both
    dest = tmp_path / "copy.db"
    done = run("backup", str(dest), "--store", url)
    assert 0 == done.returncode, done.stderr
    assert f"backup: {dest}: {len(every_type_log())} events" in done.stdout
    assert 0o600 == dest.stat().st_mode & 0o777
    on_pg = run("verify", "--store", url)
    on_copy = run("verify", "--db", str(dest))
    assert 0 == on_copy.returncode, on_copy.stdout
    last_hash = on_pg.stdout.split("last hash ")[1][:16]
    assert f"last hash {last_hash}" in on_copy.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy.db")] == []
    again = run("backup", str(dest), "--store", url)
    assert 1 == again.returncode
    assert "already exists" in again.stderr
    restored = run("restore", str(dest), "--db", str(tmp_path / "restored.db"))
    assert 0 == restored.returncode, restored.stderr


def test_a_daemon_snapshots_whole_after_a_rebuild_beside_it(pg: PgLog, tmp_path: Path) -> None:
    """A daemon's first snapshot (at 10,400 events, the end of its group), a ``rebuild``
    beside it (whose own snapshots fall at its batches' ends: 10,240), then the daemon's
    next snapshot (at 20,800): ``as_of`` past it still answers every signal and order
    as a daemon on a SQLite copy does, the signals of seqs 10,241..10,400 among them.
    The rebuild ends with a snapshot at its last seq, so its version tables are whole
    where the daemon's own pending rows start."""
    (tmp_path / "pg").mkdir()
    (tmp_path / "lite").mkdir()
    with DaemonProcess(tmp_path / "pg", extra_args=["--store", pg.url]) as daemon:
        with RawConnection(daemon.socket, timeout_s=300) as conn:
            for start in range(0, 10_400, 2_080):
                conn.result("append", {"events": _bulk(start, 2_080)})
            rebuilt = run("rebuild", "--store", pg.url, timeout_s=300)
            assert 0 == rebuilt.returncode, rebuilt.stderr
            for start in range(10_400, 20_800, 2_080):
                conn.result("append", {"events": _bulk(start, 2_080)})
        with psycopg.connect(pg.url) as direct:
            snapshots = [row[0] for row in direct.execute(
                "SELECT seq FROM view_snapshots ORDER BY seq")]
        assert [10_240, 10_400, 20_800] == snapshots
        copied = run("migrate", "--from", pg.url,
                     "--to", f"sqlite:///{tmp_path / 'lite' / 'tradelog.db'}", timeout_s=300)
        assert 0 == copied.returncode, copied.stderr
        with DaemonProcess(tmp_path / "lite") as lite, \
                RawConnection(daemon.socket, timeout_s=300) as on_pg, \
                RawConnection(lite.socket, timeout_s=300) as on_lite:
            for view in ("signals", "orders", "positions"):
                query = {"view": view, "as_of": 20_800, "limit": 1000}
                expected = on_lite.result("query", query)
                assert len(expected["rows"]) > 100 or view == "positions"
                assert expected == on_pg.result("query", query), view


def test_migrate_to_a_seq_copies_the_log_up_to_it(pg: PgLog, tmp_path: Path) -> None:
    """``migrate --to-seq 5`` from a SQLite log to PostgreSQL copies seqs 1..5 with
    their hashes and nothing after; running it again without ``--to-seq`` copies the
    rest (resumed), and both logs verify."""
    db = tmp_path / "lite.db"
    events = every_type_log()
    asyncio.run(make_log(db, [[e] for e in events]))
    first = run("migrate", "--from", f"sqlite:///{db}", "--to", pg.url, "--to-seq", "5")
    assert 0 == first.returncode, first.stderr
    assert "5 events copied" in first.stdout
    with psycopg.connect(pg.url) as conn:
        copied = conn.execute("SELECT seq, hash FROM events ORDER BY seq").fetchall()
    lite = sqlite3.connect(db)
    try:
        source = lite.execute("SELECT seq, hash FROM events ORDER BY seq").fetchall()
    finally:
        lite.close()
    assert source[:5] == [tuple(row) for row in copied]
    rest = run("migrate", "--from", f"sqlite:///{db}", "--to", pg.url)
    assert 0 == rest.returncode, rest.stderr
    assert f"{len(source) - 5} events copied, 5 already there" in rest.stdout
    assert 2 == rest.stdout.count(": ok,")


def test_migrate_to_a_seq_out_of_range(pg: PgLog, tmp_path: Path) -> None:
    """``--to-seq -1`` is refused in one line before the target is touched (the empty
    PostgreSQL log stays empty, no SQLite target is created); a seq past any a log can
    hold copies the whole log, as one past its end does."""
    db = tmp_path / "lite.db"
    events = every_type_log()
    asyncio.run(make_log(db, [[e] for e in events]))
    target = tmp_path / "copy.db"
    for url in (f"sqlite:///{target}", pg.url):
        refused = run("migrate", "--from", f"sqlite:///{db}", "--to", url, "--to-seq", "-1")
        assert 1 == refused.returncode
        assert refused.stderr.splitlines()[-1] == "tradelog: copy up to seq -1: give 0 or more"
    assert not target.exists()
    huge = run("migrate", "--from", f"sqlite:///{db}", "--to", pg.url, "--to-seq", "9" * 30)
    assert 0 == huge.returncode, huge.stderr
    assert f"{len(events)} events copied" in huge.stdout
