"""The CLI's commands other than ``serve``: each takes the parsed args and the config."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import unicodedata
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from daemon.client import AsyncClient, Client, RemoteError
from daemon.config import Config
from daemon.jsonread import JSONReadError, loads
from eventstore.errors import ValidationError
from eventstore.recorder import Recorder
from eventstore.store import open_store
from projections.query import ViewQuery, query_view
from projections.startup import rebuild_views
from schemas.values import format_utc

__all__ = ["emit", "health", "print_view", "rebuild", "show", "tail", "terminal_safe",
           "verify", "view_query"]


def verify(args: argparse.Namespace, config: Config) -> int:
    """Exit 0 with a summary when the chain holds; 1 naming the first bad event ("storage
    corrupt at seq N": altered, missing, or a row that cannot be read at all)."""

    async def run() -> int:
        store = config.store_url()
        where = config.db if store.kind == "sqlite" else store.redacted()
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


def rebuild(args: argparse.Namespace, config: Config) -> int:
    """Rebuild every view from the log with a progress bar and the rate in events/s."""

    async def run() -> int:
        recorder = await Recorder.open(config.db)
        try:
            total = await recorder.last_seq()
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

                _, folded = await rebuild_views(recorder, advance)
            elapsed = time.perf_counter() - started
            rate = folded / elapsed if elapsed else 0.0
            print(f"rebuild: {folded} events folded in {elapsed:.2f} s ({rate:,.0f} events/s)")
            return 0
        finally:
            await recorder.close()

    return asyncio.run(run())


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
    return ViewQuery(
        view=args.view, account=args.account, symbol=args.symbol,
        symbol_prefix=args.symbol_prefix, strategy=args.strategy, status=args.status,
        venue=args.venue, asset_class=args.asset_class, entity=args.entity,
        entity_id=args.entity_id, attrs=_attrs(args.attr), since=args.since,
        until=args.until, updated_since=args.updated_since, order=args.order,
        offset=args.offset, limit=args.limit, as_of=_as_of(args.as_of),
        as_of_time=args.as_of_time)


def show(args: argparse.Namespace, config: Config) -> int:
    """Print a view: read-only from the file with ``--db``, or from the daemon with --socket.

    Exit 1 with the reason when a flag's value is refused (the daemon's words, or the
    same check made here)."""
    query = view_query(args)
    if args.socket is not None and args.db is None:
        filters = {k: v for k, v in query.given().items() if k != "view"}
        try:
            with Client(args.socket, retry_for_s=5) as client:
                answer = client.query(args.view, **filters)
        except RemoteError as exc:
            print(f"tradelog: {exc.message}", file=sys.stderr)
            return 1
    else:

        async def run() -> dict[str, Any]:
            recorder = await Recorder.open(config.db, readonly=True)
            try:
                return await query_view(recorder, query)
            finally:
                await recorder.close()

        answer = asyncio.run(run())
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    print_view(answer)
    return 0


def print_view(answer: dict[str, Any], console: Console | None = None,
               columns: list[str] | None = None) -> None:
    """A view answer as a readable table (all fields, or ``columns``).

    Every text is shown through ``terminal_safe``: a stored text's control characters
    and rich markup are printed visibly, never acted on by the terminal or by rich.
    """
    rows = answer["rows"]
    title = f"{answer['view']} (as of seq {answer['as_of_seq']}"
    if "total" in answer and answer["total"] != len(rows):
        title += f"; {len(rows)} of {answer['total']} rows"
    table = Table(title=terminal_safe(title + ")"))
    if columns is None:
        columns = list(rows[0]) if rows else []
    if not rows:
        columns = ["(no rows)"]
    for name in columns:
        table.add_column(terminal_safe(name), overflow="fold")
    for row in rows:
        table.add_row(*("" if row[c] is None else terminal_safe(str(row[c])) for c in columns))
    (console or Console()).print(table)


_BIDI = frozenset("\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
                  "\u2066\u2067\u2068\u2069")
"""Characters that reorder or break the lines around them on a terminal."""


def _visible(char: str) -> str:
    if unicodedata.category(char) == "Cc" or char in _BIDI:
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def terminal_safe(text: str) -> str:
    """``text`` fit for a terminal through rich: control characters (C0, DEL, C1, tab
    and newline included) and bidirectional controls written as visible escapes
    (ESC as ``\\x1b``, U+202E as ``\\u202e``), then rich markup escaped."""
    return escape("".join(_visible(c) for c in text))


def _now() -> str:
    return format_utc(datetime.now(UTC))


def emit(args: argparse.Namespace, config: Config) -> int:
    """Append one event from flags, or JSON lines from stdin in batches; prints results."""
    if args.event_type:
        if not (args.account and args.data):
            print("tradelog emit: --type needs --account and --data", file=sys.stderr)
            return 2
        try:
            data = loads(args.data.encode())
        except JSONReadError as exc:
            print(f"tradelog emit: --data is not JSON: {exc}", file=sys.stderr)
            return 2
        batches: list[list[Any]] = [[{
            "id": args.event_id or str(uuid.uuid4()), "source": args.source,
            "type": args.event_type, "time": args.time or _now(), "account": args.account,
            "data": data}]]
    else:
        events: list[Any] = []
        for number, line in enumerate(sys.stdin.buffer, 1):
            if not line.strip():
                continue
            try:
                events.append(loads(line))
            except JSONReadError as exc:
                print(f"tradelog emit: line {number}: {exc}", file=sys.stderr)
                return 2
        batches = [events[i:i + args.batch] for i in range(0, len(events), args.batch)]
    stored = duplicates = 0
    last: int | None = None
    with Client(config.socket) as client:
        for batch in batches:
            try:
                result = client.append(batch)
            except RemoteError as exc:
                print(f"tradelog emit: refused: {exc.message}", file=sys.stderr)
                if exc.data:
                    print(json.dumps(exc.data, indent=2), file=sys.stderr)
                return 1
            for item in result["results"]:
                duplicates += item["duplicate"]
                stored += not item["duplicate"]
            last = result["last_seq"]
    print(f"emit: {stored} stored, {duplicates} duplicates, last seq {last}")
    return 0


def tail(args: argparse.Namespace, config: Config) -> int:
    """Print committed events as JSON lines (``--count`` to stop after N)."""
    types = args.types.split(",") if args.types else None

    async def run() -> int:
        async with AsyncClient(config.socket) as client:
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
        return 0

    return asyncio.run(run())


def health(args: argparse.Namespace, config: Config) -> int:
    """Print the daemon's health as JSON; exit 1 when it cannot be reached."""
    try:
        with Client(config.socket, retry_for_s=2) as client:
            print(json.dumps(client.health(), default=float))
    except RemoteError as exc:
        print(f"tradelog: the daemon refused: {exc.message}", file=sys.stderr)
        return 1
    except (OSError, EOFError) as exc:
        print(f"tradelog: no daemon at {config.socket}: {exc}", file=sys.stderr)
        return 1
    return 0
