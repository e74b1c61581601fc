"""A fold can never kill the daemon: values within the bounds fold without error, stored
values outside them are left out of every view, and a fold that still raises refuses
only the append that caused it (or, for a stored event, leaves that event out)."""

from __future__ import annotations

import dataclasses
import sqlite3
import sys
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventstore.errors import StorageUnavailableError
from eventstore.record import AppendRequest, StoredEvent
from eventstore.recorder import Recorder
from eventstore.writes import ViewsRefusedError
from projections.fold import fold
from projections.startup import flush_views, open_views, rebuild_views
from projections.state import State
from tests.fold_support import (
    boom_steps,
    dump_tables,
    ev,
    fold_rows,
    new_event,
    stored,
    sum_dec,
    view_rows,
)
from tests.legacy_support import LEGACY, legacy_event, legacy_stored, write_log_async

MAX = "999999999999999.999999999999999999"
TINY = "0.000000000000000001"


def _fill(side: str, quantity: str, price: str, symbol: str = "X", **extra: Any
          ) -> dict[str, Any]:
    return ev("fill", {"symbol": symbol, "side": side, "quantity": quantity, "price": price,
                       **extra})


def _renumber(events: list[StoredEvent], first: int) -> list[StoredEvent]:
    return [dataclasses.replace(e, seq=seq) for seq, e in enumerate(events, first)]


@pytest.mark.parametrize("case", sorted(LEGACY))
def test_stored_value_outside_the_bounds_is_left_out_of_every_view(case: str) -> None:
    """An event an older version stored with a value 1.1 refuses changes no view: the
    rows equal those of the same log without it (same seqs for the others), a later
    mark of its symbol folds, and the state names its seq and the field."""
    event_type, data, time = LEGACY[case]
    before = stored([_fill("buy", "2", "10", "BIG"), _fill("buy", "1", "5", "MUL"),
                     ev("cash", {"kind": "deposit", "amount": "100"})])
    bad = legacy_stored([legacy_event(event_type, data, time)], first_seq=4)
    after = _renumber(stored([ev("mark", {"prices": {"BIG": "12", "MUL": "7", "ZERO": "3",
                                                      "OLD": "2"}}),
                              _fill("sell", "2", "11", "BIG"), _fill("sell", "1", "3", "ZERO"),
                              _fill("buy", "1", "3", "ZERO")]), 5)

    state = fold([*before, *bad, *after])

    assert fold_rows([*before, *after]) == fold_rows([*before, *bad, *after])
    assert [4] == [seq for seq, _ in state.left_out]
    assert 8 == state.folded_seq


def test_left_out_reason_names_the_field() -> None:
    """The reason a stored event is left out names the field and the bound."""
    event_type, data, time = LEGACY["huge multiplier"]
    state = fold(legacy_stored([legacy_event(event_type, data, time)]))
    [(seq, reason)] = state.left_out
    assert 1 == seq
    assert reason.startswith("data.quantity: must be below 10^15")


extreme = st.sampled_from([MAX, TINY, "1", "0.5", "123456789012345.123456789012345678",
                           "999999999999999"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell", "mark"]), extreme, extreme,
                          st.sampled_from(["1", "1000000", TINY, "0.5"]),
                          st.sampled_from(["0", MAX, TINY])),
                min_size=1, max_size=25))
def test_any_fills_and_marks_within_the_bounds_fold_exactly(
        steps: list[tuple[str, str, str, str, str]]) -> None:
    """Fills and marks at the edges of the bounds (largest and smallest quantities,
    prices and fees, multipliers up to 10^6) never make a fold raise, and balance =
    cash + realized P&L holds to the last digit."""
    wires = []
    for kind, quantity, price, multiplier, fee in steps:
        if kind == "mark":
            wires.append(ev("mark", {"prices": {"X": price}}))
        else:
            wires.append(_fill(kind, quantity, price, multiplier=multiplier, fee=fee))
    rows = fold_rows(stored(wires))
    [balance] = rows["balances"]
    assert Decimal(balance["balance"]) == sum_dec([balance["cash"], balance["realized_pnl"]])
    realized = sum_dec([*(t["net_pnl"] for t in rows["trades"]),
                        *(p["realized_pnl"] for p in rows["positions"])])
    assert Decimal(balance["realized_pnl"]) == realized


# ------------------------------------------------------------- fold failures

@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """The path of a fresh log file."""
    return tmp_path / "log.db"


