"""What the example bots share: a daemon to talk to, an event builder, a table printer.

Each example takes ``--socket PATH`` (a running ``tradelog serve``) or, without it,
starts its own daemon on a fresh database under ``--dir`` (default: a temporary
directory, removed at the end), exactly as ``examples/demo.py`` does.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from daemon.cli.commands import print_view
from daemon.process import ServeProcess

__all__ = ["Events", "daemon_socket", "parse_args", "show"]


class Events:
    """Wire events of one bot (``source``) in one ``account``.

    ``make(type, id, time, data)`` gives the event; ids are chosen by the bot, so that
    sending the same events again stores nothing twice.
    """

    def __init__(self, source: str, account: str) -> None:
        self.source = source
        self.account = account

    def make(self, kind: str, event_id: str, time: str, data: dict[str, Any]) -> dict[str, Any]:
        """One wire event: ``time`` is RFC 3339 with an offset, ``data`` as EVENTS.md."""
        return {"id": event_id, "source": self.source, "type": kind, "time": time,
                "account": self.account, "data": data}


def parse_args(description: str) -> argparse.Namespace:
    """``--socket`` (a running daemon) or ``--dir`` (where to start one)."""
    parser = argparse.ArgumentParser(description=description)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path,
                       help="socket of a running `tradelog serve`; without it, one is started")
    where.add_argument("--dir", type=Path,
                       help="where the started daemon keeps its database (default: a "
                            "temporary directory, removed at the end)")
    return parser.parse_args()


@contextlib.contextmanager
def daemon_socket(socket_path: Path | None, directory: Path | None) -> Iterator[Path]:
    """The socket to use: ``socket_path`` as given, else that of a daemon started on
    ``directory``/tradelog.db (a new temporary directory when None) and stopped with
    SIGTERM at the end.

    Raises:
        SystemExit: the daemon did not start (the message says why).
    """
    if socket_path is not None:
        yield socket_path
        return
    owned = directory is None
    folder = Path(tempfile.mkdtemp(prefix="tradelog-example-")) if directory is None \
        else directory.absolute()
    folder.mkdir(parents=True, exist_ok=True)
    proc = ServeProcess(folder / "tradelog.db", folder / "tradelog.sock", folder / "daemon.log")
    try:
        try:
            proc.start()
        except (RuntimeError, TimeoutError) as exc:
            raise SystemExit(f"the daemon did not start: {exc}") from None
        try:
            yield proc.socket
        finally:
            proc.stop(signal.SIGTERM)
    finally:
        if owned:
            shutil.rmtree(folder, ignore_errors=True)


def show(console: Console, title: str, answer: dict[str, Any], columns: list[str]) -> None:
    """Print a view answer under ``title`` with only ``columns``.

    Objects (``attrs``, ``parameters``) are shown as ``key=value`` pairs.
    """
    rows = [{name: _flat(value) for name, value in row.items()} for row in answer["rows"]]
    console.print(f"[bold]{title}[/]")
    print_view({**answer, "rows": rows}, console, columns)


def _flat(value: Any, nested: bool = False) -> Any:
    if isinstance(value, dict):
        text = " ".join(f"{key}={_flat(item, True)}" for key, item in value.items())
        return "{" + text + "}" if nested else text
    return value
