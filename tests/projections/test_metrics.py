"""Performance metrics on small histories, against figures worked by hand.

The history of ``hand_history`` and every figure below is worked out in the docstring of
``hand_history``; quotients are written as the fractions they are and rounded the way
docs/METRICS.md says (half-even to 10 places).
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from eventstore.errors import ValidationError
from eventstore.recorder import Recorder
from projections.metrics import compute_metrics, default_annualization
from projections.metrics_stats import sharpe, sortino, streaks
from tests.fold_support import ev, new_event

ACCOUNT = "hand"


def q10(value: Fraction) -> str:
    """A fraction rounded half-even to 10 places, as the metrics give quotients."""
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    rounded = Decimal(text).quantize(Decimal("1e-10"))
    return format(rounded.normalize(), "f") if rounded else "0"


def hand_history(account: str = ACCOUNT) -> list[dict[str, Any]]:
    """21 events over six trading days (UTC); equity after each in brackets.

    2023-12-29 Fri: deposit 10000 [10000]; limits (daily loss limit 100); XYZ buy 100 @ 10,
      sell @ 11 -> trade A +100 (3600 s) [10100].
    2024-02-29 Thu: XYZ buy 100 @ 10, sell @ 10.5 -> trade B +50 [10150].
    2024-03-04 Mon: signal s1 (alpha); EURUSD buy 1000 @ 1.1 fee 1 [10149]; mark 1.11
      [10159]; sell @ 1.12 fee 1 -> trade C +18 (7200 s) [10168].
    2024-03-05 Tue: signal s2 (beta); BTC sell 1 @ 50000 fee 5 [10163]; mark 50100 [10063];
      buy @ 50060 fee 5 -> trade D -70 (14400 s) [10098].
    2024-03-06 Wed: EURUSD buy 1000 @ 1.1, sell @ 1.1 -> trade E 0 (3600 s); mark 1.1 [10098].
    2024-03-07 Thu: withdrawal 1000 [9098]; EURUSD buy 2000 @ 1.1 fee 2 (s1) [9096]; mark
      1.095 [9086]; sell @ 1.09 fee 2 -> trade F -24 (7200 s) [9074].
    """

    def at(day: str, hour: int) -> str:
        return f"{day}T{hour:02d}:00:00Z"

    def fill(day: str, hour: int, symbol: str, side: str, qty: str, price: str,
             fee: str = "0", signal_id: str | None = None) -> dict[str, Any]:
        data = {"symbol": symbol, "side": side, "quantity": qty, "price": price, "fee": fee}
        if signal_id:
            data["signal_id"] = signal_id
        return ev("fill", data, account=account, time=at(day, hour))

    def mark(day: str, hour: int, symbol: str, price: str) -> dict[str, Any]:
        return ev("mark", {"prices": {symbol: price}}, account=account, time=at(day, hour))

    def signal(day: str, hour: int, sid: str, strategy: str, symbol: str,
               side: str) -> dict[str, Any]:
        return ev("signal", {"signal_id": sid, "strategy": strategy, "symbol": symbol,
                             "side": side}, account=account, time=at(day, hour))

    d1, d2, d3, d4, d5, d6 = ("2023-12-29", "2024-02-29", "2024-03-04", "2024-03-05",
                              "2024-03-06", "2024-03-07")
    return [
        ev("cash", {"amount": "10000", "kind": "deposit"}, account=account, time=at(d1, 9)),
        ev("limits", {"daily_loss_limit": "100", "timezone": "UTC"}, account=account,
           time=at(d1, 9)),
        fill(d1, 10, "XYZ", "buy", "100", "10"),
        fill(d1, 11, "XYZ", "sell", "100", "11"),
        fill(d2, 10, "XYZ", "buy", "100", "10"),
        fill(d2, 11, "XYZ", "sell", "100", "10.5"),
        signal(d3, 9, "s1", "alpha", "EURUSD", "long"),
        fill(d3, 10, "EURUSD", "buy", "1000", "1.1000", "1", "s1"),
        mark(d3, 11, "EURUSD", "1.1100"),
        fill(d3, 12, "EURUSD", "sell", "1000", "1.1200", "1"),
        signal(d4, 10, "s2", "beta", "BTC", "short"),
        fill(d4, 10, "BTC", "sell", "1", "50000", "5", "s2"),
        mark(d4, 12, "BTC", "50100"),
        fill(d4, 14, "BTC", "buy", "1", "50060", "5"),
        fill(d5, 9, "EURUSD", "buy", "1000", "1.1"),
        fill(d5, 10, "EURUSD", "sell", "1000", "1.1"),
        mark(d5, 11, "EURUSD", "1.1"),
        ev("cash", {"amount": "-1000", "kind": "withdrawal"}, account=account,
           time=at(d6, 9)),
        fill(d6, 10, "EURUSD", "buy", "2000", "1.1000", "2", "s1"),
        mark(d6, 11, "EURUSD", "1.0950"),
        fill(d6, 12, "EURUSD", "sell", "2000", "1.0900", "2"),
    ]


@pytest.fixture
async def recorder(tmp_path: Path) -> AsyncIterator[Recorder]:
    """A log holding ``hand_history`` and, interleaved, another account's events."""
    rec = await Recorder.open(tmp_path / "log.db")
    try:
        await rec.append([new_event(e) for e in hand_history()[:5]])
        await rec.append([new_event(e) for e in hand_history("other")])
        await rec.append([new_event(e) for e in hand_history()[5:]])
        yield rec
    finally:
        await rec.close()


