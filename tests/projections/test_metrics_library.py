"""The risk, benchmark and per-strategy figures against empyrical, scipy and pandas.

A generated history of 45 weekdays: strategy alpha trades one round trip a day (no
overnight risk), strategy beta holds BBB for three days at a time (so its equity moves
with the marks overnight), and SPY, the account's benchmark, is marked every day. The
generator keeps its own books (simple arithmetic, no fold): each strategy's P&L at every
day's end. Those day-end series give the daily returns handed to empyrical (the library
pyfolio and quantstats build on), scipy and pandas; the answer must agree to 1e-6
relative, or the test states the convention that differs (docs/METRICS.md).
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import empyrical  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pytest
from scipy import stats  # type: ignore[import-untyped,unused-ignore]

from eventstore.recorder import Recorder
from projections.metrics import compute_metrics
from tests.fold_support import ev, new_event
from tests.projections.test_metrics_random import views_of

ACCOUNT = "lib"
CAPITAL = 100_000
REL = 1e-6
END = "2024-03-08T23:00:00Z"


@dataclass
class Books:
    """The generator's own books: P&L by strategy at each day's end, SPY's closes."""

    days: list[str] = field(default_factory=list)
    pnl: dict[str, list[float]] = field(default_factory=lambda: {"alpha": [], "beta": []})
    spy: list[float] = field(default_factory=list)
    beta_open: list[tuple[str, str]] = field(default_factory=list)


def history(seed: int = 7, *, deposit: bool = True, attrs: dict[str, Any] | None = None,
            weekdays: int = 45) -> tuple[list[dict[str, Any]], Books]:
    """The events (see the module doc) and the books kept beside them."""
    rnd = random.Random(seed)
    books = Books()
    day = date(2024, 1, 1)  # a Monday
    account_data: dict[str, Any] = {"name": "lib", "benchmark": "SPY"}
    if attrs:
        account_data["attrs"] = attrs
    events = [ev("account", account_data, account=ACCOUNT, time="2024-01-01T08:00:00Z")]
    if deposit:
        events.append(ev("cash", {"amount": str(CAPITAL), "kind": "deposit"},
                         account=ACCOUNT, time="2024-01-01T08:30:00Z"))
    for sid, strategy, symbol in (("sa", "alpha", "AAA"), ("sb", "beta", "BBB")):
        events.append(ev("signal", {"signal_id": sid, "strategy": strategy, "symbol": symbol,
                                    "side": "long"}, account=ACCOUNT,
                         time="2024-01-01T08:45:00Z"))
    alpha = beta_realized = 0.0
    spy, bbb = 400.0, 50.0
    held: tuple[float, int] | None = None  # BBB entry price, days held
    count = 0
    while count < weekdays:
        if day.weekday() < 5:
            stamp = day.isoformat()

            def at(hour: int, minute: int = 0, stamp: str = stamp) -> str:
                return f"{stamp}T{hour:02d}:{minute:02d}:00Z"

            def fill(hour: int, symbol: str, side: str, price: float, sid: str,
                     at: Any = at) -> dict[str, Any]:
                return ev("fill", {"symbol": symbol, "side": side, "quantity": "100",
                                   "price": f"{price:.2f}", "signal_id": sid},
                          account=ACCOUNT, time=at(hour))

            entry = round(rnd.uniform(90, 110), 2)
            exit_ = round(entry * (1 + rnd.gauss(0.001, 0.01)), 2)
            events += [fill(10, "AAA", "buy", entry, "sa"), fill(11, "AAA", "sell", exit_, "sa")]
            alpha += 100 * (round(exit_, 2) - round(entry, 2))
            bbb = round(bbb * (1 + rnd.gauss(0.0005, 0.02)), 2)
            if held is None:
                events.append(fill(12, "BBB", "buy", bbb, "sb"))
                held = (bbb, 0)
                books.beta_open.append((at(12), ""))
            elif held[1] >= 2:
                events.append(fill(12, "BBB", "sell", bbb, "sb"))
                beta_realized += 100 * (bbb - held[0])
                books.beta_open[-1] = (books.beta_open[-1][0], at(12))
                held = None
            else:
                held = (held[0], held[1] + 1)
            spy = round(spy * (1 + rnd.gauss(0.0003, 0.01)), 2)
            events.append(ev("mark", {"prices": {"BBB": f"{bbb:.2f}", "SPY": f"{spy:.2f}"}},
                             account=ACCOUNT, time=at(16)))
            unrealized = 0.0 if held is None else 100 * (bbb - held[0])
            books.days.append(stamp)
            books.pnl["alpha"].append(alpha)
            books.pnl["beta"].append(beta_realized + unrealized)
            books.spy.append(spy)
            count += 1
        day += timedelta(days=1)
    return events, books


