"""kill -9 under load, again and again: nothing acknowledged is ever lost.

Each cycle: several bots append over their own connections (pipelined, mixed event
types, batches of 1-20), the daemon gets SIGKILL at a random moment, and is restarted.
Then: every acknowledged event is stored exactly once, seqs are 1..N, no batch is
partly stored, ``tradelog verify`` passes, ``health`` shows the views caught up, and
every view equals a rebuild of a copy of the log. Batches left unanswered by the kill
are sent again, unchanged, in the next cycle, and must come back all duplicates or
all new.

The log is a SQLite file in the work directory, or with ``--store postgresql://...`` a
schema of its own made in that database for the run (and a second one the copies are
rebuilt in: ``tradelog migrate`` then ``rebuild --store``), both dropped at the end
(the log's kept when a check failed).

    python -m bench.faults.killloop --cycles 100 [--clients 4] [--seed 1] [--dir DIR]
        [--store postgresql://USER@HOST/DB]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.faults.common import (
    Bot,
    Daemon,
    EventMaker,
    Ledger,
    PgSchema,
    RunStore,
    check_log,
    health,
    log_problems,
    machine,
    run_store,
    stored_events,
    verify,
    views_equal_rebuild,
)

__all__ = ["Cycle", "KillReport", "main", "run"]


@dataclass
class Cycle:
    """One kill: when, what was acknowledged, what was in doubt, what the checks found."""

    number: int
    kill_after_s: float
    exit_code: int
    acked_events: int
    in_doubt_batches: int
    stored_total: int
    restart_s: float
    check_s: float
    problems: list[str]


@dataclass
class KillReport:
    """A whole run; ``problems`` is empty when every cycle passed."""

    cycles: list[Cycle] = field(default_factory=list)
    resent_batches: int = 0
    resent_found_stored: int = 0
    duration_s: float = 0.0
    final_exit_code: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return self.cycles[-1].stored_total if self.cycles else 0

    def summary(self) -> str:
        acked = sum(c.acked_events for c in self.cycles)
        doubt = sum(c.in_doubt_batches for c in self.cycles)
        restart = sorted(c.restart_s for c in self.cycles)
        median = restart[len(restart) // 2] if restart else 0.0
        return (f"killloop: {len(self.cycles)} cycles, {len(self.problems)} problems; "
                f"{self.events} events stored, {acked} acknowledged across kills; "
                f"{doubt} batches in doubt at a kill, sent again: {self.resent_batches} "
                f"answered ({self.resent_found_stored} had been stored, the rest had not); "
                f"restart to ready median {median:.2f} s, max {max(restart, default=0):.2f} s; "
                f"{self.duration_s:.0f} s in all")


async def _load(daemon: Daemon, bots: list[Bot], kill_after_s: float) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(bot.run(daemon.socket, stop)) for bot in bots]
    await asyncio.sleep(kill_after_s)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGKILL)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)


async def _resend(daemon: Daemon, bots: list[Bot]) -> None:
    stop = asyncio.Event()
    stop.set()  # send only what is in doubt
    await asyncio.gather(*(bot.run(daemon.socket, stop) for bot in bots))


def _checks(daemon: Daemon, ledger: Ledger, scratch: Path | PgSchema,
            views: bool) -> list[str]:
    problems = check_log(stored_events(daemon.target), ledger)
    problems += verify(daemon.target)
    status = health(daemon.socket)
    stored = len(stored_events(daemon.target))
    if (stored, stored) != (status["last_seq"], status["projection_seq"]):
        problems.append(f"health after restart {status}, but {stored} events stored")
    if views:
        problems += views_equal_rebuild(daemon.target, scratch)
    return problems


def run(cycles: int, workdir: Path, clients: int = 4, seed: int = 1, max_load_s: float = 0.5,
        views_every: int = 1, most: int = 10,
        say: Callable[[str], None] = print, store: str | None = None) -> KillReport:
    """Run ``cycles`` kill -9 cycles on a fresh log: a SQLite file in ``workdir``, or with
    ``store`` (a ``postgresql://`` URL naming a database) a schema of its own there,
    dropped at the end unless a check failed (``RunStore``).

    Raises:
        ValueError: ``store`` is not a PostgreSQL URL.
        psycopg.Error: the schemas cannot be made.
    """
    report = KillReport()
    with run_store(workdir, store, report, say, "killloop") as place:
        _run(cycles, workdir, place, report, clients, seed, max_load_s, views_every, most,
             say)
    return report


def _run(cycles: int, workdir: Path, place: RunStore, report: KillReport, clients: int,
         seed: int, max_load_s: float, views_every: int, most: int,
         say: Callable[[str], None]) -> None:
    rng = random.Random(seed)
    ledger = Ledger()
    bots = [Bot(EventMaker(f"fault/bot-{n}", f"acct-{n % 3}", random.Random(seed * 100 + n)),
                ledger, most=most) for n in range(clients)]
    daemon = place.daemon(workdir / "tradelog.sock", workdir / "daemon.log")
    started = time.monotonic()
    with daemon:
        daemon.start()
        for number in range(1, cycles + 1):
            kill_after = rng.uniform(0.05, max_load_s)
            acked_before = len(ledger.acked)
            problems_before = len(ledger.problems)
            log_mark = daemon.log.stat().st_size
            asyncio.run(_load(daemon, bots, kill_after))
            code = daemon.stop()
            try:
                restart_s = daemon.start()
            except (RuntimeError, TimeoutError) as exc:
                report.problems.append(f"cycle {number}: the daemon did not restart: {exc}")
                break
            checked = time.monotonic()
            problems = ledger.problems[problems_before:]
            if code != -signal.SIGKILL:
                problems.append(f"daemon exited {code} before the kill")
            problems += _checks(daemon, ledger, place.scratch,
                                views=number % views_every == 0 or number == cycles)
            problems += log_problems(daemon.log, log_mark)
            cycle = Cycle(number, round(kill_after, 3), code, len(ledger.acked) - acked_before,
                          sum(len(b.in_doubt) for b in bots),
                          len(stored_events(daemon.target)),
                          round(restart_s, 3), round(time.monotonic() - checked, 3), problems)
            report.cycles.append(cycle)
            report.problems += [f"cycle {number}: {p}" for p in problems]
            say(f"cycle {number}/{cycles}: killed after {kill_after:.2f} s, "
                f"{cycle.acked_events} acked, {cycle.in_doubt_batches} batches in doubt, "
                f"{cycle.stored_total} stored, restart {restart_s:.2f} s, "
                f"checks {cycle.check_s:.1f} s, "
                f"{'ok' if not problems else 'PROBLEMS: ' + '; '.join(problems)}")
        if not daemon.alive():
            report.duration_s = round(time.monotonic() - started, 1)
            return
        problems_before = len(ledger.problems)
        asyncio.run(_resend(daemon, bots))
        report.resent_batches = sum(b.resent for b in bots)
        report.resent_found_stored = sum(b.resent_stored for b in bots)
        report.problems += ledger.problems[problems_before:]
        report.problems += [f"after the last resend: {p}" for p in
                            check_log(stored_events(daemon.target), ledger)]
        left = sum(len(b.in_doubt) for b in bots)
        if left:
            report.problems.append(f"{left} batches still unanswered after the last resend")
        report.final_exit_code = daemon.stop()
        if report.final_exit_code != 0:
            report.problems.append(f"SIGTERM at the end: exit {report.final_exit_code}")
    report.duration_s = round(time.monotonic() - started, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults.killloop",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=10, help="events per append: 1..N")
    parser.add_argument("--max-load-s", type=float, default=0.5,
                        help="the kill comes uniformly within this many seconds of load")
    parser.add_argument("--views-every", type=int, default=1,
                        help="compare the views with a rebuild every N cycles (and the last)")
    parser.add_argument("--dir", type=Path, help="work here (kept); default a temp dir")
    parser.add_argument("--store", metavar="URL",
                        help="run the daemon on this PostgreSQL database "
                        "(postgresql://USER@HOST[:PORT]/DB), in a schema of its own made "
                        "for the run and dropped after (kept when a check fails); "
                        "default: a SQLite file in the work directory")
    parser.add_argument("--json", type=Path, help="write the report here as JSON")
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="tradelog-killloop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    where = "a SQLite file" if args.store is None else "PostgreSQL"
    print(f"killloop: {args.cycles} cycles, {args.clients} clients, seed {args.seed}, "
          f"on {where}, in {workdir}; {machine()}", flush=True)
    try:
        report = run(args.cycles, workdir, args.clients, args.seed, args.max_load_s,
                     args.views_every, args.batch, say=lambda s: print(s, flush=True),
                     store=args.store)
    except ValueError as exc:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        parser.error(str(exc))
    print(report.summary())
    for problem in report.problems:
        print(f"  PROBLEM: {problem}")
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=1))
    if args.dir is None and not report.problems:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
