"""Undoing an import: a ``void`` for every event a file stored (``tradelog import --void``).

The file is read as an import reads it (same format, account, quantity, mapping), which
gives the ``source`` + ``id`` of each of its events: ids come from the rows' own keys,
so they are the ones the import stored, whatever the file is called now. The log of
each account is then read (only the types the file holds, and voids) to find which of
them are stored and which are voided already; a void (EVENTS.md, contract 1.1) is made
for each stored one not yet voided. Events the file gives but the log does not hold
(never imported, or refused) are counted, not voided: a void names a stored event.

A void's ``source`` is ``import/void`` and its ``id`` a digest of its target's
``source`` + ``id``, so a second run, or a run cut short and started again, finds the
targets voided and stores nothing new. Events an earlier release imported under a
source holding the file's name (``import/<format>/<file name>``) are found too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daemon.importers.rows import wire_event
from schemas.values import format_utc

__all__ = ["MAX_TARGETS", "PAGE", "VOID_SOURCE", "FileEvents", "Read", "TooManyEventsError",
           "VoidPlan", "find_stored", "void_id"]

VOID_SOURCE = "import/void"
MAX_TARGETS = 5_000_000
"""Events of one file ``--void`` handles at most (their keys are held in memory)."""
PAGE = 10_000
"""Events per ``read`` while looking for the file's events."""

Read = Callable[[int, str, list[str]], Awaitable[list[dict[str, Any]]]]
"""``read(from_seq, account, types)``: stored events of ``account`` from ``from_seq`` in
seq order (PROTOCOL.md ``read``), at most a page; an empty list at the end."""


def void_id(source: str, event_id: str) -> str:
    """The id of the void of the event ``source`` + ``event_id``: 40 hex digits of the
    SHA-256 of the two, joined by a NUL (unique as the pair is)."""
    return hashlib.sha256(f"{source}\0{event_id}".encode()).hexdigest()[:40]


class TooManyEventsError(ValueError):
    """The file gives more than ``MAX_TARGETS`` events: split it."""


@dataclass
class FileEvents:
    """The events a file gives, by account: ``(source, id)`` keys and their types.

    ``legacy``: the source an earlier release gave this file's events (None: none), tried
    as well for the events under ``current``."""

    current: str | None = None
    legacy: str | None = None
    keys: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    types: set[str] = field(default_factory=set)
    count: int = 0

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        """Take the wire ``events`` of the file.

        Raises:
            TooManyEventsError: past ``MAX_TARGETS``.
        """
        for event in events:
            keys = self.keys.setdefault(event["account"], set())
            keys.add((event["source"], event["id"]))
            if self.legacy and event["source"] == self.current:
                keys.add((self.legacy, event["id"]))
            self.types.add(event["type"])
            self.count += 1
            if self.count > MAX_TARGETS:
                raise TooManyEventsError(f"the file gives more than {MAX_TARGETS} events; "
                                         "split it and void each part")


@dataclass
class VoidPlan:
    """For one account: the stored targets not yet voided (in seq order), how many of
    the file's events are voided already, and how many the log does not hold."""

    account: str
    targets: list[tuple[str, str]] = field(default_factory=list)
    voided: int = 0
    missing: int = 0

    def voids(self, reason: str, now: datetime | None = None) -> list[dict[str, Any]]:
        """The void events of ``targets``, with ``reason`` (1..1000 characters) and the
        time ``now`` (default: the clock, UTC)."""
        time = format_utc(now or datetime.now(UTC))
        return [wire_event("void", void_id(source, event_id), VOID_SOURCE, time,
                           self.account, {"target_source": source, "target_id": event_id,
                                          "reason": reason[:1000]})
                for source, event_id in self.targets]


async def find_stored(read: Read, account: str, file: FileEvents) -> VoidPlan:
    """Which of ``file``'s events of ``account`` are stored, and which voided, reading
    the account's log a page at a time (only the file's types, and voids)."""
    wanted = file.keys.get(account, set())
    plan = VoidPlan(account)
    stored: list[tuple[str, str]] = []
    voided: set[tuple[str, str]] = set()
    seq = 1
    types = sorted(file.types | {"void"})
    while True:
        page = await read(seq, account, types)
        if not page:
            break
        for event in page:
            key = (event["source"], event["id"])
            if event["type"] == "void":
                target = (str(event["data"]["target_source"]), str(event["data"]["target_id"]))
                if target in wanted:
                    voided.add(target)
            if key in wanted:
                stored.append(key)
        seq = int(page[-1]["seq"]) + 1
    plan.targets = [key for key in stored if key not in voided]
    plan.voided = len(voided)
    found = set(stored)
    for source, event_id in wanted:
        if source == file.legacy:
            continue
        if (source, event_id) not in found and (
                file.legacy is None or source != file.current
                or (file.legacy, event_id) not in found):
            plan.missing += 1
    return plan
