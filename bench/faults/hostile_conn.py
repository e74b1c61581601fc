"""Sockets for ``bench.faults.hostile``: a blocking client, the good clients, the
daemon's memory, and the hostile classes that are about connections rather than lines
(pipelining, subscriptions, partial lines, connection floods).

Everything here knows only PROTOCOL.md: NDJSON over a Unix stream socket.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Client",
    "GoodClient",
    "RssMonitor",
    "Sample",
    "daemon_rss_kb",
]

Key = tuple[str, str]


class Client:
    """A blocking NDJSON client: send bytes, read whole lines with a deadline."""

    def __init__(self, path: Path, timeout_s: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        self.buffer = b""
        self.eof = False
        # A full listen backlog answers EAGAIN at once on a Unix socket with a timeout:
        # wait for room as a blocking connect would, up to the timeout.
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.sock.connect(str(path))
                return
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                self.sock.close()
                raise
            except OSError:
                self.sock.close()
                raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> bool:
        """Send all of ``data``; False when the daemon closed or reset the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def line(self, timeout_s: float) -> bytes | None:
        """The next line without its ``\\n``; None at end of stream.

        Raises:
            TimeoutError: no whole line within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        if b"\n" not in self.buffer:
            parts = [self.buffer]
            while True:
                if self.eof:
                    self.buffer = b"".join(parts)
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.buffer = b"".join(parts)
                    raise TimeoutError("no whole line in time")
                self.sock.settimeout(remaining)
                try:
                    chunk = self.sock.recv(1 << 20)
                except (ConnectionResetError, BrokenPipeError):
                    chunk = b""
                except TimeoutError:
                    continue
                if not chunk:
                    self.eof = True
                    continue
                parts.append(chunk)
                if b"\n" in chunk:
                    break
            self.buffer = b"".join(parts)
        found, _, self.buffer = self.buffer.partition(b"\n")
        return found

    def call(self, method: str, params: Any, request_id: Any,
             timeout_s: float = 30.0) -> dict[str, Any]:
        """One request and its answer (notifications skipped).

        Raises:
            EOFError: the daemon closed the connection first.
            TimeoutError: no answer within ``timeout_s``.
        """
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        if not self.send(json.dumps(message).encode() + b"\n"):
            raise EOFError("the daemon closed the connection")
        deadline = time.monotonic() + timeout_s
        while True:
            raw = self.line(max(deadline - time.monotonic(), 0.0))
            if raw is None:
                raise EOFError("the daemon closed the connection")
            answer = json.loads(raw)
            if isinstance(answer, dict) and answer.get("id") == request_id:
                return answer


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _vm_rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for text in Path(f"/proc/{pid}/status").read_text().splitlines():
            if text.startswith("VmRSS:"):
                return int(text.split()[1])
    return 0


def daemon_rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` plus its child processes (the writer), in KiB; 0 when gone."""
    return _vm_rss_kb(pid) + sum(_vm_rss_kb(c) for c in _children(pid))


class RssMonitor(threading.Thread):
    """Samples the daemon's RSS every 0.1 s; ``peak_kb`` since the last ``reset``.

    When the RSS passes ``kill_kb`` the daemon is killed (SIGKILL, through ``kill``)
    to protect the machine, and ``killed`` says so: that is recorded as a problem.
    """

    def __init__(self, pid_of: Callable[[], int | None], kill_kb: int,
                 kill: Callable[[], None]) -> None:
        super().__init__(daemon=True, name="rss")
        self.pid_of = pid_of
        self.kill_kb = kill_kb
        self.kill = kill
        self.stop = threading.Event()
        self.peak_kb = 0
        self.killed = False
        self.lock = threading.Lock()

    def reset(self) -> tuple[int, bool]:
        """The peak and the kill flag since the last reset; both start again."""
        with self.lock:
            found = self.peak_kb, self.killed
            pid = self.pid_of()
            self.peak_kb = daemon_rss_kb(pid) if pid else 0
            self.killed = False
            return found

    def run(self) -> None:
        while not self.stop.wait(0.1):
            pid = self.pid_of()
            if not pid:
                continue
            rss = daemon_rss_kb(pid)
            with self.lock:
                self.peak_kb = max(self.peak_kb, rss)
                if rss > self.kill_kb and not self.killed:
                    self.killed = True
                    self.kill()


@dataclass
class Sample:
    """One good client's round trip: when it started (monotonic s), how long (s)."""

    at: float
    took: float
    method: str


