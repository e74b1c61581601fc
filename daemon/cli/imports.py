"""``tradelog import FILE --format F --account A [--dry-run] [--socket PATH | --db PATH]``.

Through the running daemon by default (or ``--socket``); straight into the file with
``--db`` when no daemon runs (the daemon's lock is taken, so the two never mix).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from daemon.client import AsyncClient
from daemon.config import Config
from daemon.importers import FORMATS
from daemon.importers.reconcile import Query, file_in_views
from daemon.importers.run import ImportReport, append_batches
from daemon.importers.safedir import snapshot
from daemon.importers.twopass import (
    Checked,
    check_file,
    make_spool,
    spool_batches,
)
from daemon.lockfile import hold_lock
from eventstore.record import NewEvent
from eventstore.recorder import Recorder
from projections.query import ViewQuery, query_view
from projections.startup import open_views
from schemas import parse_event

__all__ = ["add_parser", "run_import"]


def add_parser(sub: Any) -> None:
    """Add the ``import`` subcommand to the CLI's subparsers."""
    parser = sub.add_parser("import", help="import a legacy trades file or events")
    parser.add_argument("file", type=Path)
    parser.add_argument("--format", required=True, choices=sorted(FORMATS))
    parser.add_argument("--account", help="the account the rows belong to "
                        "(events-jsonl: optional; events must match it)")
    parser.add_argument("--quantity", type=Decimal,
                        help="quantity for rows without one (the trades CSV has none)")
    parser.add_argument("--timezone", default="UTC",
                        help="IANA zone of times written without an offset (default UTC)")
    parser.add_argument("--dry-run", action="store_true", help="validate and show, store nothing")
    parser.add_argument("--chunk", type=_chunk, default=500,
                        help=f"events per append (1 to {MAX_CHUNK})")
    parser.add_argument("--db", type=Path, help="write the file directly (no daemon running)")
    parser.add_argument("--socket", type=Path, help="the daemon's socket")
    parser.add_argument("--config", type=Path, help="TOML configuration file")


BATCH_CHARS = 4 << 20
"""About this many characters of the file per append, whatever ``--chunk`` says."""
MAX_CHUNK = 10_000
"""Events in one ``append``, at most (PROTOCOL.md, "Limits")."""


def _chunk(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number") from None
    if not 1 <= value <= MAX_CHUNK:
        raise argparse.ArgumentTypeError(
            f"{value} events per append; give 1 to {MAX_CHUNK} (the daemon's limit)")
    return value


async def _reconcile(query: Query, report: ImportReport, checked: Checked) -> None:
    """The views' figures for this file's own positions (one account, none of its events
    without a stated P&L: an events file reconciles nothing)."""
    accounts, positions = checked.accounts, checked.positions
    if accounts is None or len(accounts) != 1 or positions is None or not positions:
        return
    report.views_closed, report.views_realized = await file_in_views(
        query, next(iter(accounts)), positions)


Batches = Iterable[list[dict[str, Any]]]


async def _through_daemon(socket: Path, batches: Batches, report: ImportReport,
                          checked: Checked, account: str | None, progress: Any) -> None:
    async with AsyncClient(socket) as client:
        await append_batches(batches, client.append, report, progress)
        await _reconcile(client.query, report, checked)


async def _into_file(db: Path, batches: Batches, report: ImportReport, checked: Checked,
                     progress: Any) -> None:
    with hold_lock(db):
        recorder = await Recorder.open(db)
        try:
            await open_views(recorder)

            async def append(batch: list[dict[str, Any]]) -> dict[str, Any]:
                outcome = await recorder.append(
                    [NewEvent.from_model(parse_event(e), {"importer": "tradelog import"})
                     for e in batch])
                return {"results": [r.to_wire() for r in outcome.results]}

            await append_batches(batches, append, report, progress)

            async def query(view: str, **params: Any) -> dict[str, Any]:
                return await query_view(recorder, ViewQuery(view, **params))

            await _reconcile(query, report, checked)
        finally:
            await recorder.close()


def _check(args: argparse.Namespace, spool: int) -> Checked | str:
    """Pass 1 over the file into ``spool``; the result, or why the file cannot be read."""
    try:
        fd = os.open(args.file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        return f"cannot read {args.file}: {exc.strerror}"
    try:
        before = snapshot(os.fstat(fd))
        checked = check_file(fd, spool, args.format, args.file.name, args.account,
                             quantity=args.quantity, timezone=args.timezone,
                             limit=1 << 62, may_write=lambda _: None,
                             stop=threading.Event())
        if snapshot(os.fstat(fd)) != before or checked.copied != before[2]:
            return f"{args.file} changed while it was read; nothing was stored"
    finally:
        os.close(fd)
    return checked


def run_import(args: argparse.Namespace, config: Config) -> int:
    """Validate the whole file, then store it; exit 1 listing the bad rows (the first
    50, then their count). The file is read once, one row at a time, into
    a private copy that the appends then read: memory does not grow with the file, and
    what is stored is what was checked."""
    console = Console(stderr=True)
    if args.format != "events-jsonl" and not args.account:
        print("tradelog import: --account is required for this format", file=sys.stderr)
        return 2
    spool = make_spool(None)
    try:
        checked = _check(args, spool)
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
        if args.dry_run:
            print(f"dry run: {checked.rows} rows -> {checked.events} events "
                  f"({', '.join(f'{n} {k}' for k, n in sorted(checked.kinds.items()))}); "
                  f"realized P&L in file {checked.realized:f}; nothing stored")
            for event in checked.sample:
                print("  " + json.dumps(event, default=str))
            return 0
        batches = spool_batches(spool, args.format, args.file.name, args.account,
                                quantity=args.quantity, timezone=args.timezone,
                                max_events=args.chunk, max_chars=BATCH_CHARS)
        report = ImportReport(rows=checked.rows, events=checked.events,
                              file_realized=checked.realized, file_closed=checked.closed,
                              file_cash=checked.cash)
        with Progress(TextColumn(f"importing {args.file.name}"), BarColumn(),
                      MofNCompleteColumn(), console=console, transient=True) as bar:
            task = bar.add_task("import", total=checked.events)

            def advance(n: int) -> None:
                bar.advance(task, n)

            if args.db is not None:
                asyncio.run(_into_file(args.db, batches, report, checked, advance))
            else:
                asyncio.run(_through_daemon(args.socket or config.socket, batches, report,
                                            checked, args.account, advance))
    finally:
        os.close(spool)
    print(report.reconciliation())
    return 0
