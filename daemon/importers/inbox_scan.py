"""Which files of the inbox are ready: found by polling, then unchanged for a while.

A scan lists the inbox and its account subfolders (never following a link) and
remembers each wanted file's ``Snapshot``; a file is ready once its snapshot has stayed
the same for ``settle_s``. Files the inbox could not finish are skipped until they
change (``skip_unchanged``) or until a time (``retry_after``).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass

from daemon.importers.safedir import Snapshot, open_subdir, snapshot
from daemon.logs import get_logger

__all__ = ["MAX_TRACKED", "SKIP_ENDINGS", "SUFFIXES", "Key", "Scanner", "wanted"]

log = get_logger("tradelog.inbox")
Key = tuple[str | None, str]
"""A file of the inbox: its account subfolder (None: the inbox itself) and its name."""
SUFFIXES = (".jsonl", ".csv", ".json")
SKIP_ENDINGS = (".part", ".tmp", "~", ".swp", ".error.txt")
_ACCOUNT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_TRACKED = 10_000
"""Files watched for settling at once; more wait for the next scans."""


def wanted(name: str) -> bool:
    """Whether a file named ``name`` is one to import: a known suffix, not hidden, not a
    name being written (``.part``, ``.tmp``, ``~``...) nor a note of ours."""
    return (not name.startswith(".") and not name.endswith(SKIP_ENDINGS)
            and name.lower().endswith(SUFFIXES))


@dataclass
class _Seen:
    state: Snapshot
    since: float


class Scanner:
    """The inbox's files between scans: when each was last seen to change, and which to
    leave alone. Used from one thread at a time."""

    def __init__(self) -> None:
        self._seen: dict[Key, _Seen] = {}
        self._skip: dict[Key, Snapshot | float] = {}
        self._crowded = False

    def scan(self, folder: int, settle_s: float) -> list[Key]:
        """The files under the open inbox ``folder`` that have not changed for
        ``settle_s`` seconds; remembers the others (at most ``MAX_TRACKED``).

        Raises:
            OSError: the inbox itself cannot be listed.
        """
        now = time.monotonic()
        found: dict[Key, Snapshot] = {}
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(found) >= MAX_TRACKED:
                    if not self._crowded:
                        self._crowded = True
                        log.warning("inbox_crowded", max_files=MAX_TRACKED,
                                    advice="the others are taken as these go")
                    break
                if (entry.name in ("done", "failed") or entry.name.startswith(".")
                        or ".moved-aside." in entry.name):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if _ACCOUNT.match(entry.name):
                        self._scan_account(folder, entry.name, found)
                elif wanted(entry.name):
                    with contextlib.suppress(OSError):
                        found[(None, entry.name)] = snapshot(entry.stat(follow_symlinks=False))
        ready = []
        for key, state in found.items():
            skip = self._skip.get(key)
            if skip == state or (isinstance(skip, float) and skip > now):
                continue
            self._skip.pop(key, None)
            seen = self._seen.get(key)
            if seen is None or seen.state != state:
                self._seen[key] = _Seen(state, now)
            elif now - seen.since >= settle_s:
                ready.append(key)
        for key in [k for k in self._seen if k not in found]:
            del self._seen[key]
        for key in [k for k in self._skip if k not in found]:
            del self._skip[key]
        return ready

    def _scan_account(self, folder: int, account: str, found: dict[Key, Snapshot]) -> None:
        try:
            fd = open_subdir(folder, account)
        except OSError:
            return
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    if len(found) >= MAX_TRACKED:
                        return
                    if wanted(entry.name) and not entry.is_dir(follow_symlinks=False):
                        with contextlib.suppress(OSError):
                            found[(account, entry.name)] = snapshot(
                                entry.stat(follow_symlinks=False))
        finally:
            os.close(fd)

    def taken(self, key: Key) -> None:
        """``key`` is being imported: it must settle again before it is ready again."""
        self._seen.pop(key, None)

    def retry_after(self, key: Key, when: float) -> None:
        """Leave ``key`` alone until ``time.monotonic()`` reaches ``when``."""
        self._skip[key] = when

    def skip_unchanged(self, key: Key, state: Snapshot) -> None:
        """Leave ``key`` alone while its snapshot is ``state`` (until it changes)."""
        self._skip[key] = state
