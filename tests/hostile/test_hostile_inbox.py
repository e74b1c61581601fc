"""The inbox against users who try to misuse it, through the real daemon and a real folder.

Files owned by another uid are made with ``os.chown``, which needs root: those tests are
skipped when the suite does not run as root.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from daemon.access import Peer
from daemon.client import Client
from daemon.importers.inbox import owner_peer
from tests.importers.test_inbox import SETTLE, events_jsonl, wait_for
from tests.support import DaemonProcess

ALICE_UID = 54321
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def daemon_with(tmp_path: Path, config: str = "", env: dict[str, str] | None = None,
                ) -> DaemonProcess:
    args = ["--inbox", str(tmp_path / "inbox")]
    if config:
        (tmp_path / "tradelog.toml").write_text(config)
        args += ["--config", str(tmp_path / "tradelog.toml")]
    return DaemonProcess(tmp_path, args, env={**SETTLE, **(env or {})})


def stored(daemon: DaemonProcess, account: str | None = None) -> list[dict[str, Any]]:
    with Client(daemon.socket) as client:
        events: list[dict[str, Any]] = client.read(1, 10_000, account=account)["events"]
    return events


def metadata(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [json.loads(row[0]) for row in conn.execute(
            "SELECT metadata FROM events ORDER BY seq")]


def owned(path: Path, uid: int, mode: int = 0o644) -> Path:
    os.chown(path, uid, uid)
    os.chmod(path, mode)
    return path


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() or p.is_symlink())


ALICE_ONLY = f"""
[[access]]
uid = {ALICE_UID}
write = ["alice"]
read = ["alice"]
"""


@needs_root
def test_file_imports_as_its_owner_and_is_refused_where_the_owner_may_not_write(
        tmp_path: Path) -> None:
    """With a rule letting uid U write only `alice`: U's file in alice/ is stored with uid
    U in its metadata; U's files for `bob` (in bob/, or JSONL naming bob at the top, even
    mixed with alice's events) are refused whole to failed/ with the reason, their notes
    owned by U, and nothing of them is stored."""
    inbox = tmp_path / "inbox"
    for account in ("alice", "bob"):
        (inbox / account).mkdir(parents=True)
    with daemon_with(tmp_path, ALICE_ONLY) as daemon:
        wait_for((inbox / "failed").exists)
        events_jsonl(tmp_path / "a.jsonl", 3, account="alice")
        events_jsonl(tmp_path / "b.jsonl", 3, account="bob", start=10)
        events_jsonl(tmp_path / "mixed.jsonl", 2, account="alice", start=20)
        with (tmp_path / "mixed.jsonl").open("a") as handle:
            handle.write(json.dumps({"id": "mk-99", "source": "bot/files", "type": "mark",
                                     "time": "2024-01-01T00:00:00Z", "account": "bob",
                                     "data": {"prices": {"EURUSD": "1.2"}}}) + "\n")
        for source, target in (("a.jsonl", "alice/a.jsonl"), ("b.jsonl", "bob/b.jsonl"),
                               ("mixed.jsonl", "mixed.jsonl")):
            os.rename(owned(tmp_path / source, ALICE_UID), inbox / target)
        wait_for(lambda: len(files_under(inbox / "done")) == 1
                 and len(files_under(inbox / "failed")) == 4)
        alice = stored(daemon, "alice")
        bob = stored(daemon, "bob")
        everything = stored(daemon)
    assert ["mk-0", "mk-1", "mk-2"] == [e["id"] for e in alice]
    assert [] == bob
    assert 3 == len(everything)
    assert [(ALICE_UID, "alice/a.jsonl")] * 3 == [
        (m["uid"], m["inbox_file"]) for m in metadata(tmp_path / "tradelog.db")]
    assert ["alice/a.jsonl"] == files_under(inbox / "done")
    assert ["bob/b.jsonl", "bob/b.jsonl.error.txt", "mixed.jsonl",
            "mixed.jsonl.error.txt"] == files_under(inbox / "failed")
    note = inbox / "failed" / "bob" / "b.jsonl.error.txt"
    assert f"uid {ALICE_UID} may not write account 'bob'" in note.read_text()
    assert ALICE_UID == note.stat().st_uid
    mixed = (inbox / "failed" / "mixed.jsonl.error.txt").read_text()
    assert f"line 3: uid {ALICE_UID} may not write account 'bob'" in mixed
    assert "nothing was stored" in mixed


@needs_root
def test_note_is_no_more_readable_than_the_file(tmp_path: Path) -> None:
    """A refused 0600 file's .error.txt is 0600 and belongs to the file's owner."""
    inbox = tmp_path / "inbox"
    (inbox / "bob").mkdir(parents=True)
    with daemon_with(tmp_path, ALICE_ONLY):
        wait_for((inbox / "failed").exists)
        events_jsonl(tmp_path / "b.jsonl", 1, account="bob")
        os.rename(owned(tmp_path / "b.jsonl", ALICE_UID, 0o600), inbox / "bob" / "b.jsonl")
        note = inbox / "failed" / "bob" / "b.jsonl.error.txt"
        wait_for(note.exists)
    assert (ALICE_UID, 0o600) == (note.stat().st_uid, note.stat().st_mode & 0o777)


def secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"id": "TOP-SECRET-LINE", "oops": 1}\n')
    secret.chmod(0o600)
    return secret


def test_symlinked_file_is_moved_as_a_link_and_its_target_never_read(tmp_path: Path) -> None:
    """A link in the inbox to a root-only file is refused without being followed: the
    link itself goes to failed/, its note says why and quotes nothing of the target, the
    target stays where it was, unchanged, and nothing is stored."""
    inbox = tmp_path / "inbox"
    (inbox / "acct").mkdir(parents=True)
    secret = secret_file(tmp_path)
    with daemon_with(tmp_path) as daemon:
        wait_for((inbox / "failed").exists)
        (inbox / "acct" / "link.jsonl").symlink_to(secret)
        (inbox / "top.jsonl").symlink_to(secret)
        wait_for(lambda: len(files_under(inbox / "failed")) == 4)
        assert [] == stored(daemon)
    moved = inbox / "failed" / "acct" / "link.jsonl"
    assert moved.is_symlink()
    assert '{"id": "TOP-SECRET-LINE", "oops": 1}\n' == secret.read_text()
    for note in (inbox / "failed").rglob("*.error.txt"):
        text = note.read_text()
        assert "symbolic link" in text
        assert "SECRET" not in text


def test_hard_link_to_another_file_is_refused_unread(tmp_path: Path) -> None:
    """A hard link to a file elsewhere (two links) is refused without being read; its
    note quotes nothing of it."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    secret = secret_file(tmp_path)
    with daemon_with(tmp_path) as daemon:
        wait_for((inbox / "failed").exists)
        os.link(secret, inbox / "hard.jsonl")
        note = inbox / "failed" / "hard.jsonl.error.txt"
        wait_for(note.exists)
        assert [] == stored(daemon)
    assert "has 2 hard links" in note.read_text()
    assert "SECRET" not in note.read_text()


