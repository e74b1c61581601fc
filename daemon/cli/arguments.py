"""The arguments of ``tradelog import`` and ``migrate``, apart from the commands themselves
so that building the CLI's parser (every command, ``serve`` included) does not load the
importers or the stores.

``FORMAT_NAMES`` are the keys of ``daemon.importers.FORMATS``, ``VIEW_NAMES`` those of
``projections.tables.VIEWS`` (tests hold them equal): the parser names them without
loading either (``--version`` and ``--help`` load neither).
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["FORMAT_NAMES", "MAX_CHUNK", "VIEW_NAMES", "add_migrate", "add_parser"]

FORMAT_NAMES = ("daily-pnl-json", "events-jsonl", "trades-csv")
"""The names ``--format`` takes, sorted: ``daemon.importers.FORMATS``'s keys."""
VIEW_NAMES = ("positions", "trades", "balances", "daily", "signals", "orders", "journal",
              "history", "instruments", "accounts", "strategies")
"""The views ``show`` prints, in ``projections.tables.VIEWS``'s order."""
MAX_CHUNK = 10_000
"""Events in one ``append``, at most (PROTOCOL.md, "Limits")."""


def add_parser(sub: Any) -> None:
    """Add the ``import`` subcommand to the CLI's subparsers."""
    parser = sub.add_parser("import", help="import a legacy trades file or events")
    parser.add_argument("file", type=Path, help="the file to import (CSV or JSON lines)")
    parser.add_argument("--format", choices=FORMAT_NAMES,
                        help="the file's format (or --map)")
    parser.add_argument("--map", type=Path, metavar="MAPPING.toml",
                        help="read a CSV or JSON records through this mapping "
                        "(docs/OPERATIONS.md, 'Mapping a bot's own files')")
    parser.add_argument("--void", action="store_true",
                        help="undo: void every event this file stored (read with the "
                        "same --format/--map, --account and --quantity as its import)")
    parser.add_argument("--account", help="the account the rows belong to "
                        "(events-jsonl: optional; events must match it)")
    parser.add_argument("--quantity", type=Decimal,
                        help="quantity for rows without one (the trades CSV has none)")
    parser.add_argument("--revision", type=_revision, default=1,
                        help="2, 3...: import rows whose earlier import was voided, under "
                        "a new source (give the same to --void it)")
    parser.add_argument("--timezone", default="UTC", type=_zone,
                        help="IANA zone of times written without an offset (default UTC)")
    parser.add_argument("--dry-run", action="store_true", help="validate and show, store nothing")
    parser.add_argument("--chunk", type=_chunk, default=500,
                        help=f"events per append (1 to {MAX_CHUNK})")
    parser.add_argument("--db", type=Path, help="write the file directly (no daemon running)")
    parser.add_argument("--store", metavar="URL",
                        help="write straight into this log, without a daemon: "
                        "sqlite:///PATH (as --db) or postgresql://... (daemons on it may "
                        "run: docs/POSTGRESQL.md)")
    parser.add_argument("--socket", type=Path, help="the daemon's socket")
    parser.add_argument("--config", type=Path, help="TOML configuration file")


def _zone(text: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only `import` parses a zone

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"{text[:64]!r} is not an IANA time zone name "
                                         "(e.g. Asia/Kolkata, UTC)") from None
    return text


def _revision(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 999:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}: give a whole number from 1 to 999")
    return int(text)


def _chunk(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number") from None
    if not 1 <= value <= MAX_CHUNK:
        raise argparse.ArgumentTypeError(
            f"{value} events per append; give 1 to {MAX_CHUNK} (the daemon's limit)")
    return value


def add_migrate(sub: Any) -> None:
    """The ``migrate`` subcommand."""
    parser = sub.add_parser("migrate", help="copy a log to another store, seqs, times and "
                            "hashes kept (e.g. SQLite to PostgreSQL)")
    parser.add_argument("--from", dest="source", required=True,
                        help="the log to copy: sqlite:///PATH or postgresql://...")
    parser.add_argument("--to", dest="target", required=True,
                        help="an empty log (or one holding the start of this one): "
                        "sqlite:///PATH or postgresql://...")
    parser.add_argument("--batch", type=int, default=5000, help="events per transaction")
    parser.add_argument("--to-seq", dest="to_seq", type=int, default=None, metavar="SEQ",
                        help="copy the log up to this seq only (a point in time to go "
                        "back to; default: the whole log)")
