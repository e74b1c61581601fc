"""What every fault script shares: the daemon subprocess, bots that append, and the checks.

The log under test is a SQLite file or, with ``--store postgresql://...``, a PostgreSQL
schema made for the run (``RunStore``). Checks read the log and the view tables through
the store's own read-only reader (``eventstore.store.open_reader``: the file opened
read-only, or the schema over a read-only connection), as ``tradelog show`` does, and
use the real command line for ``verify``, ``migrate`` and ``rebuild``; nothing here
reaches into a running daemon.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.host import machine
from daemon.process import ServeProcess
from eventstore.errors import ValidationError
from eventstore.store import StoreURL, open_reader, parse_store
from projections.tables import TABLES

__all__ = [
    "KNOWN_CODES",
    "REPO",
    "VIEWS",
    "Bot",
    "Daemon",
    "EventMaker",
    "Key",
    "Ledger",
    "PgSchema",
    "RunStore",
    "run_store",
    "Target",
    "answer_problems",
    "check_log",
    "cli",
    "copy_database",
    "dump_views",
    "log_problems",
    "machine",
    "store_args",
    "stored_events",
    "verify",
    "views_equal_rebuild",
]

REPO = Path(__file__).resolve().parents[2]
VIEWS = ["positions", "trades", "balances", "daily", "signals", "orders", "journal", "history",
         "instruments", "account_info", "strategies"]
"""The views' tables (docs/SCHEMA.md; the ``accounts`` view is ``account_info``)."""
KNOWN_CODES = frozenset({-32700, -32600, -32601, -32602, -32001, -32002, -32003, -32004})
Key = tuple[str, str]
"""An event's idempotency key: (source, id)."""
Target = Path | StoreURL
"""A log to check: a SQLite file's path, or a parsed store URL (``eventstore.store``)."""


