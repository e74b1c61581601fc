"""The metrics against an independent computation with pandas/numpy.

The accounting (balances, trades, daily rows) comes from the views, which their own
tests check; what is independent here is every metric's formula: written again with
pandas group-bys, cumulative maxima, numpy's std and so on, over (1) a long random
history with flips, hedged positions, transfers and a non-UTC time zone, and (2) the
demo bot's run over the real EUR/USD bars through a real daemon.
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import argparse
import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pytest

from daemon.config import load_config
from daemon.report import report_command
from eventstore.record import StoredEvent
from eventstore.recorder import Recorder
from examples.sma_bot import ACCOUNT as DEMO_ACCOUNT
from examples.sma_bot import DATA, read_bars, run
from projections.fold import apply
from projections.metrics import compute_metrics
from projections.query import ViewQuery, query_view
from projections.query_params import MAX_LIMIT
from projections.state import State
from tests.daemon.test_demo import independent_backtest
from tests.fold_support import ev, new_event
from tests.support import DaemonProcess

ACCOUNT = "rnd"
DEMO_BARS = 2000


def random_history(seed: int, count: int) -> list[dict[str, Any]]:
    """``count`` random events of one account in New York time: fills (netting, flips,
    hedged ``pos-*`` ids, two multipliers), marks, signals of two strategies, deposits,
    withdrawals, fees and interest, at increasing times 10 minutes to 30 hours apart."""
    rnd = random.Random(seed)
    moment = datetime(2023, 11, 20, 14, tzinfo=UTC)
    prices = {"AAA": 100.0, "BBB": 20.0}
    signals: list[str] = []
    book: dict[str, int] = {}   # position key -> signed quantity

    def at() -> str:
        nonlocal moment
        moment += timedelta(minutes=rnd.randint(10, 30 * 60))
        return moment.isoformat().replace("+00:00", "Z")

    events = [
        ev("cash", {"amount": "100000", "kind": "deposit"}, account=ACCOUNT, time=at()),
        ev("limits", {"daily_loss_limit": "500", "timezone": "America/New_York"},
           account=ACCOUNT, time=at()),
    ]
    while len(events) < count:
        prices = {s: max(1.0, p * (1 + rnd.gauss(0, 0.01))) for s, p in prices.items()}
        roll = rnd.random()
        if roll < 0.45:
            symbol = rnd.choice(list(prices))
            key = f"pos-{symbol}-{rnd.randint(1, 2)}" if rnd.random() < 0.2 else symbol
            held = book.get(key, 0)
            quantity = rnd.choice([1, 2, 3, 5])
            side = rnd.choice(["buy", "sell"])
            if held and rnd.random() < 0.6:   # close it, or now and then flip it
                side = "sell" if held > 0 else "buy"
                quantity = abs(held) + (rnd.choice([1, 2]) if rnd.random() < 0.2 else 0)
            book[key] = held + (quantity if side == "buy" else -quantity)
            data: dict[str, Any] = {
                "symbol": symbol, "side": side, "quantity": str(quantity),
                "price": f"{prices[symbol]:.2f}", "fee": rnd.choice(["0", "0.5", "1.25"])}
            if symbol == "BBB":
                data["multiplier"] = "10"
            if key != symbol:
                data["position_id"] = key
            if signals and rnd.random() < 0.6:
                data["signal_id"] = rnd.choice(signals)
            events.append(ev("fill", data, account=ACCOUNT, time=at()))
        elif roll < 0.8:
            marked = {s: f"{p:.2f}" for s, p in prices.items() if rnd.random() < 0.8}
            if marked:
                events.append(ev("mark", {"prices": marked}, account=ACCOUNT, time=at()))
        elif roll < 0.9:
            sid = f"sig-{len(events)}"
            signals.append(sid)
            events.append(ev("signal", {"signal_id": sid, "strategy": rnd.choice(["x", "y"]),
                                        "symbol": rnd.choice(list(prices)), "side": "long"},
                             account=ACCOUNT, time=at()))
        else:
            kind, amount = rnd.choice([("deposit", "5000"), ("withdrawal", "-3000"),
                                       ("fee", "-7.5"), ("interest", "3.1")])
            events.append(ev("cash", {"amount": amount, "kind": kind}, account=ACCOUNT,
                             time=at()))
    return events


async def views_of(recorder: Recorder, account: str) -> dict[str, list[dict[str, Any]]]:
    """The trades, signals, daily and balances rows of ``account`` (folded from the log)."""
    last = await recorder.last_seq()
    return {name: (await query_view(recorder, ViewQuery(name, account=account, as_of=last,
                                                        limit=MAX_LIMIT)))["rows"]
            for name in ("trades", "signals", "daily", "balances")}


async def event_frame(recorder: Recorder, account: str) -> pd.DataFrame:
    """One row per event of the account: its type, time, trading day, whether it closed a
    round trip, the transfer it made, and the balances after it (from the views' fold)."""
    events: list[StoredEvent] = []
    while True:
        page = await recorder.read((events[-1].seq + 1) if events else 1, 5000,
                                   account=account)
        if not page:
            break
        events += page
    state = State()
    rows = []
    for event in events:
        apply(state, event)
        acct = state.accounts[account]
        transfer = (Decimal(event.data["amount"]) if event.event_type == "cash"
                    and event.data["kind"] in ("deposit", "withdrawal") else Decimal(0))
        rows.append({
            "type": event.event_type, "time": pd.Timestamp(event.time),
            "closed": state.effect.closed is not None, "transfer": float(transfer),
            "balance": float(acct.cash + acct.realized_pnl),
            "equity": float(acct.cash + acct.realized_pnl + acct.unrealized_pnl),
            "tz": acct.timezone})
    frame = pd.DataFrame(rows)
    frame["day"] = [t.tz_convert(z).strftime("%Y-%m-%d")
                    for t, z in zip(frame["time"], frame["tz"], strict=True)]
    return frame


def independent(frame: pd.DataFrame, views: dict[str, list[dict[str, Any]]],
                today: str, periods: int | None = None) -> dict[str, Any]:
    """Every metric recomputed with pandas/numpy from the views and the event frame."""
    trades = pd.DataFrame(views["trades"])
    strategies = {s["signal_id"]: s["strategy"] for s in views["signals"]}
    trades["net"] = trades["net_pnl"].map(Decimal)
    trades["strategy"] = trades["signal_id"].map(strategies.get)
    wins, losses = trades[trades.net > 0], trades[trades.net < 0]
    out: dict[str, Any] = {
        "round_trips": len(trades), "wins": len(wins), "losses": len(losses),
        "breakevens": int((trades.net == 0).sum()),
        "net_pnl": sum(trades.net, Decimal(0)),
        "gross_profit": sum(wins.net, Decimal(0)), "gross_loss": sum(losses.net, Decimal(0)),
        "win_rate_pct": 100 * len(wins) / (len(wins) + len(losses)),
        "profit_factor": float(wins.net.sum()) / -float(losses.net.sum()),
        "expectancy": trades.net.map(float).mean(),
        "average_win": wins.net.map(float).mean(), "average_loss": losses.net.map(float).mean(),
        "largest_win": max(wins.net), "largest_loss": min(losses.net),
        "average_holding_seconds": trades.holding_seconds.mean(),
    }
    result = trades.net.map(lambda n: 1 if n > 0 else (-1 if n < 0 else 0))
    runs = (result != result.shift()).cumsum()
    lengths = result.groupby(runs).agg(["first", "size"])
    out["longest_winning_streak"] = int(lengths[lengths["first"] == 1]["size"].max())
    out["longest_losing_streak"] = int(lengths[lengths["first"] == -1]["size"].max())
    out["by_symbol"] = {k: (len(g), sum(g.net, Decimal(0))) for k, g in trades.groupby("symbol")}
    out["by_strategy"] = {k: (len(g), sum(g.net, Decimal(0)))
                          for k, g in trades.groupby(trades.strategy.fillna("-"))}
    daily = pd.DataFrame(views["daily"])
    daily["pnl"] = daily["realized_pnl"].map(Decimal)
    filled = daily[daily.fills > 0]
    out["calendar"] = dict(zip(filled.date, filled.pnl, strict=True))
    monday = (date.fromisoformat(today) - timedelta(days=date.fromisoformat(today).weekday()))
    out["pnl"] = {
        "all_time": sum(daily.pnl, Decimal(0)),
        "year_to_date": sum(daily[daily.date >= today[:4] + "-01-01"].pnl, Decimal(0)),
        "month_to_date": sum(daily[daily.date >= today[:7] + "-01"].pnl, Decimal(0)),
        "week_to_date": sum(daily[daily.date >= monday.isoformat()].pnl, Decimal(0)),
        "today": sum(daily[daily.date == today].pnl, Decimal(0)),
    }
    weekend = {date.fromisoformat(d).weekday() for d in filled.date}
    out["annualization"] = periods or (365 if {5, 6} <= weekend else 252)
    days = frame.groupby("day").agg(equity=("equity", "last"), flow=("transfer", "sum"))
    base = days.equity.shift(1).fillna(0) + days.flow
    returns = ((days.equity - base) / base)[base > 0]
    out["returns"] = returns
    n = out["annualization"]
    out["sharpe"] = returns.mean() / returns.std(ddof=1) * np.sqrt(n)
    out["sortino"] = returns.mean() / np.sqrt((np.minimum(returns, 0) ** 2).mean()) * np.sqrt(n)
    monthly = (1 + returns).groupby(returns.index.str[:7]).prod() - 1
    out["monthly_return_pct"] = (monthly * 100).to_dict()
    samples = frame[(frame.type == "mark") | frame.closed].copy()
    samples["x"] = samples.equity - frame.transfer.cumsum()[samples.index]
    samples = samples.reset_index(drop=True)
    new_peak = samples.x > samples.x.cummax().shift(1).fillna(-np.inf)
    peak_at = pd.Series(np.where(new_peak, samples.index, np.nan)).ffill().astype(int)
    peak_x = samples.x[peak_at].to_numpy()
    peak_equity = samples.equity[peak_at].to_numpy()
    drawdown = peak_x - samples.x.to_numpy()
    worst = int(np.argmax(drawdown))
    out["max_drawdown"] = drawdown[worst]
    out["max_drawdown_pct"] = 100 * drawdown[worst] / peak_equity[worst]
    out["max_drawdown_peak"] = samples.time[peak_at[worst]]
    out["max_drawdown_trough"] = samples.time[worst]
    out["deepest_pct"] = (100 * drawdown / peak_equity).max()
    out["current_drawdown"] = drawdown[-1]
    out["marked"] = samples[samples.type == "mark"].equity.to_numpy()
    out["balances"] = samples[samples.closed].balance.to_numpy()
    return out


def check(result: dict[str, Any], ind: dict[str, Any]) -> None:
    """Assert that ``compute_metrics``'s answer equals the independent figures: money
    exactly, quotients to 1e-9 relative (floats against the answer's 10 places)."""
    trades = result["trades"]
    for key in ("round_trips", "wins", "losses", "breakevens", "longest_winning_streak",
                "longest_losing_streak"):
        assert ind[key] == trades[key], key
    for key in ("net_pnl", "gross_profit", "gross_loss", "largest_win", "largest_loss"):
        assert ind[key] == Decimal(trades[key]), key
    for key in ("win_rate_pct", "profit_factor", "expectancy", "average_win", "average_loss",
                "average_holding_seconds"):
        assert ind[key] == pytest.approx(float(trades[key]), rel=1e-9, abs=1e-9), key
    assert ind["by_symbol"] == {r["symbol"]: (r["round_trips"], Decimal(r["net_pnl"]))
                                for r in result["by_symbol"]}
    assert ind["by_strategy"] == {r["strategy"] or "-": (r["round_trips"], Decimal(r["net_pnl"]))
                                  for r in result["by_strategy"]}
    assert ind["calendar"] == {d["date"]: Decimal(d["realized_pnl"])
                               for d in result["calendar"]["days"]}
    assert ind["pnl"] == {k: Decimal(v) for k, v in result["pnl"].items()}
    ratios = result["ratios"]
    assert ind["annualization"] == ratios["annualization"]
    assert len(ind["returns"]) == ratios["daily_returns"]
    assert ind["sharpe"] == pytest.approx(float(ratios["sharpe"]), rel=1e-8)
    assert ind["sortino"] == pytest.approx(float(ratios["sortino"]), rel=1e-8)
    got_returns = {d["date"]: float(d["return_pct"]) for d in result["equity"]["daily"]
                   if d["return_pct"] is not None}
    assert (ind["returns"] * 100).to_dict() == pytest.approx(got_returns, abs=1e-9)
    got_monthly = {m["month"]: float(m["return_pct"]) for m in result["calendar"]["months"]
                   if m["return_pct"] is not None}
    assert ind["monthly_return_pct"] == pytest.approx(got_monthly, abs=1e-8)
    dd = result["drawdown"]
    assert ind["max_drawdown"] == pytest.approx(float(dd["max"]["amount"]), abs=1e-6)
    assert ind["max_drawdown_pct"] == pytest.approx(float(dd["max"]["pct"]), abs=1e-8)
    assert ind["max_drawdown_peak"] == pd.Timestamp(dd["max"]["peak_time"])
    assert ind["max_drawdown_trough"] == pd.Timestamp(dd["max"]["trough_time"])
    assert ind["deepest_pct"] == pytest.approx(float(dd["max_pct"]["pct"]), abs=1e-8)
    assert ind["current_drawdown"] == pytest.approx(float(dd["current"]["amount"]), abs=1e-6)
    assert list(ind["marked"]) == pytest.approx(
        [float(p["equity"]) for p in result["equity"]["marked_curve"]], abs=1e-6)
    assert list(ind["balances"]) == pytest.approx(
        [float(p["balance"]) for p in result["equity"]["balance_curve"]], abs=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_history_matches_pandas(tmp_path: Path, seed: int) -> None:
    """On 3,000 random events, every metric equals its pandas/numpy recomputation, and
    the calendar adds up to the balances view's realized P&L (invariant 2)."""
    recorder = await Recorder.open(tmp_path / "log.db")
    try:
        events = random_history(seed, 3000)
        for start in range(0, len(events), 1000):
            await recorder.append([new_event(e) for e in events[start:start + 1000]])
        end = events[-1]["time"]  # a historical report: "today" is the history's last day
        result = await compute_metrics(recorder, ACCOUNT, now=end)
        views = await views_of(recorder, ACCOUNT)
        frame = await event_frame(recorder, ACCOUNT)
        given = await compute_metrics(recorder, ACCOUNT, annualization=252, now=end)
    finally:
        await recorder.close()
    assert result["trades"]["round_trips"] > 100
    assert result["trades"]["breakevens"] >= 0
    check(result, independent(frame, views, result["today"]))
    check(given, independent(frame, views, result["today"], periods=252))
    [balance] = views["balances"]
    assert Decimal(balance["realized_pnl"]) == Decimal(result["pnl"]["all_time"])
    assert balance["equity"] == result["equity"]["final"]["equity"]
    today = next((d for d in views["daily"] if d["date"] == result["today"]), None)
    loss_used = today["loss_used"] if today else "0"
    assert (loss_used, "500") == (result["daily_loss"]["loss_used"],
                                  result["daily_loss"]["limit"])


def test_demo_run_report_matches_independent(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The demo bot over real EUR/USD bars through a real daemon: ``tradelog report
    --json --html`` gives the closed-trade count and realized P&L of the independent
    backtest, and every other figure equals the pandas recomputation."""
    import asyncio

    bars = read_bars(DATA, DEMO_BARS)
    trades, realized, cash = independent_backtest(DATA, DEMO_BARS)
    with DaemonProcess(tmp_path) as daemon:
        run(daemon.socket, bars)
    config = load_config(None, {"db": daemon.db, "socket": daemon.socket})
    page = tmp_path / "report.html"
    args = argparse.Namespace(account=None, json=True, html=page, db=daemon.db,
                              socket=daemon.socket)
    assert 0 == report_command(args, config)
    [result] = json.loads(capsys.readouterr().out)["accounts"]

    async def gather() -> tuple[dict[str, Any], pd.DataFrame]:
        recorder = await Recorder.open(daemon.db, readonly=True)
        try:
            return (await views_of(recorder, DEMO_ACCOUNT),
                    await event_frame(recorder, DEMO_ACCOUNT))
        finally:
            await recorder.close()

    views, frame = asyncio.run(gather())
    assert DEMO_ACCOUNT == result["account"]
    assert trades == result["trades"]["round_trips"]
    assert realized == Decimal(result["pnl"]["all_time"])
    assert cash + realized == Decimal(result["equity"]["final"]["balance"])
    assert 252 == result["ratios"]["annualization"]
    check(result, independent(frame, views, result["today"]))
    assert DEMO_BARS == len(result["equity"]["marked_curve"])
    assert 50_000 < page.stat().st_size < 1_000_000  # uPlot inlined, day-end series
