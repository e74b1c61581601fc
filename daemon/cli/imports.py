"""``tradelog import FILE (--format F | --map MAPPING.toml) --account A [--void]
[--dry-run] [--socket PATH | --db PATH | --store URL]``.

Through the running daemon by default (or ``--socket``); straight into the file with
``--db`` when no daemon runs (the daemon's lock is taken, so the two never mix); straight
into the log with ``--store URL``: a ``sqlite:///`` one as ``--db``, a PostgreSQL one
beside any daemons serving it (``daemon.importers.store``).
``--void`` undoes an import: every event the file stored is voided
(``daemon.importers.void``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.client import RemoteError
from daemon.importers.formats import MAPPED
from daemon.importers.mapping import Mapping, MappingError, load_mapping
from daemon.importers.reconcile import Query, file_in_views
from daemon.importers.rows import import_source
from daemon.importers.run import ImportReport, append_batches
from daemon.importers.safedir import snapshot
from daemon.importers.store import open_store
from daemon.importers.twopass import (
    Checked,
    check_file,
    make_spool,
    spool_batches,
)
from daemon.importers.void import FileEvents, TooManyEventsError, VoidPlan, find_stored
from eventstore.errors import IdempotencyConflictError
from eventstore.store import StoreURL, parse_store

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.locations import Locations

__all__ = ["run_import"]


CONFLICT = -32002
CONFLICT_HINT = (
    "import: rows of this file were imported before with other content (another "
    "--quantity, --timezone or mapping, or the row changed in the file). To replace that "
    "import: void it (`tradelog import OLD_FILE --void` with the options it was imported "
    "with), then import this file with --revision 2 (docs/OPERATIONS.md)")
BATCH_CHARS = 4 << 20
"""About this many characters of the file per append, whatever ``--chunk`` says."""


async def _reconcile(query: Query, report: ImportReport, checked: Checked) -> None:
    """The views' figures for this file's own positions (one account, none of its events
    without a stated P&L: an events file reconciles nothing)."""
    accounts, positions = checked.accounts, checked.positions
    if accounts is None or len(accounts) != 1 or positions is None or not positions:
        return
    report.views_closed, report.views_realized = await file_in_views(
        query, next(iter(accounts)), positions)


Batches = Iterable[list[dict[str, Any]]]
_METADATA = {"importer": "tradelog import"}


def _direct(args: argparse.Namespace) -> Path | StoreURL | None:
    """The log to write straight into (``--store``, or the ``--db`` file); None: the
    daemon."""
    store: str | None = getattr(args, "store", None)
    return parse_store(store) if store is not None else args.db


async def _store(args: argparse.Namespace, socket: Path, batches: Batches,
                 report: ImportReport, checked: Checked, progress: Any) -> None:
    async with open_store(_direct(args), socket, _METADATA) as store:
        await append_batches(batches, store.append, report, progress)
        await _reconcile(store.query, report, checked)


async def _void(args: argparse.Namespace, socket: Path, events: FileEvents,
                report: ImportReport, checked: Checked) -> list[VoidPlan]:
    """Void what the file stored (nothing with ``--dry-run``); the plan of each account."""
    reason = f"undoing the import of {args.file.name} (tradelog import --void)"
    plans = []
    async with open_store(_direct(args), socket, _METADATA) as store:
        for account in sorted(events.keys):
            plan = await find_stored(store.read, account, events)
            plans.append(plan)
            voids = [] if args.dry_run else plan.voids(reason)
            for start in range(0, len(voids), args.chunk):
                await store.append(voids[start:start + args.chunk])
        await _reconcile(store.query, report, checked)
    return plans


def _run_void(args: argparse.Namespace, config: Config | Locations, fmt: str, batches: Batches,
              report: ImportReport, checked: Checked) -> int:
    events = FileEvents()
    if fmt not in ("events-jsonl", MAPPED):
        events.current = import_source(fmt, args.account)
        if args.revision == 1:  # before ids left the file's name
            events.legacy = f"import/{fmt}/{args.file.name}"
    try:
        for batch in batches:
            events.add(batch)
    except TooManyEventsError as exc:
        print(f"import: {exc}", file=sys.stderr)
        return 1
    plans = asyncio.run(_void(args, args.socket or config.socket, events, report, checked))
    voided = sum(len(p.targets) for p in plans)
    verb = "would be voided (dry run: nothing stored)" if args.dry_run else "voided"
    print(f"void: {events.count} events in this file: {voided} {verb}, "
          f"{sum(p.voided for p in plans)} voided before, "
          f"{sum(p.missing for p in plans)} never stored")
    if report.views_closed is not None and report.views_realized is not None:
        print(f"in the views: {report.views_closed} round trips of this file, realized P&L "
              f"{report.views_realized:f}")
    return 0


def _check(args: argparse.Namespace, spool: int, fmt: str,
           mapping: Mapping | None) -> Checked | str:
    """Pass 1 over the file into ``spool``; the result, or why the file cannot be read."""
    try:
        fd = os.open(args.file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return f"cannot read {args.file}: {exc.strerror}"
    try:
        before = snapshot(os.fstat(fd))
        checked = check_file(fd, spool, fmt, args.file.name, args.account,
                             quantity=args.quantity, timezone=args.timezone,
                             limit=1 << 62, may_write=lambda _: None,
                             stop=threading.Event(), mapping=mapping,
                             revision=args.revision)
        if snapshot(os.fstat(fd)) != before or checked.copied != before[2]:
            return f"{args.file} changed while it was read; nothing was stored"
    finally:
        os.close(fd)
    return checked


def run_import(args: argparse.Namespace, config: Config | Locations) -> int:
    """Validate the whole file, then store it; exit 1 listing the bad rows (the first
    50, then their count). The file is read once, one row at a time, into
    a private copy that the appends then read: memory does not grow with the file, and
    what is stored is what was checked."""
    mapping = None
    if args.map is not None:
        try:
            mapping = load_mapping(args.map)
        except MappingError as exc:
            print(f"tradelog import: {exc}", file=sys.stderr)
            return 2
    if (args.format is None) == (mapping is None):
        print("tradelog import: give --format, or --map with a mapping file (not both)",
              file=sys.stderr)
        return 2
    fmt = args.format or MAPPED
    if fmt != "events-jsonl" and not args.account:
        print("tradelog import: --account is required for this format", file=sys.stderr)
        return 2
    spool = make_spool(None)
    try:
        checked = _check(args, spool, fmt, mapping)
        if isinstance(checked, str):
            print(f"import: {checked}", file=sys.stderr)
            return 1
        if checked.problems:
            count = len(checked.problems) + checked.more_problems
            print(f"import: {args.file}: {count} bad rows; nothing was stored:",
                  file=sys.stderr)
            for line in checked.reason().splitlines():
                print(f"  {line}", file=sys.stderr)
            return 1
        for warning in checked.warnings():
            print(f"import: warning: {warning}", file=sys.stderr)
        if args.dry_run and not args.void:
            print(f"dry run: {checked.rows} rows -> {checked.events} events "
                  f"({', '.join(f'{n} {k}' for k, n in sorted(checked.kinds.items()))}); "
                  f"this file: {checked.closed} round trips, realized P&L "
                  f"{checked.realized:f}"
                  + (f", day-level P&L as cash adjustments {checked.cash:f}"
                     if checked.cash else "") + "; nothing stored")
            for event in checked.sample:
                print("  " + json.dumps(event, default=str))
            return 0
        batches = spool_batches(spool, fmt, args.file.name, args.account,
                                quantity=args.quantity, timezone=args.timezone,
                                max_events=args.chunk, max_chars=BATCH_CHARS,
                                mapping=mapping, revision=args.revision)
        report = ImportReport(rows=checked.rows, events=checked.events,
                              file_realized=checked.realized, file_closed=checked.closed,
                              file_cash=checked.cash)
        if args.void:
            return _run_void(args, config, fmt, batches, report, checked)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = Console(stderr=True)
        with Progress(TextColumn(f"importing {args.file.name}"), BarColumn(),
                      MofNCompleteColumn(), console=console, transient=True) as bar:
            task = bar.add_task("import", total=checked.events)

            def advance(n: int) -> None:
                bar.advance(task, n)

            try:
                asyncio.run(_store(args, args.socket or config.socket, batches, report,
                                   checked, advance))
            except (IdempotencyConflictError, RemoteError) as exc:
                if isinstance(exc, RemoteError) and exc.code != CONFLICT:
                    raise
                print(f"import: {exc}\n{CONFLICT_HINT}\n{report.stored} new events were "
                      "stored before it", file=sys.stderr)
                return 1
    finally:
        os.close(spool)
    print(report.reconciliation())
    return 0
