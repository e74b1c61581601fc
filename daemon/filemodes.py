"""Who may read the files tradelog makes: the owner only, or the owner and one group.

Without a configured ``group``: files 0600, directories 0700. With one: files 0640 and
directories 0750, their group set to it (docs/CONFIG.md, ``group``). The daemon sets
its umask to match at start, so that whatever it creates follows; the database and
its lock are also created with explicit modes, and SQLite gives its ``-wal`` and
``-shm`` files the database file's own mode. At start, a database, ``-wal``, ``-shm``
or lock file left wider by an older tradelog is narrowed to the mode above.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["SIDE_FILES", "dir_mode", "file_mode", "make_dirs", "prepare_db",
           "secure_db_files", "set_umask", "share"]

SIDE_FILES = ("", "-wal", "-shm", ".lock")
"""Suffixes of the files that belong to a database file (its own name first)."""


def file_mode(group: int | None) -> int:
    """0o600, or 0o640 with a group."""
    return 0o600 if group is None else 0o640


def dir_mode(group: int | None) -> int:
    """0o700, or 0o750 with a group."""
    return 0o700 if group is None else 0o750


def set_umask(group: int | None) -> int:
    """Set the process umask to 0o077 (0o027 with a group); returns the previous one."""
    return os.umask(0o077 if group is None else 0o027)


def share(path: Path, group: int | None) -> None:
    """Give ``path`` (not followed if a symlink) to ``group``; a no-op without one.

    Raises:
        PermissionError: this process may not give files to that group (it must be a
            member, or root).
    """
    if group is not None and os.lstat(path).st_gid != group:
        os.chown(path, -1, group, follow_symlinks=False)


def make_dirs(path: Path, group: int | None) -> None:
    """Create ``path`` and missing parents with ``dir_mode(group)``, each given to
    ``group``; directories that already exist are left as they are."""
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=dir_mode(group))
        except FileExistsError:
            continue
        os.chmod(directory, dir_mode(group))
        share(directory, group)


def secure_db_files(db: Path, group: int | None) -> list[str]:
    """Bring the database's files (``SIDE_FILES``) that exist and belong to this process's
    user (any, for root) to ``file_mode(group)`` and ``group``; returns the names changed.
    Symlinks are left alone (their target may be anything)."""
    changed: list[str] = []
    wanted = file_mode(group)
    me = os.geteuid()
    for suffix in SIDE_FILES:
        path = db.parent / (db.name + suffix)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode) or me not in (0, info.st_uid):
            continue
        if stat.S_IMODE(info.st_mode) != wanted or (group is not None
                                                    and info.st_gid != group):
            os.chmod(path, wanted)
            share(path, group)
            changed.append(path.name)
    return changed


def prepare_db(db: Path, group: int | None) -> list[str]:
    """Create a missing database file empty with ``file_mode(group)`` (so that SQLite's
    ``-wal`` and ``-shm`` are born with that mode), then ``secure_db_files``; returns the
    names of existing files whose mode or group was changed."""
    try:
        fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, file_mode(group))
    except FileExistsError:
        return secure_db_files(db, group)
    os.close(fd)
    os.chmod(db, file_mode(group))
    share(db, group)
    return secure_db_files(db, group)
