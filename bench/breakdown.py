"""Where one event's CPU goes on the ingest path: each stage timed alone, in process,
over the same events (µs per event, median of repeats). Not a figure of the issue; the
table that explains the ingest figures."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import median
from bench.events import append_line, events

__all__ = ["run"]


def _per_event(fn: Callable[[], object], count: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) / count * 1e6)
    return median(samples)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from daemon.jsonread import dumps, loads
    from daemon.service.params import append_params
    from eventstore.record import AppendRequest, NewEvent
    from eventstore.recorder import Recorder, open_sqlite
    from eventstore.writes import append_in_transaction
    from projections.fold import fold
    from schemas import parse_events

    count = 5_000 if args.quick else 20_000
    wires = events(count, seed=9, prefix="b")
    lines = [append_line(i, [w]) for i, w in enumerate(wires)]
    messages = [loads(line) for line in lines]
    models = parse_events(wires)
    news = [NewEvent.from_model(m) for m in models]
    out: dict[str, float] = {}
    repeats = max(1, args.repeats)
    out["read the line (strict JSON decode)"] = _per_event(
        lambda: [loads(line) for line in lines], count, repeats)
    out["check append params (daemon.service.params.append_params)"] = _per_event(
        lambda: [append_params(m["params"]) for m in messages], count, repeats)
    out["validate the event (schemas.parse_events)"] = _per_event(
        lambda: [parse_events([w]) for w in wires], count, repeats)
    out["NewEvent.from_model (dump + canonical JSON)"] = _per_event(
        lambda: [NewEvent.from_model(m) for m in models], count, repeats)
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"results": [
        {"id": "x", "source": "bot/a", "seq": 1, "duplicate": False}], "last_seq": 1}}
    out["encode the answer"] = _per_event(
        lambda: [dumps(answer) for _ in range(count)], count, repeats)

    def store(group: int) -> float:
        samples = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as directory:
                conn = open_sqlite(Path(directory) / "t.db", readonly=False,
                                   busy_timeout_s=5)
                started = time.perf_counter()
                for start in range(0, count, group):
                    append_in_transaction(
                        conn, [AppendRequest([e]) for e in news[start:start + group]], None)
                samples.append((time.perf_counter() - started) / count * 1e6)
                conn.close()
        return median(samples)

    out["store, groups of 64 (SQL + chain + COMMIT, no views)"] = store(64)
    out["store, groups of 1000 (no views)"] = store(1000)

    async def stored_events() -> list[Any]:
        with tempfile.TemporaryDirectory() as directory:
            recorder = await Recorder.open(Path(directory) / "t.db")
            try:
                await recorder.append_groups([AppendRequest(news)])
                return await recorder.read(1, count)
            finally:
                await recorder.close()

    stored = asyncio.run(stored_events())
    out["fold every view (projections.fold)"] = _per_event(
        lambda: fold(stored), count, repeats)
    print(f"{'stage':<56} {'µs/event':>9}")
    for name, value in out.items():
        print(f"{name:<56} {value:>9.1f}")
    return out
