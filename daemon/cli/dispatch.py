"""Running a parsed ``tradelog`` command, and what its failures say.

``run`` reads the configuration and hands the arguments to the command's module;
``explain`` turns any failure into one line and an exit code (``daemon.cli.errors``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from daemon.cli.errors import CliError

__all__ = ["PLAIN_COMMANDS", "explain", "run"]


def explain(exc: Exception) -> tuple[str, int]:
    """The one-line message and exit code (``daemon.cli.errors``) for a failure."""
    from daemon.cli.commands import refusal_text
    from daemon.cli.errors import EXIT_FAILED, os_error
    from daemon.client import RemoteError
    from eventstore.errors import TradelogError

    if isinstance(exc, CliError):
        return exc.message, exc.code
    if isinstance(exc, RemoteError):
        return f"the daemon refused: {refusal_text(exc)}", EXIT_FAILED
    if isinstance(exc, TradelogError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, OSError) and exc.filename is not None:
        error = os_error(exc)
        return error.message, error.code
    if isinstance(exc, OSError | EOFError):
        return (f"the connection to the daemon failed: {exc}; check it with `tradelog "
                "health`", EXIT_FAILED)
    return (f"unexpected {type(exc).__name__}: {exc}; TRADELOG_DEBUG=1 shows the traceback",
            EXIT_FAILED)


PLAIN_COMMANDS = frozenset({"show", "verify", "rebuild", "emit", "tail", "health", "import",
                            "export", "restore"})
"""The commands that use only the configuration's ``db``, ``socket`` and store: given
a configuration with nothing else in it, they take ``daemon.locations.plain_locations``
and do not load the configuration's models."""


def _config(args: argparse.Namespace) -> Any:
    """The configuration ``args`` and the environment give (``daemon.config.Config``),
    or for ``PLAIN_COMMANDS`` its paths (``daemon.locations.Locations``) when that is
    all there is to it."""
    import os

    from daemon.cli.errors import EXIT_NOT_FOUND

    file = args.config or (Path(os.environ["TRADELOG_CONFIG"])
                           if os.environ.get("TRADELOG_CONFIG") else None)
    if file is not None and not Path(file).is_file():
        raise CliError(f"no configuration file at {file}; give an existing TOML file with "
                       "--config (docs/CONFIG.md), or leave it out", EXIT_NOT_FOUND)
    overrides = {"db": getattr(args, "db", None), "socket": getattr(args, "socket", None),
                 "store": getattr(args, "store", None),
                 "inbox": getattr(args, "inbox", None),
                 "log_format": getattr(args, "log_format", None),
                 "http_listen": getattr(args, "http_listen", None)}
    if file is None and args.command in PLAIN_COMMANDS:
        from daemon.locations import plain_locations

        plain = plain_locations(overrides)
        if plain is not None:
            return plain
    from daemon.config import load_config

    try:
        return load_config(args.config, overrides)
    except OSError as exc:
        from daemon.cli.errors import os_error

        raise os_error(exc, "read the configuration file") from None


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; returns its exit code, raises what ``explain`` reads."""
    if args.command == "migrate":
        from daemon.cli.migrate import migrate_command

        return migrate_command(args)
    config = _config(args)
    if config.store_url().kind != "sqlite":
        _refuse_on_postgresql(args)
    if args.command == "serve":
        return _serve(args, config)
    from daemon.cli import commands

    if args.command == "import":
        return _import(args, config)
    if args.command == "report":
        from daemon.cli.report import report

        return report(args, config)
    if args.command in ("backup", "restore", "export"):
        return _operation(args, config)
    handler = getattr(commands, args.command)
    code: int = handler(args, config)
    return code


def _refuse_on_postgresql(args: argparse.Namespace) -> None:
    """Nothing when ``args.command`` runs on a PostgreSQL store.

    Raises:
        CliError: ``import --db``, which writes a SQLite file, is refused naming what to
            use instead (exit 2).
    """
    from daemon.cli.errors import EXIT_USAGE

    if args.command == "import" and getattr(args, "db", None) is not None:
        if getattr(args, "store", None) is not None:
            raise CliError("give --db PATH or --store URL, not both", EXIT_USAGE)
        raise CliError("`import --db` writes a SQLite file and does not run on a "
                       "PostgreSQL store: import straight into the PostgreSQL log with "
                       "--store URL, or through a daemon on the log (leave out --db) "
                       "(docs/POSTGRESQL.md)", EXIT_USAGE)


def _serve(args: argparse.Namespace, config: Any) -> int:
    """``tradelog serve``; a database or socket path that cannot be used is reported
    naming it, before anything is created."""
    import asyncio

    from daemon.cli.errors import os_error

    # The writer process is forked with its code imported, before this one imports the
    # rest of the daemon, starts threads or an event loop (docs/ARCHITECTURE.md).
    from daemon.writer.launch import fork_writer

    launched = fork_writer() if config.writer_process else None
    from daemon.logs import configure_logging
    from daemon.server import serve

    configure_logging(config.log_format, config.log_level)
    try:
        return asyncio.run(serve(config, args.config, launched=launched))
    except OSError as exc:
        if exc.filename is None:
            raise
        raise os_error(exc, "start the daemon", "give --db and --socket paths in folders "
                       "this user may write (see `tradelog serve --help`)") from None


def _import(args: argparse.Namespace, config: Any) -> int:
    """``tradelog import`` after the checks every command makes: the file is there, and
    the daemon answers unless ``--db``, ``--store`` or ``--dry-run`` says it is not
    needed."""
    from daemon.cli.errors import EXIT_NOT_FOUND, EXIT_USAGE
    from daemon.cli.imports import run_import
    from daemon.cli.source import connect

    if not Path(args.file).is_file():
        what = "a folder, not a file" if Path(args.file).is_dir() else "no such file"
        raise CliError(f"{args.file}: {what}; give the path of the file to import",
                       EXIT_NOT_FOUND)
    if args.db is not None and args.store is not None:
        raise CliError("give --db PATH or --store URL, not both", EXIT_USAGE)
    if args.db is None and args.store is None and not args.dry_run:
        connect(config.socket).close()
    return run_import(args, config)


def _operation(args: argparse.Namespace, config: Any) -> int:
    """``backup``, ``restore`` and ``export``, after checking that the file they read is
    there (exit 4 naming it)."""
    from daemon.cli.errors import EXIT_NOT_FOUND

    source = {"restore": args.src if args.command == "restore" else None,
              "export": config.db if config.store_url().kind == "sqlite" else None,
              "backup": config.db if args.db is not None else None}[args.command]
    if source is not None and not Path(source).is_file():
        raise CliError(f"no database at {source}; give the path of an existing tradelog "
                       "file", EXIT_NOT_FOUND)
    if args.command == "backup":
        from daemon.cli.backup import backup_command

        return backup_command(args, config)
    if args.command == "restore":
        from daemon.cli.restore import restore_command

        return restore_command(args, config)
    from daemon.cli.export import export_command

    return export_command(args, config)
