"""PostgreSQL failover under load: no acknowledged event lost (docs/POSTGRESQL.md, FAULTS.md).

    python -m bench.faults pg_failover [--seconds 8] [--writers 2] [--keep DIR]
    python -m bench.faults pg_failover --daemons [--clients 2]   (pg_failover_daemons.py)

Needs PostgreSQL's server binaries (``$PG_BIN``, default /usr/lib/postgresql/15/bin).

Makes two local clusters with ``initdb`` (as the ``postgres`` user when run as root): a
primary, and a hot standby cloned from it with ``pg_basebackup -R``, which the primary
names in ``synchronous_standby_names`` (``synchronous_commit = on``: a commit returns once
the standby has flushed it). Writers, each an OS process with its own
``eventstore.postgres.PgRecorder`` (what each daemon's writer holds), append batches
through the multi-host URI ``host=primary,standby target_session_attrs=read-write``
and log every acknowledged event (id and seq) as soon as its answer comes. Midway the
primary is killed (``pg_ctl stop -m immediate``, a crash) and the standby promoted
(``pg_ctl promote``); the writers find it through the URI and go on, re-sending a batch
whose answer never came (the store's idempotency settles it). At the end, on the new
primary: every acknowledged event is stored once at the seq it was answered with, seq is
gapless, and ``verify`` passes. Prints one JSON line; exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool, as the ``postgres`` user when we are root (initdb refuses
    root)."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """One PostgreSQL cluster in ``path`` on ``port`` (127.0.0.1, sockets in ``path``)."""

    def __init__(self, path: Path, port: int) -> None:
        self.path, self.port = path, port

    def conf(self, **settings: str) -> None:
        with (self.path / "postgresql.auto.conf").open("a") as out:
            for key, value in settings.items():
                out.write(f"{key} = '{value}'\n")

    def pg_ctl(self, *args: str) -> None:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.path), "-l",
                      str(self.path / "server.log"), "-w", "-t", "60", *args])

    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def make_clusters(base: Path) -> tuple[Cluster, Cluster]:
    """A running primary and a running synchronous hot standby of it."""
    primary = Cluster(base / "primary", _free_port())
    standby = Cluster(base / "standby", _free_port())
    _as_postgres([str(PG_BIN / "initdb"), "-D", str(primary.path), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--locale=C"])
    common = {"listen_addresses": "127.0.0.1", "wal_level": "replica",
              "max_wal_senders": "5", "hot_standby": "on", "fsync": "on"}
    primary.conf(port=str(primary.port), unix_socket_directories=str(primary.path),
                 synchronous_standby_names="*", synchronous_commit="on", **common)
    primary.pg_ctl("start")
    _as_postgres([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                  "-U", "postgres", "-D", str(standby.path), "-R", "-X", "stream"])
    # Once promoted it runs alone: waiting for a synchronous standby it does not have
    # would hold every commit (with a third node, name it here instead).
    standby.conf(port=str(standby.port), unix_socket_directories=str(standby.path),
                 synchronous_standby_names="")
    standby.pg_ctl("start")
    return primary, standby


# ---------------------------------------------------------------- a writer process


async def _writer(url: str, name: str, stop: Path, log_path: Path) -> None:
    from bench.pg_driver import make_events
    from eventstore.errors import StorageCorruptError, StorageUnavailableError
    from eventstore.postgres.recorder import PgRecorder

    recorder = None
    events = make_events(30_000, name)
    batches = [events[i:i + 8] for i in range(0, len(events), 8)]
    with log_path.open("a") as log:
        for batch in batches:
            if stop.exists():
                break
            while True:  # the same batch until it is answered (a re-send settles doubt)
                try:
                    if recorder is None:
                        recorder = await PgRecorder.open(url, busy_timeout_s=2.0)
                    outcome = await recorder.append(batch)
                    break
                except (StorageUnavailableError, StorageCorruptError) as exc:
                    log.write(json.dumps({"retry": type(exc).__name__,
                                          "at": time.time()}) + "\n")
                    if recorder is not None:
                        await recorder.close()
                        recorder = None
                    await asyncio.sleep(0.2)
            for result in outcome.results:
                log.write(json.dumps({"id": result.event_id, "source": result.source,
                                      "seq": result.seq, "at": time.time()}) + "\n")
            log.flush()
    if recorder is not None:
        await recorder.close()


# ---------------------------------------------------------------- the run


def _wait_for_acks(logs: list[Path], count: int, timeout_s: float, since: float = 0.0
                   ) -> None:
    """Wait until every writer has logged ``count`` acknowledgements after ``since``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = 0
        for path in logs:
            lines = path.read_text().splitlines() if path.exists() else []
            acks = [json.loads(line) for line in lines[-count * 2:]]
            if sum(1 for a in acks if "seq" in a and a["at"] > since) >= count:
                done += 1
        if done == len(logs):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the writers did not each acknowledge {count} events in {timeout_s} s")