LAST = datetime(2024, 3, 7, 20, tzinfo=UTC)
"""A moment on the history's last day, for tests that read "today"."""

HAND_RETURNS = [Fraction(100, 10000), Fraction(50, 10100), Fraction(18, 10150),
                Fraction(-70, 10168), Fraction(0), Fraction(-24, 9098)]
"""Daily returns by hand: (E_d - E_prev - F_d) / (E_prev + F_d)."""


async def test_trade_statistics_match_hand_figures(recorder: Recorder) -> None:
    """Counts, win rate without breakevens, averages, extremes, profit factor,
    expectancy, holding time and streaks over trades A..F (+100 +50 +18 -70 0 -24)."""
    result = await compute_metrics(recorder, ACCOUNT)
    expected = {
        "round_trips": 6, "wins": 3, "losses": 2, "breakevens": 1,
        "win_rate_pct": "60", "gross_profit": "168", "gross_loss": "-94", "net_pnl": "74",
        "fees": "16", "average_win": "56", "average_loss": "-47", "largest_win": "100",
        "largest_loss": "-70", "profit_factor": q10(Fraction(168, 94)),
        "expectancy": q10(Fraction(74, 6)), "average_holding_seconds": "6600",
        "longest_winning_streak": 3, "longest_losing_streak": 1,
    }
    assert expected == result["trades"]
    assert "1.7872340426" == result["trades"]["profit_factor"]


async def test_per_symbol_and_per_strategy_tables(recorder: Recorder) -> None:
    """Round trips grouped by symbol and by the strategy of the signal they came from
    (no signal: strategy null, listed last)."""
    result = await compute_metrics(recorder, ACCOUNT)

    def row(key: str, value: str | None, n: int, w: int, lo: int, b: int,
            net: str) -> dict[str, Any]:
        return {key: value, "round_trips": n, "wins": w, "losses": lo, "breakevens": b,
                "net_pnl": net}

    assert [row("symbol", "BTC", 1, 0, 1, 0, "-70"), row("symbol", "EURUSD", 3, 1, 1, 1, "-6"),
            row("symbol", "XYZ", 2, 2, 0, 0, "150")] == result["by_symbol"]
    assert [row("strategy", "alpha", 2, 1, 1, 0, "-6"),
            row("strategy", "beta", 1, 0, 1, 0, "-70"),
            row("strategy", None, 3, 2, 0, 1, "150")] == result["by_strategy"]


async def test_period_pnl_on_the_last_day(recorder: Recorder) -> None:
    """With ``now`` on the last day (Thu 2024-03-07): all-time 74, year -26 (2023's +100
    left out), month and week (from Monday 03-04) -76, today -24."""
    result = await compute_metrics(recorder, ACCOUNT, now=LAST)
    assert "2024-03-07" == result["today"]
    assert {"all_time": "74", "year_to_date": "-26", "month_to_date": "-76",
            "week_to_date": "-76", "today": "-24"} == result["pnl"]


async def test_today_is_the_clock_not_the_last_event(recorder: Recorder) -> None:
    """Without ``now``, "today" is the wall clock's date in the account's time zone, so a
    day without events (here: every day since 2024) shows today's P&L as 0, not the last
    event's day's -24; an RFC 3339 text works as ``now`` too."""
    before = datetime.now(UTC).date().isoformat()
    result = await compute_metrics(recorder, ACCOUNT)
    after = datetime.now(UTC).date().isoformat()
    assert result["today"] in {before, after}
    assert "0" == result["pnl"]["today"]
    assert "0" == result["pnl"]["week_to_date"]
    assert "0" == result["daily_loss"]["loss_used"]
    given = await compute_metrics(recorder, ACCOUNT, now="2024-03-07T20:00:00Z")
    assert "-24" == given["pnl"]["today"]


