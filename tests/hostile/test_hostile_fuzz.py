"""Hostile clients beside good ones, in short: one client never takes the daemon down.

Runs ``bench.faults.hostile`` with a couple of hundred requests per class against a real
``tradelog serve``. The short run lowers one limit through the daemon's configuration so
that it stays short (a partial line is dropped after 1 s instead of 10) and tells the
script so; every other limit is the contract's default. Latency is not asserted here (no
timed tests): a good client left without an answer for 10 s counts as a freeze, which is
a liveness failure, not a slow machine. The 240 s per class is a liveness bound too,
wide enough for a machine that runs the rest of the suite beside it.
"""

from __future__ import annotations

from pathlib import Path

from bench.faults import hostile

_PER_CLASS = 200


def _options() -> hostile.Options:
    return hostile.Options(
        requests=_PER_CLASS * len(hostile.CLASSES), seed=5, rss_limit_mb=512,
        p99_ms=None, stall_s=10.0, partial_limit_s=1.0, class_budget_s=240.0, hold_s=1.0,
        slow_subscribers=2, answer_s=10.0,
        env={"TRADELOG_LIMITS__PARTIAL_LINE_TIMEOUT_S": "1"})


def test_hostile_classes_leave_the_daemon_serving(tmp_path: Path) -> None:
    """Every hostile class (numbers, times, ids, nesting, batches, oversize lines, invalid
    UTF-8, duplicate keys, overflow-prone fills, pipelining, subscriptions, partial lines,
    connection floods) is answered as PROTOCOL.md says, while 4 good clients append: the
    daemon never exits, its RSS stays under 512 MB, no good client waits 10 s, nothing of
    a refused request is stored, SIGTERM stops it in time and ``verify`` is clean."""
    report = hostile.run(_options(), tmp_path, say=lambda _: None)

    assert [] == report.problems, "\n".join(report.problems[:80])
    assert list(hostile.CLASSES) == [c.name for c in report.classes]
    assert all(c.requests >= _PER_CLASS for c in report.classes), [
        (c.name, c.requests) for c in report.classes]
