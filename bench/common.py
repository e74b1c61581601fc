"""Shared pieces of the benchmarks: a daemon subprocess, raw-socket load generators,
timing and CPU accounting, and the plain-sqlite3 baseline."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

from bench.host import machine
from daemon.process import ServeProcess

__all__ = [
    "CACHE",
    "Daemon",
    "closed_loop",
    "machine",
    "median",
    "percentile",
    "sqlite_ceiling",
]

CACHE = Path(os.environ.get("TRADELOG_BENCH_CACHE", "/tmp/tradelog-bench"))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


class Daemon(ServeProcess):
    """``tradelog serve`` in a subprocess; ``ready_s`` is the time to READY=1 (sd_notify),
    ``peak_rss`` the largest resident set sampled."""

    def __init__(self, db: Path, directory: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.dir = Path(directory or tempfile.mkdtemp(prefix="tlbench-"))
        super().__init__(db, self.dir / "tradelog.sock", self.dir / "daemon.log", env=env)
        self.ready_s = 0.0
        self.ps: psutil.Process | None = None
        self.peak_rss = 0

    def start(self, timeout_s: float = 120.0) -> float:
        self.ready_s = super().start(timeout_s)
        assert self.proc is not None
        self.ps = psutil.Process(self.proc.pid)
        self.sample_rss()
        return self.ready_s

    def log_tail(self) -> str:
        return self.tail(3000)

    def _processes(self) -> list[psutil.Process]:
        """The daemon and its writer process (the figures are for both together)."""
        if self.ps is None:
            return []
        try:
            return [self.ps, *self.ps.children()]
        except psutil.Error:
            return [self.ps]

    def sample_rss(self) -> int:
        """Resident set of the daemon and its writer process now (also kept as the peak)."""
        total = 0
        for process in self._processes():
            with contextlib.suppress(psutil.Error):
                total += int(process.memory_info().rss)
        self.peak_rss = max(self.peak_rss, total)
        return total

    def pss(self) -> int:
        """Proportional set size (bytes) of the daemon and its writer process together:
        each process's private pages plus its share of the pages they map in common (the
        interpreter, the libraries), from ``/proc/PID/smaps_rollup``; 0 where unreadable."""
        total = 0
        for process in self._processes():
            with contextlib.suppress(OSError, psutil.Error, ValueError):
                for line in Path(f"/proc/{process.pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        return total

    def cpu_s(self) -> float:
        """User + system CPU seconds of the daemon and its writer process so far."""
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """CPU seconds so far of the daemon's own process and of its writer process."""
        own = children = 0.0
        for process in self._processes():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                if process is self.ps:
                    own += float(times.user + times.system)
                else:
                    children += float(times.user + times.system)
        return own, children

    def hwm_rss(self) -> int:
        """The kernel's peak resident set (VmHWM) of the daemon plus that of its writer
        process, in bytes (an upper bound of their peak together)."""
        total = 0
        for process in self._processes():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
        return total or self.peak_rss

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout_s``); the exit code, or 0 if not running."""
        if self.proc is None:
            return 0
        try:
            return super().stop(sig, timeout_s)
        except subprocess.TimeoutExpired:
            return self.kill()

    def __enter__(self) -> Daemon:
        self.start()
        return self


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    return sock


def call(sock: socket.socket, request: dict[str, Any]) -> dict[str, Any]:
    """One blocking request/answer on a raw socket (no pipelining)."""
    sock.sendall((json.dumps(request) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise EOFError("daemon closed the connection")
        buf += chunk
    answer: dict[str, Any] = json.loads(buf)
    return answer


class RunStats:
    """Result of a load run: events acked, wall time, generator CPU, errors."""

    def __init__(self, events: int, wall_s: float, gen_cpu_s: float, errors: int,
                 latencies: list[float] | None = None) -> None:
        self.events = events
        self.wall_s = wall_s
        self.gen_cpu_s = gen_cpu_s
        self.errors = errors
        self.latencies = latencies or []

    @property
    def rate(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def closed_loop(path: Path | Sequence[Path], per_client: Sequence[Sequence[bytes]],
                events_per_line: int) -> RunStats:
    """Each client sends its lines one at a time and waits for each answer (closed loop).
    ``path``: the daemon's socket, or one socket per client (several daemons).

    One thread drives every client through a selector with pre-serialised lines, so the
    generator's own CPU stays small; it is measured and returned.
    """
    sel = selectors.DefaultSelector()
    socks = []
    state: dict[int, list[Any]] = {}
    paths = [path] * len(per_client) if isinstance(path, Path) else list(path)
    for lines, client_path in zip(per_client, paths, strict=True):
        sock = connect(client_path)
        sock.setblocking(False)
        socks.append(sock)
        state[sock.fileno()] = [sock, lines, 0, b""]
    errors = 0
    done_lines = 0
    cpu0 = _cpu()
    started = time.perf_counter()
    for fd, item in state.items():
        if item[1]:
            item[0].sendall(item[1][0])
            sel.register(item[0], selectors.EVENT_READ, fd)
    active = len(sel.get_map())
    while active:
        for key, _ in sel.select():
            item = state[key.data]
            sock = item[0]
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise EOFError("daemon closed a connection")
            buf = item[3] + chunk
            while True:
                end = buf.find(b"\n")
                if end < 0:
                    break
                answer, buf = buf[:end], buf[end + 1:]
                if b'"error"' in answer:
                    errors += 1
                done_lines += 1
                item[2] += 1
                if item[2] < len(item[1]):
                    sock.sendall(item[1][item[2]])
                else:
                    sel.unregister(sock)
                    active -= 1
            item[3] = buf
    wall = time.perf_counter() - started
    gen_cpu = _cpu() - cpu0
    for sock in socks:
        sock.close()
    sel.close()
    return RunStats(done_lines * events_per_line, wall, gen_cpu, errors)


def _flush(client: dict[str, Any]) -> None:
    """Send what the socket takes now; keep the rest (the daemon may pause reading)."""
    while client["out"]:
        try:
            sent = client["sock"].send(client["out"])
        except BlockingIOError:
            return
        client["out"] = client["out"][sent:]


def open_loop(path: Path, per_client: Sequence[Sequence[bytes]], rate_per_client: float
              ) -> RunStats:
    """Each client sends its lines on a fixed schedule (``rate_per_client`` lines/s), not
    waiting for answers (pipelined), so a slow answer cannot hide later ones (no
    coordinated omission). Latency = answer time - scheduled send time."""
    sel = selectors.DefaultSelector()
    clients = []
    for lines in per_client:
        sock = connect(path)
        sock.setblocking(False)
        clients.append({"sock": sock, "lines": lines, "sent": 0, "acked": 0, "buf": b"",
                        "due": [], "out": b""})
        sel.register(sock, selectors.EVENT_READ, clients[-1])
    interval = 1.0 / rate_per_client
    latencies: list[float] = []
    errors = 0
    total = sum(len(c["lines"]) for c in clients)
    cpu0 = _cpu()
    started = time.perf_counter()
    # Stagger the clients' phases over one interval.
    for index, client in enumerate(clients):
        client["offset"] = started + index * interval / len(clients)
    received = 0
    while received < total:
        now = time.perf_counter()
        next_due = float("inf")
        for client in clients:
            while client["sent"] < len(client["lines"]):
                due = client["offset"] + client["sent"] * interval
                if due > now:
                    next_due = min(next_due, due)
                    break
                client["out"] += client["lines"][client["sent"]]
                client["due"].append(due)
                client["sent"] += 1
            _flush(client)
        waiting = any(client["out"] for client in clients)
        timeout = max(0.0, next_due - time.perf_counter()) if next_due != float("inf") else 1.0
        if waiting:
            timeout = min(timeout, 0.001)
        for key, _ in sel.select(timeout):
            client = key.data
            chunk = client["sock"].recv(1 << 16)
            if not chunk:
                raise EOFError("daemon closed a connection")
            arrived = time.perf_counter()
            buf = client["buf"] + chunk
            while True:
                end = buf.find(b"\n")
                if end < 0:
                    break
                answer, buf = buf[:end], buf[end + 1:]
                if b'"error"' in answer:
                    errors += 1
                latencies.append(arrived - client["due"][client["acked"]])
                client["acked"] += 1
                received += 1
            client["buf"] = buf
    wall = time.perf_counter() - started
    gen_cpu = _cpu() - cpu0
    for client in clients:
        client["sock"].close()
    sel.close()
    return RunStats(received, wall, gen_cpu, errors, latencies)


def fsync_probe(count: int = 200, size: int = 32768) -> tuple[float, float]:
    """p50 and p99 (ms) of ``write(size)`` + ``fsync`` on the disk under the cache dir:
    the floor under every durable commit, which varies with the machine's other I/O."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    times = []
    try:
        block = b"x" * size
        for _ in range(count):
            os.write(fd, block)
            started = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    times.sort()
    return percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000


