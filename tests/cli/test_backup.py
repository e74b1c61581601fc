"""Backups: online through the real daemon while clients append, the ``backup`` method's
rules, the command line, and the scheduled backups."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from daemon.access import Access, Peer
from daemon.backup import SCHEDULED_NAME, auto_name, backup_method, prune
from daemon.config import AccessRule
from eventstore.backup import verify_file
from eventstore.errors import NotPermittedError, StorageUnavailableError
from tests.daemon_support import RawConnection, read_all, running, tradelog, wait_for_log
from tests.ops_support import every_type_log, make_log, stored_rows
from tests.support import wire_event


def _appender(socket: Path, client: int, acked: dict[str, int], lock: threading.Lock,
              stop: threading.Event) -> None:
    with RawConnection(socket) as conn:
        batch_no = 0
        while not stop.is_set():
            batch = [wire_event("journal", {"text": f"client {client} note {batch_no}.{i}"},
                                event_id=f"c{client}-{batch_no}-{i}") for i in range(10)]
            result = conn.result("append", {"events": batch})
            with lock:
                for item in result["results"]:
                    acked[item["id"]] = item["seq"]
            batch_no += 1


def test_backup_while_four_clients_append(tmp_path: Path) -> None:
    """A backup taken while 4 clients append, restored: verify passes, it holds every
    event acknowledged before the backup was asked for, and its log is a prefix of the
    daemon's (same seqs and hashes)."""
    backups = tmp_path / "backups"
    acked: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    with running(tmp_path, env={"TRADELOG_BACKUP_DIR": str(backups)}) as proc:
        clients = [threading.Thread(target=_appender, args=(proc.socket, n, acked, lock, stop))
                   for n in range(4)]
        for thread in clients:
            thread.start()
        try:
            while True:
                with lock:
                    if len(acked) >= 400:
                        before = dict(acked)
                        break
                time.sleep(0.01)
            with RawConnection(proc.socket, timeout_s=60) as conn:
                result = conn.result("backup", {"name": "live.db"})
            while True:  # the clients go on after the backup too
                with lock:
                    if len(acked) >= len(before) + 200:
                        break
                time.sleep(0.01)
        finally:
            stop.set()
            for thread in clients:
                thread.join()
        live = read_all(proc.socket)
    restored = tmp_path / "restored.db"
    done = tradelog("restore", str(backups / "live.db"), "--db", str(restored))
    assert 0 == done.returncode, done.stderr
    verified = tradelog("verify", "--db", str(restored))
    assert 0 == verified.returncode, verified.stdout
    rows = stored_rows(restored)
    copied = {row[2]: row[0] for row in rows}
    assert {} == {k: v for k, v in before.items() if copied.get(k) != v}
    assert [(e["seq"], e["hash"]) for e in live[:len(rows)]] == [(r[0], r[12]) for r in rows]
    assert (len(rows), rows[-1][12]) == (result["last_seq"], result["last_hash"])
    assert 0o600 == stat.S_IMODE(os.stat(backups / "live.db").st_mode)


BAD_NAMES: list[Any] = ["../escape.db", "/tmp/abs.db", "a/b.db", "..", ".hidden.db", "x..y",
                        "", "a" * 101, "nul\x00.db", "sp ace.db", "x.db-wal", "x.db-journal",
                        "tradelog.db.lock", 5, None]


def test_backup_method_takes_only_plain_names(tmp_path: Path) -> None:
    """A name with a path, '..', a leading dot, odd characters or another type is refused
    with -32602 naming 'name'; nothing is written anywhere."""
    backups = tmp_path / "backups"
    with running(tmp_path, env={"TRADELOG_BACKUP_DIR": str(backups)}) as proc, \
            RawConnection(proc.socket) as conn:
        answers = [conn.call("backup", {"name": name}) for name in BAD_NAMES]
    assert [-32602] * len(BAD_NAMES) == [a["error"]["code"] for a in answers]
    assert all("name" in a["error"]["message"] for a in answers)
    assert [] == (list(backups.iterdir()) if backups.exists() else [])
    assert not (tmp_path / "escape.db").exists()


def test_backup_method_refusals(tmp_path: Path) -> None:
    """Without backup_dir the method is refused, saying what to set; an existing name is
    never overwritten; unknown params are refused."""
    (tmp_path / "a").mkdir()
    with running(tmp_path / "a") as proc, RawConnection(proc.socket) as conn:
        answer = conn.call("backup", {"name": "x.db"})
        assert (-32602, True) == (answer["error"]["code"],
                                  "backup_dir" in answer["error"]["message"])
    backups = tmp_path / "backups"
    (tmp_path / "b").mkdir()
    with running(tmp_path / "b", env={"TRADELOG_BACKUP_DIR": str(backups)}) as proc, \
            RawConnection(proc.socket) as conn:
        conn.result("append", {"events": [wire_event("journal", {"text": "one"})]})
        first = conn.result("backup", {"name": "once.db"})
        again = conn.call("backup", {"name": "once.db"})
        extra = conn.call("backup", {"name": "y.db", "path": "/tmp/y.db"})
    assert 1 == first["last_seq"]
    assert (-32001, True) == (again["error"]["code"], "exists" in again["error"]["message"])
    assert -32602 == extra["error"]["code"]
    assert ["once.db"] == sorted(p.name for p in backups.iterdir())


class _Service:
    """What ``backup_method`` uses of the daemon's service: its access rules and config."""

    def __init__(self, access: Access, config: Any) -> None:
        self.access = access
        self.config = config