def _acknowledged(logs: list[Path]) -> tuple[dict[tuple[str, str], int], int, list[float]]:
    acked: dict[tuple[str, str], int] = {}
    retries = 0
    times: list[float] = []
    for path in logs:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if "retry" in entry:
                retries += 1
                continue
            acked[(entry["source"], entry["id"])] = entry["seq"]
            times.append(entry["at"])
    return acked, retries, sorted(times)


def _longest_pause(times: list[float], start: float) -> float | None:
    """The longest time between two acknowledgements (any writer) from ``start`` on: how
    long the failover left the writers without answers."""
    kept = [t for t in times if t >= start]
    if len(kept) < 2:
        return None
    return round(max(b - a for a, b in itertools.pairwise(kept)), 2)


async def _check(url: str, acked: dict[tuple[str, str], int]) -> dict[str, Any]:
    from eventstore.postgres.recorder import PgRecorder

    recorder = await PgRecorder.open(url, readonly=True)
    try:
        stored: dict[tuple[str, str], int] = {}
        seqs: list[int] = []
        position = 1
        while page := await recorder.read(position, 5000):
            for event in page:
                stored[(event.source, event.event_id)] = event.seq
                seqs.append(event.seq)
            position = page[-1].seq + 1
        report = await recorder.verify()
    finally:
        await recorder.close()
    lost = [key for key, seq in acked.items() if stored.get(key) != seq]
    return {"stored": len(seqs), "gapless": seqs == list(range(1, len(seqs) + 1)),
            "acknowledged_lost_or_moved": len(lost), "verify_ok": report.ok,
            "verify_reason": report.reason}


def failover_pair() -> tuple[Path, Cluster, Cluster, str]:
    """A folder of its own (the postgres user's, when run as root) holding a running
    primary and its synchronous standby, and the multi-host URI that finds whichever of
    them takes writes."""
    base = Path(tempfile.mkdtemp(prefix="tradelog-failover-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary, standby = make_clusters(base)
    url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
           "/postgres?target_session_attrs=read-write&connect_timeout=2")
    return base, primary, standby, url


def run(seconds: float, writers: int, keep: Path | None) -> dict[str, Any]:
    base, primary, standby, url = failover_pair()
    logs = [base / f"writer-{n}.jsonl" for n in range(writers)]
    stop = base / "stop"
    procs = [subprocess.Popen([sys.executable, "-m", "bench.faults.pg_failover", "--writer",
                               url, f"w{n}", str(stop), str(logs[n])])
             for n in range(writers)]
    try:
        _wait_for_acks(logs, 50, 120)  # every writer appending
        time.sleep(seconds / 2)
        killed_at = time.time()
        primary.pg_ctl("stop", "-m", "immediate")
        standby.pg_ctl("promote")
        promoted_at = time.time()
        _wait_for_acks(logs, 50, 120, since=killed_at)  # every writer on the new primary
        time.sleep(seconds / 2)
        stop.touch()
        for proc in procs:
            proc.wait(timeout=120)
        acked, retries, times = _acknowledged(logs)
        after = [t for t in times if t > killed_at]
        result = {
            "writers": writers, "seconds": seconds, "acknowledged": len(acked),
            "retries": retries, "promote_s": round(promoted_at - killed_at, 2),
            "longest_pause_s": _longest_pause(times, killed_at - 1.0),
            "acknowledged_after_failover": len(after),
            "writer_exit_codes": [p.returncode for p in procs],
            **asyncio.run(_check(standby.url(), acked)),
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for cluster in (standby, primary):
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.pg_ctl("stop", "-m", "fast")  # the killed primary is not running
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)
        else:
            shutil.move(str(base), keep)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults pg_failover")
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="load before the kill plus load after the failover")
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="move the clusters and logs here")
    parser.add_argument("--daemons", action="store_true",
                        help="two tradelog serve daemons under load instead of writer "
                        "processes (bench/faults/pg_failover_daemons.py)")
    parser.add_argument("--clients", type=int, default=2,
                        help="--daemons: clients appending through each daemon")
    parser.add_argument("--writer", nargs=4, metavar=("URL", "NAME", "STOP", "LOG"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.writer:
        url, name, stop, log = args.writer
        asyncio.run(_writer(url, name, Path(stop), Path(log)))
        return 0
    if args.daemons:
        from bench.faults import pg_failover_daemons

        result = pg_failover_daemons.run(args.seconds, args.clients, args.keep)
        print(json.dumps(result))
        return 0 if pg_failover_daemons.ok(result) else 1
    result = run(args.seconds, args.writers, args.keep)
    print(json.dumps(result))
    ok = (result["acknowledged_lost_or_moved"] == 0 and result["gapless"]
          and result["verify_ok"] and result["acknowledged_after_failover"] > 0
          and set(result["writer_exit_codes"]) == {0})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
