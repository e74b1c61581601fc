"""Hostile clients beside good ones, in short: one client never takes the daemon down.

Runs ``bench.faults.hostile`` with 80 to 200 requests per class (``PER_CLASS``) against
a real ``tradelog serve``; the full battery (10,000 requests) is ``python -m bench.faults
hostile``. The short run lowers one limit through the daemon's configuration so
that it stays short (a partial line is dropped after 1 s instead of 10) and tells the
script so; every other limit is the contract's default. Latency is not asserted here (no
timed tests): a good client left without an answer for 10 s counts as a freeze, which is
a liveness failure, not a slow machine. The 240 s per class is a liveness bound too,
wide enough for a machine that runs the rest of the suite beside it.

The classes run in three parts, each against its own daemon with its own good clients
(and its own end checks: SIGTERM in time, ``verify`` clean), so that the parts can run
on different test workers at once: ``batches`` alone (the longest), the other line
classes, and the connection classes together (the slow subscribers opened by
``subscriptions`` stay attached while ``partial`` and ``flood`` run, as in the full
run). Together the parts are every class, in the script's order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import hostile, hostile_gen
from tests.eventstore.test_store_contract import PG_URL

_CONNECTION = ("pipelining", "subscriptions", "partial", "flood")
PARTS: dict[str, tuple[str, ...]] = {
    "batches": ("batches",),
    "lines": tuple(c for c in hostile.CLASSES if c not in _CONNECTION and c != "batches"),
    "connections": _CONNECTION,
}
PER_CLASS = {"batches": 80, "lines": 100, "connections": 200}
"""Hostile requests per class, by part. Enough for every shape of ``batches`` (checked)
and a hundred probes of each other line class; a ``batches`` request is up to a
thousand members or a megabyte, so it stays the longest part. The connection classes
send whole rounds of connections (``pipelining``: four connections of 1,000-5,000
requests each), so fewer requests would save little there."""
SECONDS = {"batches": 16, "lines": 10, "connections": 17}
"""About what each part takes alone on an idle 2-core machine (see tests/conftest.py)."""


def _options(part: str, store: str | None = None) -> hostile.Options:
    classes = PARTS[part]
    return hostile.Options(
        requests=PER_CLASS[part] * len(classes), seed=5, classes=list(classes),
        rss_limit_mb=512, p99_ms=None, stall_s=10.0, partial_limit_s=1.0,
        class_budget_s=240.0, hold_s=1.0, slow_subscribers=2, answer_s=10.0,
        block_s=0.5, quiet_s=1.0,
        env={"TRADELOG_LIMITS__PARTIAL_LINE_TIMEOUT_S": "1"}, store=store)


def test_the_parts_are_every_class_once() -> None:
    """The three parts cover every class of the script exactly once, in its order."""
    ordered = sorted((c for part in PARTS.values() for c in part), key=hostile.CLASSES.index)
    assert list(hostile.CLASSES) == ordered
    assert len(hostile.CLASSES) == sum(len(part) for part in PARTS.values())


ON_POSTGRESQL = ("connections",)
"""The part also run against a daemon on PostgreSQL: the connection classes (pipelining,
slow subscribers, partial lines, floods) with that store's commit path and
notifications. The line classes are refused before anything reaches a store, and their
refusals on PostgreSQL are the both-store modules ``test_hostile_wire`` and
``test_hostile_values``; batches of every shape on PostgreSQL are in the full battery's
run (``python -m bench.faults hostile --store``, docs/FAULTS.md), kept out of the suite
for its time (27 s)."""


@pytest.mark.parametrize(("part", "store"), [
    pytest.param(part, store, marks=pytest.mark.slow(seconds=SECONDS[part]))
    for part in PARTS for store in ("sqlite", "postgresql")
    if store == "sqlite" or part in ON_POSTGRESQL])
def test_hostile_classes_leave_the_daemon_serving(tmp_path: Path, part: str, store: str
                                                  ) -> None:
    """Every hostile class (numbers, times, ids, nesting, batches, oversize lines, invalid
    UTF-8, duplicate keys, overflow-prone fills, pipelining, subscriptions, partial lines,
    connection floods; every shape of batch) is answered as PROTOCOL.md says, while 4
    good clients append: the daemon never exits, its RSS stays under 512 MB, no good
    client waits 10 s, nothing of a refused request is stored, SIGTERM stops it in time
    and ``verify`` is clean; on a SQLite file, and (``ON_POSTGRESQL``) on PostgreSQL."""
    classes = PARTS[part]
    report = hostile.run(_options(part, PG_URL if store == "postgresql" else None), tmp_path,
                         say=lambda _: None)

    assert [] == report.problems, "\n".join(report.problems[:80])
    assert list(classes) == [c.name for c in report.classes]
    assert all(c.requests >= PER_CLASS[part] for c in report.classes), [
        (c.name, c.requests) for c in report.classes]
    if part == "batches":
        assert set(hostile_gen.BATCH_SHAPES) == set(report.classes[0].shapes), (
            report.classes[0].shapes)