async def metrics_of(tmp_path: Path, events: list[dict[str, Any]], name: str = "log.db",
                     **params: Any) -> dict[str, Any]:
    """``compute_metrics`` of ``ACCOUNT`` over ``events`` in a fresh log."""
    recorder = await Recorder.open(tmp_path / name)
    try:
        await recorder.append([new_event(e) for e in events])
        return await compute_metrics(recorder, ACCOUNT, now=END, **params)
    finally:
        await recorder.close()


@pytest.fixture
async def answer(tmp_path: Path) -> tuple[dict[str, Any], Books]:
    """The metrics of the 45-day history, and its books."""
    events, books = history()
    return await metrics_of(tmp_path, events), books


def returns_of(pnl: list[float]) -> np.ndarray:
    """Daily returns of capital + P&L, the first day's over the deposit."""
    equity = np.array([CAPITAL + p for p in pnl])
    before = np.concatenate([[CAPITAL], equity[:-1]])
    return np.asarray(equity / before - 1)


def approx(value: float) -> Any:
    return pytest.approx(value, rel=REL, abs=1e-12)


def check_series(figures: dict[str, Any], r: np.ndarray) -> None:
    """Every equity figure of one series against the libraries on its returns ``r``."""
    assert len(r) == figures["daily_returns"]
    assert approx(empyrical.sharpe_ratio(r, annualization=252)) == float(figures["sharpe"])
    assert approx(empyrical.sortino_ratio(r, annualization=252)) == float(figures["sortino"])
    assert approx(empyrical.calmar_ratio(r, annualization=252)) == float(figures["calmar"])
    assert approx(empyrical.annual_return(r, annualization=252) * 100) == float(
        figures["annual_return_pct"])
    assert approx(empyrical.annual_volatility(r, annualization=252) * 100) == float(
        figures["volatility_pct"])
    assert approx(-empyrical.max_drawdown(r) * 100) == float(figures["max_drawdown"]["pct"])
    for name, cut in (("95", 0.05), ("99", 0.01)):
        assert approx(empyrical.value_at_risk(r, cut) * 100) == float(figures[f"var_{name}_pct"])
        assert approx(empyrical.conditional_value_at_risk(r, cut) * 100) == float(
            figures[f"cvar_{name}_pct"])
        normal = stats.norm.ppf(cut, loc=np.mean(r), scale=np.std(r, ddof=1))
        assert approx(normal * 100) == float(figures[f"parametric_var_{name}_pct"])
    series = pd.Series(r)
    assert approx(series.skew()) == float(figures["skew"])
    assert approx(series.kurt()) == float(figures["kurtosis"])
    assert approx((np.prod(1 + r) - 1) * 100) == float(figures["return_pct"])
    losing = max(len(run) for run in "".join("L" if x < 0 else "." for x in r).split("."))
    assert losing == figures["longest_losing_days"]
    assert None is figures["reason"]


async def test_account_figures_agree_with_empyrical(
        answer: tuple[dict[str, Any], Books]) -> None:
    """The account's Sharpe, Sortino, Calmar, volatility, VaR/CVaR (historical and
    normal), skew, kurtosis, drawdown and losing run equal empyrical/scipy/pandas on the
    account's daily returns (alpha + beta over the capital)."""
    result, books = answer
    total = [a + b for a, b in zip(books.pnl["alpha"], books.pnl["beta"], strict=True)]
    r = returns_of(total)
    check_series(result["risk"], r)
    assert result["ratios"]["sharpe"] == result["risk"]["sharpe"]
    assert approx(total[-1]) == float(result["headline"]["net_pnl"])


