"""Backups by the daemon: the ``backup`` method and the scheduled backups.

The daemon often runs as its own uid and may write where the peer may not, so what a
peer can ask for is narrow (docs/OPERATIONS.md, "Who may ask the daemon for a backup"):

- the copy goes only into the configured ``backup_dir`` (no ``backup_dir``: the method
  is refused); the peer gives at most a file *name*, never a path: 1-100 characters of
  ``A-Za-z0-9._-``, starting with a letter or digit (so no ``/``, no ``..``, no hidden
  or temporary name), not ending like SQLite's side files (``-wal``, ``-shm``,
  ``-journal``) or a lock (``.lock``), and an existing file is never overwritten;
  ``backup_dir`` may not be the database's own directory;
- only a peer allowed to read every account may ask (a copy holds them all): with
  ``access`` rules, a uid or gid with ``read = ["*"]`` (or the daemon's own uid, or root).

Scheduled backups (``backup_interval`` seconds, into ``backup_dir``) are named
``tradelog-<UTC time>.db``; after each, only the newest ``backup_keep`` files of that
pattern are kept. Files of any other name (those a peer named) are never removed.
One backup runs at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from daemon.access import Access, Peer
from daemon.config import Config, ConfigError
from daemon.logs import get_logger
from eventstore.backup import CopyReport, backup_file
from eventstore.errors import NotPermittedError, ValidationError

__all__ = ["SCHEDULED_NAME", "BackupHost", "auto_name", "backup_method", "check_backup_config",
           "check_name", "prune", "run_schedule", "take_backup"]

log = get_logger("tradelog.backup")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
SCHEDULED_NAME = re.compile(r"tradelog-\d{8}T\d{12}Z\.db")
"""Names of the backups the daemon names itself (scheduled, or unnamed requests)."""

_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal", ".lock")
"""Endings of the files SQLite and the daemon keep beside a database: never a name."""



class BackupHost(Protocol):
    """What backups need of the daemon's service (read at each use: a reload changes it)."""

    @property
    def config(self) -> Config: ...
    @property
    def access(self) -> Access: ...
    @property
    def last_seq(self) -> int: ...


_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def check_name(name: Any) -> str:
    """The backup file name a peer gave, checked (see the module docstring).

    Raises:
        ValidationError: not a string, or not a plain file name; the message says the rule.
    """
    if (not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name
            or name.endswith(_SQLITE_SIDE_FILES)):
        raise ValidationError(
            "name must be a plain file name: 1-100 characters of A-Za-z0-9._-, starting "
            "with a letter or digit, without '..', not ending in -wal, -shm, -journal or "
            ".lock; the copy is written into the daemon's backup_dir",
            [{"index": 0, "path": "name", "message": "not a plain file name"}])
    return name


