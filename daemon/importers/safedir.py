"""Folder operations that never follow a symbolic link, for the inbox.

Every path is opened relative to a directory descriptor with ``O_NOFOLLOW``: a link
planted where a file, an account folder, ``done/`` or ``failed/`` is expected is never
gone through, so the daemon never reads, moves or writes anything outside the folders
it checked. ``done/`` and ``failed/`` must be real directories owned by the daemon's
uid: anything else there is moved aside (and logged) and a fresh folder made.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from datetime import UTC, datetime

from daemon.logs import get_logger

__all__ = ["DIR_FLAGS", "FILE_FLAGS", "FileChangedError", "Snapshot", "UnsafeFolderError",
           "folder_mode", "free_name", "move", "note_name", "open_subdir", "safe_folder",
           "snapshot", "write_note"]

log = get_logger("tradelog.inbox")

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
"""Opening a file to import: no link followed, no wait on a FIFO, no controlling tty."""

_NAME_MAX = 255
Snapshot = tuple[int, int, int, int, int]
"""(device, inode, size in bytes, mtime_ns, ctime_ns): a file's identity and content
version. A user can set mtime back but never ctime: any write changes the snapshot."""


class UnsafeFolderError(OSError):
    """``done/`` or ``failed/`` cannot be made a real folder owned by the daemon."""


def snapshot(st: os.stat_result) -> Snapshot:
    """The ``Snapshot`` of a stat result."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def folder_mode(inbox: os.stat_result) -> int:
    """Mode for folders the daemon makes: the inbox's own read and search bits (and
    setgid), never write for anyone but the daemon."""
    return (inbox.st_mode & 0o2755) | 0o700


def open_subdir(parent: int, name: str) -> int:
    """Open the real directory ``name`` in ``parent`` (a descriptor).

    Raises:
        OSError: ELOOP or ENOTDIR when ``name`` is a link or not a directory, ENOENT.
    """
    return os.open(name, DIR_FLAGS, dir_fd=parent)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def safe_folder(parent: int, name: str, mode: int) -> int:
    """A descriptor of the folder ``name`` in ``parent``, made with ``mode`` if missing.

    A link, a non-directory or a directory owned by another uid found there is renamed
    to ``<name>.moved-aside.<UTC stamp>`` (logged as ``inbox_folder_moved_aside``) and a
    fresh folder is made: nothing is ever written through it.

    Raises:
        UnsafeFolderError: the entry could not be moved aside or the folder made.
    """
    for _ in range(3):
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=parent)
                fd = os.open(name, DIR_FLAGS, dir_fd=parent)
                os.fchmod(fd, mode)  # the umask may have taken bits away
                return fd
            continue
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeFolderError(exc.errno, f"cannot open {name}/: {exc.strerror}"
                                        ) from None
            _move_aside(parent, name, "a symbolic link or not a folder")
            continue
        owner = os.fstat(fd).st_uid
        if owner == os.getuid():
            return fd
        os.close(fd)
        _move_aside(parent, name, f"owned by uid {owner}, not the daemon's")
    raise UnsafeFolderError(errno.EEXIST, f"{name}/ keeps being replaced; not using it")


def _move_aside(parent: int, name: str, why: str) -> None:
    aside = f"{name}.moved-aside.{_stamp()}"
    try:
        os.rename(name, aside, src_dir_fd=parent, dst_dir_fd=parent)
    except OSError as exc:
        raise UnsafeFolderError(exc.errno, f"{name} is {why} and cannot be moved aside: "
                                f"{exc.strerror}") from None
    log.warning("inbox_folder_moved_aside", folder=name, moved_to=aside, reason=why)


def _exists(folder: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def note_name(name: str) -> str:
    """The name of the note about file ``name``: ``<name>.error.txt``, or, where that
    would be longer than a file name may be, ``<first bytes of name>-<hash>.error.txt``
    (the note's first line names the file)."""
    note = name + ".error.txt"
    if len(note.encode("utf-8", "surrogateescape")) <= _NAME_MAX:
        return note
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    head = name.encode("utf-8", "surrogateescape")[:160].decode("utf-8", "ignore")
    return f"{head}-{digest}.error.txt"


def free_name(folder: int, name: str) -> str:
    """``name``, or ``<stem>.<UTC stamp><suffix>`` when it (or its note) is taken in
    ``folder``."""
    if not _exists(folder, name) and not _exists(folder, note_name(name)):
        return name
    stem, dot, suffix = name.rpartition(".")
    if not stem:
        return f"{name}.{_stamp()}"
    return f"{stem}.{_stamp()}{dot}{suffix}"


def move(src_dir: int, name: str, dst_dir: int, expect: Snapshot | None = None) -> str:
    """Rename ``name`` from ``src_dir`` into ``dst_dir`` under a free name; returns it.
    The entry itself is moved (a link stays a link). With ``expect``, the entry must still
    be that file (same device, inode, size and times), else nothing is moved.

    Raises:
        FileChangedError: ``expect`` is given and the file changed or was replaced.
        OSError: the rename failed.
    """
    if expect is not None:
        now = snapshot(os.stat(name, dir_fd=src_dir, follow_symlinks=False))
        if now != expect:
            raise FileChangedError(name)
    target = free_name(dst_dir, name)
    os.rename(name, target, src_dir_fd=src_dir, dst_dir_fd=dst_dir)
    return target


class FileChangedError(OSError):
    """The file is no longer the one that was read."""


def write_note(folder: int, name: str, text: str, like: os.stat_result | None) -> None:
    """Create ``name`` in ``folder`` (O_EXCL, no link followed) holding ``text``.

    ``like`` is the (l)stat of the entry the note is about: the note is given its owner
    and group when the daemon may (as root), and is never readable by more than that
    file was (mode ``file & 0o644``, plus read and write for its owner; 0600 for a link
    or other non-regular entry). Without ``like`` the note is 0600, the daemon's.

    Raises:
        OSError: the note could not be created (e.g. the name exists).
    """
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=folder)
    try:
        if like is not None:
            with contextlib.suppress(PermissionError):
                os.fchown(fd, like.st_uid, like.st_gid)
            if stat.S_ISREG(like.st_mode):
                os.fchmod(fd, (like.st_mode & 0o644) | 0o600)
        data = text.encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
