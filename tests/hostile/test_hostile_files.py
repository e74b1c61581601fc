"""Files and stored bytes as an attacker or bad luck leaves them, through the real daemon
and command line: file modes, group rules matched by supplementary groups, another
account's ``source``+``id``, damaged storage, and stored text reaching a terminal."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from daemon.access import _proc_groups
from daemon.process import ServeProcess
from eventstore.ddl import EVENT_TRIGGERS
from tests.daemon_support import RawConnection, call_as, health, log_records, tradelog
from tests.support import DaemonProcess, fill, wire_event

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to act as another uid/gid")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _serve(db: Path, sock: Path, log: Path, config: Path | None = None) -> ServeProcess:
    extra = ["--config", str(config)] if config is not None else []
    return ServeProcess(db, sock, log, extra_args=extra,
                        env={"TRADELOG_LOG_FORMAT": "json"})


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every uid can reach (pytest's tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="tradelog-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- file modes


def test_serve_creates_owner_only_files_and_folders(tmp_path: Path) -> None:
    """Outside systemd and without a `group`, `serve` creates the database, its -wal,
    -shm and lock files 0600 and the folders it makes for the database and the socket
    0700, whatever the umask it was started with."""
    old = os.umask(0o022)
    try:
        proc = _serve(tmp_path / "data" / "tradelog.db", tmp_path / "run" / "tradelog.sock",
                      tmp_path / "daemon.log")
        with proc:
            proc.start()
            with RawConnection(proc.socket) as conn:
                conn.result("append", {"events": [fill("buy", "1", "1.1")]})
            data = tmp_path / "data"
            assert {"tradelog.db": 0o600, "tradelog.db-wal": 0o600, "tradelog.db-shm": 0o600,
                    "tradelog.db.lock": 0o600} == {
                        p.name: _mode(p) for p in data.iterdir()}
            assert (0o700, 0o700) == (_mode(data), _mode(tmp_path / "run"))
            assert 0 == proc.stop()
    finally:
        os.umask(old)


def test_serve_narrows_a_world_readable_database_left_by_an_older_version(
        tmp_path: Path) -> None:
    """A database and lock file made 0644 before this version are 0600 once `serve` has
    started on them (and the daemon says which it changed)."""
    with DaemonProcess(tmp_path) as proc:
        with RawConnection(proc.socket) as conn:
            conn.result("append", {"events": [fill("buy", "1", "1.1")]})
        assert 0 == proc.stop()
    for name in ("tradelog.db", "tradelog.db.lock"):
        (tmp_path / name).chmod(0o644)
    with DaemonProcess(tmp_path) as proc:
        ready = [r for r in log_records(proc) if r.get("event") == "daemon_ready"][-1]
        assert (0o600, 0o600) == (_mode(tmp_path / "tradelog.db"),
                                  _mode(tmp_path / "tradelog.db.lock"))
        assert {"tradelog.db", "tradelog.db.lock"} <= set(ready["file_modes_changed"])
        assert 0 == proc.stop()


@needs_root
def test_group_setting_gives_group_read_files_and_folders(tmp_path: Path) -> None:
    """With `group` configured, the files `serve` creates are 0640 and its folders 0750,
    all owned by that group, and the socket belongs to it too."""
    gid = 4241
    config = tmp_path / "tradelog.toml"
    config.write_text(f"group = {gid}\n")
    proc = _serve(tmp_path / "data" / "tradelog.db", tmp_path / "run" / "tradelog.sock",
                  tmp_path / "daemon.log", config)
    with proc:
        proc.start()
        with RawConnection(proc.socket) as conn:
            conn.result("append", {"events": [fill("buy", "1", "1.1")]})
        data = tmp_path / "data"
        files = {p.name: (_mode(p), os.lstat(p).st_gid) for p in data.iterdir()}
        assert {"tradelog.db": (0o640, gid), "tradelog.db-wal": (0o640, gid),
                "tradelog.db-shm": (0o640, gid), "tradelog.db.lock": (0o640, gid)} == files
        assert ((0o750, gid), (0o750, gid), gid) == (
            (_mode(data), data.stat().st_gid),
            (_mode(tmp_path / "run"), (tmp_path / "run").stat().st_gid),
            os.lstat(proc.socket).st_gid)
        assert 0 == proc.stop()


def test_unknown_group_name_is_refused_naming_it(tmp_path: Path) -> None:
    """A `group` the system does not know stops `serve` before anything is created, with
    a message naming the group."""
    config = tmp_path / "tradelog.toml"
    config.write_text('group = "no-such-group-tl"\n')
    done = tradelog("serve", "--config", str(config), "--db", str(tmp_path / "x.db"),
                    "--socket", str(tmp_path / "x.sock"))
    assert 1 == done.returncode
    assert "no group named 'no-such-group-tl'" in done.stderr.decode()
    assert [] == sorted(p.name for p in tmp_path.iterdir() if p.name != "tradelog.toml")


# ---------------------------------------------------------------- peers of other users


def _as_peer(path: Path, calls: list[tuple[str, dict[str, Any]]], uid: int, gid: int,
             groups: list[int]) -> list[dict[str, Any]]:
    """Run ``calls`` from a child with ``uid``, primary ``gid`` and ``groups``: its answers."""
    return call_as(path, calls, uid, gid, groups)[1]


def _codes(answers: list[dict[str, Any]]) -> list[int | None]:
    return [a.get("error", {}).get("code") for a in answers]


_GROUP_RULE = """
socket_mode = 0o666
[[access]]
gid = 4242
write = ["team"]
[[access]]
uid = 65534
write = ["own"]
"""


@needs_root
def test_gid_rule_matches_a_supplementary_group(tmp_path: Path, open_dir: Path) -> None:
    """A rule for gid 4242 lets a peer whose primary group is another but who is in 4242
    as a supplementary group write that account; the same uid without 4242 gets -32004."""
    config = tmp_path / "tradelog.toml"
    config.write_text(_GROUP_RULE)
    proc = DaemonProcess(tmp_path, extra_args=["--config", str(config)])
    proc.socket = open_dir / "tradelog.sock"
    with proc:
        member = _as_peer(proc.socket, [
            ("append", {"events": [fill("buy", "1", "1.1", account="team")]}),
            ("read", {"account": "team"}),
        ], uid=65534, gid=65534, groups=[4242])
        outsider = _as_peer(proc.socket, [
            ("append", {"events": [fill("buy", "1", "1.2", account="team")]}),
            ("read", {"account": "team"}),
        ], uid=65534, gid=65534, groups=[])
        assert ([None, None], [-32004, -32004]) == (_codes(member), _codes(outsider))
        assert 1 == health(proc.socket)["last_seq"]
        assert 0 == proc.stop()


def test_proc_groups_fallback_trusts_only_a_process_with_the_same_credentials() -> None:
    """Where SO_PEERGROUPS is missing, /proc/<pid>/status gives the groups only while
    that pid still has the uid and gid the socket reported (a reused pid gives none)."""
    pid, uid, gid = os.getpid(), os.geteuid(), os.getegid()
    assert (frozenset(os.getgroups()), frozenset(), frozenset()) == (
        _proc_groups(pid, uid, gid), _proc_groups(pid, uid + 1, gid),
        _proc_groups(pid, uid, gid + 1))


_SPLIT_RULES = """
socket_mode = 0o666
[[access]]
uid = 65534
write = ["bot-a"]
[[access]]
uid = 65533
write = ["bot-c"]
read = ["bot-b"]
"""


@needs_root
def test_another_accounts_source_and_id_answers_32004_telling_nothing(
        tmp_path: Path, open_dir: Path) -> None:
    """Re-using the source+id of an event stored in an account the peer may not read is
    refused with -32004 that carries neither that event's seq nor its account, and
    stores nothing; a peer that may read that account still gets -32002 with the seq."""
    config = tmp_path / "tradelog.toml"
    config.write_text(_SPLIT_RULES)
    proc = DaemonProcess(tmp_path, extra_args=["--config", str(config)])
    proc.socket = open_dir / "tradelog.sock"
    with proc:
        with RawConnection(proc.socket) as conn:
            for n in range(3):
                conn.result("append", {"events": [fill("buy", "1", "1.1", account="bot-b",
                                                       source="bot/b", event_id=f"b-{n}")]})
        taken = fill("sell", "2", "9.9", account="bot-a", source="bot/b", event_id="b-1")
        fresh = fill("buy", "1", "1.1", account="bot-a", source="bot/a", event_id="a-1")
        [refused] = _as_peer(proc.socket, [("append", {"events": [fresh, taken]})],
                             uid=65534, gid=65534, groups=[])
        reader_taken = fill("sell", "2", "9.9", account="bot-c", source="bot/b",
                            event_id="b-1")
        [conflict] = _as_peer(proc.socket, [("append", {"events": [reader_taken]})],
                              uid=65533, gid=65533, groups=[])
        assert -32004 == refused["error"]["code"]
        assert "data" not in refused["error"]
        assert "seq" not in refused["error"]["message"]
        assert "bot-b" not in refused["error"]["message"]
        assert (-32002, {"source": "bot/b", "id": "b-1", "seq": 2}) == (
            conflict["error"]["code"], conflict["error"]["data"])
        assert 3 == health(proc.socket)["last_seq"]
        assert 0 == proc.stop()


# ---------------------------------------------------------------- damaged storage


def _journal(n: int) -> dict[str, Any]:
    return wire_event("journal", {"text": f"note-{n:04d}-" + "x" * 200},
                      event_id=f"j-{n}", source="test/journal")


def _make_log(directory: Path, count: int) -> Path:
    """A log of ``count`` journal events written by the daemon and closed cleanly (so
    every page is in the main file); returns the database path."""
    with DaemonProcess(directory) as proc:
        with RawConnection(proc.socket) as conn:
            conn.result("append", {"events": [_journal(n) for n in range(1, count + 1)]})
        assert 0 == proc.stop()
    return directory / "tradelog.db"


def _event_offset(db: Path, n: int) -> int:
    """Where journal event ``n``'s payload text sits in the file (the log's copy, not
    the journal view's)."""
    raw = db.read_bytes()
    at = raw.find(f'{{"text":"note-{n:04d}-'.encode())
    assert at > 0
    assert -1 == raw.find(f'{{"text":"note-{n:04d}-'.encode(), at + 1)
    return at + len('{"text":"')


