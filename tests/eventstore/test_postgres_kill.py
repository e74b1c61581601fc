"""Three writer processes (what three daemons' writers hold) append to one PostgreSQL log;
one is killed with SIGKILL mid-run. Every event any of them saw acknowledged is stored
once at its seq, seq is gapless, the chain verifies, and the other two go on to the end
(a writer killed holding the advisory lock loses its session, and the lock with it)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from eventstore.postgres.recorder import PgRecorder
from tests.eventstore.test_store_contract import PgLog

REPO = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent("""
    import asyncio, json, sys
    from eventstore import NewEvent
    from eventstore.postgres.recorder import PgRecorder
    from schemas import parse_event

    url, name, batches, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

    async def main() -> None:
        recorder = await PgRecorder.open(url)
        with open(out, "a") as log:
            for b in range(batches):
                events = [NewEvent.from_model(parse_event({
                    "id": f"{name}-{b}-{i}", "source": f"bot/{name}", "type": "fill",
                    "time": "2024-03-01T12:00:00Z", "account": name,
                    "data": {"symbol": "EURUSD", "side": "buy", "quantity": "1",
                             "price": "1.5"}})) for i in range(4)]
                outcome = await recorder.append(events, expected_version=(name, 4 * b))
                for r in outcome.results:
                    log.write(json.dumps([r.source, r.event_id, r.seq]) + "\\n")
                log.flush()
        await recorder.close()

    asyncio.run(main())
""")


def _acked(path: Path) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()
            if line.endswith("]")]


def test_a_writer_killed_mid_run_loses_nothing_acknowledged(pg: PgLog, tmp_path: Path
                                                           ) -> None:
    """Kill -9 one of three writers once it has appended 10 batches: the log holds every
    acknowledged event once, at its seq, gapless and verified; the two others finish."""
    batches = 60
    env = dict(os.environ, PYTHONPATH=str(REPO))
    outs = [tmp_path / f"w{n}.jsonl" for n in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg.url, f"w{n}", str(batches),
                               str(outs[n])], env=env, stderr=subprocess.PIPE)
             for n in range(3)]
    try:
        deadline = time.monotonic() + 120
        while len(_acked(outs[0])) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        procs[0].send_signal(signal.SIGKILL)
        for proc in procs[1:]:
            _, err = proc.communicate(timeout=180)
            assert 0 == proc.returncode, err.decode()
        procs[0].communicate(timeout=10)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    assert -signal.SIGKILL == procs[0].returncode
    acked = [a for out in outs for a in _acked(out)]
    assert 2 * batches * 4 + 40 <= len(acked)

    async def check() -> None:
        recorder = await PgRecorder.open(pg.url, readonly=True)
        try:
            stored = await recorder.read(limit=100_000)
            report = await recorder.verify()
        finally:
            await recorder.close()
        assert list(range(1, len(stored) + 1)) == [e.seq for e in stored]
        at = {(e.source, e.event_id): e.seq for e in stored}
        assert len(at) == len(stored)
        assert [] == [a for a in acked if at.get((a[0], a[1])) != a[2]]
        assert (True, len(stored)) == (report.ok, report.checked)

    asyncio.run(check())
