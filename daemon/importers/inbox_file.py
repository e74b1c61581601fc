"""Importing one file of the inbox: open it without following links, check it whole,
store it in batches, move it to ``done/`` or ``failed/`` (see ``daemon.importers.inbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import pwd
import stat
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

from daemon.access import Access, Peer
from daemon.config import Config
from daemon.importers.folder_settings import SETTINGS_NAME, SettingsError, read_settings
from daemon.importers.formats import MAPPED, format_of
from daemon.importers.inbox_scan import Scanner
from daemon.importers.mapping import Mapping
from daemon.importers.safedir import (
    FILE_FLAGS,
    FileChangedError,
    move,
    note_name,
    open_subdir,
    safe_folder,
    snapshot,
    write_note,
)
from daemon.importers.twopass import (
    StoppedError,
    TooLargeError,
    check_file,
    make_spool,
    spool_batches,
)
from daemon.logs import get_logger
from eventstore.errors import CommitInDoubtError, NotPermittedError, StorageUnavailableError

__all__ = ["BATCH_CHARS", "BATCH_EVENTS", "RETRY_S", "FileImporter", "InboxService",
           "owner_peer", "shown"]

log = get_logger("tradelog.inbox")
_T = TypeVar("_T")
BATCH_EVENTS = 1000
"""Events per append (below the 10,000 a request may hold)."""
BATCH_CHARS = 1 << 20
"""About this many characters of the file per append (1 MiB), whatever its events' sizes."""
RETRY_S = 5.0
"""Wait before trying again a file whose import the storage could not take."""
_How = tuple[str, str, str | None, Decimal | None, str, Mapping | None, int]
"""How a file is read: format, name, account, quantity, time zone, mapping, revision."""


