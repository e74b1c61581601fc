"""(1) Durable ingest over the real socket, projections on, vs the sqlite3 ceiling;
(2) answer latency at a fixed offered load; peak daemon RSS during both (6a)."""

from __future__ import annotations

import argparse
from typing import Any

from bench.common import (
    Daemon,
    closed_loop,
    fsync_probe,
    median,
    open_loop,
    percentile,
    sqlite_ceiling,
    temp_dir,
)
from bench.events import append_line, events

__all__ = ["latency", "run"]


def _lines(wires: list[dict[str, Any]], clients: int, per_line: int) -> list[list[bytes]]:
    per_client: list[list[bytes]] = [[] for _ in range(clients)]
    for rid, start in enumerate(range(0, len(wires), per_line), 1):
        per_client[rid % clients].append(append_line(rid, wires[start:start + per_line]))
    return per_client


def writer_env(writer: str) -> dict[str, str]:
    """The daemon's environment for ``--writer process`` (the default) or ``thread``."""
    return {"TRADELOG_WRITER_PROCESS": "true" if writer == "process" else "false"}


def _one(wires: list[dict[str, Any]], clients: int, per_line: int, writer: str
         ) -> dict[str, float]:
    with temp_dir() as directory, \
            Daemon(directory / "t.db", directory, env=writer_env(writer)) as daemon:
        lines = _lines(wires, clients, per_line)
        own0, child0 = daemon.cpu_split()
        stats = closed_loop(daemon.socket, lines, per_line)
        own1, child1 = daemon.cpu_split()
        if stats.errors:
            raise RuntimeError(f"{stats.errors} error answers: {daemon.log_tail()}")
        rss = daemon.hwm_rss()
    return {"rate": stats.rate, "gen_cpu": stats.gen_cpu_s / stats.wall_s,
            "daemon_cpu": (own1 - own0) / stats.wall_s,
            "writer_cpu": (child1 - child0) / stats.wall_s, "rss": rss}


def run(args: argparse.Namespace) -> dict[str, Any]:
    repeats = args.repeats
    quick = args.quick
    plans = [  # (clients, events per append, events per run)
        (1, 1, 2_000 if quick else 5_000),
        (8, 1, 8_000 if quick else 20_000),
        (64, 1, 20_000 if quick else 60_000),
        (256, 1, 20_000 if quick else 60_000),
        (8, 100, 50_000 if quick else 200_000),
    ]
    if args.only:
        plans = [p for p in plans if f"{p[0]}x{p[1]}" in args.only.split(",")]
    biggest = max(n for _, _, n in plans)
    ceiling_wires = events(biggest, seed=1, prefix="c")
    ceilings = [sqlite_ceiling(ceiling_wires) for _ in range(repeats)]
    ceiling = median(ceilings)
    print(f"ceiling: sqlite3 executemany x1000, synchronous=FULL, same rows and DDL: "
          f"{ceiling:,.0f} events/s (median of {repeats})", flush=True)
    fsync_p50, fsync_p99 = fsync_probe()
    print(f"fsync of 32 KiB on this disk now: p50 {fsync_p50:.2f} ms, p99 {fsync_p99:.2f} ms",
          flush=True)
    results: dict[str, Any] = {"ceiling": ceiling, "fsync_p50_ms": fsync_p50,
                               "fsync_p99_ms": fsync_p99, "runs": []}
    writers = ["process", "thread"] if args.writer == "both" else [args.writer]
    print(f"{'writer':>7} {'clients':>7} {'ev/append':>9} {'events/s':>10} {'ratio':>6} "
          f"{'gen CPU':>8} {'daemon CPU':>10} {'writer CPU':>10} {'peak RSS':>9} "
          f"{'daemon us/ev':>12} {'writer us/ev':>12}")
    for clients, per_line, count in plans:
        for writer in writers:
            samples = []
            for repeat in range(repeats):
                wires = events(count, seed=100 + repeat, prefix=f"r{repeat}")
                samples.append(_one(wires, clients, per_line, writer))
            rate = median([s["rate"] for s in samples])
            row = {"writer": writer, "clients": clients, "per_append": per_line,
                   "events": count, "rate": rate, "ratio": rate / ceiling,
                   "gen_cpu": median([s["gen_cpu"] for s in samples]),
                   "daemon_cpu": median([s["daemon_cpu"] for s in samples]),
                   "writer_cpu": median([s["writer_cpu"] for s in samples]),
                   "rss": max(s["rss"] for s in samples)}
            results["runs"].append(row)
            print(f"{writer:>7} {clients:>7} {per_line:>9} {rate:>10,.0f} "
                  f"{rate / ceiling:>6.2f} {row['gen_cpu']:>7.0%} {row['daemon_cpu']:>9.0%} "
                  f"{row['writer_cpu']:>9.0%} {row['rss'] / 2**20:>7.1f}MB "
                  f"{row['daemon_cpu'] / rate * 1e6:>12.1f} "
                  f"{row['writer_cpu'] / rate * 1e6:>12.1f}", flush=True)
    return results