async def test_each_strategy_has_its_own_equity_and_ratios(
        answer: tuple[dict[str, Any], Books]) -> None:
    """Per strategy, capital + that strategy's realized and unrealized P&L gives its own
    returns, and every figure agrees with the libraries; the two differ (not the
    account's Sharpe twice)."""
    result, books = answer
    by_name = {s["strategy"]: s for s in result["strategies"]}
    for name in ("alpha", "beta"):
        check_series(by_name[name], returns_of(books.pnl[name]))
        assert approx(books.pnl[name][-1]) == float(by_name[name]["net_pnl"])
        assert [CAPITAL + p for p in books.pnl[name]] == pytest.approx(
            [float(p["equity"]) for p in by_name[name]["equity_curve"]])
    assert by_name["alpha"]["sharpe"] != by_name["beta"]["sharpe"]
    symbols = {s["symbol"]: s for s in result["symbols"]}
    assert by_name["beta"]["sharpe"] == symbols["BBB"]["sharpe"]
    assert "SPY" not in symbols


async def test_benchmark_figures_agree_with_empyrical(
        answer: tuple[dict[str, Any], Books]) -> None:
    """Against SPY's marks: beta and alpha (empyrical ``alpha_beta``), correlation
    (numpy), tracking error std(r - b) * sqrt(252), information ratio = empyrical's
    ``excess_sharpe`` * sqrt(252) (empyrical does not annualise it), and both returns
    over the same 44 days (the first day has no previous SPY close)."""
    result, books = answer
    total = [a + b for a, b in zip(books.pnl["alpha"], books.pnl["beta"], strict=True)]
    r = returns_of(total)[1:]
    spy = np.array(books.spy)
    b = spy[1:] / spy[:-1] - 1
    bench = result["benchmark"]
    assert ("SPY", "marks", 44, None) == (bench["symbol"], bench["source"], bench["days"],
                                          bench["reason"])
    alpha, beta = empyrical.alpha_beta(r, b, annualization=252)
    assert approx(alpha) == float(bench["alpha"])
    assert approx(beta) == float(bench["beta"])
    assert approx(np.corrcoef(r, b)[0, 1]) == float(bench["correlation"])
    assert approx(np.std(r - b, ddof=1) * math.sqrt(252) * 100) == float(
        bench["tracking_error_pct"])
    assert approx(empyrical.excess_sharpe(r, b) * math.sqrt(252)) == float(
        bench["information_ratio"])
    assert approx((np.prod(1 + b) - 1) * 100) == float(bench["return_pct"])
    assert approx((np.prod(1 + r) - 1) * 100) == float(bench["account_return_pct"])
    assert approx(books.spy[-1] / books.spy[0]) == float(bench["curve"][-1]["growth"])


async def test_benchmark_from_a_price_file(tmp_path: Path) -> None:
    """Prices given by the caller replace the marks (source "file")."""
    events, books = history()
    prices = {d: Decimal(str(2 * p))
              for d, p in zip(books.days, books.spy, strict=True)}
    result = await metrics_of(tmp_path, events, benchmark_prices=prices,
                              benchmark_name="spy.csv")
    marks = await metrics_of(tmp_path, events, name="again.db")
    bench = result["benchmark"]
    assert ("spy.csv", "file") == (bench["symbol"], bench["source"])
    assert approx(float(marks["benchmark"]["beta"])) == float(bench["beta"])


async def test_exposure_is_time_with_a_position_open(
        answer: tuple[dict[str, Any], Books]) -> None:
    """Alpha is in the market one hour a trading day; beta from each BBB buy to its sell
    (or the last event); the account the union of both."""
    result, books = answer
    start = pd.Timestamp("2024-01-01T08:00:00Z")
    end = pd.Timestamp(books.days[-1] + "T16:00:00Z")
    span = (end - start).total_seconds()
    alpha = {s["strategy"]: s for s in result["strategies"]}["alpha"]
    assert 45 * 3600 == alpha["exposure_seconds"]
    assert approx(100 * 45 * 3600 / span) == float(alpha["exposure_pct"])
    beta_seconds = sum(((pd.Timestamp(c) if c else end) - pd.Timestamp(o)).total_seconds()
                       for o, c in books.beta_open)
    beta = {s["strategy"]: s for s in result["strategies"]}["beta"]
    assert int(beta_seconds) == beta["exposure_seconds"]
    minutes = pd.date_range(start, end, freq="min", inclusive="left")
    busy = np.zeros(len(minutes), dtype=bool)
    spans = [(pd.Timestamp(f"{d}T10:00:00Z"), pd.Timestamp(f"{d}T11:00:00Z"))
             for d in books.days]
    spans += [(pd.Timestamp(o), pd.Timestamp(c) if c else end) for o, c in books.beta_open]
    for opened, closed in spans:
        busy |= (minutes >= opened) & (minutes < closed)
    assert 60 * int(busy.sum()) == result["risk"]["exposure_seconds"]