def test_fifo_and_symlinked_account_folder_are_not_followed(tmp_path: Path) -> None:
    """A FIFO named like an import is refused as not a regular file (the daemon does not
    wait on it and keeps serving); an account folder that is a link to a folder elsewhere
    is not entered: the file there stays, nothing is stored."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    events_jsonl(elsewhere / "there.jsonl", 2, account="acct")
    with daemon_with(tmp_path) as daemon:
        wait_for((inbox / "failed").exists)
        (inbox / "acct").symlink_to(elsewhere)
        os.mkfifo(inbox / "pipe.jsonl")
        note = inbox / "failed" / "pipe.jsonl.error.txt"
        wait_for(note.exists)
        events_jsonl(inbox / "after.jsonl", 1, account="other", start=50)
        wait_for((inbox / "done" / "after.jsonl").exists)
        assert ["mk-50"] == [e["id"] for e in stored(daemon)]
    assert "not a regular file" in note.read_text()
    assert ["there.jsonl"] == files_under(elsewhere)


def test_planted_done_and_failed_links_are_moved_aside_never_written_through(
        tmp_path: Path) -> None:
    """done/ and failed/ made beforehand as links to folders elsewhere are moved aside
    (the links kept, as links) and replaced by real folders: good and bad files land in
    those, nothing is written in the folders the links pointed to."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (tmp_path / "loot-done").mkdir()
    (tmp_path / "loot-failed").mkdir()
    (inbox / "done").symlink_to(tmp_path / "loot-done")
    (inbox / "failed").symlink_to(tmp_path / "loot-failed")
    with daemon_with(tmp_path) as daemon:
        events_jsonl(inbox / "good.jsonl", 2)
        (inbox / "bad.jsonl").write_text("not json\n")
        wait_for(lambda: (inbox / "done" / "good.jsonl").exists()
                 and (inbox / "failed" / "bad.jsonl.error.txt").exists())
        assert 2 == len(stored(daemon))
    assert not (inbox / "done").is_symlink()
    assert not (inbox / "failed").is_symlink()
    aside = sorted(p.name.split(".moved-aside.")[0] for p in inbox.iterdir()
                   if ".moved-aside." in p.name and p.is_symlink())
    assert ["done", "failed"] == aside
    assert [] == files_under(tmp_path / "loot-done")
    assert [] == files_under(tmp_path / "loot-failed")


