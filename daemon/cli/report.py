"""``tradelog report``: the metrics from the daemon when one answers, else read-only from
the file; printed as a table or JSON, and written as one HTML page with ``--html``.

The figures are ``projections.metrics`` (docs/METRICS.md); their text and HTML forms are
``daemon.report``'s. This module chooses the source and turns failures into exit codes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from daemon.cli.errors import EXIT_DENIED, EXIT_NOT_FOUND, CliError, os_error
from daemon.cli.source import known_accounts, open_source, require_account
from daemon.config import Config

__all__ = ["check_html_target", "report"]


def check_html_target(path: Path) -> None:
    """Nothing if a page can be written at ``path``.

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


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in ("since", "until", "symbol", "strategy", "annualization"):
        if getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    as_of = getattr(args, "as_of", None)
    if as_of is not None:
        params["as_of"] = int(as_of) if str(as_of).isdigit() else as_of
    return params


def report(args: argparse.Namespace, config: Config) -> int:
    """Print the metrics of ``--account`` (or of every account) and write ``--html``.

    Returns 0. Raises ``CliError`` (unknown account: exit 4 listing the known ones; an
    HTML path that cannot be written), ``DaemonUnreachableError`` (``--socket`` given, no
    daemon: exit 3), ``RemoteError``/``ValidationError`` (a bad parameter: exit 1).
    """
    from daemon import report as pages

    html = Path(args.html) if args.html is not None else None
    if html is not None:
        check_html_target(html)
    params = _params(args)
    with open_source(args, config, "report") as source:
        require_account(source, args.account)
        names = [args.account] if args.account is not None else known_accounts(source)
        reports = [source.metrics(name, **params) for name in names]
    if html is not None:
        try:
            html.write_text(pages.render_page(reports), encoding="utf-8")
        except OSError as exc:
            raise os_error(exc, "write the report") from None
    if args.json:
        answer: Any = reports[0] if args.account is not None else {"accounts": reports}
        print(json.dumps(answer, indent=2))
        return 0
    console = Console()
    for metrics in reports:
        pages._print_text(metrics, console)
    if not reports:
        console.print("no accounts in the log")
    if html is not None:
        console.print(f"report: wrote {html}")
    return 0
