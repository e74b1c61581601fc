"""Where one event's CPU goes on the ingest path: each stage timed alone, in process,
over the same events (µs per event, median of repeats). Not a figure of the issue; the
table that explains the ingest figures.

Each stage is timed in CPU seconds of this process (``time.process_time``), so other
work on the machine does not inflate it; the stores, which wait on the disk, also give
their wall time. The writer's stages: the fold as the writer runs it (an append's
events, already checked), the rows a flush builds for the events it held back, and
the per-commit cost of a transaction (BEGIN to COMMIT, ``synchronous=FULL``).
"""

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

FLUSH_EVENTS = 4096
"""Events a flush writes the rows of (the daemon's ``views_flush_events``)."""


def _per_event(fn: Callable[[], object], count: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) / count * 1e6)
    return median(samples)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from daemon.jsonread import dumps, loads
    from daemon.service.params import append_params
    from eventstore.record import AppendRequest, NewEvent
    from eventstore.recorder import Recorder, open_sqlite
    from eventstore.writes import append_in_transaction
    from projections import drain
    from projections.fold import apply
    from projections.state import State
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

    def store(group: int, n: int) -> tuple[float, float]:
        cpu, wall = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as directory:
                conn = open_sqlite(Path(directory) / "t.db", readonly=False,
                                   busy_timeout_s=5)
                started, cpu0 = time.perf_counter(), time.process_time()
                for start in range(0, n, group):
                    append_in_transaction(
                        conn, [AppendRequest([e]) for e in news[start:start + group]], None)
                cpu.append((time.process_time() - cpu0) / n * 1e6)
                wall.append((time.perf_counter() - started) / n * 1e6)
                conn.close()
        return median(cpu), median(wall)

    for group in (1, 32, 1000):
        cpu, wall = store(group, min(count, 500 * group))
        out[f"store, groups of {group} (SQL + chain + COMMIT, no views)"] = cpu
        out[f"  groups of {group}, wall time (with the waits on the disk)"] = wall

    async def stored_events() -> list[Any]:
        with tempfile.TemporaryDirectory() as directory:
            recorder = await Recorder.open(Path(directory) / "t.db")
            try:
                await recorder.append_groups([AppendRequest(news)])
                return await recorder.read(1, count)
            finally:
                await recorder.close()

    stored = asyncio.run(stored_events())

    def fold_checked() -> State:
        state = State()
        for event in stored:
            state = apply(state, event, True)
        return state

    out["fold every view, as the writer does (checked events)"] = _per_event(
        fold_checked, count, repeats)
    head, held = stored[:-FLUSH_EVENTS], stored[-FLUSH_EVENTS:]
    rows_cpu = []
    for _ in range(repeats):
        state = State()
        for event in head:
            state = apply(state, event, True)
        drain.drain(state)
        for event in held:
            state = apply(state, event, True)
        started = time.process_time()
        drain.drain(state)
        rows_cpu.append((time.process_time() - started) / len(held) * 1e6)
    out[f"build the rows a flush writes ({FLUSH_EVENTS:,} events held back)"] = median(rows_cpu)
    print(f"{'stage':<60} {'µs/event':>9}")
    for name, value in out.items():
        print(f"{name:<60} {value:>9.1f}")
    return out
