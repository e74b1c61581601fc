"""The CLI's commands other than ``serve``: each takes the parsed args and the config
(``daemon.config.Config``, or only its paths, ``daemon.locations.Locations``, when the
configuration holds nothing else: ``daemon.cli.dispatch.PLAIN_COMMANDS``).

Each command imports what only it uses (the client, the stores, the views, rich's
progress bar) when it runs: a process runs one command, and its start is most of what
a short command costs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.cli.errors import EXIT_NOT_FOUND, EXIT_USAGE, CliError
from daemon.cli.tables import default_format, print_answer, print_view, terminal_safe
from daemon.jsonread import JSONReadError, loads
from eventstore.errors import DatabaseFileError, ValidationError

if TYPE_CHECKING:
    from daemon.client import RemoteError
    from daemon.config import Config
    from daemon.locations import Locations
    from projections.query import ViewQuery

__all__ = ["emit", "health", "print_view", "rebuild", "refusal_text", "show", "tail",
           "terminal_safe", "verify", "view_query"]


def _existing_db(config: Config | Locations) -> Path:
    """``config.db`` if it is a file; never creates one.

    Raises:
        CliError: no file there (exit 4), naming it and what to do.
    """
    db = Path(config.db)
    if not db.is_file():
        raise CliError(f"no database at {db}; give the file with --db PATH (the daemon's is "
                       "in its log line daemon_ready)", EXIT_NOT_FOUND)
    return db


def verify(args: argparse.Namespace, config: Config | Locations) -> int:
    """Exit 0 with a summary when the chain holds; 1 naming the first bad event ("storage
    corrupt at seq N": altered, missing, or a row that cannot be read at all)."""
    import asyncio

    from eventstore.store import open_store

    store = config.store_url()
    where = _existing_db(config) if store.kind == "sqlite" else store.redacted()

    async def run() -> int:
        recorder = await open_store(store, readonly=True)
        try:
            report = await recorder.verify()
        finally:
            await recorder.close()
        if report.ok:
            print(f"verify: ok: {report.checked} events, chain intact, last hash "
                  f"{report.last_hash[:16]}…, append-only triggers in place ({where})")
            return 0
        if report.bad_seq is not None:
            print(f"verify: FAILED: storage corrupt at seq {report.bad_seq}: {report.reason} "
                  f"({report.checked} events good before it; {where})")
        else:
            print(f"verify: FAILED: {report.reason} ({report.checked} events checked; "
                  f"{where})")
        return 1

    return asyncio.run(run())


@contextlib.contextmanager
def _rebuild_progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr over ``total`` events with the rate in events/s; yields
    ``advance(n)``, to call after each n events folded."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.perf_counter()
    with Progress(TextColumn("rebuilding views"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} events"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                  console=Console(stderr=True)) as progress:
        task = progress.add_task("rebuild", total=total, rate="")

        def advance(n: int) -> None:
            done = progress.tasks[0].completed + n
            elapsed = max(time.perf_counter() - started, 1e-9)
            progress.update(task, completed=done, rate=f"{done / elapsed:,.0f} events/s")

        yield advance


def _rebuilt(folded: int, started: float) -> int:
    elapsed = time.perf_counter() - started
    rate = folded / elapsed if elapsed else 0.0
    print(f"rebuild: {folded} events folded in {elapsed:.2f} s ({rate:,.0f} events/s)")
    return 0


def rebuild(args: argparse.Namespace, config: Config | Locations) -> int:
    """Rebuild every view from the log with a progress bar and the rate in events/s.

    On a SQLite file it holds the daemon's lock (``daemon.lockfile``) while it runs:
    refused (exit 1) while a daemon serves the file, which keeps its views current
    itself. On a PostgreSQL log it rebuilds in one transaction under the log's append
    lock, the one each daemon's commit takes (``projections.pgviews.rebuild_views``):
    the daemons' appends wait until it commits."""
    store = config.store_url()
    if store.kind != "sqlite":
        assert store.conninfo is not None
        return _rebuild_postgresql(store.conninfo, REBUILD_LOCK_WAIT_S)
    import asyncio

    from daemon.lockfile import acquire
    from eventstore.recorder import Recorder
    from projections.startup import rebuild_views

    db = _existing_db(config)
    try:
        lock = acquire(db)
    except DatabaseFileError as exc:
        raise CliError(f"{exc}; a running daemon keeps the views current itself: stop it "
                       "first to rebuild them") from None

    async def run() -> int:
        recorder = await Recorder.open(db)
        try:
            total = await recorder.last_seq()
            started = time.perf_counter()
            with _rebuild_progress(total) as advance:
                _, folded = await rebuild_views(recorder, advance)
            return _rebuilt(folded, started)
        finally:
            await recorder.close()

    try:
        return asyncio.run(run())
    finally:
        lock.close()


REBUILD_LOCK_WAIT_S = 30.0
"""How long ``rebuild`` on PostgreSQL waits for the log's lock (a daemon's commit holds
it for milliseconds) and for the view tables' locks (a query holds them as it reads)."""


def _rebuild_postgresql(conninfo: str, busy_timeout_s: float) -> int:
    """``rebuild`` on the PostgreSQL log ``conninfo``; the lock waited for (and retried)
    for up to ``busy_timeout_s`` while a daemon commits."""
    from eventstore.busy import retry_busy
    from eventstore.postgres import reads
    from eventstore.postgres.connect import connect, prepare
    from projections import pgviews

    conn = connect(conninfo, lock_timeout_s=busy_timeout_s)
    try:
        key = prepare(conn, create=False)
        total = reads.last_seq(conn)
        started = time.perf_counter()
        with _rebuild_progress(total) as advance:
            folded = retry_busy(lambda: pgviews.rebuild_views(conn, key, advance),
                                busy_timeout_s)
        return _rebuilt(folded, started)
    finally:
        conn.close()


def _as_of(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def _attrs(items: list[str] | None) -> dict[str, Any] | None:
    """``--attr KEY=VALUE`` flags as an ``attrs`` filter: VALUE read as JSON when it is
    a number, true, false, null or a quoted string, else as text. Raises
    ``ValidationError`` for a flag without ``=``."""
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValidationError(f"--attr {item[:80]!r}: write KEY=VALUE")
        try:
            value = loads(text.encode())
        except JSONReadError:
            value = text
        out[key] = value if value is None or isinstance(value, str | int | Decimal | bool) \
            else text
    return out


def view_query(args: argparse.Namespace) -> ViewQuery:
    """The ``ViewQuery`` that ``show``'s flags ask for (checked when it runs)."""
    from projections.query_params import ViewQuery

    return ViewQuery(
        view=args.view, account=args.account, symbol=args.symbol,
        symbol_prefix=args.symbol_prefix, strategy=args.strategy, status=args.status,
        venue=args.venue, asset_class=args.asset_class, entity=args.entity,
        entity_id=args.entity_id, attrs=_attrs(args.attr), since=args.since,
        until=args.until, updated_since=args.updated_since, order=args.order,
        offset=args.offset, limit=args.limit, as_of=_as_of(args.as_of),
        as_of_time=args.as_of_time)


def show(args: argparse.Namespace, config: Config | Locations) -> int:
    """Print a view, from the daemon when one answers, else read-only from the file
    (``daemon.cli.source``), in ``--format`` (``daemon.cli.tables``).

    Raises ``CliError`` for an unknown ``--account`` (exit 4, listing the known ones),
    ``RemoteError``/``ValidationError`` when a flag's value is refused (exit 1)."""
    from daemon.cli.source import open_source, require_account

    query = view_query(args)
    fmt = "json" if args.json else (args.format or default_format())
    with open_source(args, config, "show") as source:
        require_account(source, args.account)
        answer = source.query(query)
    print_answer(answer, fmt, exact=args.exact)
    return 0


def _now() -> str:
    from schemas.values import format_utc

    return format_utc(datetime.now(UTC))


def _stdin_events(account: str | None) -> list[Any]:
    """The JSON lines on stdin; ``account`` fills in events that name none.

    Raises:
        CliError: a line is not JSON, or names another account than ``account`` (exit 2).
    """
    events: list[Any] = []
    for number, line in enumerate(sys.stdin.buffer, 1):
        if not line.strip():
            continue
        try:
            event = loads(line)
        except JSONReadError as exc:
            raise CliError(f"stdin line {number}: {exc}; send one JSON event per line",
                           EXIT_USAGE) from None
        if account is not None and isinstance(event, dict):
            named = event.setdefault("account", account)
            if named != account:
                raise CliError(f"stdin line {number}: the event names account {named!r}, "
                               f"not --account {account!r}; drop one of them", EXIT_USAGE)
        events.append(event)
    return events


def emit(args: argparse.Namespace, config: Config | Locations) -> int:
    """Append one event from flags, or JSON lines from stdin in batches of ``--batch``;
    prints what was stored. A refused batch is reported once, with its reasons (exit 1);
    the batches before it stay stored."""
    import uuid

    from daemon.cli.source import connect
    from daemon.client import RemoteError

    if args.event_type:
        if not (args.account and args.data):
            raise CliError("--type needs --account and --data", EXIT_USAGE)
        try:
            data = loads(args.data.encode())
        except JSONReadError as exc:
            raise CliError(f"--data is not JSON: {exc}", EXIT_USAGE) from None
        batches: list[list[Any]] = [[{
            "id": args.event_id or str(uuid.uuid4()), "source": args.source,
            "type": args.event_type, "time": args.time or _now(), "account": args.account,
            "data": data}]]
    else:
        if sys.stdin.isatty():
            print("emit: reading JSON events from stdin, one per line (Ctrl-D to end)",
                  file=sys.stderr)
        events = _stdin_events(args.account)
        if not events:
            print("emit: nothing to send (stdin held no events)", file=sys.stderr)
            return 0
        batches = [events[i:i + args.batch] for i in range(0, len(events), args.batch)]
    stored = duplicates = 0
    last = 0
    with connect(config.socket, wait_s=args.wait) as client:
        for number, batch in enumerate(batches, 1):
            try:
                result = client.append(batch)
            except RemoteError as exc:
                where = f"batch {number} of {len(batches)}" if len(batches) > 1 else "the batch"
                if number > 1:
                    print(f"emit: {stored} stored, {duplicates} duplicates before {where}, "
                          f"last seq {last}", file=sys.stderr)
                raise CliError(f"the daemon refused {where}: {refusal_text(exc)}") from None
            for item in result["results"]:
                duplicates += item["duplicate"]
                stored += not item["duplicate"]
            last = result["last_seq"]
    print(f"emit: {stored} stored, {duplicates} duplicates, last seq {last}")
    return 0


def refusal_text(exc: RemoteError) -> str:
    """The daemon's refusal in one text: its message, and its ``data`` (as compact JSON)
    only where the message does not already hold it."""
    text = exc.message
    if exc.data and json.dumps(exc.data, separators=(",", ":"))[:200] not in text:
        details = exc.data.get("errors") if isinstance(exc.data, dict) else None
        if isinstance(details, list):
            lines = [str(d.get("message", d)) if isinstance(d, dict) else str(d)
                     for d in details[:50]]
            new = [line for line in lines if line not in text]
            if new:
                text += "\n  " + "\n  ".join(new)
        elif not isinstance(exc.data, dict) or str(exc.data) not in text:
            text += " " + json.dumps(exc.data, separators=(",", ":"), default=str)[:2000]
    return text


async def _reader_gone(interval_s: float = 0.25) -> None:
    """Return once the reader of stdout has gone (``tradelog tail | head`` after head
    exits), checked every ``interval_s``; never returns for a terminal or a file."""
    import asyncio
    import select

    poller = select.poll()
    poller.register(sys.stdout.fileno(), 0)  # POLLERR and POLLHUP are always reported
    while True:
        await asyncio.sleep(interval_s)
        if any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0)):
            return


def tail(args: argparse.Namespace, config: Config | Locations) -> int:
    """Print committed events as JSON lines (``--count`` to stop after N); stop quietly
    when the reader of the output goes away, even while no event comes."""
    import asyncio

    from daemon.cli.source import connect
    from daemon.client import AsyncClient

    types = args.types.split(",") if args.types else None
    connect(config.socket, wait_s=args.wait).close()

    async def follow() -> None:
        async with AsyncClient(config.socket, retry_for_s=10) as client:
            start = args.from_seq
            if start is None:
                start = (await client.health())["last_seq"] + 1
            seen = 0
            async for event in client.subscribe(from_seq=start, account=args.account,
                                                types=types):
                print(json.dumps(event), flush=True)
                seen += 1
                if args.count is not None and seen >= args.count:
                    break

    async def run() -> int:
        following = asyncio.create_task(follow())
        gone = asyncio.create_task(_reader_gone())
        await asyncio.wait([following, gone], return_when=asyncio.FIRST_COMPLETED)
        if not following.done():
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            raise BrokenPipeError("the reader of the output has gone")
        gone.cancel()
        following.result()
        return 0

    return asyncio.run(run())


def health(args: argparse.Namespace, config: Config | Locations) -> int:
    """Print the daemon's health as JSON; exit 3 when it cannot be reached."""
    from daemon.cli.source import connect

    with connect(config.socket, retry_for_s=2) as client:
        print(json.dumps(client.health(), default=float))
    return 0