def _overwrite(db: Path, offset: int, data: bytes) -> None:
    with db.open("r+b") as file:
        file.seek(offset)
        file.write(data)


def _break_utf8_of(db: Path, n: int) -> None:
    """Overwrite four bytes of journal event ``n``'s stored text with bytes that are not
    UTF-8, as a bad sector would."""
    _overwrite(db, _event_offset(db, n), b"\xff\xfe\xff\xfe")


def test_verify_names_the_seq_of_an_unreadable_row(tmp_path: Path) -> None:
    """Bytes of a stored payload overwritten with garbage: `verify` exits 1 saying
    "storage corrupt at seq N" for exactly that event, counting the good ones before."""
    db = _make_log(tmp_path, 40)
    _break_utf8_of(db, 17)
    done = tradelog("verify", "--db", str(db))
    out = done.stdout.decode()
    assert 1 == done.returncode, out + done.stderr.decode()
    assert out.startswith("verify: FAILED: storage corrupt at seq 17: the row cannot be read")
    assert "(16 events good before it;" in out


def test_verify_names_a_damaged_page(tmp_path: Path) -> None:
    """The header of a page holding event rows overwritten: `verify` exits 1 naming a
    seq no later than the event on that page, and `read` names the same seq."""
    db = _make_log(tmp_path, 400)
    page = _event_offset(db, 30) // 4096 * 4096
    _overwrite(db, page, b"\xff" * 12)
    done = tradelog("verify", "--db", str(db))
    out = done.stdout.decode()
    assert 1 == done.returncode, out + done.stderr.decode()
    assert "storage corrupt at seq " in out
    seq = int(out.split("storage corrupt at seq ")[1].split(":")[0])
    assert 1 < seq <= 30
    with DaemonProcess(tmp_path) as proc, RawConnection(proc.socket) as conn:
        answer = conn.call("read", {"from_seq": 1, "limit": 1000})
        assert (-32603, {"storage": "corrupt", "seq": seq}) == (
            answer["error"]["code"], answer["error"]["data"])


