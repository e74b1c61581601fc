"""Risk and benchmark formulas over daily returns: pure functions of exact decimals.

Each takes returns as fractions (0.01 is +1 %) in date order and gives a ``Decimal`` or
None where the figure is undefined (too few returns, zero deviation). Sources: empyrical
(``annual_volatility``, ``value_at_risk``, ``conditional_value_at_risk``, ``annual_return``,
``calmar_ratio``, ``alpha_beta``, ``excess_sharpe``) and pandas (``Series.skew``,
``Series.kurt``); docs/METRICS.md gives each formula and where a convention differs.
Call inside ``localcontext(DECIMAL_CONTEXT)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist

from schemas.values import DECIMAL_CONTEXT

__all__ = [
    "MIN_RETURNS",
    "Episode",
    "alpha_beta",
    "annual_return",
    "correlation",
    "cvar",
    "deepest",
    "historical_var",
    "information_ratio",
    "kurtosis",
    "losing_streak",
    "mean",
    "parametric_var",
    "skew",
    "std",
    "tracking_error",
    "volatility",
]

ZERO = Decimal(0)
ONE = Decimal(1)
MIN_RETURNS = 20
"""Daily returns needed before a ratio, a VaR or a benchmark figure is given: with fewer,
a Sharpe of two days is noise (11.00 from two returns), so the figure is withheld."""


def _sqrt(value: Decimal) -> Decimal:
    return value.sqrt(DECIMAL_CONTEXT)


def mean(values: Sequence[Decimal]) -> Decimal:
    """Arithmetic mean; ``values`` must not be empty."""
    return sum(values, ZERO) / len(values)


def std(values: Sequence[Decimal]) -> Decimal | None:
    """Sample standard deviation (ddof = 1); None with fewer than 2 values."""
    n = len(values)
    if n < 2:
        return None
    m = mean(values)
    return _sqrt(sum(((v - m) ** 2 for v in values), ZERO) / (n - 1))


def volatility(returns: Sequence[Decimal], periods: int) -> Decimal | None:
    """Annualised volatility std(r, ddof=1) * sqrt(periods) (empyrical ``annual_volatility``)."""
    deviation = std(returns)
    return None if deviation is None else deviation * _sqrt(Decimal(periods))


def historical_var(returns: Sequence[Decimal], level: Decimal) -> Decimal | None:
    """Historical VaR at confidence ``level`` (0.95): the (1 - level) quantile of the
    returns with linear interpolation between order statistics (numpy ``percentile``'s
    default, as empyrical ``value_at_risk``). A return: negative is a loss."""
    if not returns:
        return None
    ordered = sorted(returns)
    position = (len(ordered) - 1) * (ONE - level)
    low = int(position)
    if low + 1 >= len(ordered):
        return ordered[low]
    return ordered[low] + (position - low) * (ordered[low + 1] - ordered[low])


def cvar(returns: Sequence[Decimal], level: Decimal) -> Decimal | None:
    """Historical CVaR (expected shortfall) at ``level``: the mean of the k smallest
    returns, k = floor((n - 1) * (1 - level)) + 1 (empyrical ``conditional_value_at_risk``)."""
    if not returns:
        return None
    count = int((len(returns) - 1) * (ONE - level)) + 1
    return mean(sorted(returns)[:count])


def parametric_var(returns: Sequence[Decimal], level: Decimal) -> Decimal | None:
    """Parametric (normal) VaR at ``level``: mean + z * std (ddof = 1), z the standard
    normal's (1 - level) quantile (-1.6449 at 95 %; as quantstats ``value_at_risk``)."""
    deviation = std(returns)
    if deviation is None:
        return None
    z = Decimal(repr(NormalDist().inv_cdf(float(ONE - level))))
    return mean(returns) + z * deviation


def _moments(values: Sequence[Decimal]) -> tuple[int, Decimal, Decimal, Decimal]:
    """n and the central moments m2, m3, m4 (divided by n), in one pass."""
    n = len(values)
    m = mean(values)
    m2 = m3 = m4 = ZERO
    for value in values:
        d = value - m
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
    return n, m2 / n, m3 / n, m4 / n


def skew(values: Sequence[Decimal]) -> Decimal | None:
    """Sample skewness, adjusted Fisher-Pearson G1 = g1 * sqrt(n(n-1)) / (n-2) with
    g1 = m3 / m2^1.5 (pandas ``Series.skew``). None with fewer than 3 values or m2 = 0."""
    if len(values) < 3:
        return None
    n, m2, m3, _ = _moments(values)
    if m2 == 0:
        return None
    g1 = m3 / (m2 * _sqrt(m2))
    return g1 * _sqrt(Decimal(n * (n - 1))) / (n - 2)