async def test_only_peers_reading_every_account_may_back_up(tmp_path: Path) -> None:
    """With access rules, a uid that may read only some accounts is refused (-32004);
    one with read = ["*"] gets the copy."""
    db = tmp_path / "t.db"
    await make_log(db, [every_type_log()])
    rules = [AccessRule(uid=50001, read=["acct-1"]), AccessRule(uid=50002, read=["*"])]
    service = _Service(Access(rules), SimpleNamespace(backup_dir=tmp_path / "backups", db=db))
    with pytest.raises(NotPermittedError, match="every account"):
        await backup_method(service, {"name": "n.db"}, Peer(1, 50001, 50001))  # type: ignore[arg-type]
    result = await backup_method(service, {"name": "n.db"}, Peer(1, 50002, 50002))  # type: ignore[arg-type]
    assert 19 == result["last_seq"]
    assert verify_file(tmp_path / "backups" / "n.db").ok


async def test_cli_backup_of_the_file(tmp_path: Path) -> None:
    """`tradelog backup DEST --db DB` writes a verified 0600 copy, prints its last seq and
    hash, and refuses to overwrite DEST."""
    db = tmp_path / "t.db"
    await make_log(db, [every_type_log()])
    dest = tmp_path / "copy.db"
    done = tradelog("backup", str(dest), "--db", str(db))
    assert 0 == done.returncode, done.stderr
    last_hash = stored_rows(db)[-1][12]
    assert f"19 events, last seq 19, last hash {last_hash}" in done.stdout.decode()
    assert stored_rows(db) == stored_rows(dest)
    assert 0o600 == stat.S_IMODE(os.stat(dest).st_mode)
    again = tradelog("backup", str(dest), "--db", str(db))
    assert 1 == again.returncode
    assert "already exists" in again.stderr.decode()
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cli_backup_through_the_daemon(tmp_path: Path) -> None:
    """With the daemon up and DEST in its backup_dir, the daemon writes the copy."""
    backups = tmp_path / "backups"
    config = tmp_path / "tradelog.toml"
    config.write_text(f'backup_dir = "{backups}"\nsocket = "{tmp_path / "tradelog.sock"}"\n')
    with running(tmp_path, env={"TRADELOG_BACKUP_DIR": str(backups)}) as proc:
        with RawConnection(proc.socket) as conn:
            conn.result("append", {"events": [wire_event("journal", {"text": "x"})]})
        done = tradelog("backup", str(backups / "via-daemon.db"), "--config", str(config))
    assert 0 == done.returncode, done.stderr
    assert "written by the daemon" in done.stdout.decode()
    assert 1 == len(stored_rows(backups / "via-daemon.db"))


def test_scheduled_backups_keep_the_newest(tmp_path: Path) -> None:
    """With backup_interval, the daemon backs up after new events and keeps only the
    newest backup_keep scheduled copies; a named copy is never pruned."""
    backups = tmp_path / "backups"
    env = {"TRADELOG_BACKUP_DIR": str(backups), "TRADELOG_BACKUP_INTERVAL": "0.2",
           "TRADELOG_BACKUP_KEEP": "2"}
    with running(tmp_path, env=env) as proc, RawConnection(proc.socket) as conn:
        conn.result("backup", {"name": "mine.db"})
        for n in range(1, 4):
            conn.result("append", {"events": [wire_event("journal", {"text": f"n{n}"})]})
            wait_for_log(proc, "backup_written", last_seq=n)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_scheduled(backups)) > 2:
            time.sleep(0.02)
    names = sorted(p.name for p in backups.iterdir())
    scheduled = _scheduled(backups)
    assert ["mine.db"] == [n for n in names if n not in scheduled]
    assert [2, 3] == [len(stored_rows(backups / n)) for n in scheduled]


def _scheduled(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if SCHEDULED_NAME.fullmatch(p.name))


def test_prune_keeps_the_newest_scheduled_names_only(tmp_path: Path) -> None:
    """prune removes the oldest scheduled names beyond keep and nothing else."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    names = [auto_name(start + timedelta(hours=h)) for h in range(4)]
    for name in [*names, "manual.db", "tradelog-x.db"]:
        (tmp_path / name).write_bytes(b"")
    removed = prune(tmp_path, 2)
    assert names[:2] == [p.name for p in removed]
    assert sorted([*names[2:], "manual.db", "tradelog-x.db"]) == sorted(
        p.name for p in tmp_path.iterdir())


def test_backup_refuses_an_unwritable_directory(tmp_path: Path) -> None:
    """A copy into a missing directory fails with the reason and leaves nothing."""
    from eventstore.backup import backup_file

    db = tmp_path / "t.db"
    asyncio.run(make_log(db, [every_type_log()[:2]]))
    with pytest.raises(StorageUnavailableError, match="cannot create a file"):
        backup_file(db, tmp_path / "missing" / "x.db")


def test_an_interval_needs_a_backup_dir(tmp_path: Path) -> None:
    """backup_interval without backup_dir, or backup_dir in the database's own
    directory, is refused at start, naming the setting."""
    from daemon.backup import check_backup_config
    from daemon.config import ConfigError, load_config

    config = load_config(env={"TRADELOG_BACKUP_INTERVAL": "60",
                              "TRADELOG_DB": str(tmp_path / "t.db")})
    with pytest.raises(ConfigError, match="backup_dir"):
        check_backup_config(config)
    with pytest.raises(ConfigError, match="own directory"):
        check_backup_config(load_config(env={"TRADELOG_DB": str(tmp_path / "t.db"),
                                             "TRADELOG_BACKUP_DIR": str(tmp_path)}))
    check_backup_config(load_config(env={"TRADELOG_BACKUP_INTERVAL": "60",
                                         "TRADELOG_DB": str(tmp_path / "t.db"),
                                         "TRADELOG_BACKUP_DIR": str(tmp_path / "b")}))
