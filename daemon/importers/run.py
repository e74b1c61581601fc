"""Running an import: validate the whole file, then append it in resumable chunks.

A file goes in whole or, if interrupted, in chunks that a re-run completes: every event
id comes from the file's own keys, so what was stored already comes back as duplicates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from daemon.importers.rows import ImportProblem, ImportRow, ReadResult

__all__ = ["Appender", "ImportReport", "append_batches", "append_rows", "chunks"]

Appender = Callable[[list[dict[str, Any]]], Awaitable[dict[str, Any]]]
"""Appends one batch atomically, answering as PROTOCOL.md's ``append`` result."""


@dataclass
class ImportReport:
    """What an import did, and what the views show of this file's own round trips (not
    of the whole account: ``daemon.importers.reconcile``). Money in the account
    currency; ``views_*`` None: not reconciled (too many accounts or positions, or a
    file of events that states no P&L)."""

    rows: int = 0
    events: int = 0
    stored: int = 0
    duplicates: int = 0
    file_realized: Decimal = Decimal(0)
    views_realized: Decimal | None = None
    problems: list[ImportProblem] = field(default_factory=list)
    file_closed: int = 0
    views_closed: int | None = None
    file_cash: Decimal = Decimal(0)

    def reconciliation(self) -> str:
        """The one-line summary printed at the end of an import, e.g. ``reconciliation:
        263 rows: 0 new events, 789 already stored; this file: 262 round trips, realized
        P&L 936.00000; in the views: 262 round trips, realized P&L 936  (match)``."""
        line = (f"reconciliation: {self.rows} rows: {self.stored} new events, "
                f"{self.duplicates} already stored; this file: {self.file_closed} round "
                f"trips, realized P&L {self.file_realized:f}")
        if self.file_cash:
            line += f", day-level P&L as cash adjustments {self.file_cash:f}"
        if self.views_realized is None or self.views_closed is None:
            return line + "; in the views: n/a"
        same = (self.views_closed == self.file_closed
                and self.views_realized == self.file_realized)
        return (line + f"; in the views: {self.views_closed} round trips, realized P&L "
                f"{self.views_realized:f}  " + ("(match)" if same else "(DIFFER)"))


def chunks(rows: Sequence[ImportRow], size: int) -> list[list[dict[str, Any]]]:
    """Batches of about ``size`` events that never split one row's events."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for row in rows:
        if current and len(current) + len(row.events) > size:
            batches.append(current)
            current = []
        current.extend(row.events)
    if current:
        batches.append(current)
    return batches


async def append_rows(read: ReadResult, append: Appender, size: int = 500,
                      progress: Callable[[int], None] | None = None) -> ImportReport:
    """Append every row of ``read`` (already validated) in chunks; counts what was new.

    Raises whatever ``append`` raises (what was appended before stays; re-run to resume).
    """
    report = ImportReport(rows=len(read.rows), events=len(read.events),
                          file_realized=read.realized,
                          file_closed=sum(r.closed for r in read.rows))
    return await append_batches(chunks(read.rows, size), append, report, progress)


async def append_batches(batches: Iterable[list[dict[str, Any]]], append: Appender,
                         report: ImportReport,
                         progress: Callable[[int], None] | None = None) -> ImportReport:
    """Append each batch (already validated) in turn, counting in ``report`` what was new
    and what was a duplicate; returns ``report``.

    Raises whatever ``append`` raises (what was appended before stays; re-run to resume).
    """
    for batch in batches:
        answer = await append(batch)
        for result in answer["results"]:
            if result["duplicate"]:
                report.duplicates += 1
            else:
                report.stored += 1
        if progress is not None:
            progress(len(batch))
    return report