class InboxService(Protocol):
    """What the inbox needs of the daemon's ``Service`` (read at each use, so a reload
    of the config or the access rules applies to the next file)."""

    config: Config
    access: Access

    async def append_internal(self, events: list[dict[str, Any]], peer: Peer,
                              metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        ...


def owner_peer(st: os.stat_result) -> Peer:
    """The identity a file imports as: its owner's uid, and its group only when the
    owner is a member of that group (a file in a setgid folder takes the folder's group
    whoever wrote it). No pid."""
    gid: int | None = None
    try:
        entry = pwd.getpwuid(st.st_uid)
    except KeyError:
        entry = None
    if entry is not None and (st.st_gid == entry.pw_gid
                              or st.st_gid in os.getgrouplist(entry.pw_name, entry.pw_gid)):
        gid = st.st_gid
    return Peer(pid=None, uid=st.st_uid, gid=gid)


def shown(name: str) -> str:
    """``name`` with control characters escaped, for notes and logs."""
    return name.encode("unicode_escape", "backslashreplace").decode("ascii") if (
        not name.isprintable()) else name


class _RefusedError(Exception):
    """The file goes to failed/ with this reason."""

    def __init__(self, reason: str, like: os.stat_result | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.like = like


class FileImporter:
    """Imports the files of the inbox open as ``folder`` (a descriptor, owned by the
    caller; ``directory`` is its path, for messages), one at a time, through ``service``.

    New folders (``done/``, ``failed/`` and their account subfolders) get ``mode``.
    ``stop`` set makes a running import stop within one read (``StoppedError``, logged);
    ``scanner`` is told which files to leave alone after a failure.
    """

    def __init__(self, directory: Path, folder: int, mode: int, service: InboxService,
                 stop: threading.Event, scanner: Scanner) -> None:
        self.directory = directory
        self.service = service
        self._fd = folder
        self._mode = mode
        self._stop = stop
        self._scanner = scanner

    async def _in_thread(self, func: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``func`` on a worker thread. If the caller is cancelled, the thread is told to
        stop and waited for (it stops within one read) before the cancellation goes on,
        so that no descriptor it uses is closed under it."""
        task = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._stop.set()
            await asyncio.wait([task])
            raise

    def _where(self, account: str | None, name: str) -> str:
        return shown(f"{account}/{name}" if account else name)

    async def process(self, account: str | None, name: str) -> None:
        """Import ``name`` (in the ``account`` subfolder, None: the inbox itself), then
        move it to ``done/``, or to ``failed/`` with a note; logs what happened. Never
        raises but for cancellation."""
        self._scanner.taken((account, name))
        try:
            folder = open_subdir(self._fd, account) if account else os.dup(self._fd)
        except OSError:
            return  # the folder went away or was replaced by a link: nothing to take
        try:
            await self._import(folder, account, name)
        except _RefusedError as refused:
            self._refuse(folder, account, name, refused.reason, refused.like)
        except StoppedError:
            log.info("inbox_interrupted", file=self._where(account, name),
                     advice="the file is taken again at the next start")
        except (StorageUnavailableError, CommitInDoubtError) as exc:
            # In doubt too: the file is taken again, its stored events answered duplicate.
            self._scanner.retry_after((account, name), time.monotonic() + RETRY_S)
            log.warning("inbox_retry_later", file=self._where(account, name), error=str(exc))
        except Exception:
            # A fault of the daemon's own: left where it is until it changes, the rest go on.
            with contextlib.suppress(OSError):
                self._scanner.skip_unchanged((account, name), snapshot(
                    os.stat(name, dir_fd=folder, follow_symlinks=False)))
            log.exception("inbox_error", file=self._where(account, name))
        finally:
            os.close(folder)

    def _open(self, folder: int, name: str) -> tuple[int, os.stat_result]:
        try:
            fd = os.open(name, FILE_FLAGS, dir_fd=folder)
        except OSError as exc:
            try:
                like: os.stat_result | None = os.stat(name, dir_fd=folder,
                                                      follow_symlinks=False)
            except OSError:
                like = None
            if exc.errno == errno.ELOOP:
                raise _RefusedError("it is a symbolic link; links are never followed: put the "
                                    "file itself in the inbox", like) from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise _RefusedError(f"the daemon (uid {os.getuid()}) may not read it: make it "
                                    "readable by the daemon's user or group", like) from None
            raise _RefusedError(f"it cannot be opened: {exc.strerror}", like) from None
        st = os.fstat(fd)
        refusal = self._refusal(st)
        if refusal:
            os.close(fd)
            raise _RefusedError(refusal, st)
        return fd, st

    def _refusal(self, st: os.stat_result) -> str | None:
        """Why a file cannot be imported from what ``fstat`` says, before reading it."""
        if not stat.S_ISREG(st.st_mode):
            return "it is not a regular file"
        if st.st_nlink != 1:
            return (f"it has {st.st_nlink} hard links: put a copy of the file (not a link "
                    "to it) in the inbox")
        limit = self.service.config.inbox_max_bytes
        if st.st_size > limit:
            return (f"it is {st.st_size} bytes, more than inbox_max_bytes ({limit}): split "
                    "it, or import it with `tradelog import`")
        return None

    async def _import(self, folder: int, account: str | None, name: str) -> None:
        where = self._where(account, name)
        fd, st = self._open(folder, name)
        spool = -1
        try:
            peer = owner_peer(st)
            access = self.service.access

            def may_write(target: str) -> str | None:
                try:
                    access.check(peer, "write", target)
                except NotPermittedError as exc:
                    return str(exc)
                return None

            if account is not None and (refusal := may_write(account)):
                raise _RefusedError(f"{refusal} (the owner of the file)", st)
            try:
                settings = read_settings(folder, st.st_uid)
            except SettingsError as exc:
                raise _RefusedError(str(exc), st) from None
            mapping = settings.map
            fmt = MAPPED if mapping is not None else (
                settings.format or format_of(name, os.pread(fd, 4096, 0)))
            if fmt is None:
                raise _RefusedError("unknown format: expected *.jsonl events, a trades *.csv "
                                    "with a trade_id column, or a daily P&L *.json with "
                                    "\"records\"; for other files, give the folder a "
                                    f"{SETTINGS_NAME} with format or [map]", st)
            if fmt != "events-jsonl" and account is None:
                raise _RefusedError(f"put {fmt} files in a subfolder named after the account: "
                                    f"{self.directory}/<account>/{shown(name)}", st)
            config = self.service.config
            quantity = (settings.quantity if settings.quantity is not None
                        else config.inbox_quantity)
            zone = settings.timezone
            try:
                spool = make_spool(self._fd)
                checked = await self._in_thread(
                    check_file, fd, spool, fmt, name, account, quantity=quantity, timezone=zone,
                    limit=config.inbox_max_bytes, may_write=may_write, stop=self._stop,
                    mapping=mapping, revision=settings.revision)
            except OSError as exc:  # e.g. no room for the private copy: try again later
                raise StorageUnavailableError(f"cannot read it into a private copy: {exc}"
                                              ) from None
            except TooLargeError:
                raise _RefusedError(f"it grew past inbox_max_bytes ({config.inbox_max_bytes}) "
                                    "while it was read; nothing was stored", st) from None
            if snapshot(os.fstat(fd)) != snapshot(st) or checked.copied != st.st_size:
                raise _RefusedError("it changed while it was read; nothing was stored. Write "
                                    "files under another name (e.g. ending in .part) and rename "
                                    "them into the inbox when complete", st)
            if checked.problems:
                raise _RefusedError(checked.reason() + "\nnothing was stored", st)
            os.close(fd)
            fd = -1
            if checked.unused:
                log.warning("inbox_fields_not_imported", file=where,
                            fields=sorted(checked.unused),
                            advice="these fields have no place in tradelog's events")
            stored, duplicates = await self._append(
                spool, (fmt, name, account, quantity, zone, mapping, settings.revision), peer,
                where, st)
        finally:
            for handle in (fd, spool):
                if handle >= 0:
                    os.close(handle)
        try:
            target = self._to_done(folder, account, name, st)
        except FileChangedError:
            raise _RefusedError(f"it changed after it was read: the {checked.events} events read "
                                f"were stored ({stored} new), later changes were not. Put the "
                                "file back to store the rest (what is stored is skipped)",
                                st) from None
        except OSError as exc:
            self._scanner.skip_unchanged((account, name), snapshot(st))
            log.error("inbox_not_moved", file=where, error=str(exc),
                      advice="the file was imported; move it out of the inbox")
            return
        log.info("inbox_imported", file=where, format=fmt, uid=peer.uid, rows=checked.rows,
                 events=checked.events, stored=stored, duplicates=duplicates,
                 realized=f"{checked.realized:f}",
                 moved_to=f"done/{self._where(account, target)}")

    def _to_done(self, folder: int, account: str | None, name: str,
                 st: os.stat_result) -> str:
        """Move the imported file to done/ if it is still the one read; its new name.

        Raises:
            FileChangedError: it changed after it was read (it stays where it is).
            OSError: done/ is unusable or the rename failed.
        """
        done = safe_folder(self._fd, "done", self._mode)
        try:
            target_dir = safe_folder(done, account, self._mode) if account else os.dup(done)
        finally:
            os.close(done)
        try:
            return move(folder, name, target_dir, expect=snapshot(st))
        finally:
            os.close(target_dir)

    async def _append(self, spool: int, how: _How, peer: Peer, where: str,
                      st: os.stat_result) -> tuple[int, int]:
        fmt, name, account, quantity, zone, mapping, revision = how
        batches = spool_batches(spool, fmt, name, account, quantity=quantity, timezone=zone,
                                max_events=min(BATCH_EVENTS,
                                               self.service.config.limits.max_events_per_append),
                                max_chars=BATCH_CHARS, mapping=mapping, revision=revision)
        metadata = {"inbox_file": where}
        stored = duplicates = 0
        try:
            while True:
                if self._stop.is_set():
                    raise StoppedError
                batch = await self._in_thread(next, batches, None)
                if batch is None:
                    return stored, duplicates
                try:
                    answer = await self.service.append_internal(batch, peer, metadata)
                except (StorageUnavailableError, CommitInDoubtError):
                    raise
                except Exception as exc:
                    raise _RefusedError(
                        f"refused by the daemon after {stored} new events were stored: {exc}. "
                        "Fix it and put the file back (what is stored is skipped)",
                        st) from None
                for result in answer["results"]:
                    if result["duplicate"]:
                        duplicates += 1
                    else:
                        stored += 1
        finally:
            batches.close()

    def _refuse(self, folder: int, account: str | None, name: str, reason: str,
                like: os.stat_result | None) -> None:
        where = self._where(account, name)
        try:
            failed = safe_folder(self._fd, "failed", self._mode)
            try:
                target_dir = safe_folder(failed, account, self._mode) if account else os.dup(
                    failed)
            finally:
                os.close(failed)
            try:
                target = move(folder, name, target_dir)
                write_note(target_dir, note_name(target),
                           f"{shown(name)} was not imported:\n{reason}\n", like)
            finally:
                os.close(target_dir)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._scanner.skip_unchanged((account, name), snapshot(
                    os.stat(name, dir_fd=folder, follow_symlinks=False)))
            log.error("inbox_not_moved", file=where, error=str(exc), reason=reason[:200],
                      advice="the file was not imported; move it out of the inbox")
            return
        log.warning("inbox_failed", file=where, moved_to=f"failed/{self._where(account, target)}",
                    uid=None if like is None else like.st_uid,
                    reason=reason.splitlines()[0][:200])