class GoodClient(threading.Thread):
    """A well-behaved bot on its own connection: appends fills, marks and cash for its
    account, then ``health``, then ``query`` of its balances, over and over, recording
    each round trip, with ``pause_s`` between round trips. Every append must be
    answered with a result (or -32001, "retry later"); a lost connection is a problem,
    and it connects again.

    The round trips run in a child process of their own (``_good_loop``), so what they
    measure is the daemon, not this process's other threads holding the GIL while they
    build or parse megabyte lines; this thread only collects the child's records."""

    def __init__(self, path: Path, number: int, seed: int,
                 answer_timeout_s: float = 60.0, pause_s: float = 0.02) -> None:
        super().__init__(daemon=True, name=f"good-{number}")
        self.path = path
        self.number = number
        self.seed = seed
        self.answer_timeout_s = answer_timeout_s
        self.pause_s = pause_s
        self.samples: list[Sample] = []
        self.acked: list[Key] = []
        self.problems: list[tuple[float, str]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        context = multiprocessing.get_context("fork")
        reader, writer = context.Pipe(duplex=False)
        stop = context.Event()
        child = context.Process(
            target=_good_loop, daemon=True, name=f"good-{self.number}",
            args=(writer, stop, self.path, self.number, self.seed, self.answer_timeout_s,
                  self.pause_s))
        child.start()
        writer.close()
        try:
            while True:
                if self.halt.is_set():
                    stop.set()
                if not reader.poll(0.1):
                    continue
                try:
                    kind, record = reader.recv()
                except EOFError:
                    break
                if kind == "sample":
                    self.samples.append(Sample(*record))
                elif kind == "acked":
                    self.acked += [tuple(k) for k in record]
                else:
                    self.problems.append(tuple(record))
        finally:
            stop.set()
            child.join(self.answer_timeout_s)
            if child.is_alive():
                child.kill()
            reader.close()


def _good_events(rng: random.Random, number: int, count: int) -> tuple[list[dict[str, Any]], int]:
    """1-5 valid events for good client ``number`` (fills, marks, cash), and the count
    of events made so far."""
    account = f"good-{number}"
    events = []
    for _ in range(rng.randint(1, 5)):
        count += 1
        symbol = rng.choice(["EURUSD", "XAUUSD", "BTCUSD"])
        price = f"{rng.uniform(90, 110):.2f}"
        roll = rng.random()
        data: dict[str, Any]
        if roll < 0.7:
            kind, data = "fill", {"symbol": symbol, "side": rng.choice(["buy", "sell"]),
                                  "quantity": str(rng.randint(1, 3)), "price": price,
                                  "fee": "0.01"}
        elif roll < 0.9:
            kind, data = "mark", {"prices": {symbol: price}}
        else:
            kind, data = "cash", {"amount": "1000", "kind": "deposit"}
        minute = count % 1440
        events.append({"id": f"g{number}-{count}", "source": f"good/bot-{number}",
                       "type": kind,
                       "time": f"2024-03-{1 + count // 1440 % 28:02d}T"
                               f"{minute // 60:02d}:{minute % 60:02d}:00Z",
                       "account": account, "data": data})
    return events, count


def _good_loop(out: Any, stop: Any, path: Path, number: int, seed: int,
               answer_timeout_s: float, pause_s: float) -> None:
    """The good client's round trips (in its child process): each sent to ``out`` as
    ``("sample", (at, took, method))``, ``("acked", keys)`` or ``("problem", (at, why))``."""
    rng = random.Random(seed * 100 + number)
    count = 0
    client: Client | None = None
    n = 0
    while not stop.wait(pause_s):
        if client is None:
            try:
                client = Client(path, answer_timeout_s)
            except OSError as exc:
                out.send(("problem", (time.monotonic(), f"cannot connect: {exc!r}")))
                stop.wait(0.2)
                continue
        n += 1
        method = ("append", "health", "query")[n % 3]
        params: Any = None
        events: list[dict[str, Any]] = []
        if method == "append":
            events, count = _good_events(rng, number, count)
            params = {"events": events}
        elif method == "query":
            params = {"view": "balances", "account": f"good-{number}"}
        started = time.monotonic()
        try:
            answer = client.call(method, params, n, answer_timeout_s)
        except (EOFError, TimeoutError, OSError, ValueError) as exc:
            out.send(("problem", (started, f"{method} not answered: {exc!r}")))
            client.close()
            client = None
            stop.wait(0.2)
            continue
        out.send(("sample", (started, time.monotonic() - started, method)))
        if "error" in answer:
            if answer["error"].get("code") != -32001:
                out.send(("problem", (started, f"{method} answered {answer['error']}")))
        elif method == "append":
            out.send(("acked", [(e["source"], e["id"]) for e in events]))
    if client is not None:
        client.close()
    out.close()


# ------------------------------------------------------------------ per-class tally


@dataclass
class Tally:
    """What one class sent and got: requests (lines or connections, as the class says),
    batch members, answers by error code (``result`` for results, ``closed`` for
    connections the daemon closed, ``timeout`` for none within the bound), problems,
    and the hostile event keys that must never be stored and that must be; ``shapes``:
    the probes sent, by shape (``hostile_gen.Probe.shape``, for a class that has them)."""

    requests: int = 0
    members: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    refused: set[Key] = field(default_factory=set)
    expected: set[Key] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def count(self, code: str, n: int = 1) -> None:
        self.codes[code] = self.codes.get(code, 0) + n

    def answer(self, message: Any) -> None:
        """Count one response (a dict) or each response of a batch answer."""
        for one in message if isinstance(message, list) else [message]:
            if not isinstance(one, dict) or "method" in one:
                continue
            error = one.get("error")
            self.count(str(error.get("code")) if isinstance(error, dict) else "result")


def _drain(client: Client, budget_bytes: int, seconds: float, tally: Tally) -> None:
    """Read and count answers for at most ``seconds`` or ``budget_bytes``."""
    deadline = time.monotonic() + seconds
    got = 0
    while got < budget_bytes and time.monotonic() < deadline:
        try:
            raw = client.line(max(deadline - time.monotonic(), 0.01))
        except (TimeoutError, OSError):
            return
        if raw is None:
            tally.count("closed")
            return
        got += len(raw)
        with contextlib.suppress(ValueError):
            tally.answer(json.loads(raw))


def _send_until_blocked(client: Client, data: bytes, block_s: float) -> tuple[int, bool]:
    """Write ``data`` until a write blocks for ``block_s`` (the daemon stopped reading)
    or the daemon closes; returns (bytes written, closed)."""
    client.sock.settimeout(block_s)
    sent = 0
    while sent < len(data):
        try:
            sent += client.sock.send(data[sent:sent + 65536])
        except TimeoutError:
            return sent, False
        except (BrokenPipeError, ConnectionResetError):
            return sent, True
    return sent, False


# ------------------------------------------------------------------ pipelining


def pipelining(path: Path, quota: int, rng: random.Random, tally: Tally,
               hold_s: float, deadline: float, block_s: float = 2.0) -> None:
    """Connections that pipeline thousands of reads, queries and health checks and read
    none of the answers, held open for ``hold_s`` (the daemon must stop reading them
    once 256 requests are in flight or 16 MiB of answers wait), four at a time; a write
    blocked for ``block_s`` is taken as the daemon no longer reading."""
    while tally.requests < quota and time.monotonic() < deadline:
        held: list[Client] = []
        for _ in range(4):
            count = rng.randint(1000, 5000)
            lines = []
            for n in range(count):
                pick = rng.random()
                if pick < 0.5:
                    message: dict[str, Any] = {"jsonrpc": "2.0", "id": n, "method": "read",
                                               "params": {"from_seq": 1, "limit": 1000}}
                elif pick < 0.8:
                    message = {"jsonrpc": "2.0", "id": n, "method": "query",
                               "params": {"view": "journal", "limit": 100_000}}
                else:
                    message = {"jsonrpc": "2.0", "id": n, "method": "health"}
                lines.append(json.dumps(message).encode() + b"\n")
            data = b"".join(lines)
            try:
                client = Client(path, 5.0)
            except OSError as exc:
                tally.problems.append(f"pipelining: cannot connect: {exc!r}")
                continue
            sent, closed = _send_until_blocked(client, data, block_s)
            written = data[:sent].count(b"\n")
            tally.requests += written
            tally.members += written
            if closed:
                tally.count("closed")
            if written < count:
                tally.count("writes blocked")
            held.append(client)
        time.sleep(hold_s)
        for client in held:
            _drain(client, 32 << 20, 0.5, tally)
            client.close()


# ------------------------------------------------------------------ subscriptions


def subscriptions(path: Path, quota: int, rng: random.Random, tally: Tally,
                  deadline: float) -> None:
    """Connections that ask for 17-64 subscriptions: at most 16 may be granted, the rest
    refused with -32602; after one ``unsubscribe`` a new one must be granted again."""
    while tally.requests < quota and time.monotonic() < deadline:
        count = rng.randint(17, 64)
        try:
            client = Client(path, 30.0)
        except OSError as exc:
            tally.problems.append(f"subscriptions: cannot connect: {exc!r}")
            return
        try:
            data = b"".join(json.dumps({"jsonrpc": "2.0", "id": n, "method": "subscribe",
                                        "params": {"from_seq": 10**15}}).encode() + b"\n"
                            for n in range(count))
            client.send(data)
            tally.requests += count
            granted: list[str] = []
            answered = 0
            until = time.monotonic() + 30.0
            while answered < count:
                raw = client.line(until - time.monotonic())
                if raw is None:
                    tally.problems.append(
                        f"{count} subscribes: the daemon closed the connection after "
                        f"{answered} answers")
                    tally.count("closed")
                    break
                message = json.loads(raw)
                if not isinstance(message, dict) or "method" in message:
                    continue
                answered += 1
                tally.answer(message)
                if "result" in message:
                    granted.append(str(message["result"].get("subscription")))
            if len(granted) > 16:
                tally.problems.append(f"{count} subscribes on one connection: "
                                      f"{len(granted)} granted, past the limit of 16")
            if granted and answered == count:
                gone = client.call("unsubscribe", {"subscription": granted[0]}, "u")
                again = client.call("subscribe", {"from_seq": 10**15}, "again")
                tally.requests += 2
                tally.answer(gone)
                tally.answer(again)
                if "result" not in gone or "result" not in again:
                    tally.problems.append(f"after unsubscribe, a new subscribe answered "
                                          f"{again.get('error') or gone.get('error')}")
        except (TimeoutError, EOFError, OSError, ValueError) as exc:
            tally.problems.append(f"{count} subscribes: {exc!r}")
            tally.count("timeout" if isinstance(exc, TimeoutError) else "closed")
        finally:
            client.close()


class SlowSubscribers:
    """Subscribers from seq 1 that never read, held open until ``finish``: then each must
    have sent every event in order, none missed or twice, up to the end of the log or
    up to a ``subscription_closed`` notice whose ``next_seq`` follows the last event."""

    def __init__(self, path: Path, count: int) -> None:
        self.clients: list[Client] = []
        self.problems: list[str] = []
        for n in range(count):
            try:
                client = Client(path, 30.0)
                client.send(json.dumps({"jsonrpc": "2.0", "id": f"slow-{n}",
                                        "method": "subscribe",
                                        "params": {"from_seq": 1}}).encode() + b"\n")
                self.clients.append(client)
            except OSError as exc:
                self.problems.append(f"slow subscriber: cannot connect: {exc!r}")

    def finish(self, quiet_s: float = 3.0) -> dict[str, int]:
        """Read what each was sent (until ``quiet_s`` without a line, at most 120 s);
        returns how each ended (``caught up``, ``closed with notice``, ``closed without
        notice``) with the problems in ``self.problems``."""
        ends: dict[str, int] = {}
        for n, client in enumerate(self.clients):
            expect = 1
            end = "caught up"
            until = time.monotonic() + 120.0
            try:
                while True:
                    try:
                        raw = client.line(min(quiet_s, until - time.monotonic()))
                    except TimeoutError:
                        break
                    if raw is None:
                        end = "closed without notice"
                        self.problems.append(f"slow subscriber {n}: the connection closed "
                                             f"after seq {expect - 1} without "
                                             f"subscription_closed")
                        break
                    message = json.loads(raw)
                    if message.get("method") == "event":
                        seq = message["params"]["event"]["seq"]
                        if seq != expect:
                            self.problems.append(f"slow subscriber {n}: seq {seq} after "
                                                 f"{expect - 1}")
                        expect = seq + 1
                    elif message.get("method") == "subscription_closed":
                        end = "closed with notice"
                        after = message.get("params", {}).get("next_seq")
                        if after != expect:
                            self.problems.append(f"slow subscriber {n}: subscription_closed "
                                                 f"next_seq {after}, expected {expect}")
                        break
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.problems.append(f"slow subscriber {n}: {exc!r}")
            ends[end] = ends.get(end, 0) + 1
            client.close()
        return ends


# ------------------------------------------------------------------ partial lines


def partial_lines(path: Path, quota: int, rng: random.Random, tally: Tally,
                  line_of: Callable[[int], tuple[bytes, list[Key]]], limit_s: float,
                  deadline: float, wave_size: int = 100) -> None:
    """Waves of up to ``wave_size`` connections: half a line then silence (closed by the daemon
    within the partial-line limit, the half never stored), half a line then a few more
    bytes at half the limit, and whole requests trickled a byte at a time over 1.5 x the
    limit (answered or closed; either way the others are served)."""
    number = 0
    while tally.requests < quota and time.monotonic() < deadline:
        wave = min(wave_size, quota - tally.requests)
        halves: list[Client] = []
        tricklers: list[tuple[Client, bytes, list[Key]]] = []
        for _ in range(wave):
            number += 1
            blob, keys = line_of(number)
            try:
                client = Client(path, 5.0)
            except OSError as exc:
                tally.problems.append(f"partial: cannot connect: {exc!r}")
                continue
            tally.requests += 1
            if rng.random() < 0.6:
                client.send(blob[:rng.randint(1, len(blob) - 1)])
                tally.refused.update(keys)
                halves.append(client)
            else:
                tricklers.append((client, blob + b"\n", keys))
        started = time.monotonic()
        trickle_s = 1.5 * limit_s
        longest = max((len(b) for _, b, _ in tricklers), default=1)
        step = trickle_s / longest
        sent = [0] * len(tricklers)
        nudged = False
        while time.monotonic() - started < limit_s + 3.0:
            if not nudged and time.monotonic() - started > limit_s / 2:
                nudged = True
                for client in halves[::3]:
                    client.send(b" ")
            for n, (client, blob, _) in enumerate(tricklers):
                if sent[n] < len(blob) and client.send(blob[sent[n]:sent[n] + 1]):
                    sent[n] += 1
            time.sleep(step)
        waited = time.monotonic() - started
        for client in halves:
            _expect_closed(client, tally, waited)
            client.close()
        for n, (client, blob, keys) in enumerate(tricklers):
            if sent[n] < len(blob):
                client.send(blob[sent[n]:])
            try:
                raw = client.line(5.0)
                if raw is None:
                    tally.count("closed")
                    tally.refused.update(keys)
                else:
                    message = json.loads(raw)
                    tally.answer(message)
                    if "error" in message:
                        tally.refused.update(keys)
                        # closed after -32600 is fine
                        with contextlib.suppress(TimeoutError, OSError):
                            if client.line(1.0) is None:
                                tally.count("closed")
                    else:
                        tally.expected.update(keys)
            except TimeoutError:
                tally.count("timeout")
                tally.problems.append("a trickled request was neither answered nor closed "
                                      "5 s after its last byte")
            except (OSError, ValueError) as exc:
                tally.problems.append(f"trickled request: {exc!r}")
            client.close()


def _expect_closed(client: Client, tally: Tally, waited: float) -> None:
    try:
        while True:
            raw = client.line(0.5)
            if raw is None:
                tally.count("closed")
                return
            with contextlib.suppress(ValueError):
                tally.answer(json.loads(raw))
    except TimeoutError:
        tally.count("still open")
        tally.problems.append(f"half a line then silence: still open after {waited:.1f} s")
    except OSError:
        tally.count("closed")


# ------------------------------------------------------------------ connection floods


def flood(path: Path, quota: int, rng: random.Random, tally: Tally, per_uid_cap: int,
          deadline: float) -> None:
    """Rounds of more connections than the per-uid cap, all held open: each is either
    served (``health`` answered) or refused with -32600 and closed, within 5 s, never
    left hanging; no more than the cap are served at once."""
    while tally.requests < quota and time.monotonic() < deadline:
        count = per_uid_cap + rng.randint(16, 64)
        held: list[Client] = []
        served = 0
        for n in range(count):
            tally.requests += 1
            try:
                client = Client(path, 5.0)
            except OSError as exc:
                tally.count("connect failed")
                tally.problems.append(f"a flood connection: connect failed: {exc!r}")
                continue
            held.append(client)
            # A refused connection may be told and closed before the request is even
            # written: send, ignore a broken pipe, and read what came.
            client.send(json.dumps({"jsonrpc": "2.0", "id": f"f{n}",
                                    "method": "health"}).encode() + b"\n")
            try:
                raw = client.line(5.0)
            except TimeoutError:
                tally.count("timeout")
                tally.problems.append("a flood connection: neither served nor refused "
                                      "in 5 s (a hang)")
                continue
            if raw is None:
                tally.count("closed")
                tally.problems.append("a flood connection: closed without an answer")
                continue
            try:
                answer = json.loads(raw)
            except ValueError:
                tally.problems.append(f"a flood connection: answered {raw[:200]!r}")
                continue
            tally.answer(answer)
            if isinstance(answer, dict) and "result" in answer:
                served += 1
                continue
            try:
                if client.line(5.0) is None:
                    tally.count("closed")
                else:
                    tally.problems.append("a flood connection: refused but not closed")
            except TimeoutError:
                tally.problems.append("a flood connection: refused but left open")
        if served > per_uid_cap:
            tally.problems.append(f"{served} connections of one uid served at once, past "
                                  f"the cap of {per_uid_cap}")
        tally.notes.append(f"round of {count}: {served} served")
        for client in held:
            client.close()
        time.sleep(0.5)
