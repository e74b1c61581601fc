"""Hypothesis properties of the views over random event sequences (EVENTS.md invariants).

Sequences mix fills (partials, flips, fees, multipliers, hedging position_ids and
netting), marks, cash, limits in several time zones, signals, orders, status and
journal events, instruments, accounts, strategies, attrs and voids (of fills, cash,
marks, signals, orders and the rest), over several accounts and symbols, with event
times out of order. Expected rows come from ``tests.fold_model``, written from
EVENTS.md alone.
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.record import NewEvent
from eventstore.recorder import Recorder
from projections.fold import apply
from projections.startup import open_views, rebuild_views
from projections.state import State
from tests.fold_model import Model, remaining
from tests.fold_support import (
    dump_tables,
    fold_rows,
    new_event,
    stored,
    sum_dec,
    view_rows,
)

ACCOUNTS = ("A", "B")
MULTIPLIERS = {"AAA": "1", "BBB": "1", "OPT": "100"}
QUANTITIES = ("1", "2", "3", "0.5", "7", "10")
PRICES = ("8", "9.5", "10", "10.3333", "11.25", "0.07", "1234.5")
FEES = (None, "0", "0.1", "1.5", "3")
POSITION_IDS = (None, None, "p1", "p2")
TIMEZONES = ("UTC", "Asia/Kolkata", "America/New_York")
OFFSETS = (UTC, timezone(timedelta(hours=5, minutes=30)),
           timezone(timedelta(hours=-4)))
BASE = datetime(2024, 3, 9, tzinfo=UTC)  # New York changes to daylight time on 2024-03-10
IDS = ("x1", "x2", "x3")
STRATEGIES = ("s", "t")
ATTRS = st.dictionaries(st.sampled_from(("k", "seg", "delta", "n")),
                        st.one_of(st.sampled_from(("a", "b")), st.integers(-5, 5),
                                  st.sampled_from((Decimal("0.45"), Decimal("1.5"))),
                                  st.booleans(), st.none()),
                        max_size=3)

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def wire_events(draw: st.DrawFn) -> dict[str, Any]:
    """One random wire event (without its id, set by ``sequences``)."""
    kind = draw(st.sampled_from(
        ["fill"] * 8 + ["mark"] * 2 + ["cash"] * 2
        + ["limits", "signal", "order", "status", "journal", "instrument", "account",
           "strategy"]))
    symbol = draw(st.sampled_from(sorted(MULTIPLIERS)))
    data: dict[str, Any]
    if kind == "fill":
        data = {"symbol": symbol, "side": draw(st.sampled_from(["buy", "sell"])),
                "quantity": draw(st.sampled_from(QUANTITIES)),
                "price": draw(st.sampled_from(PRICES))}
        optional: dict[str, Any] = {"fee": draw(st.sampled_from(FEES)),
                    "position_id": draw(st.sampled_from(POSITION_IDS)),
                    "order_id": draw(st.sampled_from((None, *IDS))),
                    "signal_id": draw(st.sampled_from((None, *IDS))),
                    "exit_reason": draw(st.sampled_from((None, "stop_loss", "manual")))}
        if draw(st.booleans()):
            optional["multiplier"] = MULTIPLIERS[symbol]
        optional["exit_detail"] = draw(st.sampled_from((None, "auto_trailing_sl")))
        optional["attrs"] = draw(ATTRS)
        data.update({k: v for k, v in optional.items() if v is not None})
    elif kind == "mark":
        symbols = draw(st.lists(st.sampled_from(sorted(MULTIPLIERS)), min_size=1,
                                unique=True))
        data = {"prices": {s: draw(st.sampled_from(PRICES)) for s in symbols}}
    elif kind == "cash":
        amount = draw(st.sampled_from(("100", "2500.25", "1000000000000", "0.01")))
        kind_ = draw(st.sampled_from(("deposit", "withdrawal", "fee", "adjustment")))
        negative = kind_ == "withdrawal" or (kind_ != "deposit" and draw(st.booleans()))
        data = {"amount": f"-{amount}" if negative else amount, "kind": kind_}
    elif kind == "limits":
        data = {"timezone": draw(st.sampled_from(TIMEZONES))}
        limit = draw(st.sampled_from((None, "0", "5", "50.5")))
        if limit is not None:
            data["daily_loss_limit"] = limit
        if draw(st.booleans()):
            data["max_open_positions"] = draw(st.integers(0, 5))
    elif kind == "signal":
        data = {"signal_id": draw(st.sampled_from(IDS)),
                "strategy": draw(st.sampled_from(STRATEGIES)), "symbol": symbol,
                "side": draw(st.sampled_from(["long", "short"])), "stop_loss": "7",
                "take_profit": "12", "confidence": "0.5"}
        if draw(st.booleans()):
            data["parent_signal_id"] = draw(st.sampled_from(IDS))
        if draw(st.booleans()):
            data.update(timeframe="1h", note="n", expires_at="2024-03-10T16:00:00-04:00")
        if draw(st.booleans()):
            data["attrs"] = draw(ATTRS)
    elif kind == "instrument":
        data = {"symbol": symbol, "multiplier": draw(st.sampled_from(("1", "50", "100"))),
                "venue": draw(st.sampled_from(("NSE", "CBOE"))),
                "asset_class": draw(st.sampled_from(("option", "equity")))}
        if draw(st.booleans()):
            data["attrs"] = draw(ATTRS)
    elif kind == "account":
        data = {"kind": draw(st.sampled_from(("live", "paper", "backtest"))),
                "name": draw(st.sampled_from(("main", "test")))}
    elif kind == "strategy":
        data = {"strategy": draw(st.sampled_from(STRATEGIES)),
                "parameters": {"fast": draw(st.integers(1, 50))},
                "active": draw(st.booleans())}
    elif kind == "order":
        data = {"order_id": draw(st.sampled_from(IDS)), "symbol": symbol,
                "side": draw(st.sampled_from(["buy", "sell"])),
                "quantity": draw(st.sampled_from(QUANTITIES)), "order_type": "market"}
        if draw(st.booleans()):
            data["signal_id"] = draw(st.sampled_from(IDS))
    elif kind == "status":
        entity = draw(st.sampled_from(["signal", "order"]))
        status = draw(st.sampled_from(
            ["triggered", "cancelled", "closed"] if entity == "signal"
            else ["accepted", "filled", "cancelled"]))
        data = {"entity": entity, "entity_id": draw(st.sampled_from(IDS)), "status": status}
        if draw(st.booleans()):
            data["reason"] = "why"
        if draw(st.booleans()):
            data["attrs"] = draw(ATTRS)
    else:
        data = {"text": "note", "tags": ["t"], "symbol": symbol}
    minutes = draw(st.integers(0, 4 * 24 * 60))
    at = (BASE + timedelta(minutes=minutes)).astimezone(draw(st.sampled_from(OFFSETS)))
    return {"source": "prop", "type": kind, "time": at.isoformat(),
            "account": draw(st.sampled_from(ACCOUNTS)), "data": data}


@st.composite
def sequences(draw: st.DrawFn, max_size: int = 40, voids: int = 4) -> list[dict[str, Any]]:
    """A list of wire events with unique ids; times are not in seq order. Up to
    ``voids`` voids are put in, each after its target: an earlier event of its account,
    not a void and not voided yet."""
    events = draw(st.lists(wire_events(), min_size=1, max_size=max_size))
    events = [{**event, "id": f"e{i}"} for i, event in enumerate(events)]
    picks = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
                          max_size=voids))
    voided: set[str] = set()
    for number, (at, which) in enumerate(picks):
        where = 1 + at % len(events)
        targets = [e for e in events[:where] if e["type"] != "void" and e["id"] not in voided]
        if not targets:
            continue
        target = targets[which % len(targets)]
        voided.add(target["id"])
        events.insert(where, {
            "id": f"v{number}", "source": "prop", "type": "void", "time": target["time"],
            "account": target["account"],
            "data": {"target_source": "prop", "target_id": target["id"], "reason": "wrong"}})
    return events


def split(items: list[NewEvent], cuts: list[int]) -> list[list[NewEvent]]:
    """``items`` cut into consecutive non-empty groups at the given positions."""
    points = sorted({c % len(items) for c in cuts} - {0})
    bounds = [0, *points, len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


def check_invariants(rows: dict[str, list[dict[str, Any]]],
                     wires: list[dict[str, Any]]) -> None:
    """EVENTS.md invariants 2 and 3, and the sums every view must agree on, per account
    (over the events that voids leave), and the rows of ``tests.fold_model``."""
    sent = wires
    wires = [w for _, w in remaining(sent)]
    balances = {b["account"]: b for b in rows["balances"]}
    assert set(balances) == {w["account"] for w in wires}
    for account, balance in balances.items():
        def of(view: str, account: str = account) -> list[dict[str, Any]]:
            return [r for r in rows[view] if r["account"] == account]

        trades_net = sum_dec(r["net_pnl"] for r in of("trades"))
        positions_realized = sum_dec(r["realized_pnl"] for r in of("positions"))
        daily_realized = sum_dec(r["realized_pnl"] for r in of("daily"))
        realized = Decimal(balance["realized_pnl"])
        assert sum_dec([trades_net, positions_realized]) == realized == daily_realized
        assert sum_dec([balance["cash"], balance["realized_pnl"]]) == Decimal(balance["balance"])
        assert sum_dec([balance["balance"], balance["unrealized_pnl"]]) == Decimal(
            balance["equity"])
        assert sum_dec(r["unrealized_pnl"] for r in of("positions")) == Decimal(
            balance["unrealized_pnl"])
        assert len(of("positions")) == balance["open_positions"]
        mine = [w for w in wires if w["account"] == account]
        assert sum_dec(w["data"]["amount"] for w in mine if w["type"] == "cash") == Decimal(
            balance["cash"])
        assert sum_dec(r["cash_flow"] for r in of("daily")) == Decimal(balance["cash"])
        fees = sum_dec(w["data"].get("fee", "0") for w in mine if w["type"] == "fill")
        assert fees == sum_dec(r["fees"] for r in of("daily"))
        assert fees == sum_dec([*(r["fees"] for r in of("trades")),
                                *(r["fees"] for r in of("positions"))])
        assert Counter(w["type"] for w in mine)["fill"] == sum(r["fills"] for r in of("daily"))
        assert len(of("trades")) == sum(r["trades_closed"] for r in of("daily"))
        for day in of("daily"):
            loss_used = max(Decimal(0), -Decimal(day["realized_pnl"]))
            assert loss_used == Decimal(day["loss_used"])
            limit = day["daily_loss_limit"]
            assert (limit is not None and loss_used > 0
                    and loss_used >= Decimal(limit)) == day["limit_hit"]
            assert day["wins"] + day["losses"] <= day["trades_closed"]
        for position in of("positions"):
            assert Decimal(position["quantity"]) > 0
    check_model(rows, sent)  # the model takes voids out itself, keeping every seq


def _dec_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f") if value else "0"


def _by_trade(trade: dict[str, Any]) -> str:
    return str(trade["trade_id"])


def check_model(rows: dict[str, list[dict[str, Any]]], wires: list[dict[str, Any]]) -> None:
    """The views' rows agree with the independent model of ``tests.fold_model``: cash,
    realized P&L, open positions, every trade (entry price = the running average cost,
    return_pct, exit detail, strategy, venue, asset class, attrs), history, the account's
    event count and each strategy's signal count."""
    model = Model([{**w, "data": new_event(w).data} for w in wires])
    trade_fields = ("trade_id", "position_key", "symbol", "quantity", "entry_price",
                    "net_pnl", "fees", "return_pct", "exit_reason", "exit_detail",
                    "strategy", "venue", "asset_class", "attrs")
    for name, account in model.accounts.items():
        def of(view: str, name: str = name) -> list[dict[str, Any]]:
            return [r for r in rows[view] if r["account"] == name]

        balance = of("balances")[0]
        assert (account.cash, account.realized) == (
            Decimal(balance["cash"]), Decimal(balance["realized_pnl"]))
        expected_trades = [
            {k: _dec_text(v) if isinstance(v, Decimal) else v for k, v in trade.items()}
            for trade in account.trades]
        # The view's order (closed_at, then seq) is checked by the query tests; the model
        # lists round trips in the order they closed, so compare them by their trade id.
        assert sorted(expected_trades, key=_by_trade) == sorted(
            ({k: t[k] for k in trade_fields} for t in of("trades")), key=_by_trade)
        expected_positions = {
            key: (_dec_text(abs(p.quantity)), _dec_text(p.avg), _dec_text(p.multiplier),
                  p.strategy, p.venue, p.asset_class, p.attrs)
            for key, p in account.positions.items()}
        assert expected_positions == {
            p["position_key"]: (p["quantity"], p["avg_price"], p["multiplier"],
                                p["strategy"], p["venue"], p["asset_class"], p["attrs"])
            for p in of("positions")}
        assert account.history == [
            {k: h[k] for k in ("seq", "entity", "entity_id", "status", "previous_status")}
            for h in of("history")]
        assert [account.events] == [a["events"] for a in of("accounts")]
        counts = {s["strategy"]: s["signals"] for s in of("strategies")}
        assert set(counts) == set(account.strategy_signals) | account.strategies
        assert {k: account.strategy_signals.get(k, 0) for k in counts} == counts