# ------------------------------------------------------------------ the sqlite3 ceiling

def stored_rows(wires: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows tradelog would store for ``wires`` (same ids and payloads), made with
    plain ``json`` before timing; the last column holds the canonical bytes to hash."""
    rows = []
    recorded = "2024-06-01T00:00:00.000000Z"
    for seq, wire in enumerate(wires, 1):
        data_json = json.dumps(wire["data"], sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False)
        envelope = {k: v for k, v in wire.items() if k != "data"}
        envelope.setdefault("specversion", "1.0")
        canonical = json.dumps({**envelope, "data": wire["data"]}, sort_keys=True,
                               separators=(",", ":"), ensure_ascii=False).encode()
        rows.append((seq, wire["source"], wire["id"], wire["type"], wire["time"],
                     wire["account"], "1.0", None, data_json, recorded, 1, "{}", canonical))
    return rows


def sqlite_ceiling(wires: Sequence[dict[str, Any]], batch: int = 1000) -> float:
    """Events/s of raw ``sqlite3`` ``executemany`` of the same rows into the same table
    layout (tradelog's DDL), batches of ``batch``, WAL, ``synchronous=FULL``, hashing
    each row's canonical bytes into the chain as it goes (the hash is part of the row).
    """
    from eventstore import ddl
    from eventstore.canonical import GENESIS_HASH

    rows = stored_rows(wires)
    directory = Path(tempfile.mkdtemp(prefix="tlbench-ceiling-"))
    try:
        conn = sqlite3.connect(directory / "ceiling.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        for statement in ddl.MIGRATIONS[0]:
            conn.execute(statement)
        sql = f"INSERT INTO events ({ddl.EVENT_COLUMNS}) VALUES ({', '.join('?' * 13)})"
        started = time.perf_counter()
        previous = bytes.fromhex(GENESIS_HASH)
        for start in range(0, len(rows), batch):
            chunk = []
            for row in rows[start:start + batch]:
                digest = hashlib.sha256(previous + row[12]).digest()
                previous = digest
                chunk.append((*row[:12], digest.hex()))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, chunk)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return len(rows) / elapsed
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def temp_dir(prefix: str = "tlbench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