def auto_name(now: datetime | None = None) -> str:
    """``tradelog-YYYYmmddTHHMMSSffffffZ.db`` for ``now`` (default: the current UTC time)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"tradelog-{moment.strftime('%Y%m%dT%H%M%S%f')}Z.db"


def check_backup_config(config: Config) -> None:
    """Refuse a ``backup_interval`` without a ``backup_dir``, and a ``backup_dir`` on a
    PostgreSQL store (its backups are PostgreSQL's: ``pg_dump``, a standby).

    Raises:
        ConfigError: naming the settings.
    """
    if config.backup_dir is not None and config.store_url().kind != "sqlite":
        raise ConfigError("backup_dir is set but the store is PostgreSQL, whose backups "
                          "the daemon does not write: use pg_dump or a standby "
                          "(docs/POSTGRESQL.md), or `tradelog migrate` to a SQLite file")
    if config.backup_interval is not None and config.backup_dir is None:
        raise ConfigError("backup_interval is set but backup_dir is not: set backup_dir to "
                          "the directory scheduled backups go to")
    if config.backup_dir is not None and _same_directory(config.backup_dir, config.db.parent):
        raise ConfigError(f"backup_dir {config.backup_dir} is the database's own directory: "
                          "give backups a directory of their own")


def _same_directory(one: Path, other: Path) -> bool:
    return one.expanduser().absolute().resolve() == other.absolute().resolve()


def _directory(config: Config) -> Path:
    if config.backup_dir is None:
        raise ValidationError(
            "this daemon has no backup_dir: set backup_dir in its config to let it write "
            "backups, or run `tradelog backup PATH --db DB` where the database is readable")
    directory = config.backup_dir.expanduser().absolute()
    if _same_directory(directory, config.db.parent):
        raise ValidationError(f"backup_dir {directory} is the database's own directory; "
                              "the daemon writes backups only into a directory of their own")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _lock(owner: Any) -> asyncio.Lock:
    lock = _locks.get(owner)
    if lock is None:
        lock = _locks[owner] = asyncio.Lock()
    return lock


async def take_backup(owner: Any, db: Path, directory: Path, name: str) -> CopyReport:
    """Copy ``db`` to ``directory/name`` on a worker thread (``backup_file``), one backup
    at a time per ``owner`` (the service).

    Raises what ``backup_file`` raises.
    """
    async with _lock(owner):
        report = await asyncio.to_thread(backup_file, db, directory / name)
    log.info("backup_written", path=str(report.path), last_seq=report.last_seq,
             events=report.events, bytes=report.bytes)
    return report


async def backup_method(service: BackupHost, params: dict[str, Any], peer: Peer) -> dict[str, Any]:
    """The ``backup`` method: params ``{"name": N?}``; result ``{"name", "path",
    "events", "last_seq", "last_hash", "bytes"}`` of the verified copy. Without a name
    the daemon names it as a scheduled one (``tradelog-<UTC time>.db``).

    Raises:
        ValidationError (-32602): unknown params, a bad name, no ``backup_dir``.
        NotPermittedError (-32004): the peer may not read every account.
        StorageUnavailableError (-32001): the name exists, or the copy cannot be written.
        StorageCorruptError: the copy fails verify.
    """
    unknown = sorted(set(params) - {"name"})
    if unknown:
        raise ValidationError(f"unknown params {unknown}; backup takes only 'name'")
    try:
        service.access.check(peer, "read", None)
    except NotPermittedError:
        raise NotPermittedError(
            f"uid {peer.uid} may not read every account, and a backup holds them all; "
            "ask the daemon's owner (a rule with read = [\"*\"] allows it)") from None
    name = check_name(params["name"]) if "name" in params else auto_name()
    directory = _directory(service.config)
    report = await take_backup(service, service.config.db, directory, name)
    return {"name": name, **report.to_wire()}


def prune(directory: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` files named like ``SCHEDULED_NAME`` (newest by
    name, i.e. by the time in it) from ``directory``; returns what was removed."""
    found = sorted(p for p in directory.iterdir()
                   if SCHEDULED_NAME.fullmatch(p.name) and p.is_file() and not p.is_symlink())
    removed = found[:max(len(found) - keep, 0)]
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return removed


async def run_schedule(service: BackupHost, stop: asyncio.Event) -> None:
    """Every ``backup_interval`` seconds (read from the service's config each time, so a
    SIGHUP reload applies), back up into ``backup_dir`` and prune to ``backup_keep``;
    skipped when nothing was appended since the last scheduled one. Failures are logged
    (``backup_failed``) and tried again at the next interval. Ends when ``stop`` is set.
    """
    last_seq: int | None = None
    while not stop.is_set():
        interval = service.config.backup_interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval or 60.0)
        if stop.is_set():
            return
        config = service.config
        if config.backup_interval is None or config.backup_dir is None:
            continue
        if last_seq is not None and service.last_seq == last_seq:
            log.debug("backup_skipped", last_seq=last_seq, reason="no new events")
            continue
        try:
            directory = _directory(config)
            report = await take_backup(service, config.db, directory, auto_name())
            last_seq = report.last_seq
            removed = await asyncio.to_thread(prune, directory, config.backup_keep)
            if removed:
                log.info("backups_pruned", removed=[p.name for p in removed],
                         kept=config.backup_keep)
        except Exception as exc:
            log.error("backup_failed", error=str(exc), backup_dir=str(config.backup_dir))
