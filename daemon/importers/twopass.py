"""Importing one open file in two passes, so that it is stored whole or not at all.

Pass 1 (``check_file``) reads the file once, through its descriptor, copying every byte
into a private spool file while each row is parsed, validated and checked against the
access rules; only counts and the first problems are kept, so memory does not grow with
the file. The caller then compares the file's ``Snapshot`` with the one taken before:
a file that changed while it was read is refused. Pass 2 (``spool_batches``) reads the
spool, which no one else can change, and gives the events in batches for the appends.
Event ids come from the file's own keys: a pass 2 cut short (a crash, a full disk) is
completed by importing the same file again, what was stored coming back as duplicates.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from daemon.importers.formats import iter_rows
from daemon.importers.mapping import Mapping
from daemon.importers.rows import ImportProblem, ImportRow

__all__ = ["MAX_PROBLEMS", "Checked", "StoppedError", "TooLargeError", "check_file",
           "make_spool", "spool_batches"]

MAX_PROBLEMS = 50
"""Problems kept for the report; the others are only counted."""
MAX_ACCOUNTS = 1000
MAX_POSITIONS = 1_000_000
"""Position ids of one file kept for the reconciliation; past this it is not made."""
SAMPLE = 5
_READ = 1 << 20


class StoppedError(Exception):
    """The daemon is stopping: the pass was abandoned."""


class TooLargeError(Exception):
    """The file grew past the size cap while it was read."""


@dataclass
class Checked:
    """What pass 1 found: rows and events that would be stored, the realized P&L the
    rows state (account currency), the first ``MAX_PROBLEMS`` problems and how many more
    there were, and the bytes copied to the spool."""

    rows: int = 0
    events: int = 0
    realized: Decimal = Decimal(0)
    problems: list[ImportProblem] = field(default_factory=list)
    more_problems: int = 0
    copied: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    sample: list[dict[str, Any]] = field(default_factory=list)
    accounts: set[str] | None = field(default_factory=set)
    """The accounts written (None past ``MAX_ACCOUNTS``); ``sample``: the first events."""
    closed: int = 0
    """Round trips the file states as closed."""
    cash: Decimal = Decimal(0)
    """Day-level P&L recorded as ``cash`` adjustments (account currency)."""
    unused: dict[str, int] = field(default_factory=dict)
    """Each field with no place in the events, by name: in how many rows it had a value."""
    positions: set[str] | None = field(default_factory=set)
    """The ``position_id`` of every fill of a row that states its P&L (None past
    ``MAX_POSITIONS``): the round trips of this file, for the reconciliation."""

    def count(self, item: ImportRow) -> None:
        """Count the row ``item`` (already checked) in the totals."""
        self.rows += 1
        self.events += len(item.events)
        self.closed += item.closed
        if item.realized is not None:
            self.realized += item.realized
        if item.cash is not None:
            self.cash += item.cash
        for name in item.unused:
            if name in self.unused or len(self.unused) < MAX_PROBLEMS:
                self.unused[name] = self.unused.get(name, 0) + 1
        for event in item.events:
            self.kinds[event["type"]] += 1
            if len(self.sample) < SAMPLE:
                self.sample.append(event)
            if self.accounts is not None:
                self.accounts.add(event["account"])
                if len(self.accounts) > MAX_ACCOUNTS:
                    self.accounts = None
            key = event["data"].get("position_id") if (
                event["type"] == "fill" and item.realized is not None) else None
            if self.positions is not None and isinstance(key, str):
                self.positions.add(key)
                if len(self.positions) > MAX_POSITIONS:
                    self.positions = None

    def warnings(self) -> list[str]:
        """One line per field of the file that has no place in the events, by name."""
        return [f"field {name!r} has no place in tradelog's events and was not imported "
                f"({rows} rows have it)" for name, rows in sorted(self.unused.items())]

    def add(self, problem: ImportProblem) -> None:
        """Keep ``problem`` (or count it past ``MAX_PROBLEMS``)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more_problems += 1

    def reason(self) -> str:
        """The problems as lines for the ``.error.txt``."""
        lines = [str(p) for p in sorted(self.problems, key=lambda p: p.line)]
        if self.more_problems:
            lines.append(f"... and {self.more_problems} more problems")
        return "\n".join(lines)


