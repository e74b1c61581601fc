"""A full disk in the middle of load: -32001, nothing partial, and recovery.

Two ways to fill the disk:

- ``pagecap``: the daemon runs with ``TRADELOG_MAX_PAGE_COUNT`` a little above the
  file's size, so SQLite refuses to grow it (SQLITE_FULL, as on a full disk). Space
  returns by restarting without the cap.
- ``tmpfs``: the database lives on a 2 MiB tmpfs (``mount -t tmpfs``, root only) with
  a ballast file; the filesystem really fills up (ENOSPC on the file, its -wal and its
  -shm). Space returns by deleting the ballast, with the daemon still running.

While full, bots keep appending until each has been refused a few times. Checked:
every answer is a result or -32001 (nothing else, no traceback); the daemon stays up
and answers ``health``; every acknowledged event is stored once, no batch is partly
stored, no refused batch stored at all; ``verify`` passes. After space returns, the
refused batches are sent again and stored as new, new appends succeed, ``verify``
passes and every view equals a rebuild.

SQLite only: on PostgreSQL the disk that fills is the database server's, which this
script does not own (a full server disk reaches the daemon as PostgreSQL's ``disk_full``
error, answered -32001 like SQLite's; docs/POSTGRESQL.md). ``killloop`` and ``fuzz``
take ``--store postgresql://...``; this one does not.

    python -m bench.faults.diskfull [--mode pagecap|tmpfs|both] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.faults.common import (
    Bot,
    Daemon,
    EventMaker,
    Ledger,
    check_log,
    health,
    log_problems,
    machine,
    stored_events,
    verify,
    views_equal_rebuild,
)

__all__ = ["FullReport", "main", "run_pagecap", "run_tmpfs", "tmpfs_mounted"]

STORAGE_UNAVAILABLE = -32001


@dataclass
class FullReport:
    """One disk-full run; ``skipped`` says why it did not run, ``problems`` what failed."""

    mode: str
    skipped: str = ""
    acked_before_full: int = 0
    acked_while_full: int = 0
    refused_batches: int = 0
    refused_events: int = 0
    answer_codes: dict[str, int] = field(default_factory=dict)
    recovered_without_restart: bool | None = None
    resent_after_recovery: int = 0
    stored_total: int = 0
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.skipped:
            return f"diskfull {self.mode}: skipped ({self.skipped})"
        restart = {None: "", True: ", recovered without a restart",
                   False: ", needed a restart to recover"}[self.recovered_without_restart]
        return (f"diskfull {self.mode}: {len(self.problems)} problems; "
                f"{self.acked_while_full} events acknowledged while filling, "
                f"{self.refused_batches} batches ({self.refused_events} events) refused with "
                f"-32001, answers {self.answer_codes}{restart}; "
                f"{self.resent_after_recovery} refused batches stored when sent again; "
                f"{self.stored_total} events stored; {self.duration_s:.1f} s")


def _bots(ledger: Ledger, count: int, seed: int, tag: str) -> list[Bot]:
    return [Bot(EventMaker(f"fault/{tag}-{n}", f"acct-{n % 3}", random.Random(seed * 100 + n)),
                ledger, allowed=frozenset({STORAGE_UNAVAILABLE})) for n in range(count)]


async def _append(path: Path, bots: list[Bot], *, requests: int | None = None,
                  refusals: int | None = None, within_s: float = 120.0) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    timer = loop.call_later(within_s, stop.set)
    try:
        await asyncio.gather(*(bot.run(path, stop, max_requests=requests,
                                       stop_after_refusals=refusals) for bot in bots))
    finally:
        timer.cancel()


def _while_full(daemon: Daemon, ledger: Ledger, report: FullReport) -> None:
    """Checks while the disk is full: alive, answering, nothing partial or refused stored."""
    if not daemon.alive():
        code = daemon.stop()
        report.problems.append(f"the daemon died on a full disk (exit {code}): "
                               f"{daemon.tail(800)}")
        return
    status = health(daemon.socket)
    if status["status"] != "ok":
        report.problems.append(f"health while full: {status}")
    stored = stored_events(daemon.db)
    present = {(src, i) for _, src, i in stored}
    report.problems += check_log(stored, ledger)
    refused_stored = [b for b in ledger.refused if any(k in present for k in b)]
    if refused_stored:
        report.problems.append(f"{len(refused_stored)} batches answered -32001 were stored "
                               f"(e.g. {refused_stored[0][:3]})")
    report.problems += verify(daemon.db)


def _recovered(daemon: Daemon, ledger: Ledger, bots: list[Bot], report: FullReport,
               scratch: Path, requests: int = 10) -> None:
    """Checks once space is back: refused batches stored as new, new appends succeed."""
    refused_before = len(ledger.refused)
    stored_before = sum(b.resent_stored for b in bots)
    resent_before = sum(b.resent for b in bots)
    asyncio.run(_append(daemon.socket, bots, requests=requests))
    report.resent_after_recovery = sum(b.resent for b in bots) - resent_before
    if len(ledger.refused) != refused_before:
        report.problems.append(f"{len(ledger.refused) - refused_before} appends still refused "
                               "after space returned")
    if sum(b.resent_stored for b in bots) != stored_before:
        report.problems.append("a batch refused with -32001 turned out to be stored")
    left = sum(len(b.in_doubt) for b in bots)
    if left:
        report.problems.append(f"{left} refused batches not stored after space returned")
    report.problems += check_log(stored_events(daemon.db), ledger)
    report.problems += verify(daemon.db)
    report.problems += views_equal_rebuild(daemon.db, scratch)
    report.stored_total = len(stored_events(daemon.db))


def _finish(ledger: Ledger, report: FullReport, daemon: Daemon) -> None:
    report.problems = ledger.problems + report.problems + log_problems(daemon.log)
    report.answer_codes = {("result" if c == 0 else str(c)): n
                           for c, n in sorted(ledger.codes.items())}
    report.refused_batches = len(ledger.refused)
    report.refused_events = sum(len(b) for b in ledger.refused)


def _page_count(db: Path) -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])
    finally:
        conn.close()


def run_pagecap(workdir: Path, clients: int = 4, seed: int = 1, headroom_pages: int = 60,
                refusals: int = 8, say: Callable[[str], None] = print) -> FullReport:
    """The ``pagecap`` run (see the module docstring) in ``workdir``."""
    report = FullReport("pagecap")
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger()
    bots = _bots(ledger, clients, seed, "cap")
    db = workdir / "tradelog.db"
    daemon = Daemon(db, workdir / "tradelog.sock", workdir / "daemon.log")
    with daemon:
        daemon.start()
        asyncio.run(_append(daemon.socket, bots, requests=20))
        report.acked_before_full = len(ledger.acked)
        if daemon.stop() != 0:
            report.problems.append("SIGTERM before capping did not exit 0")
        cap = _page_count(db) + headroom_pages
        daemon.env = {"TRADELOG_MAX_PAGE_COUNT": str(cap)}
        daemon.start()
        say(f"pagecap: {report.acked_before_full} events stored, daemon capped at {cap} pages")
        asyncio.run(_append(daemon.socket, bots, refusals=refusals))
        report.acked_while_full = len(ledger.acked) - report.acked_before_full
        say(f"pagecap: filled; {len(ledger.refused)} batches refused")
        if not ledger.refused:
            report.problems.append("no append was refused: the cap was never reached")
        _while_full(daemon, ledger, report)
        if daemon.alive():
            code = daemon.stop()
            if code != 0:
                report.problems.append(f"SIGTERM while full: exit {code}")
        daemon.env = {}
        daemon.start()
        report.recovered_without_restart = False
        _recovered(daemon, ledger, bots, report, workdir / "copy")
        code = daemon.stop()
        if code != 0:
            report.problems.append(f"SIGTERM at the end: exit {code}")
    _finish(ledger, report, daemon)
    report.duration_s = round(time.monotonic() - started, 1)
    return report


@contextlib.contextmanager
def tmpfs_mounted(where: Path, size: str = "2m") -> Iterator[str]:
    """Mount a tmpfs of ``size`` at ``where`` for the block; yields "" when mounted, else
    why it could not be (not root, mount refused)."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield "not root"
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        yield f"mount failed: {done.stderr.decode(errors='replace').strip()}"
        return
    try:
        yield ""
    finally:
        subprocess.run(["umount", str(where)], capture_output=True, check=False)


