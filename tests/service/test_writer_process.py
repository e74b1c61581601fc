"""The writer process: deferred view writes, queries that see every acknowledged event,
a killed writer, and errors that cross the pipe intact."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.cli.arguments import FORMAT_NAMES
from daemon.client import Client, RemoteError
from daemon.importers import FORMATS
from daemon.writer.launch import Forked
from eventstore.errors import (
    IdempotencyConflictError,
    StorageUnavailableError,
    ValidationError,
    VersionConflictError,
)
from eventstore.record import AppendOutcome, AppendRequest, EventResult
from eventstore.recorder import Recorder
from projections.startup import flush_views, open_views
from tests.daemon_support import all_views, health, read_all, sqlite_rows, tradelog
from tests.fold_support import fold_rows, new_event, view_rows
from tests.projections.test_views_runner import checkpoint, sample
from tests.support import DaemonProcess, fill, wire_event


async def test_deferred_views_are_written_once_per_stretch_and_on_flush(tmp_path: Path
                                                                        ) -> None:
    """With ``defer(N)`` the tables and checkpoint stay as they were until N events are
    folded; ``flush_views`` writes them, and they then equal a fold of the whole log."""
    path = tmp_path / "t.db"
    recorder = await Recorder.open(path)
    try:
        runner, _ = await open_views(recorder)
        runner.defer(20)
        await recorder.append([new_event(w) for w in sample()])
        await recorder.append([new_event(w) for w in sample(account="acct-2")])
        assert (14, 0) == (runner.checkpoint, runner.flushed)
        assert [] == sqlite_rows(path, "SELECT * FROM projection_checkpoint")
        await recorder.append([new_event(w) for w in sample(account="acct-3")])
        assert (21, 21) == (runner.checkpoint, runner.flushed)
        assert 21 == checkpoint(path)[0]
        await recorder.append([new_event(w) for w in sample(account="acct-4", start=20)])
        assert 21 == checkpoint(path)[0]
        await flush_views(recorder)
        assert (28, 28) == (runner.checkpoint, runner.flushed)
        assert 28 == checkpoint(path)[0]
        assert fold_rows(await recorder.read()) == await view_rows(recorder)
    finally:
        await recorder.close()


async def test_rows_held_back_at_a_crash_are_folded_again(tmp_path: Path) -> None:
    """Events committed while their view rows were held back (then the process died) are
    folded again from the log at the next start: the views equal a fold of the log."""
    path = tmp_path / "t.db"
    recorder = await Recorder.open(path)
    try:
        runner, _ = await open_views(recorder)
        runner.defer(1000)
        await recorder.append([new_event(w) for w in sample()])
        await recorder.append([new_event(w) for w in sample(account="acct-2", start=10)])
    finally:
        recorder.follower = None  # no flush on the way out: as after kill -9
        await recorder.close()
    assert [] == sqlite_rows(path, "SELECT * FROM projection_checkpoint")
    recorder = await Recorder.open(path)
    try:
        assert 14 == (await open_views(recorder))[1]
        assert fold_rows(await recorder.read()) == await view_rows(recorder)
    finally:
        await recorder.close()


def test_a_query_sees_every_event_acknowledged_before_it(tmp_path: Path) -> None:
    """Through the daemon (views held back in the writer process): a query sent right after
    an append's answer, on another connection, includes it, and its ``as_of_seq`` is the
    log's end; after SIGTERM the file's checkpoint is the log's end too."""
    with DaemonProcess(tmp_path) as proc, Client(proc.socket) as writer, \
            Client(proc.socket) as reader:
        for n in range(30):
            answer = writer.append([fill("buy", "1", str(100 + n), event_id=f"f{n}",
                                         symbol=f"S{n % 3}")])
            last = answer["last_seq"]
            result = reader.call("query", {"view": "positions"})
            assert last == result["as_of_seq"]
            assert n + 1 == sum(int(row["quantity"]) for row in result["rows"])
        assert health(proc.socket)["projection_seq"] == 30
        assert 0 == proc.stop()
    assert 30 == checkpoint(tmp_path / "tradelog.db")[0]


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_a_killed_writer_process_stops_the_daemon_and_loses_nothing(tmp_path: Path) -> None:
    """kill -9 of the writer process: the daemon exits 70 (outcome of the group in doubt)
    rather than answer wrongly; after a restart every acknowledged event is there once,
    `verify` passes and the views equal a fold of the log."""
    proc = DaemonProcess(tmp_path)
    acked: list[str] = []
    with proc:
        assert proc.proc is not None
        [child] = _children(proc.proc.pid)
        with Client(proc.socket, retry_for_s=0) as client:
            for n in range(20):
                client.append([wire_event("journal", {"text": f"n{n}"}, event_id=f"j{n}")])
                acked.append(f"j{n}")
            os.kill(child, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while proc.alive() and time.monotonic() < deadline:
                try:
                    client.append([wire_event("journal", {"text": "late"},
                                              event_id=f"late{time.monotonic_ns()}")])
                except (RemoteError, OSError, EOFError):
                    break
                time.sleep(0.01)
        assert 70 == proc.stop(timeout_s=10)
        proc.start()
        stored = read_all(proc.socket)
        ids = [e["id"] for e in stored]
        assert len(ids) == len(set(ids))
        assert set(acked) <= set(ids)
        assert len(stored) == health(proc.socket)["projection_seq"]
        live = all_views(proc.socket)
        assert len(live["journal"]) == len(stored)
        assert 0 == proc.stop()
    verify = tradelog("verify", "--db", str(proc.db))
    assert 0 == verify.returncode, verify.stderr


def test_errors_cross_the_pipe_with_their_fields() -> None:
    """What the writer process answers pickles back to the same classes and fields."""
    conflict = pickle.loads(pickle.dumps(IdempotencyConflictError("bot/a", "e1", 7)))
    assert ("bot/a", "e1", 7) == (conflict.source, conflict.event_id, conflict.seq)
    version = pickle.loads(pickle.dumps(VersionConflictError("acct-1", 3, 5)))
    assert ("acct-1", 3, 5) == (version.account, version.expected, version.version)
    invalid = pickle.loads(pickle.dumps(ValidationError("bad", [{"index": 0}])))
    assert ("bad", [{"index": 0}]) == (str(invalid), invalid.problems)
    full = pickle.loads(pickle.dumps(StorageUnavailableError("disk full")))
    assert isinstance(full, StorageUnavailableError)
    assert "disk full" == str(full)
    event = new_event(fill("buy", "2", "10.5"))
    request = pickle.loads(pickle.dumps(AppendRequest([event], "acct-1", 4)))
    assert (request.events[0], request.expected_account, request.expected_version) == (
        event, "acct-1", 4)
    outcome = AppendOutcome([EventResult("e", "s", 3, True)], 3, conflict)
    back = pickle.loads(pickle.dumps(outcome))
    assert (back.results, back.last_seq, str(back.error)) == (
        outcome.results, 3, str(conflict))


def test_a_query_writes_the_held_back_rows_to_the_file(tmp_path: Path) -> None:
    """After a query, the rows it read are in the file for any sqlite3 client too."""
    with DaemonProcess(tmp_path) as proc, Client(proc.socket) as client:
        client.append([fill("buy", "1", "100")])
        client.call("query", {"view": "balances"})
        conn = sqlite3.connect(f"{proc.db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            [(last,)] = conn.execute(
                "SELECT last_seq FROM projection_checkpoint WHERE name = 'views'").fetchall()
        finally:
            conn.close()
        assert 1 == last


def test_one_process_writer_still_serves(tmp_path: Path) -> None:
    """``writer_process = false``: no child process; appends, queries and a restart work
    as with the writer process, and the views are written with every commit."""
    env = {"TRADELOG_WRITER_PROCESS": "false"}
    with DaemonProcess(tmp_path, env=env) as proc, Client(proc.socket) as client:
        assert proc.proc is not None
        assert [] == _children(proc.proc.pid)
        client.append([fill("buy", "2", "100", event_id="a"),
                       fill("sell", "1", "110", event_id="b")])
        assert 2 == checkpoint(tmp_path / "tradelog.db")[0]
        [position] = client.call("query", {"view": "positions"})["rows"]
        assert "1" == position["quantity"]
        assert 0 == proc.stop()
        proc.start()
        assert 2 == health(proc.socket)["last_seq"]
        assert 0 == proc.stop()


def test_the_writer_process_does_without_pydantic() -> None:
    """The writer process imports neither pydantic nor the event schemas (it takes
    validated events), which keeps its own memory small."""
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, daemon.writer.child, projections.startup; "
         "print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'schemas.'))))"],
        capture_output=True, text=True, check=True)
    assert "['schemas.upcasters', 'schemas.values', 'schemas.versions']" == probe.stdout.strip()