async def test_period_pnl_with_a_given_now(recorder: Recorder) -> None:
    """With ``now`` on the next Monday the week and the day are new (0)."""
    now = datetime(2024, 3, 11, 8, tzinfo=UTC)
    result = await compute_metrics(recorder, ACCOUNT, now=now)
    assert {"all_time": "74", "year_to_date": "-26", "month_to_date": "-76",
            "week_to_date": "0", "today": "0"} == result["pnl"]
    assert {"date": "2024-03-11", "loss_used": "0", "limit": "100", "used_pct": "0",
            "blocked": False} == result["daily_loss"]


async def test_calendar_days_and_months(recorder: Recorder) -> None:
    """Realized P&L per trading day and per month, and each month's compounded return."""
    result = await compute_metrics(recorder, ACCOUNT)
    days = [(d["date"], d["realized_pnl"], d["round_trips"]) for d in result["calendar"]["days"]]
    assert [("2023-12-29", "100", 1), ("2024-02-29", "50", 1), ("2024-03-04", "18", 1),
            ("2024-03-05", "-70", 1), ("2024-03-06", "0", 1), ("2024-03-07", "-24", 1)] == days
    march = (1 + HAND_RETURNS[2]) * (1 + HAND_RETURNS[3]) * (1 + HAND_RETURNS[5]) - 1
    assert [{"month": "2023-12", "realized_pnl": "100", "return_pct": "1"},
            {"month": "2024-02", "realized_pnl": "50", "return_pct": q10(100 * HAND_RETURNS[1])},
            {"month": "2024-03", "realized_pnl": "-76", "return_pct": q10(100 * march)},
            ] == result["calendar"]["months"]


async def test_equity_curves(recorder: Recorder) -> None:
    """The balance after each closed round trip, the equity at each mark, and the daily
    equity with transfers and returns."""
    result = await compute_metrics(recorder, ACCOUNT)
    equity = result["equity"]
    assert ["10100", "10150", "10168", "10098", "10098", "9074"] == [
        p["balance"] for p in equity["balance_curve"]]
    assert ["10159", "10063", "10098", "9086"] == [p["equity"] for p in equity["marked_curve"]]
    assert [("2023-12-29", "10100", "10000"), ("2024-02-29", "10150", "0"),
            ("2024-03-04", "10168", "0"), ("2024-03-05", "10098", "0"),
            ("2024-03-06", "10098", "0"), ("2024-03-07", "9074", "-1000")] == [
        (d["date"], d["equity"], d["transfers"]) for d in equity["daily"]]
    assert [q10(100 * r) for r in HAND_RETURNS] == [d["return_pct"] for d in equity["daily"]]
    assert {"balance": "9074", "equity": "9074"} == equity["final"]


async def test_drawdown_takes_transfers_out(recorder: Recorder) -> None:
    """Max drawdown 105 from the 10168 peak (03-04 12:00) to 10063 (03-05 12:00); the
    withdrawal of 1000 is not a loss, so the current drawdown is 168 - 74 = 94."""
    result = await compute_metrics(recorder, ACCOUNT)
    dd = result["drawdown"]
    assert {"amount": "105", "pct": q10(Fraction(100 * 105, 10168)),
            "peak_time": "2024-03-04T12:00:00Z", "peak_date": "2024-03-04",
            "peak_equity": "10168", "trough_time": "2024-03-05T12:00:00Z",
            "trough_date": "2024-03-05", "trough_equity": "10063", "recovery_time": None,
            "recovery_date": None, "recovery_days": None, "recovered": False} == dd["max"]
    assert {k: v for k, v in dd["max"].items() if not k.startswith("recover")} == dd["max_pct"]
    assert ("94", q10(Fraction(100 * 94, 10168))) == (dd["current"]["amount"],
                                                      dd["current"]["pct"])
    assert ["0", "0", "0", "0", "105", "70", "70", "70", "82", "94"] == [
        p["drawdown"] for p in dd["curve"]]


def test_sharpe_and_sortino_from_hand_returns() -> None:
    """Sharpe = mean / sample std * sqrt(252); Sortino = mean / sqrt(mean(min(r,0)^2)) *
    sqrt(252), over the six daily returns of the history."""
    r = HAND_RETURNS
    mean = sum(r, Fraction(0)) / 6
    variance = sum(((x - mean) ** 2 for x in r), Fraction(0)) / 5
    downside = sum((min(x, Fraction(0)) ** 2 for x in r), Fraction(0)) / 6

    def root(x: Fraction) -> Decimal:
        return (Decimal(x.numerator) / Decimal(x.denominator)).sqrt()

    m = Decimal(mean.numerator) / Decimal(mean.denominator)
    expected_sharpe = float(m / root(variance) * Decimal(252).sqrt())
    expected_sortino = float(m / root(downside) * Decimal(252).sqrt())
    returns = [Decimal(x.numerator) / Decimal(x.denominator) for x in r]
    assert expected_sharpe == pytest.approx(float(sharpe(returns, 252) or 0), abs=1e-9)
    assert expected_sortino == pytest.approx(float(sortino(returns, 252) or 0), abs=1e-9)


