"""Day-end equity series and the risk figures drawn from them, for the account and for
each strategy and symbol. Pure: works on the series ``metrics_series`` sampled.

A strategy's (or symbol's) equity on a day is the account's capital (cumulative
transfers, or the ``starting_capital`` attribute) plus that strategy's realized P&L so
far plus the unrealized P&L of its positions open at the day's end: what the account
would hold had it traded that strategy alone. Its daily returns, drawdown and ratios
follow the same formulas as the account's (docs/METRICS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from projections.metrics_risk import (
    MIN_RETURNS,
    annual_return,
    cvar,
    deepest,
    historical_var,
    kurtosis,
    losing_streak,
    parametric_var,
    skew,
    volatility,
)
from projections.metrics_series import DayEnd, Realized, Sampler, Trade
from projections.metrics_stats import daily_returns, money, ratio, sharpe, sortino

__all__ = ["LEVELS", "NO_CAPITAL", "Capital", "exposure", "few_returns", "find_capital",
           "group_days", "moment", "series_figures", "with_capital"]

ZERO = Decimal(0)
HUNDRED = Decimal(100)
LEVELS = (("95", Decimal("0.95")), ("99", Decimal("0.99")))
NO_CAPITAL = ("no capital: the account has no deposit and no starting_capital attribute, "
              "so a return or a percent of capital has no base")


def few_returns(count: int) -> str:
    """The reason a ratio is withheld with ``count`` daily returns."""
    return f"needs at least {MIN_RETURNS} daily returns; there are {count}"


@dataclass(frozen=True, slots=True)
class Capital:
    """The account's capital: ``source`` "transfers" (deposits and withdrawals),
    "attribute" (``starting_capital`` in the ``account`` or ``limits`` attrs, an opening
    balance the log does not hold as a deposit) or None (no capital: ``reason`` says so).
    ``opening`` is the attribute's amount added to the series (0 otherwise)."""

    source: str | None
    amount: Decimal | None
    opening: Decimal = ZERO

    @property
    def reason(self) -> str | None:
        """Why percent figures are absent (None when there is capital)."""
        return NO_CAPITAL if self.source is None else None

    def to_wire(self) -> dict[str, Any]:
        """``{"source", "amount", "reason"}``, the amount as money text."""
        return {"source": self.source, "amount": money(self.amount), "reason": self.reason}


def _attribute(attrs: Any) -> Decimal | None:
    if not isinstance(attrs, dict) or "starting_capital" not in attrs:
        return None
    try:
        value = Decimal(str(attrs["starting_capital"]))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value > 0 else None


def find_capital(sampler: Sampler) -> Capital:
    """Transfers when the account has any; else a positive ``starting_capital`` attribute
    (of the latest ``account`` event, then of the latest ``limits``); else no capital."""
    if any(d.transfers for d in sampler.days.values()):
        return Capital("transfers", sampler.transfers)
    account = sampler.state.accounts[sampler.account]
    definition = account.definition or {}
    for attrs in (definition.get("attrs"), account.limits_attrs):
        value = _attribute(attrs)
        if value is not None:
            return Capital("attribute", value, value)
    return Capital(None, None)


def with_capital(days: Sequence[DayEnd], capital: Capital) -> list[DayEnd]:
    """The day-end series with an attribute's opening balance added (as a transfer on the
    first day), so returns and percents have their base; unchanged otherwise."""
    if not capital.opening:
        return list(days)
    out = []
    for index, end in enumerate(days):
        extra = capital.opening if index == 0 else ZERO
        out.append(DayEnd(end.day, end.equity + capital.opening, end.transfers + extra,
                          end.fills, end.unrealized_by_strategy, end.unrealized_by_symbol,
                          end.benchmark))
    return out


def group_days(days: Sequence[DayEnd], records: Sequence[Realized],
               unrealized: Callable[[DayEnd], Decimal]) -> list[DayEnd]:
    """A group's day-end series: cumulative transfers of ``days`` (already with capital)
    + the group's cumulative realized P&L (``records``) + ``unrealized`` at the day's end."""
    by_day: dict[str, Decimal] = {}
    for record in records:
        by_day[record.day] = by_day.get(record.day, ZERO) + record.amount
    out: list[DayEnd] = []
    transfers = realized = ZERO
    for end in days:
        transfers += end.transfers
        realized += by_day.get(end.day, ZERO)
        out.append(DayEnd(end.day, transfers + realized + unrealized(end), end.transfers))
    return out


def _days_between(first: str, second: str) -> int:
    return (date.fromisoformat(second) - date.fromisoformat(first)).days


