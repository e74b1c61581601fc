"""``tradelog import FILE --format F --account A [--dry-run] [--socket PATH | --db PATH]``.

Through the running daemon by default (or ``--socket``); straight into the file with
``--db`` when no daemon runs (the daemon's lock is taken, so the two never mix).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from daemon.client import AsyncClient
from daemon.config import Config
from daemon.importers import FORMATS, read_file
from daemon.importers.run import ImportReport, append_rows
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


def _realized(rows: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(r["realized_pnl"]) for r in rows), Decimal(0))


async def _through_daemon(socket: Path, read: Any, account: str | None, chunk: int,
                          progress: Any) -> ImportReport:
    async with AsyncClient(socket) as client:
        report = await append_rows(read, client.append, chunk, progress)
        answer = await client.query("balances", **({"account": account} if account else {}))
    accounts = {e["account"] for e in read.events}
    report.views_realized = _realized([r for r in answer["rows"] if r["account"] in accounts])
    return report


async def _into_file(db: Path, read: Any, chunk: int, progress: Any) -> ImportReport:

    with hold_lock(db):
        recorder = await Recorder.open(db)
        try:
            await open_views(recorder)

            async def append(batch: list[dict[str, Any]]) -> dict[str, Any]:
                outcome = await recorder.append(
                    [NewEvent.from_model(parse_event(e), {"importer": "tradelog import"})
                     for e in batch])
                return {"results": [r.to_wire() for r in outcome.results]}

            report = await append_rows(read, append, chunk, progress)
            answer = await query_view(recorder, ViewQuery("balances"))
        finally:
            await recorder.close()
    accounts = {e["account"] for e in read.events}
    report.views_realized = _realized([r for r in answer["rows"] if r["account"] in accounts])
    return report


def run_import(args: argparse.Namespace, config: Config) -> int:
    """Validate the whole file, then store it; exit 1 listing every bad row."""
    console = Console(stderr=True)
    if args.format != "events-jsonl" and not args.account:
        print("tradelog import: --account is required for this format", file=sys.stderr)
        return 2
    read = read_file(args.file, args.format, args.account, args.quantity, args.timezone)
    if read.problems:
        print(f"import: {args.file}: {len(read.problems)} bad rows; nothing was stored:",
              file=sys.stderr)
        for problem in read.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.dry_run:
        kinds = Counter(e["type"] for e in read.events)
        print(f"dry run: {len(read.rows)} rows -> {len(read.events)} events "
              f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}); "
              f"realized P&L in file {read.realized:f}; nothing stored")
        for event in read.events[:5]:
            print("  " + json.dumps(event))
        return 0
    with Progress(TextColumn(f"importing {args.file.name}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("import", total=len(read.events))

        def advance(n: int) -> None:
            bar.advance(task, n)

        if args.db is not None:
            report = asyncio.run(_into_file(args.db, read, args.chunk, advance))
        else:
            report = asyncio.run(_through_daemon(args.socket or config.socket, read,
                                                 args.account, args.chunk, advance))
    print(report.reconciliation())
    return 0
