"""A process killed between folding a group and committing it leaves log and views whole.

The writer runs in a subprocess with a ``ViewRunner`` that kills the process
(``os._exit(9)``, no cleanup, as SIGKILL would) on the Nth group: either inside ``fold``
right after computing the group's statements, or after the recorder has executed every
row write and the checkpoint, just before ``COMMIT``.
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eventstore.recorder import Recorder
from projections.startup import open_views, rebuild_views
from tests.fold_support import dump_tables, ev, fold_rows, view_rows

WRITER = r'''
import asyncio, json, os, sys
from eventstore.record import NewEvent
from eventstore.recorder import Recorder
from projections.runner import ViewRunner
from projections.lifecycle import prepare
from projections.startup import open_views
from schemas import parse_event

path, groups_file, crash_group, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def die_when_consumed(rows):
    yield from rows
    os._exit(9)


class CrashingRunner(ViewRunner):
    calls = 0

    def fold(self, events, fresh=False):
        statements = super().fold(events, fresh)
        if events:
            CrashingRunner.calls += 1
            if CrashingRunner.calls == crash_group:
                if mode == "fold":
                    os._exit(9)
                sql, rows = statements[-1]
                statements[-1] = (sql, die_when_consumed(rows))
        return statements


async def main():
    groups = json.loads(open(groups_file).read())
    recorder = await Recorder.open(path)
    runner = CrashingRunner()
    await recorder.on_appender(lambda conn: prepare(conn, runner))
    recorder.follower = runner
    for group in groups:
        await recorder.append([NewEvent.from_model(parse_event(w)) for w in group])
        print("committed", flush=True)
    await recorder.close()


asyncio.run(main())
'''


def groups() -> list[list[dict[str, object]]]:
    """Four groups of events; every group changes positions, balances and daily."""
    out = []
    for number in range(4):
        minute = f"2024-03-01T12:{number:02d}:00Z"
        out.append([
            ev("fill", {"symbol": "XYZ", "side": "buy" if number % 2 == 0 else "sell",
                        "quantity": str(number + 1), "price": f"{10 + number}", "fee": "0.5"},
               time=minute),
            ev("cash", {"amount": "100", "kind": "deposit"}, time=minute),
            ev("journal", {"text": f"group {number}"}, time=minute),
        ])
    return out


@pytest.mark.slow(seconds=2)
@pytest.mark.parametrize(("crash_group", "mode"), [(1, "fold"), (3, "fold"), (1, "write"),
                                                   (3, "write")])
async def test_kill_before_commit_leaves_no_partial_group(
        tmp_path: Path, crash_group: int, mode: str) -> None:
    """Killed on group N (in ``fold``, or after the view rows were written but before
    ``COMMIT``): the log holds exactly groups 1..N-1, the chain verifies, and
    ``open_views`` on the same file gives the views a rebuild from the log gives."""
    path = tmp_path / "t.db"
    batches = groups()
    groups_file = tmp_path / "groups.json"
    groups_file.write_text(json.dumps(batches))
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(groups_file), str(crash_group), mode],
        capture_output=True, text=True, timeout=120, check=False)
    assert (9, ["committed"] * (crash_group - 1)) == (
        done.returncode, done.stdout.splitlines()), done.stderr
    committed = [w for group in batches[:crash_group - 1] for w in group]

    recorder = await Recorder.open(path)
    try:
        assert 0 == (await open_views(recorder))[1]
        events = await recorder.read()
        assert [w["id"] for w in committed] == [e.event_id for e in events]
        report = await recorder.verify()
        assert (True, len(committed)) == (report.ok, report.checked)
        now = await view_rows(recorder)
        tables = dump_tables(path)
        assert fold_rows(events) == now
        _, folded = await rebuild_views(recorder)
        assert len(committed) == folded
        assert tables == dump_tables(path)
        assert now == await view_rows(recorder)
    finally:
        await recorder.close()
