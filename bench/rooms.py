"""CPU of the daemon's own rooms per append, in one process, without storage.

Single-event appends go through the server's real path, ``Connection`` (a transport
that only counts what is written) -> ``daemon.wire`` -> ``CallRunner`` -> the
handlers (params, contract checks, ``NewEvent``) -> ``GroupCommits``, and back as
answers; the writer is replaced by one that answers each group at once. Every client
sends one append per round and the round ends once all are answered. Measured in
``process_time`` of this process, so the machine's other load moves it less than a
rate: what is left is what the daemon's Python costs per append, outside the socket,
the writer pipe and the writer process (docs/BENCHMARKS.md, section 13).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import median
from bench.events import append_line, events
from daemon.config import Config, Limits
from daemon.connection import Connection
from daemon.logs import configure_logging
from daemon.service import Service
from eventstore.record import AppendOutcome, AppendRequest, EventResult

__all__ = ["run"]


class _Writer:
    """Answers each group at once, one seq per event (nothing is stored)."""

    checkpoint = 0
    flushed = 0

    def __init__(self) -> None:
        self.seq = 0

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        await asyncio.sleep(0)
        outcomes = []
        for request in requests:
            results = []
            for event in request.events:
                self.seq += 1
                results.append(EventResult(event.event_id, event.source, self.seq, False))
            outcomes.append(AppendOutcome(results, self.seq))
        return outcomes


class _Transport(asyncio.Transport):
    """Counts the answer lines written; never full, never closing."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def write(self, data: Any) -> None:
        self.lines += bytes(data).count(b"\n")

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def _one(clients: int, rounds: int) -> float:
    """CPU µs per append of ``rounds`` rounds of one append from each of ``clients``."""
    with tempfile.TemporaryDirectory(prefix="tlbench-") as folder:
        directory = Path(folder)
        config = Config(db=directory / "t.db", socket=directory / "t.sock", limits=Limits())
        service = Service(config, None, _Writer(), 0)  # type: ignore[arg-type]
        service.start()
        pairs = []
        for _ in range(clients):
            connection, transport = Connection(service), _Transport()
            connection.connection_made(transport)
            pairs.append((connection, transport))
        wires = list(events(clients * rounds, seed=100, prefix="r0"))
        lines = [append_line(rid, [wire]) for rid, wire in enumerate(wires, 1)]
        gc.collect()
        sent = 0
        started = time.process_time()
        for _ in range(rounds):
            for connection, _ in pairs:
                connection.data_received(lines[sent])
                sent += 1
            while sum(transport.lines for _, transport in pairs) < sent:
                await asyncio.sleep(0)
        cpu_s = time.process_time() - started
        await service.stop_commits()
        return cpu_s / sent * 1e6


def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("json", "warning")
    appends = 3_000 if args.quick else 10_000
    repeats = max(args.repeats, 3)
    results: dict[str, Any] = {"runs": []}
    print(f"{'clients':>7} {'appends':>8} {'CPU us/append':>14} (median of {repeats}; min)")
    for clients in (8, 64):
        samples = [asyncio.run(_one(clients, appends // clients)) for _ in range(repeats)]
        row = {"clients": clients, "appends": appends, "cpu_us": median(samples),
               "min_cpu_us": min(samples)}
        results["runs"].append(row)
        print(f"{clients:>7} {appends:>8} {row['cpu_us']:>14.1f} ({row['min_cpu_us']:.1f})",
              flush=True)
    return results
