"""The ``tradelog`` command line (every command, option and exit code: docs/CLI.md).

    tradelog serve   [--db PATH] [--socket PATH] [--config FILE] [--inbox DIR]
    tradelog schema                      JSON Schema of one wire event
    tradelog verify  [--db PATH]         walk the hash chain
    tradelog rebuild [--db PATH]         rebuild every view from the log (no daemon running)
    tradelog show VIEW [--db PATH | --socket PATH] [--format table|tsv|csv|json] [filters]
    tradelog emit    [--socket PATH]     events as JSON lines on stdin, or one from flags
    tradelog tail    [--socket PATH] [--from N] [--account A] [--types T,..]
    tradelog health  [--socket PATH]
    tradelog report  [--account A] [--json] [--html|--pdf|--xlsx FILE] [--period P]
                     [--db PATH | --socket PATH]
    tradelog import FILE --format F [--account A] [--dry-run]
                    [--socket PATH | --db PATH | --store URL]
    tradelog backup DEST [--db PATH | --socket PATH]   verified copy (docs/OPERATIONS.md)
    tradelog restore SRC (--db DEST | --store URL) [--to-seq N | --to-time T] [--force]
    tradelog export DIR [--db PATH] [--to-seq N]     events.jsonl and one CSV per view
    tradelog migrate --from URL --to URL   copy a log between stores (docs/POSTGRESQL.md)
    tradelog --version

Exit codes (``daemon.cli.errors``): 0 success, 1 refused or failed, 2 bad usage, 3 the
daemon cannot be reached, 4 not found, 5 not permitted, 70 storage fault (serve), 130
interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daemon.cli.arguments import VIEW_NAMES, add_migrate
from daemon.cli.arguments import add_parser as add_import
from daemon.cli.errors import EXIT_INTERRUPTED
from daemon.paths import default_paths
from daemon.version import VERSION

__all__ = ["build_parser", "main"]


class _Formatter(argparse.HelpFormatter):
    """Help that ends each option with its default, where it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default" in text or default in (None, False)
                or default is argparse.SUPPRESS or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` (and its subcommands') with ``_Formatter``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _add_paths(parser: argparse.ArgumentParser, db: bool = True, sock: bool = True) -> None:
    default_db, default_socket = default_paths()
    if db:
        parser.add_argument("--db", type=Path, metavar="PATH",
                            help=f"the database file (default: {default_db}, or the "
                            "config file's `db`)")
        parser.add_argument("--store", metavar="URL",
                            help="the log's store: sqlite:///PATH or a postgresql:// URI "
                            "(docs/POSTGRESQL.md; default: the --db file)")
    if sock:
        parser.add_argument("--socket", type=Path, metavar="PATH",
                            help=f"the daemon's socket (default: {default_socket}, or the "
                            "config file's `socket`)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML configuration file (docs/CONFIG.md; default: none, "
                        "or $TRADELOG_CONFIG)")


def _add_wait(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument("--wait", type=float, default=default, metavar="SECONDS",
                        help="how long to wait for a daemon that is not there yet, saying "
                        "so on stderr")


def _positive(text: str) -> int:
    """A whole number >= 1, for counts and sizes (argparse ``type``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``tradelog`` argument parser: one required subcommand (serve, verify, show, ...)."""
    parser = _Parser(prog="tradelog", description=(
        "Event-sourced persistence for trading bots: an append-only SQLite event log "
        "with views, served over a Unix socket. Exit codes: 0 ok, 1 refused or failed, "
        "2 bad usage, 3 daemon unreachable, 4 not found, 5 not permitted (docs/CLI.md)."))
    parser.add_argument("--version", action="version", version=f"tradelog {VERSION}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the daemon")
    _add_paths(serve)
    serve.add_argument("--inbox", type=Path, metavar="DIR",
                       help="watch this folder for files to import (default: none)")
    serve.add_argument("--log-format", choices=["auto", "json", "console"],
                       help="log lines as JSON or for people (default: auto: JSON under "
                       "systemd or when stdout is not a terminal)")
    serve.add_argument("--http", dest="http_listen", metavar="HOST:PORT",
                       help="also serve the read-only HTTP API and dashboard here "
                       "(e.g. 127.0.0.1:8787; docs/HTTP.md; default: not at all)")
    sub.add_parser("schema", help="print the JSON Schema of a wire event")
    verify = sub.add_parser("verify", help="check the hash chain and append-only triggers")
    _add_paths(verify, sock=False)
    rebuild = sub.add_parser("rebuild", help="rebuild every view from the log (on a SQLite "
                             "file the daemon must be stopped: it takes its lock; on "
                             "PostgreSQL the daemons' commits wait for it)")
    _add_paths(rebuild, sock=False)
    show = sub.add_parser("show", help="print a view (from the daemon if it runs, else "
                          "the file or the PostgreSQL log, read-only)")
    show.add_argument("view", choices=list(VIEW_NAMES), help="the view to print")
    _add_paths(show)
    _add_query_flags(show)
    emit = sub.add_parser("emit", help="append events: JSON lines on stdin, or one from flags")
    _add_paths(emit, db=False)
    emit.add_argument("--type", dest="event_type", metavar="TYPE",
                      help="send one event of this type (signal, order, fill, cash, ...) "
                      "built from the flags instead of reading stdin")
    emit.add_argument("--account", help="the event's account; with stdin, the account "
                      "of every event that names none (one naming another is refused)")
    emit.add_argument("--source", default="cli/emit", help="the event's source")
    emit.add_argument("--id", dest="event_id", metavar="ID",
                      help="the event's id (default: a new UUID)")
    emit.add_argument("--time", help="the event's RFC 3339 time (default: now)")
    emit.add_argument("--data", metavar="JSON", help="the event's data as a JSON object")
    emit.add_argument("--batch", type=_positive, default=500, metavar="N",
                      help="events per append from stdin")
    _add_wait(emit, 0.5)
    tail = sub.add_parser("tail", help="print events as JSON lines as they are committed")
    _add_paths(tail, db=False)
    tail.add_argument("--from", dest="from_seq", type=int, metavar="SEQ",
                      help="first seq (default: only new events)")
    tail.add_argument("--account", help="only this account's events (default: all)")
    tail.add_argument("--types", metavar="T,...",
                      help="comma-separated event types (default: all)")
    tail.add_argument("--count", type=_positive, metavar="N",
                      help="stop after this many events (default: never)")
    _add_wait(tail, 0.5)
    add_import(sub)
    report = sub.add_parser("report", help="performance metrics of an account (or all), "
                            "from the daemon if it runs, else the file or the PostgreSQL "
                            "log, read-only")
    _add_paths(report)
    report.add_argument("--account", help="one account (default: every account)")
    report.add_argument("--json", action="store_true", help="print JSON")
    report.add_argument("--html", type=Path, metavar="FILE",
                        help="also write a self-contained HTML page here")
    report.add_argument("--pdf", type=Path, metavar="FILE",
                        help="also print the page to this PDF (needs Chromium)")
    report.add_argument("--xlsx", type=Path, metavar="FILE",
                        help="also write the tables to this workbook")
    report.add_argument("--since", help="first trading day or time to include "
                        "(default: the first)")
    report.add_argument("--until", help="last trading day or time to include "
                        "(default: the last)")
    report.add_argument("--symbol", help="only round trips in this symbol (default: all)")
    report.add_argument("--strategy", help="only round trips from this strategy's signals "
                        "(default: all)")
    report.add_argument("--as-of", dest="as_of", metavar="SEQ|TIME",
                        help="as the log stood after this seq, or at this RFC 3339 "
                        "recorded time (default: now)")
    report.add_argument("--annualization", type=int, metavar="DAYS",
                        help="trading days per year for Sharpe/Sortino (default: 365, or "
                        "252 for accounts trading on weekdays only)")
    report.add_argument("--period", choices=("day", "week", "month"), default="month",
                        help="the period table: trading days, ISO weeks or months")
    report.add_argument("--now", metavar="TIME",
                        help="RFC 3339 moment for 'today' (default: the clock)")
    report.add_argument("--benchmark", type=Path, metavar="CSV",
                        help="CSV of benchmark prices (date, close) instead of its marks "
                        "(read here: the report then reads the file, not the daemon)")
    health = sub.add_parser("health", help="ask the daemon how it is (JSON)")
    _add_paths(health, db=False)
    _add_operations(sub)
    add_migrate(sub)
    return parser


def _add_query_flags(show: argparse.ArgumentParser) -> None:
    """The ``query`` params of PROTOCOL.md as ``show`` flags (docs/PROTOCOL-NOTES.md)."""
    show.add_argument("--format", choices=["table", "tsv", "csv", "json"],
                      help="output (default: table on a terminal, tsv in a pipe)")
    show.add_argument("--json", action="store_true", help="the same as --format json")
    show.add_argument("--exact", action="store_true",
                      help="in a table, money as stored (default: to 2 decimals); tsv, "
                      "csv and json are always exact")
    show.add_argument("--account", help="only this account's rows (default: all)")
    show.add_argument("--symbol", help="only this symbol's rows (default: all)")
    show.add_argument("--symbol-prefix", metavar="P", help="symbols starting with this text")
    for name, what in (("strategy", "strategy"), ("status", "status"), ("venue", "venue"),
                       ("asset-class", "asset class"), ("entity-id", "entity id")):
        show.add_argument(f"--{name}", help=f"only rows with this {what} (default: all)")
    show.add_argument("--entity", choices=["signal", "order"],
                      help="history: only this kind of entity (default: both)")
    show.add_argument("--attr", action="append", metavar="KEY=VALUE",
                      help="rows whose attrs hold KEY with VALUE (repeatable); VALUE is read "
                           "as JSON when it is a number, true, false, null or a \"quoted\" "
                           "string, else taken as text")
    show.add_argument("--since", help="first date or time of the view's time column")
    show.add_argument("--until", help="last date or time of the view's time column")
    show.add_argument("--updated-since", metavar="TIME", help="rows updated at or after this "
                      "time")
    show.add_argument("--order", choices=["asc", "desc"],
                      help="row order (default: the most recent rows, oldest first)")
    show.add_argument("--offset", type=int, metavar="N",
                      help="rows to skip (in the view's order; default 0)")
    show.add_argument("--limit", type=int, metavar="N",
                      help="at most this many rows (default 1000)")
    show.add_argument("--as-of", metavar="SEQ|TIME",
                      help="the views as they stood after this seq, or at this RFC 3339 "
                      "recorded time (when the daemon stored the events, not the events' "
                      "own time; default: now)")
    show.add_argument("--as-of-time", metavar="TIME",
                      help="fold only the events whose own (event) time is at or before "
                      "this RFC 3339 time")


def _add_operations(sub: Any) -> None:
    """``backup``, ``restore`` and ``export`` (docs/OPERATIONS.md)."""
    backup = sub.add_parser("backup", help="a verified, consistent copy of the database")
    backup.add_argument("dest", type=Path, help="the new file (never overwritten)")
    _add_paths(backup)
    restore = sub.add_parser("restore", help="a database from a backup, to a point if asked "
                             "(a new SQLite file, or an empty PostgreSQL log)")
    restore.add_argument("src", type=Path, help="the backup (or any tradelog SQLite file)")
    restore.add_argument("--db", type=Path, metavar="PATH",
                         help="the SQLite file to create (with --force, to replace)")
    restore.add_argument("--store", metavar="URL",
                         help="restore into this log instead: a postgresql:// URI naming "
                         "a log with no events (its views rebuilt there), or sqlite:///PATH "
                         "as --db (docs/POSTGRESQL.md)")
    restore.add_argument("--config", type=Path, metavar="FILE",
                         help="TOML configuration file (docs/CONFIG.md; default: none, "
                         "or $TRADELOG_CONFIG)")
    point = restore.add_mutually_exclusive_group()
    point.add_argument("--to-seq", type=int, help="keep events 1..N")
    point.add_argument("--to-time", help="keep the events recorded at or before this time")
    restore.add_argument("--force", action="store_true",
                         help="replace an existing --db (never one a daemon serves); on "
                         "PostgreSQL, go on after events that are already SRC's first ones "
                         "(never removes any)")
    export = sub.add_parser("export", help="events as JSONL and every view as CSV")
    export.add_argument("directory", type=Path, help="a new or empty directory")
    _add_paths(export, sock=False)
    export.add_argument("--to-seq", type=int, help="export as of this seq (default: the last)")
    export.add_argument("--xlsx", action="store_true",
                        help="also every view in one views.xlsx (needs tradelog[xlsx])")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tradelog`` console script; returns the exit code
    (``daemon.cli.errors``). Failures print one line naming what failed and what to do;
    ``TRADELOG_DEBUG=1`` shows the traceback too."""
    from daemon.cli.dispatch import explain, run
    from daemon.cli.errors import debug_wanted, quiet_broken_pipe

    args = build_parser().parse_args(argv)
    try:
        if args.command == "schema":
            from schemas import wire_event_json_schema

            print(json.dumps(wire_event_json_schema(), indent=2), flush=True)
            return 0
        return run(args)
    except BrokenPipeError:
        quiet_broken_pipe()  # the reader (`| head`) has what it wanted
        return 0
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug_wanted():
            import traceback

            traceback.print_exc()
        message, code = explain(exc)
        print(f"tradelog: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