def test_done_planted_as_a_link_while_running_is_replaced(tmp_path: Path) -> None:
    """done/ swapped for a link while the daemon runs is moved aside before the next
    file is moved: the file lands in a real done/, nothing in the link's target."""
    inbox = tmp_path / "inbox"
    (tmp_path / "loot").mkdir()
    with daemon_with(tmp_path):
        wait_for((inbox / "done").exists)
        (inbox / "done").rename(inbox / "old-done")
        (inbox / "done").symlink_to(tmp_path / "loot")
        events_jsonl(inbox / "good.jsonl", 1)
        wait_for((inbox / "done" / "good.jsonl").exists)
    assert not (inbox / "done").is_symlink()
    assert [] == files_under(tmp_path / "loot")


def test_sparse_file_over_the_cap_is_refused_without_reading(tmp_path: Path) -> None:
    """A 2 GiB sparse file counts its apparent size: refused to failed/ naming
    inbox_max_bytes and the size, nothing stored."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with daemon_with(tmp_path) as daemon:
        wait_for((inbox / "failed").exists)
        with (tmp_path / "sparse.jsonl").open("wb") as handle:
            handle.truncate(2 << 30)
        os.rename(tmp_path / "sparse.jsonl", inbox / "sparse.jsonl")
        note = inbox / "failed" / "sparse.jsonl.error.txt"
        wait_for(note.exists)
        assert [] == stored(daemon)
    assert (f"it is {2 << 30} bytes, more than inbox_max_bytes ({64 << 20})"
            in note.read_text())


def test_size_cap_is_exact(tmp_path: Path) -> None:
    """With inbox_max_bytes = the size of one file, that file is imported and a file one
    byte larger is refused."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    events_jsonl(tmp_path / "fits.jsonl", 3)
    size = (tmp_path / "fits.jsonl").stat().st_size
    over = (tmp_path / "fits.jsonl").read_text().replace('"mk-', '"ov-') + " "
    (tmp_path / "over.jsonl").write_text(over)
    with daemon_with(tmp_path, env={"TRADELOG_INBOX_MAX_BYTES": str(size)}) as daemon:
        wait_for((inbox / "failed").exists)
        os.rename(tmp_path / "fits.jsonl", inbox / "fits.jsonl")
        os.rename(tmp_path / "over.jsonl", inbox / "over.jsonl")
        wait_for(lambda: (inbox / "done" / "fits.jsonl").exists()
                 and (inbox / "failed" / "over.jsonl.error.txt").exists())
        ids = [e["id"] for e in stored(daemon)]
    assert ["mk-0", "mk-1", "mk-2"] == ids
    assert f"{size + 1} bytes, more than inbox_max_bytes ({size})" in (
        inbox / "failed" / "over.jsonl.error.txt").read_text()


def _read_position(pid: int, path: Path) -> int | None:
    """Where process ``pid`` is reading ``path`` (None: not open)."""
    fds = Path(f"/proc/{pid}/fd")
    for link in fds.iterdir():
        try:
            if os.readlink(link) == str(path):
                info = Path(f"/proc/{pid}/fdinfo/{link.name}").read_text()
                return int(info.split("pos:")[1].split()[0])
        except OSError:
            continue
    return None