async def test_a_fold_failure_refuses_only_its_request(
        log_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a group of three requests, the one whose event the views cannot fold is
    refused (ViewsRefusedError naming that event's index, nothing of it stored); the
    other two are stored with consecutive seqs, and the views equal a rebuild."""
    boom_steps(monkeypatch)
    recorder = await Recorder.open(log_path)
    try:
        await open_views(recorder)
        good1 = AppendRequest([new_event(_fill("buy", "1", "10"))])
        bad = AppendRequest([new_event(_fill("buy", "1", "10", "Y")),
                             new_event(_fill("buy", "1", "10", "BOOM"))])
        good2 = AppendRequest([new_event(_fill("sell", "1", "12"))])

        outcomes = await recorder.append_groups([good1, bad, good2])

        assert [None, ViewsRefusedError, None] == [
            None if o.error is None else type(o.error) for o in outcomes]
        error = outcomes[1].error
        assert isinstance(error, ViewsRefusedError)
        assert [1] == [p["index"] for p in error.problems]
        assert [1, 2] == [r.seq for o in (outcomes[0], outcomes[2]) for r in o.results]
        assert ["X", "X"] == [e.data["symbol"] for e in await recorder.read()]
        assert (await recorder.verify()).ok
        await flush_views(recorder)
        incremental = dump_tables(log_path)
        await rebuild_views(recorder)
        assert incremental == dump_tables(log_path)
        after = await recorder.append([new_event(_fill("buy", "1", "10"))])
        assert 3 == after.results[0].seq
    finally:
        await recorder.close()


async def test_a_storage_error_met_while_folding_is_not_a_refusal(
        log_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read of the views failing while they fold (here a fold step meeting SQLite's
    disk I/O error) is the storage's fault, not the event's: the group raises
    ``StorageUnavailableError`` (nothing stored, retryable) instead of refusing the
    request as one the views cannot account for; the next append is stored."""
    fold_module = sys.modules["projections.fold"]
    original = fold_module._STEPS

    def failing_read(state: State, event: StoredEvent) -> State:
        if event.data.get("symbol") == "DISK":
            raise sqlite3.OperationalError("disk I/O error")
        return state

    monkeypatch.setattr(fold_module, "_STEPS", (failing_read, *original))
    recorder = await Recorder.open(log_path)
    try:
        await open_views(recorder)
        with pytest.raises(StorageUnavailableError):
            await recorder.append_groups([AppendRequest([new_event(_fill("buy", "1", "10")),
                                                         new_event(_fill("buy", "1", "10",
                                                                         "DISK"))])])
        assert [] == await recorder.read()
        after = await recorder.append([new_event(_fill("buy", "1", "10"))])
        assert 1 == after.results[0].seq
        assert (await recorder.verify()).ok
    finally:
        await recorder.close()


async def test_a_stored_event_whose_fold_raises_is_left_out_at_start(
        log_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the views on a log holding an event whose fold raises does not fail:
    that event is left out (its seq noted), the views equal the fold of the log
    without it, and a rebuild leaves it out the same way."""
    wires = [_fill("buy", "1", "10"), _fill("buy", "1", "10", "BOOM"), _fill("sell", "1", "12")]
    await write_log_async(log_path, [new_event(w) for w in wires])
    expected = stored(wires)
    boom_steps(monkeypatch)
    recorder = await Recorder.open(log_path)
    try:
        runner, folded = await open_views(recorder)
        assert 3 == folded
        assert [2] == list(runner.failed)
        await flush_views(recorder)
        incremental = dump_tables(log_path)
        assert fold_rows([expected[0], expected[2]]) == await view_rows(recorder)
        await rebuild_views(recorder)
        assert incremental == dump_tables(log_path)
    finally:
        await recorder.close()


bounded = st.builds(
    lambda whole, places, frac: (Decimal(whole * 10**places + frac).scaleb(-places)),
    st.integers(0, 10**15 - 1), st.integers(0, 18), st.integers(0, 10**18 - 1),
).filter(lambda d: 0 < d < 10**15)
multipliers = bounded.filter(lambda d: d <= 10**6)


@settings(max_examples=200, deadline=None)
@given(bounded, bounded, multipliers, bounded)
@example(Decimal(MAX), Decimal(TINY), Decimal("999999.999999999999999999"),
         Decimal("987654321098765.432109876543210987"))
@example(Decimal("123456789012345.678901234567890123"), Decimal(MAX),
         Decimal("0.123456789012345678"), Decimal(TINY))
def test_unrealized_and_realized_pnl_are_exact_to_20_places(
        quantity: Decimal, price: Decimal, multiplier: Decimal, mark: Decimal) -> None:
    """For any one fill and mark within the bounds, unrealized P&L is the exact
    (mark - price) * quantity * multiplier rounded once, half-even, to 20 places, and
    closing at the mark realizes that same figure (EVENTS.md: exact to 20 places)."""
    exact = Context(prec=500, rounding=ROUND_HALF_EVEN)
    expected = exact.multiply(exact.multiply(exact.subtract(mark, price), quantity),
                              multiplier).quantize(Decimal("1e-20"), context=exact)
    opened = stored([_fill("buy", str(quantity), str(price), multiplier=str(multiplier)),
                     ev("mark", {"prices": {"X": str(mark)}})])
    [position] = fold_rows(opened)["positions"]
    closed = fold_rows([*opened, *stored([_fill("sell", str(quantity), str(mark))], 3)])
    assert (expected, expected) == (Decimal(position["unrealized_pnl"]),
                                    Decimal(closed["trades"][0]["gross_pnl"]))


@pytest.mark.parametrize(("zone", "time", "day"), [
    ("Pacific/Kiritimati", "2199-12-31T23:59:59Z", "2200-01-01"),
    ("Etc/GMT+12", "1900-01-01T00:00:00Z", "1899-12-31"),
    ("Asia/Tokyo", "2199-12-31T23:59:59+14:00", "2199-12-31"),
])
def test_trading_days_at_the_edges_of_the_calendar(zone: str, time: str, day: str) -> None:
    """Fills at the first and last accepted instants, in zones up to 14 hours from UTC,
    fold into the trading day of that zone (a day past either end of the range)."""
    wires = [ev("limits", {"timezone": zone}, time=time), {**_fill("buy", "1", "1"), "time": time},
             {**_fill("sell", "1", "2"), "time": time}]
    rows = fold_rows(stored(wires))
    assert [(day, "1")] == [(d["date"], d["realized_pnl"]) for d in rows["daily"]]
