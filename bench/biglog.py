"""The big-log benchmarks: (3) rebuild, (4) restart to READY, (5) ``as_of``, (6b) RSS at
1M events with 10k open positions, (7) ``query`` latency.

The log is generated once with the recorder's own code (validation, canonical bytes,
hash chain, ``Recorder.append_groups`` in groups of 20k, no socket) and cached under
``$TRADELOG_BENCH_CACHE`` (default /tmp/tradelog-bench), keyed by its size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import CACHE, Daemon, call, connect, median, percentile
from bench.events import EventStream

__all__ = ["build_only", "ensure_log", "query", "rebuild", "restart"]

FORMAT = 1  # bump when the generator changes, so old cached files are not reused


def log_path(count: int) -> Path:
    return CACHE / f"log-{count}-v{FORMAT}.db"


async def _build(path: Path, count: int) -> None:
    from eventstore.record import AppendRequest, NewEvent
    from eventstore.recorder import Recorder
    from schemas import parse_events

    recorder = await Recorder.open(path)
    try:
        stream = EventStream(seed=7, prefix="e")
        done = 0
        started = time.perf_counter()
        while done < count:
            size = min(20_000, count - done)
            wires = [next(stream) for _ in range(size)]
            news = [NewEvent.from_model(m) for m in parse_events(wires)]
            await recorder.append_groups([AppendRequest(news)])
            done += size
            rate = done / (time.perf_counter() - started)
            print(f"\r  generating the log: {done:,}/{count:,} ({rate:,.0f}/s)", end="",
                  file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        await recorder.close()


def ensure_log(count: int) -> Path:
    """The cached log of ``count`` events (built on first use; views not built)."""
    path = log_path(count)
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        for leftover in CACHE.glob(partial.name + "*"):
            leftover.unlink()
        asyncio.run(_build(partial, count))
        for suffix in ("-wal", "-shm"):
            Path(str(partial) + suffix).unlink(missing_ok=True)
        partial.rename(path)
    return path


def _checkpoint(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT last_seq FROM projection_checkpoint").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def _rebuild_once(path: Path) -> tuple[float, int]:
    from eventstore.recorder import Recorder
    from projections.startup import rebuild_views

    async def go() -> tuple[float, int]:
        recorder = await Recorder.open(path)
        try:
            started = time.perf_counter()
            _, folded = await rebuild_views(recorder)
            return time.perf_counter() - started, folded
        finally:
            await recorder.close()

    return asyncio.run(go())


def ensure_views(count: int) -> Path:
    path = ensure_log(count)
    if _checkpoint(path) < count:
        print("  building the views (a rebuild)...", file=sys.stderr, flush=True)
        elapsed, folded = _rebuild_once(path)
        print(f"  rebuilt {folded:,} events in {elapsed:.1f} s", file=sys.stderr)
    return path


def build_only(args: argparse.Namespace) -> dict[str, Any]:
    path = ensure_views(args.events)
    print(f"log: {path} ({path.stat().st_size / 2**20:,.0f} MB)")
    return {"path": str(path)}


def _decode_rate(path: Path) -> float:
    """Baseline for a rebuild: read every row in seq order and JSON-decode its data."""
    from eventstore import ddl

    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    started = time.perf_counter()
    cursor = conn.execute(f"SELECT {ddl.EVENT_COLUMNS} FROM events ORDER BY seq")
    count = 0
    loads = json.loads
    while rows := cursor.fetchmany(4096):
        for row in rows:
            loads(row[8])
            loads(row[11])
        count += len(rows)
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def rebuild(args: argparse.Namespace) -> dict[str, Any]:
    path = ensure_log(args.events)
    runs = []
    for _ in range(args.repeats):
        base = _decode_rate(path)
        elapsed, folded = _rebuild_once(path)
        runs.append((folded / elapsed, base))
        print(f"  rebuild {folded:,} events in {elapsed:.1f} s: {folded / elapsed:,.0f} "
              f"events/s; read+decode baseline {base:,.0f} events/s", flush=True)
    rate, base = median([r[0] for r in runs]), median([r[1] for r in runs])
    print(f"rebuild: {rate:,.0f} events/s, baseline (read + json.loads) {base:,.0f} events/s,"
          f" ratio {rate / base:.2f} (median of {len(runs)})")
    return {"rate": rate, "baseline": base, "ratio": rate / base}


def _open_positions(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM positions").fetchone()[0])
    finally:
        conn.close()


def restart(args: argparse.Namespace) -> dict[str, Any]:
    path = ensure_views(args.events)
    floor = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import daemon.server, daemon.cli"], check=True)
        floor.append(time.perf_counter() - started)
    ready, rss_ready, rss_after, pss_ready, pss_after = [], [], [], [], []
    for _ in range(args.repeats):
        with Daemon(path) as daemon:
            ready.append(daemon.ready_s)
            rss_ready.append(daemon.sample_rss())
            pss_ready.append(daemon.pss())
            sock = connect(daemon.socket)
            for view in ("positions", "balances", "daily"):
                call(sock, {"jsonrpc": "2.0", "id": 1, "method": "query",
                            "params": {"view": view}})
            sock.close()
            rss_after.append(daemon.hwm_rss())
            pss_after.append(daemon.pss())
    base = median(floor)
    out = {"ready_s": median(ready), "floor_s": base, "rss_ready": median(rss_ready),
           "rss_peak": max(rss_after), "pss_ready": median(pss_ready),
           "pss_after": max(pss_after), "open_positions": _open_positions(path)}
    print(f"restart to READY with {args.events:,} events and {out['open_positions']:,} open "
          f"positions: {out['ready_s']:.2f} s (median of {len(ready)}); baseline "
          f"(interpreter + imports only) {base:.2f} s, ratio {out['ready_s'] / base:.1f}x")
    print(f"daemon RSS at READY {out['rss_ready'] / 2**20:.0f} MB; peak after querying "
          f"positions/balances/daily {out['rss_peak'] / 2**20:.0f} MB; PSS of the daemon and "
          f"its writer at READY {out['pss_ready'] / 2**20:.0f} MB, after the queries "
          f"{out['pss_after'] / 2**20:.0f} MB")
    return out


def _timed(sock: Any, params: dict[str, Any], n: int) -> tuple[list[float], int]:
    times = []
    rows = 0
    for i in range(n):
        started = time.perf_counter()
        answer = call(sock, {"jsonrpc": "2.0", "id": i, "method": "query", "params": params})
        times.append(time.perf_counter() - started)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        rows = len(answer["result"]["rows"])
    return sorted(times), rows


def as_of(args: argparse.Namespace) -> dict[str, Any]:
    path = ensure_views(args.events)
    n = args.events
    out: dict[str, Any] = {}
    with Daemon(path) as daemon:
        sock = connect(daemon.socket)
        base, _ = _timed(sock, {"view": "positions", "account": "acct-07"}, 20)
        out["baseline_ms"] = median(base) * 1000
        for name, seq in (("start", 1_000), ("middle", n // 2), ("end", n)):
            times, rows = _timed(sock, {"view": "positions", "account": "acct-07",
                                        "as_of": seq}, 1 if args.quick else 3)
            out[name] = {"seq": seq, "first_ms": times[0] * 1000 if len(times) == 1 else
                         None, "median_ms": median(times) * 1000, "max_ms": times[-1] * 1000,
                         "rows": rows}
            print(f"as_of {name} (seq {seq:,}): median {median(times) * 1000:,.0f} ms, max "
                  f"{times[-1] * 1000:,.0f} ms ({rows} rows); now-query baseline "
                  f"{out['baseline_ms']:.1f} ms", flush=True)
        sock.close()
        out["rss_peak"] = daemon.hwm_rss()
        out["pss_after"] = daemon.pss()
    print(f"daemon peak RSS during as_of: {out['rss_peak'] / 2**20:.0f} MB; PSS of the daemon "
          f"and its writer after: {out['pss_after'] / 2**20:.0f} MB")
    return out


def query(args: argparse.Namespace) -> dict[str, Any]:
    from projections.query import ViewQuery, build_sql

    path = ensure_views(args.events)
    count = 100 if args.quick else 300
    cases = {
        "positions (one account)": {"view": "positions", "account": "acct-07"},
        "trades (last 100)": {"view": "trades", "limit": 100},
        "daily (all accounts)": {"view": "daily"},
    }
    out: dict[str, Any] = {}
    raw = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    with Daemon(path) as daemon:
        sock = connect(daemon.socket)
        for name, params in cases.items():
            times, rows = _timed(sock, params, count)
            sql, sql_params = build_sql(ViewQuery(**params))
            base = []
            for _ in range(count):
                started = time.perf_counter()
                json.dumps(list(raw.execute(sql, sql_params)))
                base.append(time.perf_counter() - started)
            base.sort()
            row = {"rows": rows, "p50_ms": percentile(times, 0.5) * 1000,
                   "p99_ms": percentile(times, 0.99) * 1000,
                   "base_p50_ms": percentile(base, 0.5) * 1000,
                   "base_p99_ms": percentile(base, 0.99) * 1000}
            out[name] = row
            print(f"{name}: {rows} rows, p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} "
                  f"ms; baseline (same SQL, raw sqlite3 + json.dumps in-process) p50 "
                  f"{row['base_p50_ms']:.2f} ms, p99 {row['base_p99_ms']:.2f} ms", flush=True)
        sock.close()
    raw.close()
    return out
