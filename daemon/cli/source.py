"""Where a reading command gets its answers: the running daemon, or the log read-only.

``show``, ``report`` and the like ask the daemon when one answers on the socket (its
views are always current), and read the database file read-only only when none does or
when ``--db`` is given without ``--socket``; they say which on stderr. ``--socket``
alone means the daemon or nothing (exit 3 when it does not answer). On a PostgreSQL
store (``--store postgresql://...``) the log and its views' tables are read in the
database, read-only, when no daemon answers.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.cli.errors import EXIT_NOT_FOUND, EXIT_USAGE, CliError, DaemonUnreachableError
from daemon.client import Client, RemoteError
from eventstore.store import StoreURL, ViewReader, open_reader
from projections.query_params import ViewQuery

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.locations import Locations

__all__ = ["PROBE_TIMEOUT_S", "ReadSource", "connect", "daemon_answers", "known_accounts",
           "open_source", "require_account"]

PROBE_TIMEOUT_S = 1.0
"""How long a probe of the socket may take: a daemon that is there answers at once."""


def _probe(path: Path) -> str | None:
    """None if something accepts connections at ``path``; else the system's reason."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(PROBE_TIMEOUT_S)
    try:
        sock.connect(str(path))
    except FileNotFoundError:
        return "no socket there"
    except ConnectionRefusedError:
        return "nothing listening on it"
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        sock.close()
    return None


def daemon_answers(path: Path) -> bool:
    """Whether a daemon accepts connections on ``path`` now (within ``PROBE_TIMEOUT_S``)."""
    return _probe(path) is None


def connect(path: Path, wait_s: float = 0.0, retry_for_s: float = 10.0) -> Client:
    """A ``Client`` on ``path`` once a daemon accepts connections there.

    ``wait_s``: how long to wait for a daemon that is not there yet (saying so on stderr
    once); ``retry_for_s``: how long the client re-sends after a lost connection.

    Raises:
        DaemonUnreachableError: nothing answered within ``wait_s`` (exit 3).
    """
    why = _probe(path)
    if why is not None and wait_s > 0:
        print(f"tradelog: waiting up to {wait_s:g} s for the daemon at {path} ...",
              file=sys.stderr, flush=True)
        deadline = time.monotonic() + wait_s
        while why is not None and time.monotonic() < deadline:
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
            why = _probe(path)
    if why is not None:
        raise DaemonUnreachableError(path, why)
    return Client(path, retry_for_s=retry_for_s)