class _Tee(io.RawIOBase):
    """Reads ``fd`` from its current offset, writing each chunk to ``spool`` too."""

    def __init__(self, fd: int, spool: int, limit: int, stop: threading.Event) -> None:
        super().__init__()
        self.fd = fd
        self.spool = spool
        self.limit = limit
        self.stop = stop
        self.copied = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.stop.is_set():
            raise StoppedError
        data = os.read(self.fd, min(len(buffer), _READ))
        self.copied += len(data)
        if self.copied > self.limit:
            raise TooLargeError
        view = memoryview(data)
        while view:
            view = view[os.write(self.spool, view):]
        buffer[:len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Copy what the parser left unread (a file is read to its end either way)."""
        scratch = bytearray(_READ)
        while self.readinto(scratch):
            pass


def make_spool(near: int | None) -> int:
    """A private, unnamed file (0600, the daemon's) for pass 1's copy; in the folder
    ``near`` (a descriptor) when its file system allows ``O_TMPFILE``, else in the
    temporary directory. Closing the descriptor deletes it."""
    if near is not None and hasattr(os, "O_TMPFILE"):
        try:
            return os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=near)
        except OSError:
            pass
    fd, path = tempfile.mkstemp(prefix="tradelog-inbox-")
    os.unlink(path)
    return fd


def check_file(fd: int, spool: int, fmt: str, name: str, account: str | None, *,
               quantity: Decimal | None, timezone: str, limit: int,
               may_write: Callable[[str], str | None], stop: threading.Event,
               mapping: Mapping | None = None, revision: int = 1) -> Checked:
    """Pass 1 over the open file ``fd`` (read from its current offset): parse and validate
    every row, check with ``may_write`` (None: allowed, else the reason) every account
    written, and copy every byte to ``spool``. Blocking: run it on a thread.

    Raises:
        StoppedError: ``stop`` was set.
        TooLargeError: more than ``limit`` bytes were read.
        OSError: reading or the spool failed.
    """
    checked = Checked()
    tee = _Tee(fd, spool, limit, stop)
    stream = io.BufferedReader(tee, _READ)
    allowed: dict[str, str | None] = {}
    for item in iter_rows(stream, fmt, name, account, quantity, timezone, mapping=mapping,
                          revision=revision):
        if isinstance(item, ImportProblem):
            checked.add(item)
            continue
        refusal = None
        for event in item.events:
            target = event["account"]
            if target not in allowed:
                if len(allowed) > 1000:
                    allowed.clear()
                allowed[target] = may_write(target)
            refusal = allowed[target]
            if refusal:
                break
        if refusal:
            checked.add(ImportProblem(item.line, refusal))
            continue
        checked.count(item)
    tee.drain()
    checked.copied = tee.copied
    return checked


def spool_batches(spool: int, fmt: str, name: str, account: str | None, *,
                  quantity: Decimal | None, timezone: str, max_events: int,
                  max_chars: int, mapping: Mapping | None = None, revision: int = 1
                  ) -> Generator[list[dict[str, Any]], None, None]:
    """Pass 2: the events of the spool (already checked) in batches of at most
    ``max_events`` events and about ``max_chars`` characters of the file, never
    splitting one row's events. Blocking: call ``next`` on a thread.

    Raises:
        ValueError: the spool no longer reads as pass 1 saw it (it cannot change: a bug).
    """
    os.lseek(spool, 0, os.SEEK_SET)
    with open(spool, "rb", buffering=_READ, closefd=False) as stream:
        current: list[dict[str, Any]] = []
        chars = 0
        for item in iter_rows(stream, fmt, name, account, quantity, timezone,
                              validate=False, mapping=mapping, revision=revision):
            if not isinstance(item, ImportRow):
                raise ValueError(f"the copy of the file reads differently: {item}")
            if current and (len(current) + len(item.events) > max_events
                            or chars + item.size > max_chars):
                yield current
                current, chars = [], 0
            current.extend(item.events)
            chars += item.size
        if current:
            yield current
