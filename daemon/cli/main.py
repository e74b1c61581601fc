"""The ``tradelog`` command line.

    tradelog serve   [--db PATH] [--socket PATH] [--config FILE] [--inbox DIR]
    tradelog schema                      JSON Schema of one wire event
    tradelog verify  [--db PATH]         walk the hash chain
    tradelog rebuild [--db PATH]         rebuild every view from the log
    tradelog show VIEW [--db PATH | --socket PATH] [--account A] [--symbol S] [--status S]
                       [--symbol-prefix P] [--attr K=V ...] [--since T] [--until T]
                       [--order asc|desc] [--offset N] [--limit N] [--as-of N|T]
                       [--as-of-time T] [--json]   (every query filter: --help)
    tradelog emit    [--socket PATH]     events as JSON lines on stdin, or one from flags
    tradelog tail    [--socket PATH] [--from N] [--account A] [--types T,..]
    tradelog health  [--socket PATH]
    tradelog report  [--account A] [--json] [--html FILE] [--db PATH]
    tradelog import FILE --format F [--account A] [--dry-run] [--socket PATH | --db PATH]
    tradelog backup DEST [--db PATH | --socket PATH]   verified copy (docs/OPERATIONS.md)
    tradelog restore SRC --db DEST [--to-seq N | --to-time T] [--force]
    tradelog export DIR [--db PATH] [--to-seq N]     events.jsonl and one CSV per view
    tradelog migrate --from URL --to URL   copy a log between stores (docs/POSTGRESQL.md)
    tradelog --version

Exit codes: 0 success, 1 a check failed (verify) or the daemon refused, 2 bad usage,
70 the daemon stopped on a storage fault.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from daemon.config import load_config
from daemon.version import VERSION
from eventstore.errors import TradelogError
from projections.tables import VIEWS

__all__ = ["main"]


def _add_paths(parser: argparse.ArgumentParser, db: bool = True, sock: bool = True) -> None:
    if db:
        parser.add_argument("--db", type=Path, help="database file (default: data directory)")
        parser.add_argument("--store", help="the log's store: sqlite:///PATH or a "
                            "postgresql:// URI (docs/POSTGRESQL.md); default: --db")
    if sock:
        parser.add_argument("--socket", type=Path, help="daemon socket (default: runtime dir)")
    parser.add_argument("--config", type=Path, help="TOML configuration file")


def build_parser() -> argparse.ArgumentParser:
    """The ``tradelog`` argument parser: one required subcommand (serve, verify, show, ...)."""
    parser = argparse.ArgumentParser(prog="tradelog", description=(
        "Event-sourced persistence for trading bots: an append-only SQLite event log "
        "with views, served over a Unix socket."))
    parser.add_argument("--version", action="version", version=f"tradelog {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the daemon")
    _add_paths(serve)
    serve.add_argument("--inbox", type=Path, help="watch this folder for files to import")
    serve.add_argument("--log-format", choices=["auto", "json", "console"])
    sub.add_parser("schema", help="print the JSON Schema of a wire event")
    verify = sub.add_parser("verify", help="check the hash chain and append-only triggers")
    _add_paths(verify, sock=False)
    rebuild = sub.add_parser("rebuild", help="rebuild every view from the log")
    _add_paths(rebuild, sock=False)
    show = sub.add_parser("show", help="print a view")
    show.add_argument("view", choices=list(VIEWS))
    _add_paths(show)
    _add_query_flags(show)
    emit = sub.add_parser("emit", help="append events: JSON lines on stdin, or one from flags")
    _add_paths(emit, db=False)
    emit.add_argument("--type", dest="event_type")
    emit.add_argument("--account")
    emit.add_argument("--source", default="cli/emit")
    emit.add_argument("--id", dest="event_id")
    emit.add_argument("--time", help="RFC 3339 time (default: now)")
    emit.add_argument("--data", help="the event's data as a JSON object")
    emit.add_argument("--batch", type=int, default=500, help="events per append from stdin")
    tail = sub.add_parser("tail", help="print events as they are committed")
    _add_paths(tail, db=False)
    tail.add_argument("--from", dest="from_seq", type=int,
                      help="first seq (default: only new events)")
    tail.add_argument("--account")
    tail.add_argument("--types", help="comma-separated event types")
    tail.add_argument("--count", type=int, help="stop after this many events")
    from daemon.cli.imports import add_parser as add_import

    add_import(sub)
    report = sub.add_parser("report", help="performance metrics of an account (or all)")
    _add_paths(report)
    report.add_argument("--account", help="one account (default: every account)")
    report.add_argument("--json", action="store_true", help="print JSON")
    report.add_argument("--html", type=Path, help="write a self-contained HTML page here")
    report.add_argument("--since", help="first trading day or time to include")
    report.add_argument("--until", help="last trading day or time to include")
    report.add_argument("--symbol", help="only round trips in this symbol")
    report.add_argument("--strategy", help="only round trips from this strategy's signals")
    report.add_argument("--as-of", dest="as_of", help="a seq or an RFC 3339 time")
    report.add_argument("--annualization", type=int,
                        help="trading days per year for Sharpe/Sortino (365 or 252)")
    health = sub.add_parser("health", help="ask the daemon how it is")
    _add_paths(health, db=False)
    _add_operations(sub)
    from daemon.cli.migrate import add_parser as add_migrate

    add_migrate(sub)
    return parser


def _add_query_flags(show: argparse.ArgumentParser) -> None:
    """The ``query`` params of PROTOCOL.md as ``show`` flags (docs/PROTOCOL-NOTES.md)."""
    show.add_argument("--account")
    show.add_argument("--symbol")
    show.add_argument("--symbol-prefix", help="symbols starting with this text")
    for name in ("strategy", "status", "venue", "asset-class", "entity-id"):
        show.add_argument(f"--{name}")
    show.add_argument("--entity", choices=["signal", "order"])
    show.add_argument("--attr", action="append", metavar="KEY=VALUE",
                      help="rows whose attrs hold KEY with VALUE (repeatable); VALUE is read "
                           "as JSON when it is a number, true, false, null or a \"quoted\" "
                           "string, else taken as text")
    show.add_argument("--since", help="first date or time of the view's time column")
    show.add_argument("--until", help="last date or time of the view's time column")
    show.add_argument("--updated-since", help="rows updated at or after this time")
    show.add_argument("--order", choices=["asc", "desc"])
    show.add_argument("--offset", type=int, help="rows to skip (in the view's order)")
    show.add_argument("--limit", type=int, help="at most this many rows (default 1000)")
    show.add_argument("--as-of", help="a seq number or an RFC 3339 recorded time")
    show.add_argument("--as-of-time", help="fold only the events whose event time <= this")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_operations(sub: Any) -> None:
    """``backup``, ``restore`` and ``export`` (docs/OPERATIONS.md)."""
    backup = sub.add_parser("backup", help="a verified, consistent copy of the database")
    backup.add_argument("dest", type=Path, help="the new file (never overwritten)")
    _add_paths(backup)
    restore = sub.add_parser("restore", help="a database from a backup, to a point if asked")
    restore.add_argument("src", type=Path, help="the backup (or any tradelog file)")
    _add_paths(restore, sock=False)
    point = restore.add_mutually_exclusive_group()
    point.add_argument("--to-seq", type=int, help="keep events 1..N")
    point.add_argument("--to-time", help="keep the events recorded at or before this time")
    restore.add_argument("--force", action="store_true",
                         help="replace an existing --db (never one a daemon serves)")
    export = sub.add_parser("export", help="events as JSONL and every view as CSV")
    export.add_argument("directory", type=Path, help="a new or empty directory")
    _add_paths(export, sock=False)
    export.add_argument("--to-seq", type=int, help="export as of this seq (default: the last)")
    export.add_argument("--xlsx", action="store_true",
                        help="also every view in one views.xlsx (needs tradelog[xlsx])")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tradelog`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "schema":
        from schemas import wire_event_json_schema

        print(json.dumps(wire_event_json_schema(), indent=2))
        return 0
    try:
        return _run(args)
    except TradelogError as exc:
        print(f"tradelog: {exc}", file=sys.stderr)
        return 1
    except (ConnectionError, FileNotFoundError) as exc:
        print(f"tradelog: cannot reach the daemon: {exc}; is `tradelog serve` running on "
              "that socket?", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _config(args: argparse.Namespace) -> Any:
    overrides = {"db": getattr(args, "db", None), "socket": getattr(args, "socket", None),
                 "store": getattr(args, "store", None),
                 "inbox": getattr(args, "inbox", None),
                 "log_format": getattr(args, "log_format", None)}
    return load_config(args.config, overrides)


def _run(args: argparse.Namespace) -> int:
    if args.command == "migrate":
        from daemon.cli.migrate import migrate_command

        return migrate_command(args)
    config = _config(args)
    if config.store_url().kind != "sqlite" and args.command not in ("verify",):
        print(f"tradelog: `{args.command}` does not run on a PostgreSQL store yet; on one "
              "today: `verify` and `migrate` (docs/POSTGRESQL.md)", file=sys.stderr)
        return 2
    if args.command == "serve":
        # The writer process imports what it needs while this one imports the daemon.
        from daemon.writer.launch import launch

        launched = launch() if config.writer_process else None
        from daemon.logs import configure_logging
        from daemon.server import serve

        configure_logging(config.log_format, config.log_level)
        return asyncio.run(serve(config, args.config, launched=launched))
    from daemon.cli import commands

    if args.command == "import":
        from daemon.cli.imports import run_import

        return run_import(args, config)
    if args.command == "report":
        from daemon.report import report_command

        return report_command(args, config)
    if args.command in ("backup", "restore", "export"):
        return _operation(args, config)
    handler = getattr(commands, args.command)
    code: int = handler(args, config)
    return code


def _operation(args: argparse.Namespace, config: Any) -> int:
    if args.command == "backup":
        from daemon.cli.backup import backup_command

        return backup_command(args, config)
    if args.command == "restore":
        from daemon.cli.restore import restore_command

        return restore_command(args, config)
    from daemon.cli.export import export_command

    return export_command(args, config)


if __name__ == "__main__":
    sys.exit(main())
