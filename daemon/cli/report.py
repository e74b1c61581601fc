"""``tradelog report``: the metrics from the daemon when one answers, else read-only from
the file or a PostgreSQL log; printed as a table or JSON, and written as one HTML page
with ``--html``.

The figures are ``projections.metrics`` (docs/METRICS.md); their text and HTML forms are
``daemon.report``'s. This module chooses the source and turns failures into exit codes.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from daemon.cli.errors import EXIT_DENIED, EXIT_NOT_FOUND, CliError, os_error
from daemon.cli.source import known_accounts, open_source, require_account
from daemon.config import Config

__all__ = ["check_html_target", "report"]


def check_html_target(path: Path) -> None:
    """Nothing if a report file (HTML, PDF, xlsx) can be written at ``path``.

    Raises:
        CliError: its folder is missing (exit 4) or not writable (exit 5), or ``path``
            is a folder (exit 1).
    """
    folder = path.parent
    if not folder.is_dir():
        raise CliError(f"cannot write the report to {path}: no folder {folder}; create it "
                       "or give --html a path in an existing folder", EXIT_NOT_FOUND)
    if path.is_dir():
        raise CliError(f"cannot write the report to {path}: it is a folder; give a file "
                       "name such as report.html")
    if not os.access(folder, os.W_OK):
        raise CliError(f"cannot write the report to {path}: {folder} is not writable",
                       EXIT_DENIED)


def report(args: argparse.Namespace, config: Config) -> int:
    """Print the metrics of ``--account`` (or of every account) and write ``--html``,
    ``--pdf`` and ``--xlsx`` (``daemon.report.report_command`` makes the output).

    From the daemon when one answers (``daemon.cli.source``), else read-only from the
    file or the PostgreSQL log; ``--benchmark`` prices are read here, so with it the log
    is read.

    Returns 0. Raises ``CliError`` (unknown account: exit 4 listing the known ones; an
    output path that cannot be written), ``DaemonUnreachableError`` (``--socket`` given,
    no daemon: exit 3), ``RemoteError``/``TradelogError`` (a bad parameter: exit 1).
    """
    from daemon.report import metrics_params, report_command

    for name in ("html", "pdf", "xlsx"):
        target = getattr(args, name, None)
        if target is not None:
            check_html_target(Path(target))
    prefer_file = getattr(args, "benchmark", None) is not None
    with open_source(args, config, "report", prefer_file=prefer_file) as source:
        require_account(source, args.account)
        reports = None
        if source.client is not None:
            names = [args.account] if args.account is not None else known_accounts(source)
            params = metrics_params(args)
            reports = [source.metrics(name, **params) for name in names]
        else:
            args.db = source.db  # None: the PostgreSQL log config.store names
    try:
        return report_command(args, config, reports=reports)
    except OSError as exc:
        if exc.filename is None:
            raise
        raise os_error(exc, "write the report") from None
