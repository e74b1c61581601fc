"""Three ``PgWriterCore``s on one log taking turns at random (three daemons' writers):
each folds what the others appended into its state (``projections.others.fold_known``)
instead of loading its state from the tables again, and the shared view tables end as
one SQLite ``WriterCore`` leaves them for the same groups in the same order: signals
and orders loaded from their tables on demand (a small row cache) are never counted
twice, and the turns where folding could count them twice load the state instead."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from bench.events import EventStream
from daemon.writer.core import WriterCore
from daemon.writer.pgcore import PgWriterCore
from eventstore.record import AppendRequest
from projections import others, runner
from tests.eventstore.test_store_contract import PgLog
from tests.fold_support import new_event
from tests.service.test_writer_core_pg import view_tables


def _count_folds(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each catch-up of a core from here on, whether it folded the others' events
    (True) or loaded the state again (False), in order."""
    folds: list[bool] = []
    real = others.fold_known

    def counting(*args: Any) -> Any:
        caught = real(*args)
        folds.append(caught is not None)
        return caught

    monkeypatch.setattr(runner, "fold_known", counting)
    return folds


@pytest.mark.parametrize("seed", [3, 11])
def test_cores_taking_turns_fold_the_others_events(pg: PgLog, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   seed: int) -> None:
    """Random turns of groups of 1 to 6 events (signals, orders, status, fills naming
    orders, marks, journal, cash): the tables equal SQLite's, and most turns folded the
    others' events rather than loading the state again."""
    monkeypatch.setattr(runner, "CACHE_ROWS", 8)  # most rows loaded on demand
    folds = _count_folds(monkeypatch)
    rng = random.Random(seed)
    stream = EventStream(seed, prefix=f"t{seed}", open_per_account=5)
    cores = [PgWriterCore.open(pg.url)[0] for _ in range(3)]
    lite, _ = WriterCore.open(tmp_path / "x.db")
    try:
        for _ in range(60):
            group = [AppendRequest([new_event(next(stream))])
                     for _ in range(rng.randint(1, 6))]
            outcomes = cores[rng.randrange(3)].commit(group)
            assert [o.last_seq for o in outcomes] == [o.last_seq for o in lite.commit(group)]
            assert all(o.error is None for o in outcomes)
    finally:
        for core in cores:
            core.close()
        lite.close()
    on_lite, on_pg = view_tables(pg.url, tmp_path / "x.db")
    assert on_lite == on_pg
    for name in ("signals", "orders", "history", "trades"):
        assert on_pg[name], name
    assert len(folds) > 20
    assert sum(folds) > len(folds) // 2, folds


def _wire(n: int, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"late-{n}", "source": "test/turns", "type": kind,
            "account": "acct-1", "time": f"2024-03-01T12:0{n}:00Z", "data": data}


def test_an_order_announced_after_a_fill_that_names_it_loads_the_state(
        pg: PgLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another core stores a fill naming an order not announced yet, then the order (with
    a signal): the fill opened its position with no signal, but the order's table row
    already names it. The core that catches up loads its state instead of folding, and
    its next fill on the position leaves the row SQLite leaves."""
    folds = _count_folds(monkeypatch)
    groups = [
        (0, [_wire(0, "cash", {"amount": "1000", "kind": "deposit"})]),
        (1, [_wire(1, "signal", {"signal_id": "s1", "strategy": "sma", "symbol": "XYZ",
                                 "side": "long", "stop_loss": "9"})]),
        (1, [_wire(2, "fill", {"symbol": "XYZ", "side": "buy", "quantity": "1",
                               "price": "10", "order_id": "o1", "position_id": "p1"})]),
        (1, [_wire(3, "order", {"order_id": "o1", "symbol": "XYZ", "side": "buy",
                                "quantity": "2", "order_type": "market",
                                "signal_id": "s1"})]),
        (0, [_wire(4, "fill", {"symbol": "XYZ", "side": "buy", "quantity": "1",
                               "price": "11", "position_id": "p1"})]),
    ]
    cores = [PgWriterCore.open(pg.url)[0] for _ in range(2)]
    lite, _ = WriterCore.open(tmp_path / "x.db")
    try:
        for number, wires in groups:
            group = [AppendRequest([new_event(w) for w in wires])]
            assert [o.error for o in cores[number].commit(group)] == [None]
            lite.commit(group)
    finally:
        for core in cores:
            core.close()
        lite.close()
    on_lite, on_pg = view_tables(pg.url, tmp_path / "x.db")
    assert on_lite["positions"] == on_pg["positions"]
    assert on_lite == on_pg
    assert folds[-1] is False


@pytest.mark.parametrize("seed", [5, 17])
def test_expected_versions_across_cores_taking_turns_are_sqlites(
        pg: PgLog, tmp_path: Path, seed: int) -> None:
    """Three cores taking turns in runs (so each becomes quiet and sends groups in one
    flight, ``eventstore.postgres.tail``), most requests expecting their account's
    version (the current one, or one behind), some sending an event again. Every outcome
    (stored seqs, duplicates, or the conflict and the version it names) is what one
    SQLite core answers for the same groups in order."""
    rng = random.Random(seed)
    cores = [PgWriterCore.open(pg.url)[0] for _ in range(3)]
    lite, _ = WriterCore.open(tmp_path / "x.db")
    counts: dict[str, int] = {}
    sent: list[dict[str, Any]] = []
    turn, n, conflicts = 0, 0, 0
    try:
        for _ in range(120):
            if rng.random() < 0.3:
                turn = rng.randrange(3)
            group = []
            for _ in range(rng.randint(1, 3)):
                if sent and rng.random() < 0.15:
                    group.append(AppendRequest([new_event(rng.choice(sent))]))
                    continue
                n += 1
                account = f"acct-{rng.randrange(3)}"
                wire = {"specversion": "1.0", "id": f"v{n}", "source": "test/versions",
                        "type": "journal", "account": account,
                        "time": f"2024-03-01T12:{n // 60 % 60:02d}:{n % 60:02d}Z",
                        "data": {"text": f"note {n}"}}
                sent.append(wire)
                current = counts.get(account, 0)
                expected = max(0, current - (rng.random() < 0.3))
                group.append(AppendRequest([new_event(wire)], expected_account=account,
                                           expected_version=expected))
            outcomes = cores[turn].commit(group)
            expected_outcomes = lite.commit(group)
            for request, got, want in zip(group, outcomes, expected_outcomes, strict=True):
                assert (type(got.error), getattr(got.error, "version", None),
                        [(r.seq, r.duplicate) for r in got.results]) == (
                    type(want.error), getattr(want.error, "version", None),
                    [(r.seq, r.duplicate) for r in want.results])
                if want.error is None and not want.results[0].duplicate:
                    account = request.events[0].account
                    counts[account] = counts.get(account, 0) + 1
                else:
                    conflicts += 1
    finally:
        for core in cores:
            core.close()
        lite.close()
    assert conflicts > 10
