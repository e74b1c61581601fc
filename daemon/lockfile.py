"""One daemon per database file: an exclusive ``flock`` on ``<db>.lock``.

The daemon holds it while serving; ``tradelog import --db`` holds it while importing,
so a direct import never runs beside a daemon on the same file.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from daemon.filemodes import file_mode, make_dirs
from eventstore.errors import DatabaseFileError

__all__ = ["acquire", "hold_lock"]


def acquire(db: Path, group: int | None = None) -> IO[str]:
    """Take the lock (it is released when the returned file is closed).

    A missing folder for ``db`` is created 0700 (0750 and given to ``group`` with one);
    the lock file is created 0600 (0640). A symlink in the lock's place is refused.

    Raises:
        DatabaseFileError: another process holds it (its pid is named), or the lock's
            path is a symlink.
    """
    make_dirs(db.parent, group)
    path = db.parent / (db.name + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                     | os.O_CLOEXEC, file_mode(group))
    except OSError:
        if path.is_symlink():
            raise DatabaseFileError(
                f"{path} is a symlink; remove it (tradelog makes its own lock file)") from None
        raise
    handle = os.fdopen(fd, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise DatabaseFileError(
            f"{db} is in use by another tradelog process (pid {holder}); if it is the "
            "daemon, go through its socket instead") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


@contextmanager
def hold_lock(db: Path) -> Iterator[None]:
    """Hold the lock for the ``with`` block."""
    handle = acquire(db)
    try:
        yield
    finally:
        handle.close()
