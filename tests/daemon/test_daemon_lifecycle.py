"""The daemon's lifecycle under load and faults: SIGTERM drains, kill -9 loses nothing
acknowledged, SIGHUP reloads the config (access rules, limits), a full disk is -32001."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.client import AsyncClient, RemoteError
from tests.daemon_support import (
    RawConnection,
    all_views,
    call_as,
    health,
    read_all,
    running,
    sqlite_rows,
    tradelog,
    wait_for_log,
)
from tests.support import DaemonProcess, daemon_on, fill, wire_event

NOBODY = 65534
"""The uid the access-rule tests act as (its rules in their config)."""


def _events(client_no: int, n: int) -> list[dict[str, Any]]:
    """A small mixed batch: fills that open and close, a journal entry now and then."""
    source = f"bot/{client_no}"
    account = f"acct-{client_no % 3}"
    batch = [fill("buy" if n % 2 == 0 else "sell", "1", str(100 + n % 7), source=source,
                  event_id=f"{n}-f", account=account, symbol=f"S{client_no % 2}")]
    if n % 4 == 0:
        batch.append(wire_event("journal", {"text": f"note {n}"}, source=source,
                                event_id=f"{n}-j", account=account))
    return batch


def _appending_until(proc: DaemonProcess, sig: int, after_acks: int,
                     clients: int = 8) -> list[tuple[str, str]]:
    """Clients append concurrently; after ``after_acks`` acknowledged events send ``sig``.
    Returns every acknowledged (source, id)."""

    async def run() -> list[tuple[str, str]]:
        acked: list[tuple[str, str]] = []

        async def one(client_no: int) -> None:
            try:
                async with AsyncClient(proc.socket, retry_for_s=0) as client:
                    for n in range(100_000):
                        answer = await client.append(_events(client_no, n))
                        acked.extend((r["source"], r["id"]) for r in answer["results"])
            except (OSError, EOFError, RemoteError):
                return

        tasks = [asyncio.create_task(one(c)) for c in range(clients)]
        while len(acked) < after_acks and not all(t.done() for t in tasks):
            await asyncio.sleep(0.005)
        assert proc.proc is not None
        proc.proc.send_signal(sig)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        return acked

    return asyncio.run(run())


def _exactly_once(acked: list[tuple[str, str]], stored: list[dict[str, Any]]) -> None:
    counts = collections.Counter((e["source"], e["id"]) for e in stored)
    assert [] == [key for key in acked if counts[key] != 1]
    assert [] == [key for key, n in counts.items() if n != 1]
    assert list(range(1, len(stored) + 1)) == [e["seq"] for e in stored]


@pytest.mark.both_stores
@pytest.mark.slow(seconds=3)
def test_sigterm_under_load_loses_nothing_acknowledged(tmp_path: Path, store: str) -> None:
    """SIGTERM while clients append: exit code 0, and after a restart every acknowledged
    event is stored exactly once, with seqs 1..N (on a SQLite file and on PostgreSQL)."""
    with daemon_on(store, tmp_path) as proc:
        acked = _appending_until(proc, signal.SIGTERM, after_acks=400)
        assert 0 == proc.stop()
        assert len(acked) >= 400
        wait_for_log(proc, "daemon_stopped")
        proc.start()
        _exactly_once(acked, read_all(proc.socket))


@pytest.mark.both_stores
@pytest.mark.slow(seconds=4)
def test_kill_9_under_load_then_restart(tmp_path: Path, store: str) -> None:
    """kill -9 while clients append, then restart: every acknowledged event is there once,
    seqs are gapless, `tradelog verify` passes and the views equal a rebuild from the log
    (on a SQLite file and on PostgreSQL)."""
    with daemon_on(store, tmp_path) as proc:
        acked = _appending_until(proc, signal.SIGKILL, after_acks=400)
        assert -signal.SIGKILL == proc.stop()
        proc.start()
        stored = read_all(proc.socket)
        _exactly_once(acked, stored)
        live_views = all_views(proc.socket)
        assert len(stored) == health(proc.socket)["projection_seq"]
        assert 0 == proc.stop()
        verify = tradelog("verify", *proc.log_args())
        assert (0, b"verify: ok") == (verify.returncode, verify.stdout[:10]), verify.stderr
        rebuilt = tradelog("rebuild", *proc.log_args())
        assert 0 == rebuilt.returncode, rebuilt.stderr
        proc.start()
        assert live_views == all_views(proc.socket)
        assert any(live_views.values())


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every uid can reach (pytest's tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="tradelog-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _codes(answers: list[dict[str, Any]]) -> list[int | None]:
    return [a.get("error", {}).get("code") for a in answers]


_ACCESS = """
socket_mode = 0o666
[limits]
max_events_per_append = {max_events}
[[access]]
uid = 65534
write = [{write}]
read = ["shared"]
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_access_rules_metadata_and_sighup_reload(tmp_path: Path, open_dir: Path) -> None:
    """With [[access]] rules a peer may write and read only its accounts (-32004 for
    others), its pid/uid/gid land in the stored event's metadata, the daemon's own uid
    may do everything, and SIGHUP applies a changed rule and limit."""
    config = tmp_path / "tradelog.toml"
    config.write_text(_ACCESS.format(max_events=2, write='"bot-a"'))
    proc = DaemonProcess(tmp_path, extra_args=["--config", str(config)])
    proc.socket = open_dir / "tradelog.sock"
    with proc:
        pid, answers = call_as(proc.socket, [
            ("append", {"events": [fill("buy", "1", "1", account="bot-a")]}),
            ("append", {"events": [fill("buy", "1", "1", account="bot-c")]}),
            ("append", {"events": [fill("buy", "1", "1", account="bot-a"),
                                   fill("buy", "1", "1", account="bot-c")]}),
            ("query", {"view": "positions", "account": "bot-a"}),
            ("query", {"view": "positions", "account": "shared"}),
            ("query", {"view": "positions", "account": "bot-c"}),
            ("query", {"view": "positions"}),
            ("read", {}),
            ("read", {"account": "bot-a"}),
            ("subscribe", {"account": "bot-c"}),
        ], uid=NOBODY)
        assert [None, -32004, -32004, None, None, -32004, -32004, -32004, None, -32004] == (
            _codes(answers))
        [(metadata,)] = sqlite_rows(proc.db, "SELECT metadata FROM events")
        assert {"pid": pid, "uid": 65534, "gid": 65534} == json.loads(metadata)
        with RawConnection(proc.socket) as conn:
            own = conn.call("append", {"events": [fill("buy", "1", "1", account="bot-z")]})
            too_many = conn.call("append", {"events": [fill("buy", "1", "1")] * 3})
        assert (None, -32602) == (own.get("error"), too_many["error"]["code"])

        config.write_text(_ACCESS.format(max_events=5, write='"bot-a", "bot-c"'))
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)
        wait_for_log(proc, "config_reloaded")
        _, answers = call_as(proc.socket, [
            ("append", {"events": [fill("buy", "1", "1", account="bot-c")] * 3}),
        ], uid=NOBODY)
        assert [None] == _codes(answers)

        config.write_text("limits = 'not a table'")
        proc.proc.send_signal(signal.SIGHUP)
        failed = wait_for_log(proc, "config_reload_failed")
        assert "limits" in failed["error"]
        assert "ok" == health(proc.socket)["status"]
        assert 0 == proc.stop()


