"""The account against its benchmark: pure functions of the day-end series and prices.

The benchmark's prices are its ``mark`` prices at each trading day's end (the symbol an
``account`` event names as ``benchmark``), or a price per date given by the caller (the
CSV of ``tradelog report --benchmark FILE``). Formulas and sources: docs/METRICS.md.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from projections.metrics_risk import (
    MIN_RETURNS,
    alpha_beta,
    correlation,
    information_ratio,
    tracking_error,
)
from projections.metrics_series import DayEnd
from projections.metrics_stats import ratio

__all__ = ["benchmark_figures"]

HUNDRED = Decimal(100)


def _growth(values: Sequence[Decimal]) -> Decimal:
    out = Decimal(1)
    for value in values:
        out *= 1 + value
    return out


def benchmark_figures(days: Sequence[DayEnd], returns: Sequence[tuple[str, Decimal]],
                      symbol: str | None, source: str | None,
                      prices: Mapping[str, Decimal], periods: int,
                      capital_reason: str | None) -> dict[str, Any]:
    """Benchmark return over the account's return days, alpha, beta, correlation,
    tracking error and information ratio, and the benchmark's curve.

    ``days``: the account's trading days in order; ``returns``: its daily returns (day,
    fraction) inside the window; ``prices``: benchmark price by date ``YYYY-MM-DD``. The
    benchmark's return on day d is B(d) / B(p) - 1, p the account's previous trading day
    and B(x) the last price on or before x, so both series cover the same days. Figures
    are None, with ``reason``, without a benchmark, without capital or with fewer than
    ``MIN_RETURNS`` aligned days; the curve is given whenever there are prices.
    """
    out: dict[str, Any] = {
        "symbol": symbol, "source": source, "days": 0, "return_pct": None,
        "account_return_pct": None, "excess_return_pct": None, "alpha": None,
        "beta": None, "correlation": None, "tracking_error_pct": None,
        "information_ratio": None, "curve": [], "reason": None,
    }
    if not prices:
        out["reason"] = ("no benchmark: name one with the account event's benchmark and "
                         "record its marks, or give report --benchmark FILE"
                         if symbol is None else f"no mark of the benchmark {symbol} yet")
        return out
    dates = sorted(prices)

    def price(day: str) -> Decimal | None:
        index = bisect_right(dates, day)
        return prices[dates[index - 1]] if index else None

    start = min((day for day, _ in returns), default=None)
    first: Decimal | None = None
    for end in days:
        value = price(end.day)
        if value is None or (start is not None and end.day < start):
            continue
        first = first or value
        out["curve"].append({"date": end.day, "price": ratio(value),
                             "growth": ratio(value / first)})
    previous = {end.day: days[i - 1].day for i, end in enumerate(days) if i}
    mine: list[Decimal] = []
    theirs: list[Decimal] = []
    for day, value in returns:
        now, before = price(day), price(previous[day]) if day in previous else None
        if now is None or before is None:
            continue
        mine.append(value)
        theirs.append(now / before - 1)
    out["days"] = len(mine)
    if capital_reason is not None:
        out["reason"] = capital_reason
        return out
    if theirs:
        bench, account = _growth(theirs), _growth(mine)
        out["return_pct"] = ratio(HUNDRED * (bench - 1))
        out["account_return_pct"] = ratio(HUNDRED * (account - 1))
        out["excess_return_pct"] = ratio(HUNDRED * (account - bench))
    if len(mine) < MIN_RETURNS:
        out["reason"] = (f"needs at least {MIN_RETURNS} days with both an account return "
                         f"and a benchmark price; there are {len(mine)}")
        return out
    alpha, beta = alpha_beta(mine, theirs, periods)
    error = tracking_error(mine, theirs, periods)
    out.update({
        "alpha": ratio(alpha), "beta": ratio(beta),
        "correlation": ratio(correlation(mine, theirs)),
        "tracking_error_pct": ratio(HUNDRED * error) if error is not None else None,
        "information_ratio": ratio(information_ratio(mine, theirs, periods)),
    })
    return out