@PROPERTY
@given(sequences(max_size=60))
def test_invariants_hold_after_any_sequence(wires: list[dict[str, Any]]) -> None:
    """Invariants 2 and 3 of EVENTS.md (exact Decimal equality) after a pure fold, and
    the rows of the independent model."""
    check_invariants(fold_rows(stored(wires)), wires)


def _renumbered(rows: dict[str, list[dict[str, Any]]],
                seqs: dict[int, int]) -> dict[str, list[dict[str, Any]]]:
    """``rows`` with the seq fields (journal, history) mapped through ``seqs``."""
    out = {view: [dict(row) for row in found] for view, found in rows.items()}
    for view in ("journal", "history"):
        for row in out[view]:
            row["seq"] = seqs[row["seq"]]
    return out


@PROPERTY
@given(sequences(max_size=40, voids=5))
def test_voids_leave_every_view_as_a_store_that_never_saw_them(
        wires: list[dict[str, Any]]) -> None:
    """Invariant 5: with voids of any event type, every view equals that of a fresh fold
    of the same events without the voided ones and the voids (seqs mapped to the same
    events)."""
    kept = remaining(wires)
    fresh = fold_rows(stored([w for _, w in kept]))
    expected = _renumbered(fresh, {n: seq for n, (seq, _) in enumerate(kept, 1)})
    assert expected == fold_rows(stored(wires))