def test_full_disk_is_storage_unavailable(tmp_path: Path) -> None:
    """With the database capped (TRADELOG_MAX_PAGE_COUNT), an append that does not fit gets
    -32001 and stores nothing, and the daemon keeps serving."""
    with running(tmp_path, env={"TRADELOG_MAX_PAGE_COUNT": "1"}) as proc:
        wait_for_log(proc, "storage_capped")
        before = health(proc.socket)["last_seq"]
        big = [wire_event("journal", {"text": "x" * 2000}) for _ in range(300)]
        with RawConnection(proc.socket) as conn:
            answer = conn.call("append", {"events": big})
            assert -32001 == answer["error"]["code"]
            assert "nothing was stored" in answer["error"]["message"]
            assert before == conn.result("health")["last_seq"]
            assert [] == conn.result("query", {"view": "journal"})["rows"][before:]
            again = conn.call("append", {"events": big})
            assert -32001 == again["error"]["code"]
        assert before == len(read_all(proc.socket))
        assert "ok" == health(proc.socket)["status"]
        assert proc.proc is not None
        assert proc.proc.poll() is None


def test_sigterm_right_after_start_exits_cleanly(tmp_path: Path) -> None:
    """SIGTERM as soon as the socket accepts drains and exits 0 (no default-signal death)."""
    proc = DaemonProcess(tmp_path)
    with proc:
        assert 0 == proc.stop()


def test_second_daemon_on_the_same_file_is_refused(daemon: DaemonProcess,
                                                   tmp_path: Path) -> None:
    """A second `tradelog serve` on a database already served exits non-zero, naming the
    running daemon; the first keeps serving."""
    second = tradelog("serve", "--db", str(daemon.db), "--socket", str(tmp_path / "b.sock"))
    assert 1 == second.returncode
    assert b"is in use by another tradelog process" in second.stderr
    assert "ok" == health(daemon.socket)["status"]