def test_file_changed_while_read_is_refused_whole(tmp_path: Path) -> None:
    """A large JSONL appended to while the daemon is part way through reading it (its
    read offset seen in /proc) is refused whole: moved to failed/ saying it changed,
    and not one of its events stored."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    events_jsonl(tmp_path / "big.jsonl", 60_000)
    size = (tmp_path / "big.jsonl").stat().st_size
    target = inbox / "big.jsonl"
    with daemon_with(tmp_path) as daemon:
        assert daemon.proc is not None
        pid = daemon.proc.pid
        wait_for((inbox / "failed").exists)
        os.rename(tmp_path / "big.jsonl", target)
        appended = threading.Event()

        def mid_read() -> bool:
            position = _read_position(pid, target)
            if position is None or position > size // 2:
                return False
            with target.open("a") as handle:
                handle.write(json.dumps({"id": "late", "source": "bot/files",
                                         "type": "mark", "time": "2024-01-01T00:00:00Z",
                                         "account": "jsonl-acct",
                                         "data": {"prices": {"EURUSD": "1.5"}}}) + "\n")
            appended.set()
            return True

        wait_for(mid_read, timeout_s=60)
        note = inbox / "failed" / "big.jsonl.error.txt"
        wait_for(note.exists, timeout_s=60)
        assert [] == stored(daemon)
    assert appended.is_set()
    assert "it changed while it was read; nothing was stored" in note.read_text()


def _peak_kib(pid: int) -> int:
    """Peak resident memory (VmHWM) of process ``pid``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def test_large_file_imports_with_bounded_memory(tmp_path: Path) -> None:
    """A 48 MB JSONL (under the cap) of 10 KB journal entries is stored whole while the
    peak memory of the daemon's process, where the inbox runs, grows by less than 32 MiB
    (the file is read and appended in batches of about 1 MiB; held whole it would take
    several times its size). The writer process is left out: it keeps the views' rows
    of the last ``views_flush_events`` events whoever appends them."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    text = "x" * 9_900
    count = 4_800
    with (tmp_path / "big.jsonl").open("w") as handle:
        for i in range(count):
            handle.write(json.dumps({"id": f"j-{i}", "source": "bot/files",
                                     "type": "journal", "time": "2024-01-01T00:00:00Z",
                                     "account": "acct", "data": {"text": text}}) + "\n")
    size = (tmp_path / "big.jsonl").stat().st_size
    with daemon_with(tmp_path) as daemon:
        assert daemon.proc is not None
        wait_for((inbox / "failed").exists)
        before = _peak_kib(daemon.proc.pid)
        os.rename(tmp_path / "big.jsonl", inbox / "big.jsonl")
        wait_for((inbox / "done" / "big.jsonl").exists, timeout_s=120)
        growth = (_peak_kib(daemon.proc.pid) - before) * 1024
        with Client(daemon.socket) as client:
            assert count == client.health()["last_seq"]
    assert size > 45_000_000
    assert growth < 32 << 20, f"peak memory grew by {growth} bytes for a {size}-byte file"


def test_name_with_control_characters_and_no_room_for_a_note_suffix(tmp_path: Path) -> None:
    """A bad file whose name has an escape sequence and is too long to take
    `.error.txt` after it still goes to failed/ with a note (a shorter name), whose
    first line names the file with the escape shown, not raw."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    name = "\x1b[31m" + "x" * 240 + ".jsonl"
    with daemon_with(tmp_path):
        wait_for((inbox / "failed").exists)
        (inbox / name).write_text("not json\n")
        wait_for(lambda: len(files_under(inbox / "failed")) == 2)
    notes = list((inbox / "failed").glob("*.error.txt"))
    assert (inbox / "failed" / name).exists()
    assert 1 == len(notes)
    first = notes[0].read_text().splitlines()[0]
    assert "\\x1b[31m" + "x" * 240 + ".jsonl was not imported:" == first


def test_file_changed_after_it_was_read_is_not_moved_to_done(tmp_path: Path) -> None:
    """A file appended to after the daemon read it whole (its descriptor closed) but
    while the events read are still being stored: every event read is stored, the line
    added later is not, and the file goes to failed/ saying so (not to done/, which
    would lose that line silently)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    events_jsonl(tmp_path / "big.jsonl", 30_000)
    target = inbox / "big.jsonl"
    with daemon_with(tmp_path) as daemon:
        assert daemon.proc is not None
        pid = daemon.proc.pid
        wait_for((inbox / "failed").exists)
        os.rename(tmp_path / "big.jsonl", target)
        wait_for(lambda: _read_position(pid, target) is not None, timeout_s=60)
        wait_for(lambda: _read_position(pid, target) is None, timeout_s=60)
        with target.open("a") as handle:
            handle.write(json.dumps({"id": "late", "source": "bot/files", "type": "mark",
                                     "time": "2024-01-01T00:00:00Z", "account": "jsonl-acct",
                                     "data": {"prices": {"EURUSD": "1.5"}}}) + "\n")
        note = inbox / "failed" / "big.jsonl.error.txt"
        wait_for(note.exists, timeout_s=60)
        with Client(daemon.socket) as client:
            last = client.health()["last_seq"]
    assert 30_000 == last
    assert not (inbox / "done" / "big.jsonl").exists()
    assert ("it changed after it was read: the 30000 events read were stored (30000 new)"
            in note.read_text())


def _stat(uid: int, gid: int) -> os.stat_result:
    return os.stat_result((0o100644, 1, 1, 1, uid, gid, 10, 0, 0, 0))


def test_owner_group_counts_only_when_the_owner_belongs_to_it() -> None:
    """A file imports as its owner's uid; its group is used only when the owner is a
    member of it (root's own group 0: yes; a group root is not in, as a setgid folder
    would give: no; a uid with no user entry: never)."""
    assert Peer(None, 0, 0) == owner_peer(_stat(0, 0))
    assert Peer(None, 0, None) == owner_peer(_stat(0, 54329))
    assert Peer(None, ALICE_UID, None) == owner_peer(_stat(ALICE_UID, ALICE_UID))