async def test_period_tables_match_pandas(tmp_path: Path) -> None:
    """``period="week"``: per ISO week, realized P&L, round trips, wins, losses, win rate
    and the compounded return equal pandas group-bys over the ``trades`` view, the
    ``daily`` view and the daily returns; ``day`` and ``month`` tables likewise."""
    events, _ = history()
    recorder = await Recorder.open(tmp_path / "log.db")
    try:
        await recorder.append([new_event(e) for e in events])
        tables = {p: await compute_metrics(recorder, ACCOUNT, now=END, period=p)
                  for p in ("day", "week", "month")}
        views = await views_of(recorder, ACCOUNT)
    finally:
        await recorder.close()
    result = tables["week"]
    daily = pd.DataFrame({"date": pd.to_datetime(
        [d["date"] for d in result["equity"]["daily"]]),
        "r": [float(d["return_pct"]) / 100 for d in result["equity"]["daily"]]})
    trades = pd.DataFrame({"date": pd.to_datetime([t["closed_at"] for t in views["trades"]]
                                                  ).tz_localize(None).normalize(),
                           "net": [float(t["net_pnl"]) for t in views["trades"]]})
    pnl = pd.DataFrame({"date": pd.to_datetime([d["date"] for d in views["daily"]]),
                        "pnl": [float(d["realized_pnl"]) for d in views["daily"]]})

    def key(frame: pd.DataFrame, period: str) -> pd.Series:
        if period == "day":
            return frame.date.dt.strftime("%Y-%m-%d")
        if period == "month":
            return frame.date.dt.strftime("%Y-%m")
        iso = frame.date.dt.isocalendar()
        return iso.year.astype(str) + "-W" + iso.week.map("{:02d}".format)

    for period, answer in tables.items():
        assert period == answer["periods"]["period"]
        rows = {row["period"]: row for row in answer["periods"]["rows"]}
        growth = daily.groupby(key(daily, period)).r.apply(lambda x: (np.prod(1 + x) - 1) * 100)
        assert list(growth.index) == list(rows)
        for name, value in growth.items():
            assert approx(value) == float(rows[name]["return_pct"])
        for name, value in pnl.groupby(key(pnl, period)).pnl.sum().items():
            assert approx(value) == float(rows[name]["realized_pnl"])
        grouped = trades.groupby(key(trades, period)).net
        for name, nets in grouped:
            wins, losses = int((nets > 0).sum()), int((nets < 0).sum())
            assert (len(nets), wins, losses) == (rows[name]["round_trips"], rows[name]["wins"],
                                                 rows[name]["losses"])
            assert approx(100 * wins / (wins + losses)) == float(rows[name]["win_rate_pct"])
    assert ["2024-01", "2024-02", "2024-03"] == [
        r["period"] for r in tables["month"]["periods"]["rows"]]