def series_figures(days: Sequence[DayEnd], periods: int, capital: Capital,
                   keep: Callable[[str], bool]) -> dict[str, Any]:
    """Risk figures of one day-end series (with capital): net P&L, compounded return,
    Sharpe, Sortino, Calmar, volatility, VaR/CVaR (historical and normal) at 95 and 99 %,
    skew, kurtosis, longest losing run of days and the deepest drawdown with recovery.
    ``keep`` bounds the days (``since``/``until``). Percent figures are None without
    capital and ratios None with fewer than ``MIN_RETURNS`` returns; ``reason`` says why.
    """
    returns = [r for day, r in daily_returns(days) if keep(day)] if capital.source else []
    n = len(returns)
    enough = n >= MIN_RETURNS
    transfers = previous = ZERO
    points: list[tuple[str, Decimal, Decimal]] = []
    for end in days:
        transfers += end.transfers
        if keep(end.day):
            if not points:  # the anchor: the first day's base, before its trading
                points.append((end.day, previous + end.transfers, transfers))
            points.append((end.day, end.equity, transfers))
        previous = end.equity
    episode = deepest(points, capital.source is not None)
    growth = Decimal(1)
    for value in returns:
        growth *= 1 + value
    dd_fraction = episode.pct / HUNDRED if episode.pct else None
    annual = annual_return(returns, periods) if enough else None
    out: dict[str, Any] = {
        "net_pnl": money(points[-1][1] - points[-1][2] - (points[0][1] - points[0][2]))
        if points else "0",
        "daily_returns": n,
        "return_pct": ratio(HUNDRED * (growth - 1)) if returns else None,
        "sharpe": ratio(sharpe(returns, periods)) if enough else None,
        "sortino": ratio(sortino(returns, periods)) if enough else None,
        "calmar": ratio(annual / dd_fraction) if annual is not None and dd_fraction else None,
        "annual_return_pct": ratio(HUNDRED * annual) if annual is not None else None,
        "volatility_pct": _pct(volatility(returns, periods)) if enough else None,
        "skew": ratio(skew(returns)) if enough else None,
        "kurtosis": ratio(kurtosis(returns)) if enough else None,
        "longest_losing_days": losing_streak(returns),
        "max_drawdown": {
            "amount": money(episode.amount), "pct": ratio(episode.pct),
            "peak_date": episode.peak, "trough_date": episode.trough,
            "recovery_date": episode.recovery,
            "recovery_days": _days_between(episode.trough, episode.recovery)
            if episode.recovery and episode.trough else None,
            "recovered": episode.recovery is not None if episode.amount else None,
        },
        "reason": capital.reason or (None if enough else few_returns(n)),
    }
    for name, level in LEVELS:
        out[f"var_{name}_pct"] = _pct(historical_var(returns, level)) if enough else None
        out[f"cvar_{name}_pct"] = _pct(cvar(returns, level)) if enough else None
        out[f"parametric_var_{name}_pct"] = (_pct(parametric_var(returns, level))
                                             if enough else None)
    out["equity_curve"] = _curve(points, capital.source is not None)
    return out


def _curve(points: Sequence[tuple[str, Decimal, Decimal]],
           percent: bool) -> list[dict[str, Any]]:
    """Per day: equity, and the drawdown below the running peak of trading equity
    (money, and percent of the peak's equity when ``percent``), the anchor excluded."""
    out: list[dict[str, Any]] = []
    peak: tuple[str, Decimal, Decimal] | None = None
    for index, point in enumerate(points):
        if peak is None or point[1] - point[2] > peak[1] - peak[2]:
            peak = point
        if index:
            amount = (peak[1] - peak[2]) - (point[1] - point[2])
            out.append({"date": point[0], "equity": money(point[1]),
                        "drawdown": money(amount),
                        "drawdown_pct": ratio(HUNDRED * amount / peak[1])
                        if percent and peak[1] > 0 else None})
    return out


def _pct(value: Decimal | None) -> str | None:
    return None if value is None else ratio(HUNDRED * value)


def exposure(trades: Sequence[Trade], open_since: Sequence[str], start: datetime | None,
             end: datetime | None) -> dict[str, Any]:
    """Time in the market: the union of the round trips' [opened_at, closed_at] and the
    open positions' [opened_at, end], inside [start, end] (the first and last event
    times, narrowed to ``since``/``until``). ``exposure_pct`` = 100 * exposed / span
    (None for a zero span)."""
    if start is None or end is None:
        return {"exposure_seconds": 0, "span_seconds": 0, "exposure_pct": None}
    spans = sorted([(_moment(t.row.opened_at), _moment(t.row.closed_at)) for t in trades]
                   + [(_moment(o), end) for o in open_since])
    exposed = 0.0
    cursor = start
    for opened, closed in spans:
        first, last = max(opened, cursor), min(closed, end)
        if last > first:
            exposed += (last - first).total_seconds()
            cursor = last
    span = (end - start).total_seconds()
    return {"exposure_seconds": int(exposed), "span_seconds": int(span),
            "exposure_pct": ratio(HUNDRED * Decimal(exposed) / Decimal(span)) if span else None}


def moment(text: str) -> datetime:
    """An RFC 3339 text (``...Z`` or an offset) as an aware datetime."""
    return _moment(text)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
