"""The watched inbox: ``tradelog serve --inbox DIR`` imports files that users drop there.

A ``*.jsonl``, ``*.csv`` or ``*.json`` file under DIR is imported once it has stopped
changing for ``inbox_settle_s``, then moved to ``DIR/done/``, or to ``DIR/failed/`` with
``<name>.error.txt`` beside it saying why. The format comes from the extension and the
header; the account from the first subfolder (``DIR/ACCOUNT/file.csv``), or from the
events themselves for JSONL. A folder's ``.tradelog.toml`` gives its files a quantity,
a time zone, a format or a ``--map`` mapping (``daemon.importers.folder_settings``).
The folder is polled a few times a second (no link is ever followed, so a link to a
large tree costs nothing). Hidden files and names ending in
``.part``, ``.tmp`` or ``~`` are left alone: write there, then rename.

Under the same access rules as the socket: a file is imported as the uid that owns it
(``fstat`` of the opened descriptor), with its group when that uid is a member of it;
events it may not write are refused and the whole file goes to ``failed/``. Stored
events carry that uid in their metadata, as a socket peer's pid/uid/gid.

Whole or nothing: a file is read once into a private copy while every row is checked
(``daemon.importers.twopass``), refused if it changed meanwhile, then stored from the
copy in batches. Files over ``inbox_max_bytes``, links, hard-linked files and anything
but a regular file are refused without being read. Files already there at start (e.g.
one half-stored when the daemon died) are processed again: their event ids make that
idempotent.

The rooms: ``inbox_scan`` finds the files that are ready, ``inbox_file`` imports one;
this module runs the two in turn until the daemon stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path

from daemon.importers.inbox_file import (
    BATCH_CHARS,
    BATCH_EVENTS,
    FileImporter,
    InboxService,
    owner_peer,
)
from daemon.importers.inbox_scan import Scanner
from daemon.importers.safedir import folder_mode, safe_folder
from daemon.logs import get_logger

# The batch sizes, InboxService and owner_peer are named here too, where they were first
# defined; they live in daemon.importers.inbox_file.
__all__ = ["BATCH_CHARS", "BATCH_EVENTS", "Inbox", "InboxService", "owner_peer"]

log = get_logger("tradelog.inbox")


class Inbox:
    """Watches ``directory`` and imports through ``service`` (see the module docstring).

    Settings come from ``service.config`` at each file: ``inbox_settle_s``,
    ``inbox_max_bytes`` and ``inbox_quantity`` (None: a trades CSV needs a quantity
    column), and from the folder's ``.tradelog.toml`` (quantity, time zone, format,
    mapping). Times without an offset are read as UTC unless the folder says otherwise.
    """

    def __init__(self, directory: Path, service: InboxService) -> None:
        self.directory = directory
        self.service = service
        self._fd = -1
        self._scanner = Scanner()
        self._stop = threading.Event()

    @property
    def settle_s(self) -> float:
        """Seconds a file must stay unchanged before it is read."""
        return float(self.service.config.inbox_settle_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Process what is there, then keep polling until ``stop`` is set. An inbox that
        cannot be opened is logged (``inbox_unavailable``) and left; the daemon serves on."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            log.error("inbox_unavailable", folder=str(self.directory), error=str(exc))
            return
        mode = folder_mode(os.fstat(self._fd))
        files = FileImporter(self.directory, self._fd, mode, self.service, self._stop,
                             self._scanner)
        stopper = asyncio.create_task(self._relay(stop))
        try:
            for name in ("done", "failed"):
                try:
                    os.close(safe_folder(self._fd, name, mode))
                except OSError as exc:
                    log.error("inbox_folder_unusable", folder=name, error=str(exc))
            while not stop.is_set():
                started = time.monotonic()
                try:
                    ready = await asyncio.to_thread(self._scanner.scan, self._fd,
                                                    self.settle_s)
                except OSError as exc:
                    log.warning("inbox_scan_failed", error=str(exc))
                    ready = []
                # A folder crowded with subfolders makes a scan slow: wait twice as long
                # as it took, so that scanning never takes more than a third of a core.
                pause = max(min(1.0, max(0.05, self.settle_s / 3)),
                            2 * (time.monotonic() - started))
                for account, name in ready:
                    if stop.is_set():
                        break
                    await files.process(account, name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
        finally:
            stopper.cancel()
            os.close(self._fd)

    async def _relay(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop.set()