def cli(*args: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m daemon.cli ARGS`` from the repository; the result is not checked."""
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=REPO,
                          capture_output=True, timeout=timeout_s, check=False)


def store_args(target: Target) -> list[str]:
    """The command-line flags that name ``target``: ``--db PATH`` or ``--store URL``."""
    if isinstance(target, Path):
        return ["--db", str(target)]
    if target.kind == "sqlite":
        return ["--db", str(target.path)]
    return ["--store", str(target.conninfo)]


class Daemon(ServeProcess):
    """``tradelog serve`` as a subprocess; ``db``, ``socket`` and ``log`` may be apart
    (a full-disk test keeps the log off the full filesystem). With ``store`` (a
    PostgreSQL URL) the log is there and ``db`` is not used; ``target`` names the log
    for the checks either way."""

    def __init__(self, db: Path, socket_path: Path, log: Path,
                 env: dict[str, str] | None = None, store: StoreURL | None = None) -> None:
        target: Target = db if store is None or store.kind == "sqlite" else store
        extra = [] if isinstance(target, Path) else store_args(target)
        super().__init__(db, socket_path, log, extra_args=extra, env=env, cwd=REPO)
        self.target = target


class PgSchema:
    """A schema of its own on the PostgreSQL database ``dsn`` names (created now, named
    ``fault_`` and 12 hex digits: ``bench.pg_store.schema_url``); ``url`` puts a log in it
    (its ``search_path``).

    Raises:
        psycopg.Error: the server cannot be reached or refuses ``CREATE SCHEMA``.
    """

    def __init__(self, dsn: str) -> None:
        from bench.pg_store import schema_url

        self.dsn = dsn
        self.name, url = schema_url(dsn, prefix="fault_")
        self.url = parse_store(url)

    def empty(self) -> None:
        """Drop everything in the schema (it stays, empty)."""
        self.drop()
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")

    def drop(self) -> None:
        """Drop the schema and everything in it (nothing when it is already gone)."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


class RunStore:
    """The log of one fault run and the scratch its copies are rebuilt in.

    With ``pg`` None: ``workdir``/tradelog.db and the folder ``workdir``/copy. With ``pg``
    (a ``postgresql://`` URL naming a database): two schemas of their own made there now,
    one for the log, one for the copy, dropped by ``close``.

    Raises:
        ValueError: ``pg`` is not a PostgreSQL URL.
        psycopg.Error: the schemas cannot be made.
    """

    def __init__(self, workdir: Path, pg: str | None = None) -> None:
        self.db = workdir / "tradelog.db"
        self.store: StoreURL | None = None
        self.scratch: Path | PgSchema = workdir / "copy"
        self._schemas: list[PgSchema] = []
        if pg is not None:
            try:
                kind = parse_store(pg).kind
            except ValidationError as exc:
                raise ValueError(str(exc)) from None
            if kind != "postgresql":
                raise ValueError(f"--store takes a postgresql:// URL, not {pg!r}")
            log = PgSchema(pg)
            self._schemas.append(log)
            self._schemas.append(PgSchema(pg))
            self.store, self.scratch = log.url, self._schemas[1]

    @property
    def where(self) -> str:
        """For people: the file, or the schema and database."""
        if not self._schemas:
            return str(self.db)
        return f"schema {self._schemas[0].name} of {self._schemas[0].dsn}"

    def daemon(self, socket_path: Path, log: Path, env: dict[str, str] | None = None
               ) -> Daemon:
        """A ``Daemon`` on this log."""
        return Daemon(self.db, socket_path, log, env=env, store=self.store)

    def close(self, keep: bool = False) -> None:
        """Drop the schemas (PostgreSQL); with ``keep``, the log's schema stays for a look
        (the scratch is dropped all the same)."""
        for n, schema in enumerate(self._schemas):
            if not (keep and n == 0):
                schema.drop()


@contextlib.contextmanager
def run_store(workdir: Path, pg: str | None, report: Any, say: Callable[[str], None],
              script: str) -> Iterator[RunStore]:
    """The ``RunStore`` of one run of ``script``, closed at the end: its PostgreSQL log
    kept for a look (and ``say`` tells where) when ``report.problems`` holds any.

    Raises:
        ValueError: ``pg`` is not a PostgreSQL URL.
        psycopg.Error: the schemas cannot be made.
    """
    place = RunStore(workdir, pg)
    try:
        yield place
    finally:
        place.close(keep=bool(report.problems))
    if report.problems and pg is not None:
        say(f"{script}: the log is kept for a look: {place.where}")


def health(path: Path, timeout_s: float = 10.0) -> dict[str, Any]:
    """``health`` over a fresh blocking connection."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
        sock.sendall(b'{"jsonrpc":"2.0","id":"h","method":"health"}\n')
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("closed before answering health")
            data += chunk
    finally:
        sock.close()
    answer = json.loads(data)
    result: dict[str, Any] = answer["result"]
    return result


# ------------------------------------------------------------------ events and bots


class EventMaker:
    """Plausible events of one bot (``source``), every id new, touching every view."""

    def __init__(self, source: str, account: str, rng: random.Random) -> None:
        self.source = source
        self.account = account
        self.rng = rng
        self.count = 0
        self.orders: list[str] = []

    def event(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        day = 1 + self.count // 500 % 28
        return {"id": f"e{self.count}", "source": self.source, "type": event_type,
                "time": f"2024-03-{day:02d}T{self.count // 60 % 24:02d}:{self.count % 60:02d}"
                        ":00Z",
                "account": self.account, "data": data}

    def one(self) -> dict[str, Any]:
        rng = self.rng
        symbol = rng.choice(["EURUSD", "GBPUSD", "XAUUSD"])
        price = f"{rng.uniform(90, 110):.2f}"
        roll = rng.random()
        if roll < 0.55:
            data: dict[str, Any] = {"symbol": symbol, "side": rng.choice(["buy", "sell"]),
                                    "quantity": str(rng.randint(1, 3)), "price": price,
                                    "fee": "0.1"}
            if rng.random() < 0.2:
                data["position_id"] = f"p{rng.randint(1, 3)}"
            return self.event("fill", data)
        if roll < 0.65:
            return self.event("journal", {"text": f"note {self.count}", "symbol": symbol})
        if roll < 0.73:
            return self.event("signal", {"signal_id": f"s{self.count}", "strategy": "sma",
                                         "symbol": symbol, "side": "long"})
        if roll < 0.81:
            order_id = f"o{self.count}"
            self.orders.append(order_id)
            return self.event("order", {"order_id": order_id, "symbol": symbol, "side": "buy",
                                        "quantity": "1", "order_type": "market"})
        if roll < 0.88 and self.orders:
            return self.event("status", {"entity": "order", "entity_id": rng.choice(
                self.orders), "status": "accepted"})
        if roll < 0.94:
            return self.event("cash", {"amount": "1000", "kind": "deposit"})
        return self.event("mark", {"prices": {symbol: price}})

    def batch(self, most: int = 20) -> list[dict[str, Any]]:
        return [self.one() for _ in range(self.rng.randint(1, most))]


def keys(events: Iterable[dict[str, Any]]) -> list[Key]:
    return [(str(e["source"]), str(e["id"])) for e in events]


@dataclass
class Ledger:
    """What the bots sent and what the daemon acknowledged, over a whole run."""

    batches: list[list[Key]] = field(default_factory=list)
    acked: list[Key] = field(default_factory=list)
    refused: list[list[Key]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    codes: collections.Counter[int] = field(default_factory=collections.Counter)


class Bot:
    """One client on one connection, pipelining up to ``depth`` appends.

    Every append answered with a result goes to ``ledger.acked``; one answered with an
    error in ``allowed`` goes to ``ledger.refused`` (any other error is a problem). When
    the connection dies, the unanswered batches wait in ``in_doubt`` and are sent again,
    unchanged, on the next ``run`` (as the contract tells a bot to): the answer must then
    say all of them were duplicates, or none.
    """

    def __init__(self, maker: EventMaker, ledger: Ledger, depth: int = 4,
                 allowed: frozenset[int] = frozenset(), most: int = 20) -> None:
        self.maker = maker
        self.ledger = ledger
        self.depth = depth
        self.allowed = allowed
        self.most = most
        self.in_doubt: list[list[dict[str, Any]]] = []
        self.resent = self.resent_stored = 0
        self._ids = 0

    async def run(self, path: Path, stop: asyncio.Event, max_requests: int | None = None,
                  stop_after_refusals: int | None = None) -> None:
        """Send the batches in doubt again, then new ones until ``stop`` is set, the
        connection dies, or a limit is reached; then wait for the answers."""
        try:
            reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 24)
        except OSError as exc:
            self.ledger.problems.append(f"{self.maker.source}: cannot connect: {exc!r}")
            return
        pending: dict[int, tuple[list[dict[str, Any]], bool]] = {}
        again, self.in_doubt = self.in_doubt, []
        sent = refusals = 0
        try:
            while True:
                while len(pending) < self.depth and (again or (
                        not stop.is_set() and (max_requests is None or sent < max_requests)
                        and (stop_after_refusals is None or refusals < stop_after_refusals))):
                    resend = bool(again)
                    batch = again.pop(0) if again else self.maker.batch(self.most)
                    self._ids += 1
                    if not resend:
                        self.ledger.batches.append(keys(batch))
                    pending[self._ids] = (batch, resend)
                    writer.write(json.dumps({"jsonrpc": "2.0", "id": self._ids,
                                             "method": "append",
                                             "params": {"events": batch}}).encode() + b"\n")
                    sent += 1
                await writer.drain()
                if not pending:
                    break
                raw = await reader.readline()
                if not raw.endswith(b"\n"):
                    raise ConnectionResetError("the daemon closed the connection")
                answer = json.loads(raw)
                batch, resend = pending.pop(answer["id"])
                refusals += self._answered(batch, resend, answer)
        except (OSError, EOFError, asyncio.IncompleteReadError):
            pass
        finally:
            self.in_doubt.extend(batch for batch, _ in pending.values())
            self.in_doubt.extend(again)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _answered(self, batch: list[dict[str, Any]], resend: bool,
                  answer: dict[str, Any]) -> int:
        """Record one answer; returns 1 if it was an allowed refusal."""
        source = self.maker.source
        if "error" in answer:
            code = answer["error"]["code"]
            self.ledger.codes[code] += 1
            if code in self.allowed:
                self.ledger.refused.append(keys(batch))
                self.in_doubt.append(batch)  # "retry later": sent again on the next run
                return 1
            self.ledger.problems.append(f"{source}: append answered {answer['error']}")
            return 0
        self.ledger.codes[0] += 1
        results = answer["result"]["results"]
        if [r["id"] for r in results] != [e["id"] for e in batch]:
            self.ledger.problems.append(f"{source}: results out of order: {results}")
        self.ledger.acked.extend(keys(batch))
        duplicates = {bool(r["duplicate"]) for r in results}
        if resend:
            self.resent += 1
            if len(duplicates) != 1:
                self.ledger.problems.append(
                    f"{source}: a batch sent again was partly stored before: {results}")
            elif duplicates == {True}:
                self.resent_stored += 1
        elif duplicates != {False}:
            self.ledger.problems.append(f"{source}: new events called duplicates: {results}")
        return 0


# ------------------------------------------------------------------ checks


def _fetch(target: Target, queries: Sequence[str]) -> list[list[tuple[Any, ...]]]:
    """The rows of each read-only query (SQLite's spelling) on ``target``, read through the
    store's read-only reader (``open_reader``), all from one snapshot."""

    async def read() -> list[list[tuple[Any, ...]]]:
        reader = await open_reader(target)
        try:
            return await reader.fetch_snapshot([(sql, ()) for sql in queries])
        finally:
            await reader.close()

    return asyncio.run(read())


def stored_events(target: Target) -> list[tuple[int, str, str]]:
    """(seq, source, id) of every stored event, in seq order, read-only."""
    rows = _fetch(target, ["SELECT seq, source, id FROM events ORDER BY seq"])[0]
    return [(int(s), str(src), str(i)) for s, src, i in rows]


def check_log(stored: list[tuple[int, str, str]], ledger: Ledger,
              all_sent: bool = True) -> list[str]:
    """The log against the ledger: seqs 1..N; every acknowledged event exactly once; no
    event twice; every batch stored whole or not at all; with ``all_sent``, nothing
    stored that no bot sent."""
    problems: list[str] = []
    seqs = [s for s, _, _ in stored]
    if seqs != list(range(1, len(seqs) + 1)):
        gaps = [b for a, b in itertools_pairs(seqs) if b != a + 1][:5]
        problems.append(f"seqs are not 1..{len(seqs)} (first breaks before {gaps})")
    counts = collections.Counter((src, i) for _, src, i in stored)
    twice = [k for k, n in counts.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} events stored more than once, e.g. {twice[:3]}")
    lost = [k for k in set(ledger.acked) if counts[k] != 1]
    if lost:
        problems.append(f"{len(lost)} acknowledged events not stored once, e.g. {lost[:3]}")
    partial = [b for b in ledger.batches if 0 < sum(counts[k] > 0 for k in b) < len(b)]
    if partial:
        problems.append(f"{len(partial)} batches partly stored, e.g. {partial[0][:4]}")
    if all_sent:
        sent = {k for b in ledger.batches for k in b}
        unknown = [k for k in counts if k not in sent]
        if unknown:
            problems.append(f"{len(unknown)} stored events no bot sent, e.g. {unknown[:3]}")
    return problems


def itertools_pairs(values: list[int]) -> Iterator[tuple[int, int]]:
    prev = 0
    for value in values:
        yield prev, value
        prev = value


def verify(target: Target) -> list[str]:
    """``tradelog verify --db`` (or ``--store``): no problems, or its output."""
    done = cli("verify", *store_args(target))
    if done.returncode == 0 and done.stdout.startswith(b"verify: ok"):
        return []
    return [f"verify exited {done.returncode}: {(done.stdout + done.stderr).decode()[-500:]}"]


_TABLES = {table.name: table for table in TABLES}


def dump_views(target: Target) -> dict[str, Any]:
    """Every row of every view table (docs/SCHEMA.md), read-only: each view's rows (all
    columns, internal ones too) ordered by its key; a log whose views cannot be read maps
    every view to the error's text."""
    queries = [f"{_TABLES[view].select_sql()} ORDER BY {', '.join(_TABLES[view].key)}"
               for view in VIEWS]
    try:
        found = _fetch(target, queries)
    except Exception as exc:  # the checks report it, the run goes on
        return {view: f"{view}: {exc}" for view in VIEWS}
    return dict(zip(VIEWS, found, strict=True))


def copy_database(db: Path, into: Path) -> Path:
    """Copy the file and its -wal (not the lock) into ``into``; returns the copy."""
    into.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal"):
        part = db.with_name(db.name + suffix)
        if part.exists():
            shutil.copyfile(part, into / part.name)
    return into / db.name


def _copy_log(target: Target, scratch: Path | PgSchema) -> Target | str:
    """A copy of ``target``'s log in ``scratch`` (emptied first): the SQLite file and its
    -wal copied, or the PostgreSQL log copied by ``tradelog migrate`` into the emptied
    scratch schema (the log only: the copy's views are what ``rebuild`` makes). A string
    says why it could not be copied."""
    if isinstance(scratch, Path):
        db = target if isinstance(target, Path) else target.path
        assert db is not None, "a SQLite scratch folder for a PostgreSQL log"
        shutil.rmtree(scratch, ignore_errors=True)
        return copy_database(db, scratch)
    assert isinstance(target, StoreURL), "a PostgreSQL scratch schema for a SQLite file"
    assert target.conninfo is not None
    scratch.empty()
    done = cli("migrate", "--from", target.conninfo, "--to", str(scratch.url.conninfo))
    if done.returncode != 0:
        return f"migrate into the scratch schema exited {done.returncode}: " \
               f"{(done.stdout + done.stderr).decode()[-500:]}"
    return scratch.url


def _discard(scratch: Path | PgSchema) -> None:
    if isinstance(scratch, Path):
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        scratch.empty()


def _views_current(target: Target, wait_s: float) -> list[str]:
    """Wait until the views' checkpoint reaches the log's last seq: a running SQLite
    daemon writes the rows it holds back once it has been idle a moment. A problem when
    they still trail after ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        last, found = (rows[0][0] for rows in _fetch(target, [
            "SELECT coalesce(max(seq), 0) FROM events",
            "SELECT coalesce(max(last_seq), 0) FROM projection_checkpoint WHERE name = 'views'"]))
        if found >= last:
            return []
        if time.monotonic() >= deadline:
            return [f"the views' tables trail the log after {wait_s:g} s idle: checkpoint "
                    f"{found}, last seq {last}"]
        time.sleep(0.05)


def views_equal_rebuild(target: Target, scratch: Path | PgSchema,
                        wait_s: float = 30.0) -> list[str]:
    """Once the views' tables of ``target`` are current (``_views_current``), dump every
    view, copy the log into ``scratch`` (a folder for a SQLite file, a ``PgSchema`` for a
    PostgreSQL log), ``rebuild`` the copy, dump again: no problems when the rows are
    equal. ``scratch`` is left empty."""
    trailing = _views_current(target, wait_s)
    if trailing:
        return trailing
    live = dump_views(target)
    copy = _copy_log(target, scratch)
    if isinstance(copy, str):
        return [copy]
    try:
        done = cli("rebuild", *store_args(copy))
        if done.returncode != 0:
            return [f"rebuild exited {done.returncode}: {done.stderr.decode()[-500:]}"]
        rebuilt = dump_views(copy)
    finally:
        _discard(scratch)
    return [f"view {view}: live rows differ from a rebuild ({_diff(live[view], rebuilt[view])})"
            for view in VIEWS if live[view] != rebuilt[view]]


def _diff(live: Any, rebuilt: Any) -> str:
    if not isinstance(live, list) or not isinstance(rebuilt, list):
        return f"live {str(live)[:200]}, rebuilt {str(rebuilt)[:200]}"
    extra = [r for r in live if r not in rebuilt][:2]
    missing = [r for r in rebuilt if r not in live][:2]
    return f"{len(live)} vs {len(rebuilt)} rows; only live {extra}; only rebuilt {missing}"


_EXCEPTION_REPR = re.compile(r"Traceback|\b[A-Z]\w*(?:Error|Exception)\(|<class '|File \"")
_EXCEPTION_HINT = re.compile(r"Traceback|Error\(|Exception\(|<class '|File \"")
"""Literals that every match of ``_EXCEPTION_REPR`` holds: found fast in a big answer,
then checked with the full pattern around them."""


def _shows_internals(text: str) -> bool:
    """True when ``text`` holds a traceback or an exception's repr (``_EXCEPTION_REPR``)."""
    for hint in _EXCEPTION_HINT.finditer(text):
        start = hint.start()
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
            start -= 1  # back to the start of the word, where the full pattern's \b is
        if _EXCEPTION_REPR.search(text, start, hint.end()):
            return True
    return False


def answer_problems(raw: bytes) -> list[str]:
    """What is wrong with one line the daemon sent: not JSON, a traceback or exception
    repr, not JSON-RPC 2.0, or an error code outside PROTOCOL.md's."""
    text = raw.decode("utf-8", errors="replace")
    if _shows_internals(text):
        return [f"answer shows Python internals: {text[:300]}"]
    try:
        message = json.loads(raw)
    except ValueError:
        return [f"answer is not JSON: {text[:300]}"]
    members = message if isinstance(message, list) and message else [message]
    problems: list[str] = []
    for one in members:
        if not isinstance(one, dict) or one.get("jsonrpc") != "2.0":
            problems.append(f"not a JSON-RPC 2.0 message: {text[:300]}")
        elif "method" in one:
            if one["method"] not in ("event", "subscription_closed") or "id" in one:
                problems.append(f"unexpected notification: {text[:300]}")
        elif "id" not in one or ("result" in one) == ("error" in one):
            problems.append(f"not a response: {text[:300]}")
        elif "error" in one:
            error = one["error"]
            if not isinstance(error, dict) or error.get("code") not in KNOWN_CODES or (
                    not isinstance(error.get("message"), str)):
                problems.append(f"error outside the contract: {text[:300]}")
    return problems


def log_problems(log: Path, since: int = 0) -> list[str]:
    """Lines of the daemon's log (from byte ``since``) that show a bug: tracebacks,
    ``request_failed`` (-32603), failed request tasks, or a storage fault."""
    try:
        with log.open("rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    bad = ("Traceback", '"request_failed"', '"request_task_failed"', '"storage_in_doubt"',
           '"answer_not_serialisable"', "Task exception was never retrieved")
    return [f"daemon log: {ln[:400]}" for ln in text.splitlines() if any(b in ln for b in bad)]