async def test_six_daily_returns_give_no_sharpe(recorder: Recorder) -> None:
    """Six daily returns are too few: Sharpe, Sortino and Calmar are withheld, saying so;
    252 periods because nothing filled on a weekend."""
    ratios = (await compute_metrics(recorder, ACCOUNT))["ratios"]
    assert 252 == ratios["annualization"]
    assert 6 == ratios["daily_returns"]
    assert (None, None, None) == (ratios["sharpe"], ratios["sortino"], ratios["calmar"])
    assert "needs at least 20 daily returns; there are 6" == ratios["reason"]


async def test_daily_loss_card(recorder: Recorder) -> None:
    """Today's loss used (24 of a 100 limit: 24%), not blocked."""
    result = await compute_metrics(recorder, ACCOUNT, now=LAST)
    assert {"date": "2024-03-07", "loss_used": "24", "limit": "100", "used_pct": "24",
            "blocked": False} == result["daily_loss"]


async def test_daily_loss_card_blocked(tmp_path: Path) -> None:
    """A loss of 24 against a limit of 20 uses 120% and blocks trading."""
    events = [
        hand_history()[0],
        ev("limits", {"daily_loss_limit": "20"}, account=ACCOUNT, time="2024-01-02T09:00:00Z"),
        ev("fill", {"symbol": "X", "side": "buy", "quantity": "1", "price": "100"},
           account=ACCOUNT, time="2024-01-02T10:00:00Z"),
        ev("fill", {"symbol": "X", "side": "sell", "quantity": "1", "price": "76"},
           account=ACCOUNT, time="2024-01-02T11:00:00Z"),
    ]
    rec = await Recorder.open(tmp_path / "log.db")
    try:
        await rec.append([new_event(e) for e in events])
        result = await compute_metrics(rec, ACCOUNT, now="2024-01-02T12:00:00Z")
    finally:
        await rec.close()
    assert {"date": "2024-01-02", "loss_used": "24", "limit": "20", "used_pct": "120",
            "blocked": True} == result["daily_loss"]


async def test_symbol_and_strategy_filters(recorder: Recorder) -> None:
    """``symbol`` and ``strategy`` keep their round trips and realized P&L (EURUSD: C, E, F
    = -6; alpha: C, F = -6); the equity stays the account's."""
    by_symbol = await compute_metrics(recorder, ACCOUNT, symbol="EURUSD")
    by_strategy = await compute_metrics(recorder, ACCOUNT, strategy="alpha")
    assert (3, "-6", "-6") == (by_symbol["trades"]["round_trips"],
                               by_symbol["trades"]["net_pnl"], by_symbol["pnl"]["all_time"])
    assert (2, "-6", "-6") == (by_strategy["trades"]["round_trips"],
                               by_strategy["trades"]["net_pnl"],
                               by_strategy["pnl"]["all_time"])
    assert {"trades": "filtered", "equity": "account"} == by_symbol["scope"]
    assert "105" == by_symbol["drawdown"]["max"]["amount"]


async def test_since_until_window(recorder: Recorder) -> None:
    """``since``/``until`` (dates, inclusive) keep 03-05 and 03-06: trades D and E."""
    result = await compute_metrics(recorder, ACCOUNT, since="2024-03-05", until="2024-03-06")
    assert (2, "-70") == (result["trades"]["round_trips"], result["pnl"]["all_time"])
    assert ["2024-03-05", "2024-03-06"] == [d["date"] for d in result["equity"]["daily"]]
    timed = await compute_metrics(recorder, ACCOUNT, since="2024-03-05T13:00:00Z")
    # fills from 13:00 on: BTC close -65, EURUSD 0 and 0, open fee -2, close -22
    assert (3, "-89") == (timed["trades"]["round_trips"], timed["pnl"]["all_time"])


async def test_as_of_replays_the_past(recorder: Recorder) -> None:
    """``as_of`` seq 5 (the first five events of the account): trade A only."""
    result = await compute_metrics(recorder, ACCOUNT, as_of=5)
    assert (5, 1, "100") == (result["as_of_seq"], result["trades"]["round_trips"],
                             result["pnl"]["all_time"])