def run_tmpfs(workdir: Path, clients: int = 4, seed: int = 2, ballast_kib: int = 1024,
              refusals: int = 4, say: Callable[[str], None] = print) -> FullReport:
    """The ``tmpfs`` run (see the module docstring); skipped when it cannot mount."""
    report = FullReport("tmpfs")
    started = time.monotonic()
    ledger = Ledger()
    bots = _bots(ledger, clients, seed, "fs")
    disk = workdir / "fs"
    with tmpfs_mounted(disk) as why_not:
        if why_not:
            report.skipped = why_not
            return report
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (ballast_kib * 1024))
        daemon = Daemon(disk / "tradelog.db", workdir / "tradelog.sock", workdir / "daemon.log")
        with daemon:
            daemon.start()
            asyncio.run(_append(daemon.socket, bots, refusals=refusals))
            report.acked_while_full = len(ledger.acked)
            say(f"tmpfs: filled; {len(ledger.refused)} batches refused, "
                f"{shutil.disk_usage(disk).free} bytes free")
            if not ledger.refused:
                report.problems.append("no append was refused: the filesystem never filled")
            _while_full(daemon, ledger, report)
            sizes = {p.name: p.stat().st_size for p in sorted(disk.iterdir())}
            report.notes.append(f"full at {len(stored_events(daemon.db))} events: {sizes}")
            ballast.unlink()
            report.notes.append(f"{shutil.disk_usage(disk).free} bytes free after deleting "
                                "the ballast")
            if daemon.alive():
                report.recovered_without_restart = True
                _recovered(daemon, ledger, bots, report, workdir / "copy", requests=5)
                if any("still refused" in p or "not stored after" in p
                       for p in report.problems):
                    report.recovered_without_restart = False
            else:
                report.recovered_without_restart = False
                daemon.start()
                _recovered(daemon, ledger, bots, report, workdir / "copy", requests=5)
            if daemon.alive():
                code = daemon.stop()
                if code != 0:
                    report.problems.append(f"SIGTERM at the end: exit {code}")
        _finish(ledger, report, daemon)
    report.duration_s = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults.diskfull",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="SQLite only: there is no --store. On PostgreSQL the disk that fills is the "
        "database server's, which this script does not own (a full server disk reaches "
        "the daemon as PostgreSQL's disk_full error, answered -32001).")
    parser.add_argument("--mode", choices=["pagecap", "tmpfs", "both"], default="both")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="work here (kept); default a temp dir")
    parser.add_argument("--json", type=Path, help="write the reports here as JSON")
    args = parser.parse_args(argv)
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="tradelog-diskfull-"))
    print(f"diskfull: mode {args.mode}, {args.clients} clients, in {workdir}; {machine()}",
          flush=True)
    reports = []
    say: Callable[[str], None] = lambda s: print(s, flush=True)  # noqa: E731
    if args.mode in ("pagecap", "both"):
        reports.append(run_pagecap(workdir / "pagecap", args.clients, args.seed, say=say))
    if args.mode in ("tmpfs", "both"):
        reports.append(run_tmpfs(workdir / "tmpfs", args.clients, args.seed + 1, say=say))
    for report in reports:
        print(report.summary())
        for note in report.notes:
            print(f"  note: {note}")
        for problem in report.problems:
            print(f"  PROBLEM: {problem}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=1))
    failed = any(r.problems for r in reports)
    if args.dir is None and not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
