"""Snapshots of the fold state (``projections.snapshots``): ``as_of`` from the nearest
snapshot equals a fresh store fed the prefix, across restarts (base snapshots) and after
a rebuild (snapshots written again), with snapshots taken every few events."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.recorder import Recorder
from projections import runner as runner_module
from projections.startup import open_views, rebuild_views
from tests.fold_support import new_event, view_rows
from tests.projections.test_fold_properties import sequences, split


def _snapshot_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM view_snapshots").fetchone()[0])
    finally:
        conn.close()


async def _fresh_store_views(path: Path, events: list[Any]) -> Any:
    """Every view of a fresh store at ``path`` fed ``events`` (in one append)."""
    prefix = await Recorder.open(path)
    try:
        await open_views(prefix)
        if events:
            await prefix.append(events)
        return await view_rows(prefix)
    finally:
        await prefix.close()


async def _as_of_from_snapshots(wires: list[dict[str, Any]], cuts: list[int],
                                restart_after: int, every: int) -> None:
    news = [new_event(w) for w in wires]
    groups = split(news, cuts)
    with tempfile.TemporaryDirectory() as directory, mock.patch.object(
            runner_module, "SNAPSHOT_EVERY", every), mock.patch.object(
            runner_module, "CACHE_ROWS", 1):
        path = Path(directory) / "full.db"
        full = await Recorder.open(path)
        try:
            await open_views(full)
            for index, group in enumerate(groups):
                if index == restart_after % (len(groups) + 1):
                    await full.close()
                    full = await Recorder.open(path)
                    await open_views(full)
                await full.append(group)
            if len(news) >= every:
                assert _snapshot_count(path) >= 1
            fresh = [await _fresh_store_views(Path(directory) / f"prefix-{n}.db", news[:n])
                     for n in range(len(news) + 1)]
            for rebuilt in (False, True):
                if rebuilt:
                    await rebuild_views(full)
                for n, expected in enumerate(fresh):
                    assert expected == await view_rows(full, as_of=n), (n, rebuilt)
        finally:
            await full.close()


@pytest.mark.slow(seconds=6)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequences(max_size=16), st.lists(st.integers(0, 100), max_size=5),
       st.integers(0, 6), st.integers(1, 4))
def test_as_of_from_snapshots_equals_a_fresh_store(
        wires: list[dict[str, Any]], cuts: list[int], restart_after: int, every: int) -> None:
    """With a snapshot every 1-4 events, a restart in between (the next snapshot covers
    every row that may have changed before it) and after a rebuild, and at most one
    signal and order kept in memory, every view ``as_of`` every seq equals a fresh store
    fed events 1..N."""
    asyncio.run(_as_of_from_snapshots(wires, cuts, restart_after, every))


def test_a_snapshot_after_a_voided_signal_and_order(tmp_path: Path) -> None:
    """A snapshot due right after a void of a signal and an order (in the appends and in
    a rebuild) leaves them out, and ``as_of`` every seq still equals a fresh store."""
    wires = [
        {"id": "s", "source": "b", "type": "signal", "time": "2024-03-01T12:00:00Z",
         "account": "A", "data": {"signal_id": "x1", "strategy": "s", "symbol": "AAA",
                                  "side": "long"}},
        {"id": "o", "source": "b", "type": "order", "time": "2024-03-01T12:00:00Z",
         "account": "A", "data": {"order_id": "x1", "symbol": "AAA", "side": "buy",
                                  "quantity": "1", "order_type": "market"}},
        {"id": "v1", "source": "b", "type": "void", "time": "2024-03-01T12:00:00Z",
         "account": "A", "data": {"target_source": "b", "target_id": "s", "reason": "r"}},
        {"id": "v2", "source": "b", "type": "void", "time": "2024-03-01T12:00:00Z",
         "account": "A", "data": {"target_source": "b", "target_id": "o", "reason": "r"}},
        {"id": "c", "source": "b", "type": "cash", "time": "2024-03-01T12:00:00Z",
         "account": "A", "data": {"amount": "5", "kind": "deposit"}},
    ]
    asyncio.run(_as_of_from_snapshots(wires, [2], 9, 3))