def test_read_and_subscribe_report_damage_and_the_daemon_keeps_serving(
        tmp_path: Path) -> None:
    """With event 17 of 400 damaged (outside the tail checked at start): `read` over it
    answers -32603 with `{"storage": "corrupt", "seq": 17}` (not -32001, "retry"), a
    read past it works, a catching-up subscriber gets events 1-16 then
    `subscription_closed` naming seq 17 (never a hang), re-sending event 17's
    source+id gets the same -32603 (not a daemon exit), and other appends go on."""
    db = _make_log(tmp_path, 400)
    _break_utf8_of(db, 17)
    with DaemonProcess(tmp_path) as proc, RawConnection(proc.socket) as conn:
        damaged = conn.call("read", {"from_seq": 1, "limit": 100})
        assert (-32603, {"storage": "corrupt", "seq": 17}) == (
            damaged["error"]["code"], damaged["error"]["data"])
        assert "storage corrupt at seq 17" in damaged["error"]["message"]
        past = conn.result("read", {"from_seq": 18, "limit": 5})
        assert [18, 19, 20, 21, 22] == [e["seq"] for e in past["events"]]
        sid = conn.result("subscribe", {"from_seq": 1})["subscription"]
        messages = [conn.read(timeout_s=10) for _ in range(17)]
        assert list(range(1, 17)) == [m["params"]["event"]["seq"] for m in messages[:16]]
        closed = messages[16]
        assert ("subscription_closed", sid, "corrupt", 17) == (
            closed["method"], closed["params"]["subscription"],
            closed["params"]["storage"], closed["params"]["seq"])
        assert "storage corrupt at seq 17" in closed["params"]["reason"]
        resent = conn.call("append", {"events": [_journal(17)]})
        assert (-32603, {"storage": "corrupt", "seq": 17}) == (
            resent["error"]["code"], resent["error"]["data"])
        appended = conn.result("append", {"events": [fill("buy", "1", "1.1")]})
        assert 401 == appended["last_seq"]