async def test_other_account_is_left_out(recorder: Recorder) -> None:
    """Events of another account in the same log change nothing (but seqs and ids)."""
    mine = await compute_metrics(recorder, ACCOUNT, now=LAST)
    other = await compute_metrics(recorder, "other", now=LAST)
    mine.pop("account")
    other.pop("account")
    mine.pop("as_of_seq")
    other.pop("as_of_seq")
    for result in (mine, other):
        for curve in ("balance_curve", "marked_curve"):
            for point in result["equity"][curve]:
                point.pop("seq")
                point.pop("trade_id", None)
        for point in result["drawdown"]["curve"]:
            point.pop("seq")
        for row in result["last_trades"]:
            row.pop("trade_id")
    assert mine == other


@pytest.mark.parametrize(("params", "message"), [
    ({"account": "bad name"}, "account must be"),
    ({"since": "2024-13-01"}, "since"),
    ({"until": "yesterday"}, "until"),
    ({"as_of": -1}, "as_of"),
    ({"as_of": "noon"}, "as_of"),
    ({"annualization": 0}, "annualization"),
    ({"symbol": ""}, "symbol"),
    ({"now": datetime(2024, 1, 1)}, "with its offset"),
    ({"now": "tomorrow"}, "now"),
    ({"period": "quarter"}, "period must be one of day, week, month"),
    ({"account": "nobody"}, "no events"),
])
async def test_bad_params_raise_validation_error(recorder: Recorder, params: dict[str, Any],
                                                 message: str) -> None:
    """Each bad parameter raises ValidationError naming what to fix."""
    account = params.pop("account", ACCOUNT)
    with pytest.raises(ValidationError, match=message):
        await compute_metrics(recorder, account, **params)


def test_default_annualization() -> None:
    """365 when fills happen on a Saturday and a Sunday, else 252 (FX's Sunday open)."""
    assert 252 == default_annualization(["2024-03-04", "2024-03-10"])
    assert 365 == default_annualization(["2024-03-09", "2024-03-10"])


def test_streaks_break_on_breakevens() -> None:
    """A breakeven ends both winning and losing runs."""
    nets = [Decimal(x) for x in ("1", "2", "0", "3", "-1", "-1", "-1", "0", "-1")]
    assert (2, 3) == streaks(nets)


def test_ratios_need_two_returns_and_some_spread() -> None:
    """Sharpe and Sortino are None with one return, no spread, or no losing day."""
    one, flat, up = [Decimal(1)], [Decimal(1), Decimal(1)], [Decimal(1), Decimal(2)]
    assert (None, None) == (sharpe(one, 252), sortino(one, 252))
    assert None is sharpe(flat, 252)
    assert None is sortino(up, 252)


async def test_metrics_leave_out_voided_events(tmp_path: Path) -> None:
    """Metrics of a log where a wrong fill and a wrong withdrawal were voided equal those
    of a log that never held them (and the voids), seqs naming the same events."""
    events = hand_history()
    wrong = [ev("fill", {"symbol": "XYZ", "side": "buy", "quantity": "5", "price": "10"},
                account=ACCOUNT, time="2024-03-05T09:00:00Z", event_id="wrong-fill"),
             ev("cash", {"amount": "-5000", "kind": "withdrawal"}, account=ACCOUNT,
                time="2024-03-05T09:30:00Z", event_id="wrong-cash")]
    voids = [ev("void", {"target_source": "test/fold", "target_id": target,
                         "reason": "sent by mistake"}, account=ACCOUNT,
                time="2024-03-08T00:00:00Z") for target in ("wrong-fill", "wrong-cash")]
    clean = await Recorder.open(tmp_path / "clean.db")
    voided = await Recorder.open(tmp_path / "voided.db")
    try:
        await clean.append([new_event(e) for e in events])
        await voided.append([new_event(e) for e in [*events[:12], *wrong, *events[12:],
                                                    *voids]])
        now = datetime(2024, 3, 9, tzinfo=UTC)
        expected = await compute_metrics(clean, ACCOUNT, now=now)
        actual = await compute_metrics(voided, ACCOUNT, now=now)
    finally:
        await clean.close()
        await voided.close()
    def renumber(value: Any) -> Any:
        # The two wrong events sit at seqs 13 and 14 of the voided log.
        if isinstance(value, dict):
            return {k: (v if v <= 12 else v + 2) if k == "seq" else renumber(v)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [renumber(item) for item in value]
        return value

    expected.pop("as_of_seq", None)
    actual.pop("as_of_seq", None)
    assert renumber(expected) == actual