async def test_no_capital_gives_no_percent(tmp_path: Path) -> None:
    """Without a deposit or a starting_capital attribute every percent figure is absent
    and says why; money figures remain (the 1452.82 % drawdown case)."""
    events, _ = history(deposit=False)
    result = await metrics_of(tmp_path, events)
    reason = result["capital"]["reason"]
    assert reason is not None
    assert reason.startswith("no capital")
    assert None is result["capital"]["source"]
    assert None is result["drawdown"]["max"]["pct"]
    assert Vouch.positive(result["drawdown"]["max"]["amount"])
    assert all(p["drawdown_pct"] is None for p in result["drawdown"]["curve"])
    assert all(d["return_pct"] is None for d in result["equity"]["daily"])
    assert all(m["return_pct"] is None for m in result["calendar"]["months"])
    assert all(r["return_pct"] is None for r in result["periods"]["rows"])
    for figures in [result["risk"], *result["strategies"], *result["symbols"]]:
        assert all(v is None for k, v in figures.items() if k.endswith("_pct")
                   and k != "exposure_pct"), figures
        assert None is figures["max_drawdown"]["pct"]
        assert reason == figures["reason"]
    assert (None, None, reason) == (result["headline"]["return_pct"],
                                    result["headline"]["max_drawdown_pct"],
                                    result["headline"]["reason"])
    assert (None, reason) == (result["ratios"]["sharpe"], result["ratios"]["reason"])
    assert None is result["benchmark"]["beta"]


async def test_starting_capital_attribute_is_the_base(tmp_path: Path) -> None:
    """No deposit but ``starting_capital`` in the account's attrs: returns count over it,
    as if it had been deposited, while money figures stay those of the log."""
    attributed = await metrics_of(tmp_path, history(deposit=False,
                                                    attrs={"starting_capital": CAPITAL})[0])
    deposited = await metrics_of(tmp_path, history()[0], name="d.db")
    assert {"source": "attribute", "amount": str(CAPITAL), "reason": None} == attributed[
        "capital"]
    for key in ("sharpe", "var_95_pct", "return_pct", "volatility_pct"):
        assert deposited["risk"][key] == attributed["risk"][key], key
    assert deposited["drawdown"]["max"]["pct"] == attributed["drawdown"]["max"]["pct"]
    assert "0" == attributed["equity"]["daily"][0]["transfers"]


async def test_two_days_give_no_sharpe(tmp_path: Path) -> None:
    """Two days of data: returns exist but every ratio is withheld, with the reason."""
    events, _ = history(weekdays=2)
    result = await metrics_of(tmp_path, events)
    assert 2 == result["ratios"]["daily_returns"]
    for key in ("sharpe", "sortino", "calmar"):
        assert None is result["ratios"][key]
    assert "needs at least 20 daily returns; there are 2" == result["ratios"]["reason"]
    assert None is result["risk"]["var_95_pct"]
    assert None is result["headline"]["sharpe"]
    assert result["headline"]["return_pct"] is not None
    assert result["benchmark"]["reason"].startswith("needs at least 20 days")


class Vouch:
    """Small readable predicates."""

    @staticmethod
    def positive(text: str) -> bool:
        return float(text) > 0


def deepest_by_pandas(days: list[str], pnl: list[float]) -> dict[str, Any]:
    """Peak, trough and recovery of capital + P&L (the capital itself anchors the peak on
    the first day), with numpy's running maximum."""
    x = np.array([0.0, *pnl])
    labels = [days[0], *days]
    peak_x = np.maximum.accumulate(x)
    trough = int(np.argmax(peak_x - x))
    peak = int(np.argmax(x[:trough + 1]))
    after = [i for i in range(trough + 1, len(x)) if x[i] >= x[peak]]
    recovery = labels[after[0]] if after else None
    return {"amount": float(peak_x[trough] - x[trough]), "peak_date": labels[peak],
            "trough_date": labels[trough], "recovery_date": recovery,
            "recovery_days": (date.fromisoformat(recovery) - date.fromisoformat(
                labels[trough])).days if recovery else None,
            "recovered": recovery is not None,
            "pct": 100 * float(peak_x[trough] - x[trough]) / (CAPITAL + x[peak])}


async def test_drawdown_peak_trough_and_recovery(
        answer: tuple[dict[str, Any], Books]) -> None:
    """For the account and each strategy: the deepest drawdown's amount, percent, peak,
    trough, recovery date and the days from trough to recovery (or not recovered)."""
    result, books = answer
    total = [a + b for a, b in zip(books.pnl["alpha"], books.pnl["beta"], strict=True)]
    cases = [(result["risk"], total)] + [
        (s, books.pnl[s["strategy"]]) for s in result["strategies"]]
    for figures, pnl in cases:
        expected = deepest_by_pandas(books.days, pnl)
        got = figures["max_drawdown"]
        assert approx(expected.pop("amount")) == float(got["amount"])
        assert approx(expected.pop("pct")) == float(got["pct"])
        assert expected == {k: got[k] for k in expected}