def latency(args: argparse.Namespace) -> dict[str, Any]:
    """Answer latency at ``--rate`` events/s offered by ``--clients`` clients (open loop)."""
    import sqlite3
    import time

    from eventstore import ddl

    clients, rate = args.clients, args.rate
    seconds = 4 if args.quick else args.seconds
    count = int(rate * seconds)
    out: dict[str, Any] = {"runs": []}
    # Baseline: one durable sqlite3 transaction (INSERT one row + COMMIT, synchronous=FULL)
    # per event, back to back: the fsync floor under every durable answer.
    with temp_dir() as directory:
        conn = sqlite3.connect(directory / "b.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        for statement in ddl.MIGRATIONS[0]:
            conn.execute(statement)
        sql = f"INSERT INTO events ({ddl.EVENT_COLUMNS}) VALUES ({', '.join('?' * 13)})"
        base = []
        for seq in range(1, 2001):
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, (seq, "s", str(seq), "mark", "t", "a", "1.0", None, "{}", "t", 1,
                               "{}", "h"))
            conn.execute("COMMIT")
            base.append(time.perf_counter() - t0)
        conn.close()
    base.sort()
    out["baseline"] = {q: percentile(base, f) * 1000 for q, f in
                       (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))}
    print(f"baseline: one sqlite3 INSERT+COMMIT (synchronous=FULL): p50 "
          f"{out['baseline']['p50']:.3f} ms, p99 {out['baseline']['p99']:.3f} ms, p999 "
          f"{out['baseline']['p999']:.3f} ms", flush=True)
    for repeat in range(args.repeats):
        wires = events(count, seed=200 + repeat, prefix=f"l{repeat}")
        with temp_dir() as directory, \
                Daemon(directory / "t.db", directory, env=writer_env(args.writer)) as daemon:
            lines = _lines(wires, clients, 1)
            cpu0 = daemon.cpu_s()
            stats = open_loop(daemon.socket, lines, rate / clients)
            daemon_cpu = (daemon.cpu_s() - cpu0) / stats.wall_s
            rss = daemon.hwm_rss()
        lat = sorted(stats.latencies)
        row = {"p50": percentile(lat, 0.5) * 1000, "p99": percentile(lat, 0.99) * 1000,
               "p999": percentile(lat, 0.999) * 1000, "max": lat[-1] * 1000,
               "achieved": stats.rate, "gen_cpu": stats.gen_cpu_s / stats.wall_s,
               "daemon_cpu": daemon_cpu, "rss": rss, "errors": stats.errors}
        out["runs"].append(row)
        print(f"run {repeat + 1}: {rate:,} ev/s offered by {clients} clients, achieved "
              f"{row['achieved']:,.0f}: p50 {row['p50']:.2f} ms, p99 {row['p99']:.2f} ms, "
              f"p999 {row['p999']:.2f} ms, max {row['max']:.1f} ms; gen CPU "
              f"{row['gen_cpu']:.0%}, daemon CPU {row['daemon_cpu']:.0%}, peak RSS "
              f"{rss / 2**20:.1f} MB, errors {stats.errors}", flush=True)
    for key in ("p50", "p99", "p999"):
        out[key] = median([r[key] for r in out["runs"]])
    print(f"median of {args.repeats}: p50 {out['p50']:.2f} ms, p99 {out['p99']:.2f} ms, "
          f"p999 {out['p999']:.2f} ms (p99 / baseline p99 = "
          f"{out['p99'] / out['baseline']['p99']:.1f}x)")
    return out