@st.composite
def one_key_fills(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Fills of one symbol in one account, with voids among them: partial closes, adds
    after them and flips are common."""
    fills = draw(st.lists(st.tuples(st.sampled_from(["buy", "sell"]),
                                    st.sampled_from(QUANTITIES), st.sampled_from(PRICES)),
                          min_size=1, max_size=30))
    wires = [{"id": f"e{i}", "source": "prop", "type": "fill", "account": "A",
              "time": (BASE + timedelta(minutes=i)).isoformat(),
              "data": {"symbol": "AAA", "side": side, "quantity": quantity, "price": price,
                       "fee": "0.1"}}
             for i, (side, quantity, price) in enumerate(fills)]
    for number, index in enumerate(draw(st.lists(st.integers(0, 29), max_size=2,
                                                 unique=True))):
        if index < len(wires) and wires[index]["type"] == "fill":
            wires.append({"id": f"v{number}", "source": "prop", "type": "void",
                          "account": "A", "time": wires[index]["time"],
                          "data": {"target_source": "prop", "target_id": wires[index]["id"],
                                   "reason": "wrong"}})
    return wires


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_key_fills())
def test_entry_price_is_the_last_average_price_shown(wires: list[dict[str, Any]]) -> None:
    """Invariant 6: a closed trade's entry_price equals the avg_price its position showed
    just before the fill that closed it; and every view agrees with the model."""
    check_invariants(fold_rows(stored(wires)), wires)
    state = State()
    events = stored(wires)
    kept: dict[str, list[Any]] = {}
    shown: dict[tuple[str, str], Decimal] = {}

    def history(account: str, before: int, types: Any) -> list[Any]:
        return [e for e in kept.get(account, []) if e.seq < before
                and (types is None or e.event_type in types)]

    for event in events:
        kept.setdefault(event.account, []).append(event)
        shown = {(a, k): p.avg_price for a, keys in state.positions.items()
                 for k, p in keys.items()}
        state = apply(state, event, history=history)
        if event.event_type == "void":  # the account folded again: every trade re-made
            state.trades.clear()
            continue
        for trade in state.trades:
            assert shown[(trade.account, trade.position_key)] == trade.entry_price
        state.trades.clear()


async def _append_incrementally(path: Path, news: list[NewEvent], cuts: list[int],
                                restart_at: int, lagging: bool) -> None:
    """Append ``news`` in groups with the views attached, restarting before group
    ``restart_at``; with ``lagging`` that group is appended with no views attached, so
    the restart must fold exactly it."""
    groups = split(news, cuts)
    recorder = await Recorder.open(path)
    try:
        _, folded = await open_views(recorder)
        assert 0 == folded
        for number, group in enumerate(groups):
            if number == restart_at:
                await recorder.close()
                behind = 0
                if lagging:
                    bare = await Recorder.open(path)
                    try:
                        await bare.append(group)
                    finally:
                        await bare.close()
                    behind = len(group)
                recorder = await Recorder.open(path)
                _, folded = await open_views(recorder)
                assert behind == folded
                if lagging:
                    continue
            await recorder.append(group)
    finally:
        await recorder.close()


async def _rebuild_incremental_pure(wires: list[dict[str, Any]], cuts: list[int],
                                    restart_at: int, lagging: bool) -> None:
    news = [new_event(w) for w in wires]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.db"
        await _append_incrementally(path, news, cuts, restart_at, lagging)
        incremental = dump_tables(path)
        recorder = await Recorder.open(path)
        try:
            _, folded = await open_views(recorder)
            assert 0 == folded
            now = await view_rows(recorder)
            events = await recorder.read(1, 10**6)
            assert len(wires) == len(events)
            assert fold_rows(events) == now
            _, folded = await rebuild_views(recorder)
            assert len(wires) == folded
            assert now == await view_rows(recorder)
        finally:
            await recorder.close()
        assert incremental == dump_tables(path)
        check_invariants(now, wires)


@PROPERTY
@given(sequences(), st.lists(st.integers(0, 100), max_size=8), st.integers(0, 8),
       st.booleans())
def test_rebuild_equals_incremental_and_pure_fold(
        wires: list[dict[str, Any]], cuts: list[int], restart_at: int, lagging: bool) -> None:
    """Invariant 1: the rows kept incrementally (random group splits, a restart in the
    middle, possibly with events appended while no views were attached) equal a rebuild
    from the log (every column of every table) and a pure fold of all events."""
    asyncio.run(_rebuild_incremental_pure(wires, cuts, restart_at, lagging))


async def _as_of_equals_prefix(wires: list[dict[str, Any]], cuts: list[int], n: int) -> None:
    news = [new_event(w) for w in wires]
    n = n % (len(news) + 1)
    with tempfile.TemporaryDirectory() as directory:
        full = await Recorder.open(Path(directory) / "full.db")
        prefix = await Recorder.open(Path(directory) / "prefix.db")
        try:
            await open_views(full)
            await open_views(prefix)
            for group in split(news, cuts):
                await full.append(group)
            if n:
                await prefix.append(news[:n])
            assert await view_rows(prefix) == await view_rows(full, as_of=n)
        finally:
            await full.close()
            await prefix.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequences(), st.lists(st.integers(0, 100), max_size=5), st.integers(0, 1000))
def test_as_of_equals_a_fresh_store_fed_the_prefix(
        wires: list[dict[str, Any]], cuts: list[int], n: int) -> None:
    """Invariant 4: the views ``as_of`` seq N equal those of a fresh store fed events 1..N."""
    asyncio.run(_as_of_equals_prefix(wires, cuts, n))