async def test_intraday_drawdown_recovers_at_the_first_mark_back_at_the_peak(
        tmp_path: Path) -> None:
    """Deposit 1000, buy 10 @ 100, marks 90 (trough: -100), 99, 100.5 (back above the
    peak 1000 half a day after the trough): recovered then, 0.5 days after the trough."""
    def at(hour: int) -> str:
        return f"2024-01-02T{hour:02d}:00:00Z"

    events = [
        ev("cash", {"amount": "1000", "kind": "deposit"}, account=ACCOUNT, time=at(1)),
        ev("fill", {"symbol": "X", "side": "buy", "quantity": "10", "price": "100"},
           account=ACCOUNT, time=at(2)),
        ev("mark", {"prices": {"X": "100"}}, account=ACCOUNT, time=at(3)),
        ev("mark", {"prices": {"X": "90"}}, account=ACCOUNT, time=at(4)),
        ev("mark", {"prices": {"X": "99"}}, account=ACCOUNT, time=at(10)),
        ev("mark", {"prices": {"X": "100.5"}}, account=ACCOUNT, time=at(16)),
    ]
    result = await metrics_of(tmp_path, events)
    dd = result["drawdown"]["max"]
    assert ("100", "10", at(3), at(4)) == (dd["amount"], dd["pct"], dd["peak_time"],
                                           dd["trough_time"])
    assert (True, at(16), "2024-01-02", "0.5") == (
        dd["recovered"], dd["recovery_time"], dd["recovery_date"], dd["recovery_days"])


async def test_exposure_inside_a_window(tmp_path: Path) -> None:
    """With since/until dates, exposure counts only inside them: alpha's 5 hours in the
    second week over the 5 days from Monday 00:00 to Saturday 00:00 (UTC)."""
    result = await metrics_of(tmp_path, history()[0], since="2024-01-08", until="2024-01-12")
    alpha = {s["strategy"]: s for s in result["strategies"]}["alpha"]
    assert (5 * 3600, 5 * 86400) == (alpha["exposure_seconds"], alpha["span_seconds"])
    assert approx(100 * 5 / 120) == float(alpha["exposure_pct"])


async def test_drawdown_with_a_later_deposit_is_in_money_not_compounded(
        tmp_path: Path) -> None:
    """A convention that differs (docs/METRICS.md): with a deposit after the start, the
    drawdown percent is money lost since the peak over the equity at the peak, the
    deposit taken out; empyrical compounds the time-weighted returns instead, which
    scales earlier losses by later capital. Without the deposit the two agree (above)."""
    events, books = history()
    total = np.array([a + b for a, b in zip(books.pnl["alpha"], books.pnl["beta"],
                                            strict=True)])
    plain = deepest_by_pandas(books.days, list(total))
    day = next(d for d in books.days if plain["peak_date"] < d <= plain["trough_date"])
    at = next(i for i, e in enumerate(events) if e["time"] >= day)
    events.insert(at, ev("cash", {"amount": "50000", "kind": "deposit"}, account=ACCOUNT,
                         time=f"{day}T08:00:00Z"))
    result = await metrics_of(tmp_path, events)
    deposits = np.array([CAPITAL + (50_000 if d >= day else 0) for d in books.days])
    x = np.concatenate([[0.0], total])
    equity = np.concatenate([[CAPITAL], deposits + total])
    peak_x = np.maximum.accumulate(x)
    trough = int(np.argmax(peak_x - x))
    peak = int(np.argmax(x[:trough + 1]))
    money_pct = 100 * (x[peak] - x[trough]) / equity[peak]
    got = float(result["risk"]["max_drawdown"]["pct"])
    assert approx(money_pct) == got
    assert approx(plain["pct"]) == got  # the deposit changed no money lost
    r = np.array([float(d["return_pct"]) / 100 for d in result["equity"]["daily"]])
    compounded = -100 * empyrical.max_drawdown(r)
    assert compounded < got - 1e-3  # later losses over a larger base: a smaller percent