class ReadSource:
    """Views and metrics from the daemon (``client``), from the file at ``db`` or from
    the PostgreSQL log ``store``, read-only; ``where`` names it for messages. Use as a
    context manager."""

    def __init__(self, where: str, client: Client | None = None, db: Path | None = None,
                 store: StoreURL | None = None) -> None:
        self.where = where
        self.client = client
        self.db = db
        self.store = store
        self._runner: asyncio.Runner | None = None
        self._recorder: ViewReader | None = None

    def __enter__(self) -> ReadSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection or the file."""
        if self.client is not None:
            self.client.close()
        if self._runner is not None:
            if self._recorder is not None:
                self._runner.run(self._recorder.close())
            self._runner.close()
            self._runner = None

    def _file(self) -> tuple[asyncio.Runner, ViewReader]:
        if self._runner is None:
            target = self.store or self.db
            assert target is not None
            self._runner = asyncio.Runner()
            self._recorder = self._runner.run(open_reader(target))
        assert self._recorder is not None
        return self._runner, self._recorder

    def query(self, query: ViewQuery) -> dict[str, Any]:
        """A view's answer, ``{"view", "as_of_seq", "total", "rows"}`` (PROTOCOL.md).

        Raises ``RemoteError`` (the daemon refused) or ``ValidationError`` (refused here)."""
        if self.client is not None:
            filters = {k: v for k, v in query.given().items() if k != "view"}
            return self.client.query(query.view, **filters)
        from projections.query import query_view  # the folds load for a file only

        runner, recorder = self._file()
        if query.as_of is None and query.as_of_time is None:
            self._require_views(runner, recorder)
        return runner.run(query_view(recorder, query))

    def _require_views(self, runner: asyncio.Runner, recorder: ViewReader) -> None:
        """Nothing when the log has its views' tables (the views as they are now).

        Raises:
            CliError: none yet, as in a log ``migrate`` copied that no daemon served
                (exit 1, saying to run ``rebuild``).
        """
        found = runner.run(recorder.fetch(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
            "name = 'projection_checkpoint'"))
        if not found:
            raise CliError(f"{self.where} has no views yet (a log `migrate` copied, that no "
                           "daemon has served): run `tradelog rebuild` on it, or start "
                           "`tradelog serve`; --as-of folds from the log without them")

    def metrics(self, account: str, **params: Any) -> dict[str, Any]:
        """The ``metrics`` of one account (docs/METRICS.md), from either source."""
        if self.client is not None:
            result: dict[str, Any] = self.client.call(
                "metrics", {"account": account, **params})
            return result
        from projections.metrics import compute_metrics

        runner, recorder = self._file()
        return runner.run(compute_metrics(recorder, account, **params))


def open_source(args: Any, config: Config | Locations, command: str,
                prefer_file: bool = False) -> ReadSource:
    """The daemon at ``args.socket``/``config.socket`` if it answers, else ``config.db``
    (or the PostgreSQL log ``config.store`` names) read-only; ``--db`` without
    ``--socket`` reads the file, and ``prefer_file`` (an option that only the file can
    serve) the log. Says which on stderr.

    Raises:
        DaemonUnreachableError: ``--socket`` was given and nothing answers there (exit 3).
        CliError: neither a daemon nor the file is there (exit 4); ``--socket`` given
            with ``prefer_file`` (exit 2).
    """
    given_socket = getattr(args, "socket", None) is not None
    given_db = getattr(args, "db", None) is not None
    if prefer_file and given_socket:
        raise CliError(f"{command}: this option is applied to the database file, not "
                       "through the daemon: give --db PATH instead of --socket", EXIT_USAGE)
    if (given_socket or not given_db) and not prefer_file:
        why = _probe(config.socket)
        if why is None:
            print(f"{command}: from the daemon at {config.socket}", file=sys.stderr)
            return ReadSource(f"the daemon at {config.socket}",
                              client=Client(config.socket, retry_for_s=5))
        if given_socket:
            raise DaemonUnreachableError(config.socket, why)
    store = config.store_url()
    if store.kind != "sqlite":
        reason = "" if prefer_file else f" (no daemon at {config.socket})"
        print(f"{command}: reading {store.redacted()} read-only{reason}", file=sys.stderr)
        return ReadSource(store.redacted(), store=store)
    db = Path(config.db)
    if not db.is_file():
        raise CliError(
            f"no database at {db}" + ("" if given_db else f" and no daemon at {config.socket}")
            + "; start `tradelog serve`, or give --db PATH or --socket PATH", EXIT_NOT_FOUND)
    reason = "" if given_db else f" (no daemon at {config.socket})"
    print(f"{command}: reading {db} read-only{reason}", file=sys.stderr)
    return ReadSource(str(db), db=db)


def known_accounts(source: ReadSource) -> list[str]:
    """The accounts with events in the log (those this caller may read), by name."""
    answer = source.query(ViewQuery(view="accounts", limit=10_000, order="asc"))
    return sorted({str(row["account"]) for row in answer["rows"]})


def require_account(source: ReadSource, account: str | None) -> None:
    """Nothing when ``account`` is None or has events in the log.

    Raises:
        CliError: the account is unknown; the message lists the known ones (exit 4).
    """
    if account is None:
        return
    try:
        names = known_accounts(source)
    except RemoteError:
        return  # the query itself will say what is wrong
    if account in names:
        return
    raise CliError(f"no account {account!r} in {source.where}; known accounts: "
                   f"{_listing(names)}", EXIT_NOT_FOUND)


def _listing(names: Iterable[str], most: int = 20) -> str:
    names = list(names)
    if not names:
        return "none yet (the log has no events)"
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
