"""The watched inbox: ``tradelog serve --inbox DIR`` imports files that bots drop there.

A ``*.jsonl``, ``*.csv`` or ``*.json`` file that appears under DIR (renamed in, or written
and closed) is imported once it has stopped changing, then moved to ``DIR/done/``, or to
``DIR/failed/`` with ``<name>.error.txt`` beside it. The format comes from the extension
and the header; the account from the first subfolder (``DIR/ACCOUNT/file.csv``), or from
the events themselves for JSONL. Files already there at start (e.g. one half-processed
when the daemon died) are processed again: their event ids make that idempotent. The
folder is also rescanned every few seconds, so a file the watcher missed is still taken.
Hidden files and names ending in ``.part``, ``.tmp`` or ``~`` are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from watchfiles import awatch

from daemon.importers import detect_format, read_file
from daemon.importers.run import append_rows
from daemon.logs import get_logger
from eventstore.errors import StorageUnavailableError

__all__ = ["Inbox"]

log = get_logger("tradelog.inbox")
SUFFIXES = {".jsonl", ".csv", ".json"}
SKIP_ENDINGS = (".part", ".tmp", "~", ".swp", ".error.txt")

Append = Callable[[list[dict[str, Any]]], Awaitable[dict[str, Any]]]


class Inbox:
    """Watches ``directory`` and imports through ``append`` (the daemon's writer).

    ``settle_s``: how long a file must stay unchanged before it is read.
    ``quantity``: the quantity for trades-CSV rows without one.
    """

    def __init__(self, directory: Path, append: Append, settle_s: float = 1.0,
                 quantity: Decimal = Decimal(1)) -> None:
        self.directory = directory
        self.append = append
        self.settle_s = settle_s
        self.quantity = quantity
        self.done = directory / "done"
        self.failed = directory / "failed"
        self._busy: set[Path] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def wanted(self, path: Path) -> bool:
        """Whether ``path`` is a file the inbox should import."""
        try:
            relative = path.relative_to(self.directory)
        except ValueError:
            return False
        parts = relative.parts
        if not parts or parts[0] in ("done", "failed") or len(parts) > 2:
            return False
        name = parts[-1]
        return (not name.startswith(".") and not name.endswith(SKIP_ENDINGS)
                and path.suffix.lower() in SUFFIXES and path.is_file())

    async def run(self, stop: asyncio.Event) -> None:
        """Process what is there, then watch until ``stop`` is set."""
        for folder in (self.directory, self.done, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        # A file that lands between a scan and the watch starting (or while the watcher
        # is overwhelmed) is never announced: rescanning now and then catches it.
        rescans = asyncio.create_task(self._rescan(stop))
        async for changes in awatch(self.directory, stop_event=stop, recursive=True,
                                    debounce=200, step=50):
            for _, name in changes:
                self._schedule(Path(name))
        rescans.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rescans
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _rescan(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for path in sorted(self.directory.rglob("*")):
                self._schedule(path)
            await asyncio.sleep(max(1.0, 2 * self.settle_s))

    def _schedule(self, path: Path) -> None:
        if path in self._busy or not self.wanted(path):
            return
        self._busy.add(path)
        task = asyncio.create_task(self._process(path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settled(self, path: Path) -> bool:
        """Wait until the file has not changed for ``settle_s``; False if it went away."""
        last: tuple[int, int] | None = None
        while True:
            try:
                stat = path.stat()
            except FileNotFoundError:
                return False
            now = (stat.st_size, stat.st_mtime_ns)
            quiet = time.time() - stat.st_mtime >= self.settle_s
            if now == last and quiet:
                return True
            last = now
            await asyncio.sleep(self.settle_s / 4)

    async def _process(self, path: Path) -> None:
        try:
            if not await self._settled(path):
                return
            await self._import(path)
        finally:
            self._busy.discard(path)

    async def _import(self, path: Path) -> None:
        relative = path.relative_to(self.directory)
        account = relative.parts[0] if len(relative.parts) == 2 else None
        fmt = detect_format(path)
        if fmt is None:
            self._fail(path, "unknown format: expected *.jsonl events, a trades *.csv with "
                             "a trade_id column, or a daily P&L *.json with \"records\"")
            return
        if fmt != "events-jsonl" and account is None:
            self._fail(path, f"put {fmt} files in a subfolder named after the account: "
                             f"{self.directory}/<account>/{path.name}")
            return
        read = await asyncio.to_thread(read_file, path, fmt, account, self.quantity)
        if read.problems:
            self._fail(path, "\n".join(str(p) for p in read.problems))
            return
        try:
            report = await append_rows(read, self.append)
        except StorageUnavailableError as exc:
            log.warning("inbox_retry_later", file=str(relative), error=str(exc))
            return
        except Exception as exc:
            self._fail(path, f"refused by the daemon: {exc}")
            return
        target = self._move(path, self.done)
        log.info("inbox_imported", file=str(relative), format=fmt, rows=report.rows,
                 stored=report.stored, duplicates=report.duplicates, moved_to=str(target))

    def _move(self, path: Path, folder: Path) -> Path:
        relative = path.relative_to(self.directory)
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            target = target.with_name(f"{target.stem}.{stamp}{target.suffix}")
        shutil.move(str(path), str(target))
        return target

    def _fail(self, path: Path, reason: str) -> None:
        target = self._move(path, self.failed)
        note = target.with_name(target.name + ".error.txt")
        note.write_text(f"{path.name} was not imported:\n{reason}\n")
        os.chmod(note, 0o640)
        log.warning("inbox_failed", file=str(path.relative_to(self.directory)),
                    moved_to=str(target), reason=reason.splitlines()[0][:200])