def kurtosis(values: Sequence[Decimal]) -> Decimal | None:
    """Excess kurtosis, bias-corrected G2 = ((n+1) g2 + 6) (n-1) / ((n-2)(n-3)) with
    g2 = m4 / m2^2 - 3 (pandas ``Series.kurt``; 0 for a normal law). None with fewer than
    4 values or m2 = 0."""
    if len(values) < 4:
        return None
    n, m2, _, m4 = _moments(values)
    if m2 == 0:
        return None
    g2 = m4 / (m2 * m2) - 3
    return ((n + 1) * g2 + 6) * (n - 1) / ((n - 2) * (n - 3))


def losing_streak(returns: Sequence[Decimal]) -> int:
    """The longest run of consecutive negative daily returns."""
    best = run = 0
    for value in returns:
        run = run + 1 if value < 0 else 0
        best = max(best, run)
    return best


def annual_return(returns: Sequence[Decimal], periods: int) -> Decimal | None:
    """Compound annual growth: prod(1 + r)^(periods / n) - 1 (empyrical ``annual_return``).
    None without returns or when the growth is not positive."""
    if not returns:
        return None
    growth = ONE
    for value in returns:
        growth *= 1 + value
    if growth <= 0:
        return None
    return DECIMAL_CONTEXT.power(growth, Decimal(periods) / len(returns)) - 1


def correlation(xs: Sequence[Decimal], ys: Sequence[Decimal]) -> Decimal | None:
    """Pearson correlation of two aligned series; None with fewer than 2 or a zero spread."""
    sx, sy = std(xs), std(ys)
    if sx is None or sy is None or sx == 0 or sy == 0:
        return None
    mx, my = mean(xs), mean(ys)
    cov = sum(((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)), ZERO) / (len(xs) - 1)
    return cov / (sx * sy)


def alpha_beta(returns: Sequence[Decimal], bench: Sequence[Decimal],
               periods: int) -> tuple[Decimal | None, Decimal | None]:
    """(alpha, beta) against the benchmark, risk-free 0 (empyrical ``alpha_beta``):
    beta = cov(r, b) / var(b); alpha = (1 + mean(r - beta * b))^periods - 1, annualised.
    (None, None) with fewer than 2 returns or a flat benchmark."""
    if len(returns) < 2:
        return None, None
    mb = mean(bench)
    var_b = sum(((b - mb) ** 2 for b in bench), ZERO)
    if var_b == 0:
        return None, None
    beta = sum(((b - mb) * r for r, b in zip(returns, bench, strict=True)), ZERO) / var_b
    daily = mean([r - beta * b for r, b in zip(returns, bench, strict=True)])
    if 1 + daily <= 0:
        return None, beta
    return (1 + daily) ** periods - 1, beta


def tracking_error(returns: Sequence[Decimal], bench: Sequence[Decimal],
                   periods: int) -> Decimal | None:
    """Annualised tracking error std(r - b, ddof=1) * sqrt(periods)."""
    return volatility([r - b for r, b in zip(returns, bench, strict=True)], periods)


def information_ratio(returns: Sequence[Decimal], bench: Sequence[Decimal],
                      periods: int) -> Decimal | None:
    """Annualised information ratio mean(r - b) / std(r - b, ddof=1) * sqrt(periods):
    empyrical's ``excess_sharpe`` times sqrt(periods). None with a zero deviation."""
    active = [r - b for r, b in zip(returns, bench, strict=True)]
    deviation = std(active)
    if deviation is None or deviation == 0:
        return None
    return mean(active) / deviation * _sqrt(Decimal(periods))


@dataclass(frozen=True, slots=True)
class Episode:
    """The deepest drawdown of a day-end series, and its recovery.

    ``amount`` money below the peak (>= 0); ``pct`` percent of the equity at the peak
    (None: no capital, or that equity not positive); ``recovery`` the first day whose
    trading equity is back at the peak's (None: not recovered).
    """

    amount: Decimal
    pct: Decimal | None
    peak: str | None
    trough: str | None
    recovery: str | None


def deepest(points: Sequence[tuple[str, Decimal, Decimal]], percent: bool) -> Episode:
    """The largest drawdown of ``points`` (day, equity, cumulative transfers), measured on
    trading equity x = equity - transfers against its running peak (the first point
    anchors the peak), with percent of the equity at the peak when ``percent``."""
    best = Episode(ZERO, None, None, None, None)
    best_peak = best_trough = peak = -1
    for index, (_, equity, transfers) in enumerate(points):
        x = equity - transfers
        if peak < 0 or x > points[peak][1] - points[peak][2]:
            peak = index
        amount = points[peak][1] - points[peak][2] - x
        if amount > best.amount:
            peak_equity = points[peak][1]
            pct = 100 * amount / peak_equity if percent and peak_equity > 0 else None
            best = Episode(amount, pct, points[peak][0], points[index][0], None)
            best_peak, best_trough = peak, index
    if best_peak < 0:
        return best
    level = points[best_peak][1] - points[best_peak][2]
    for day, equity, transfers in points[best_trough + 1:]:
        if equity - transfers >= level:
            return Episode(best.amount, best.pct, best.peak, best.trough, day)
    return best
