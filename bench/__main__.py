"""``python -m bench <name> [--quick] [--repeats N]``: see docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.common import machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", choices=["ingest", "latency", "log", "rebuild", "restart",
                                         "asof", "query", "peer", "breakdown", "rooms", "pg-daemon",
                                         "all"])
    parser.add_argument("--quick", action="store_true", help="smaller runs, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", help="ingest: plans as CLIENTSxEVENTS, e.g. 64x1,8x100; "
                        "pg-daemon: loads, daemons3 or both")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=int, default=5000, help="latency: offered events/s")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="size of the big log for rebuild/restart/asof/query")
    parser.add_argument("--writer", choices=["process", "thread", "both"], default="process",
                        help="ingest/latency: the daemon's writer in its own process (the "
                        "default), on a thread of the daemon (writer_process=false), or "
                        "both, side by side (ingest)")
    parser.add_argument("--dsn", default=None,
                        help="pg-daemon: the PostgreSQL server (default $TRADELOG_BENCH_PG "
                        "or postgresql://postgres@127.0.0.1:5432/test)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    print(f"machine: {machine()}", flush=True)
    from bench import biglog, breakdown, ingest, peer, pg_daemon, rooms

    jobs: dict[str, Any] = {
        "ingest": ingest.run, "latency": ingest.latency, "log": biglog.build_only,
        "rebuild": biglog.rebuild, "restart": biglog.restart, "asof": biglog.as_of,
        "query": biglog.query, "peer": peer.run, "breakdown": breakdown.run,
        "rooms": rooms.run, "pg-daemon": pg_daemon.run,
    }
    names = ([n for n in jobs if n != "pg-daemon"] if args.name == "all" else [args.name])
    results = {}
    for name in names:
        print(f"\n== {name}", flush=True)
        results[name] = jobs[name](args)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