def test_serve_forks_its_writer_without_a_new_interpreter(tmp_path: Path) -> None:
    """`tradelog serve` forks the writer process from itself once the writer's code is
    imported (no second interpreter start, no imports of its own): the child runs the
    daemon's command line, is named `tradelog-writer`, and serves appends. On SQLite
    neither process loads the PostgreSQL driver."""
    with DaemonProcess(tmp_path, fresh=True) as proc, Client(proc.socket) as client:
        assert proc.proc is not None
        [child] = _children(proc.proc.pid)
        assert "tradelog-writer" == Path(f"/proc/{child}/comm").read_text().strip()
        cmdline = Path(f"/proc/{proc.proc.pid}/cmdline").read_bytes()
        assert cmdline == Path(f"/proc/{child}/cmdline").read_bytes()
        client.append([fill("buy", "2", "100", event_id="a")])
        [position] = client.call("query", {"view": "positions"})["rows"]
        assert "2" == position["quantity"]
        for pid in (proc.proc.pid, child):
            assert "psycopg" not in Path(f"/proc/{pid}/maps").read_text()
        assert 0 == proc.stop()
    assert not Path(f"/proc/{child}").exists()


def test_forked_child_waits_with_a_timeout_and_is_killed() -> None:
    """``Forked`` gives a forked child ``Popen``'s ``wait`` (TimeoutExpired past the
    timeout, then the exit code) and ``kill`` (a no-op once it was waited for)."""
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    child = Forked(pid)
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=0.05)
    assert child.poll() is None
    child.kill()
    assert -signal.SIGKILL == child.wait(timeout=10)
    child.kill()
    assert -signal.SIGKILL == child.wait()


def test_import_formats_named_by_the_parser_are_the_importers() -> None:
    """The CLI's parser names the importers' formats without loading them."""
    assert tuple(sorted(FORMATS)) == FORMAT_NAMES
