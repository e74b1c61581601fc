"""``tradelog show`` and ``tradelog rebuild`` on a database written by the tests."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from eventstore.recorder import Recorder
from projections.startup import open_views
from tests.fold_support import dump_tables, ev, fold_rows, new_event, stored, view_rows


def events() -> list[dict[str, Any]]:
    """Two accounts: a closed round trip and an open position each, plus cash."""
    out = []
    for account in ("acct-1", "acct-2"):
        out += [
            ev("cash", {"amount": "500", "kind": "deposit"}, account=account),
            ev("fill", {"symbol": "XYZ", "side": "buy", "quantity": "2", "price": "10"},
               account=account, time="2024-03-01T12:01:00Z"),
            ev("fill", {"symbol": "XYZ", "side": "sell", "quantity": "2", "price": "12",
                        "fee": "0.5"}, account=account, time="2024-03-01T12:02:00Z"),
            ev("fill", {"symbol": "ABC", "side": "sell", "quantity": "1", "price": "7"},
               account=account, time="2024-03-01T12:03:00Z"),
        ]
    return out


async def write_db(path: Path) -> list[dict[str, Any]]:
    """Append ``events()`` in two groups with the views attached; returns the events."""
    wires = events()
    recorder = await Recorder.open(path)
    try:
        await open_views(recorder)
        await recorder.append([new_event(w) for w in wires[:4]])
        await recorder.append([new_event(w) for w in wires[4:]])
    finally:
        await recorder.close()
    return wires


def tradelog(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m daemon.cli`` with ``args``; fails the test on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADELOG_")}
    done = subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, check=False)
    assert 0 == done.returncode, done.stderr
    return done


def fingerprint(path: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of the database file and of its write-ahead log when it holds
    anything (a read-only reader may leave an empty one: SQLite creates it to read)."""
    out = {}
    for name in (path.name, f"{path.name}-wal"):
        target = path.with_name(name)
        if target.exists() and target.stat().st_size:
            out[name] = (target.read_bytes(), target.stat().st_mtime_ns)
    return out


async def test_show_prints_view_rows_as_json(tmp_path: Path) -> None:
    """``show VIEW --db PATH --json`` prints ``{"view", "as_of_seq", "total", "rows"}``
    with the rows ``query`` gives, for every view."""
    path = tmp_path / "t.db"
    wires = await write_db(path)
    expected = fold_rows(stored(wires))
    for view in ("positions", "trades", "balances", "daily", "journal"):
        answer = json.loads(tradelog("show", view, "--db", str(path), "--json").stdout)
        assert {"view": view, "as_of_seq": 8, "total": len(expected[view]),
                "rows": expected[view]} == answer


async def test_show_filters_by_account_and_as_of(tmp_path: Path) -> None:
    """``--account`` keeps one account's rows; ``--as-of N`` and ``--as-of T`` give the
    view as it stood after seq N, or after the last event recorded by time T."""
    path = tmp_path / "t.db"
    wires = await write_db(path)
    answer = json.loads(tradelog("show", "balances", "--db", str(path), "--account",
                                 "acct-2", "--json").stdout)
    assert [r for r in fold_rows(stored(wires))["balances"] if r["account"] == "acct-2"] == (
        answer["rows"])
    answer = json.loads(tradelog("show", "trades", "--db", str(path), "--as-of", "2",
                                 "--json").stdout)
    assert (2, []) == (answer["as_of_seq"], answer["rows"])
    answer = json.loads(tradelog("show", "positions", "--db", str(path), "--as-of", "3",
                                 "--json").stdout)
    assert (3, fold_rows(stored(wires[:3]))["positions"]) == (
        answer["as_of_seq"], answer["rows"])
    recorder = await Recorder.open(path, readonly=True)
    try:
        first_group_at = (await recorder.read())[0].recorded_at
        expected = max(e.seq for e in await recorder.read()
                       if e.recorded_at <= first_group_at)
    finally:
        await recorder.close()
    answer = json.loads(tradelog("show", "daily", "--db", str(path), "--as-of",
                                 first_group_at, "--json").stdout)
    assert (expected, fold_rows(stored(wires[:expected]))["daily"]) == (
        answer["as_of_seq"], answer["rows"])


async def test_show_never_writes_the_file(tmp_path: Path) -> None:
    """``show --db`` opens the file read-only: its bytes and mtime (and the WAL's) are the
    same after ``show``, also with ``--as-of`` and as a table."""
    path = tmp_path / "t.db"
    await write_db(path)
    before = fingerprint(path)
    tradelog("show", "positions", "--db", str(path), "--json")
    tradelog("show", "daily", "--db", str(path), "--as-of", "5", "--json")
    table = tradelog("show", "balances", "--db", str(path)).stdout
    assert "acct-2" in table
    assert before == fingerprint(path)


async def test_rebuild_prints_the_rate_and_keeps_the_rows(tmp_path: Path) -> None:
    """``rebuild --db PATH`` folds every event, prints the rate in events/s, and leaves
    rows identical to those kept incrementally."""
    path = tmp_path / "t.db"
    wires = await write_db(path)
    before = dump_tables(path)
    out = tradelog("rebuild", "--db", str(path)).stdout
    assert re.search(r"rebuild: 8 events folded in [0-9.]+ s \([0-9,]+ events/s\)", out), out
    assert before == dump_tables(path)
    recorder = await Recorder.open(path, readonly=True)
    try:
        assert fold_rows(stored(wires)) == await view_rows(recorder)
        assert (await recorder.verify()).ok
    finally:
        await recorder.close()