def test_serve_refuses_to_start_on_a_damaged_tail(tmp_path: Path) -> None:
    """An event among the last ones altered (triggers dropped in the file, payload
    updated): `serve` exits non-zero before listening, saying "storage corrupt at seq N"
    and to run `tradelog verify`; with the damage in the payload bytes, the same."""
    db = _make_log(tmp_path, 300)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        for trigger in EVENT_TRIGGERS:
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("UPDATE events SET data = replace(data, 'note-0290', 'note-9290') "
                     "WHERE seq = 290")
    done = tradelog("serve", "--db", str(db), "--socket", str(tmp_path / "s.sock"))
    err = done.stderr.decode()
    assert 1 == done.returncode, err
    assert "storage corrupt at seq 290: hash does not match" in err
    assert "tradelog verify" in err
    assert not (tmp_path / "s.sock").exists()

    other = tmp_path / "bytes"
    other.mkdir()
    db = _make_log(other, 300)
    _break_utf8_of(db, 299)
    done = tradelog("serve", "--db", str(db), "--socket", str(other / "s.sock"))
    err = done.stderr.decode()
    assert 1 == done.returncode, err
    assert "storage corrupt at seq 299: the row cannot be read" in err


def test_serve_names_damage_met_while_rebuilding_the_views(tmp_path: Path) -> None:
    """Damage far from the tail (event 17 of 400) that the start must fold anyway (the
    views are rebuilt because their version differs): `serve` exits 1 saying "storage
    corrupt at seq 17", not a traceback."""
    db = _make_log(tmp_path, 400)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("UPDATE projection_checkpoint SET version = version + 1000")
    _break_utf8_of(db, 17)
    done = tradelog("serve", "--db", str(db), "--socket", str(tmp_path / "s.sock"))
    err = done.stderr.decode()
    assert 1 == done.returncode, err
    assert "tradelog: storage corrupt at seq 17: the row cannot be read" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- stored text on a terminal


_HOSTILE = "\x1b]0;pwned\x07\x1b[2J[bold red]boom[/bold red]\u202eevil\rX"


def test_show_prints_stored_control_characters_and_markup_visibly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A journal text holding terminal escapes, a bidi override, a carriage return and
    rich markup reaches `tradelog show`'s table with every control character written as
    a visible escape and the markup as plain text; `--json` stays exact JSON."""
    with DaemonProcess(tmp_path) as proc:
        with RawConnection(proc.socket) as conn:
            conn.result("append", {"events": [wire_event("journal", {"text": _HOSTILE})]})
        assert 0 == proc.stop()
    monkeypatch.setenv("COLUMNS", "400")  # one line per row: no folding inside the text
    table = tradelog("show", "journal", "--format", "table", "--db",
                     str(tmp_path / "tradelog.db"))
    assert 0 == table.returncode, table.stderr
    text = table.stdout.decode()
    raw_controls = sorted({c for c in text if (ord(c) < 32 and c != "\n") or ord(c) == 127
                           or 0x80 <= ord(c) < 0xA0 or c == "\u202e"})
    assert [] == raw_controls
    flat = "".join(text.split())
    for visible in ("\\x1b]0;pwned\\x07\\x1b[2J[boldred]boom[/boldred]", "\\u202eevil\\x0dX"):
        assert visible in flat
    as_json = tradelog("show", "journal", "--json", "--db", str(tmp_path / "tradelog.db"))
    [row] = json.loads(as_json.stdout)["rows"]
    assert _HOSTILE == row["text"]
