"""The metrics' formulas over the sampled series: pure functions of exact decimals.

Every formula, its source convention and our choices are in docs/METRICS.md. Money is
exact (sums are never rounded); a quotient (an average, a ratio, a percent, a return)
is rounded half-even to 10 decimal places when it is given out (``ratio``). Call these
inside ``localcontext(DECIMAL_CONTEXT)`` (60 significant digits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from projections.metrics_series import DayEnd, Realized, Sample, Trade
from schemas.values import DECIMAL_CONTEXT, format_decimal

__all__ = [
    "RATIO_QUANTUM",
    "Drawdown",
    "daily_returns",
    "drawdown",
    "group_stats",
    "money",
    "monthly",
    "period_pnl",
    "ratio",
    "sharpe",
    "sortino",
    "streaks",
    "trade_stats",
]

ZERO = Decimal(0)
HUNDRED = Decimal(100)
RATIO_QUANTUM = Decimal("1e-10")


def money(value: Decimal | None) -> str | None:
    """An exact amount as canonical decimal text; None stays None."""
    return None if value is None else format_decimal(value)


def ratio(value: Decimal | None) -> str | None:
    """A quotient rounded half-even to 10 decimal places, as text; None stays None."""
    if value is None:
        return None
    return format_decimal(value.quantize(RATIO_QUANTUM, context=DECIMAL_CONTEXT))


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, ZERO)


def streaks(nets: Sequence[Decimal]) -> tuple[int, int]:
    """Longest runs of consecutive winning (> 0) and losing (< 0) round trips, in closing
    order; a breakeven (= 0) ends both runs (freqtrade's ``calc_streak``)."""
    best_win = best_loss = win = loss = 0
    for net in nets:
        win = win + 1 if net > 0 else 0
        loss = loss + 1 if net < 0 else 0
        best_win, best_loss = max(best_win, win), max(best_loss, loss)
    return best_win, best_loss


def trade_stats(trades: Sequence[Trade]) -> dict[str, Any]:
    """Round-trip statistics over ``trades`` (in closing order), on each trade's net P&L.

    win_rate_pct = 100 * wins / (wins + losses) (breakevens left out of both: None when
    there is no win and no loss); profit_factor = gross_profit / -gross_loss (None when
    there is no loss); expectancy = net_pnl / round_trips; average_win = gross_profit /
    wins; average_loss = gross_loss / losses (<= 0); average_holding_seconds = the mean
    of ``holding_seconds``.
    """
    nets = [t.row.net_pnl for t in trades]
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    gross_profit, gross_loss = _sum(wins), _sum(losses)
    count = len(nets)
    decided = len(wins) + len(losses)
    win_streak, loss_streak = streaks(nets)
    return {
        "round_trips": count,
        "wins": len(wins),
        "losses": len(losses),
        "breakevens": count - decided,
        "win_rate_pct": ratio(HUNDRED * len(wins) / decided) if decided else None,
        "gross_profit": money(gross_profit),
        "gross_loss": money(gross_loss),
        "net_pnl": money(gross_profit + gross_loss),
        "fees": money(_sum(t.row.fees for t in trades)),
        "average_win": ratio(gross_profit / len(wins)) if wins else None,
        "average_loss": ratio(gross_loss / len(losses)) if losses else None,
        "largest_win": money(max(wins)) if wins else None,
        "largest_loss": money(min(losses)) if losses else None,
        "profit_factor": ratio(gross_profit / -gross_loss) if losses else None,
        "expectancy": ratio((gross_profit + gross_loss) / count) if count else None,
        "average_holding_seconds": ratio(
            Decimal(sum(t.row.holding_seconds for t in trades)) / count) if count else None,
        "longest_winning_streak": win_streak,
        "longest_losing_streak": loss_streak,
    }


def group_stats(trades: Sequence[Trade], key: Callable[[Trade], str | None],
                name: str) -> list[dict[str, Any]]:
    """Per group (``name``: the group's key, None sorted last): round trips, wins,
    losses, breakevens and net P&L, sorted by key."""
    groups: dict[str | None, list[Decimal]] = {}
    for trade in trades:
        groups.setdefault(key(trade), []).append(trade.row.net_pnl)
    out = []
    for group in sorted(groups, key=lambda k: (k is None, k or "")):
        nets = groups[group]
        wins = sum(1 for n in nets if n > 0)
        losses = sum(1 for n in nets if n < 0)
        out.append({name: group, "round_trips": len(nets), "wins": wins, "losses": losses,
                    "breakevens": len(nets) - wins - losses, "net_pnl": money(_sum(nets))})
    return out


def period_pnl(records: Sequence[Realized], today: date) -> dict[str, str | None]:
    """Cumulative realized P&L (sum of fills' realized effects) all-time, year-, month-
    and week-to-date (weeks start on Monday) and on ``today``, by trading day."""
    starts = {
        "year_to_date": today.replace(month=1, day=1).isoformat(),
        "month_to_date": today.replace(day=1).isoformat(),
        "week_to_date": (today - timedelta(days=today.weekday())).isoformat(),
        "today": today.isoformat(),
    }
    end = today.isoformat()
    out = {"all_time": money(_sum(r.amount for r in records))}
    for name, start in starts.items():
        out[name] = money(_sum(r.amount for r in records if start <= r.day <= end))
    return out


def daily_returns(days: Sequence[DayEnd]) -> list[tuple[str, Decimal]]:
    """Daily returns of equity between consecutive trading days, transfers taken out as
    if made at the start of the day (a time-weighted return):

        r_d = (E_d - E_prev - F_d) / (E_prev + F_d)

    with E the equity at the day's last event, E_prev the previous trading day's (0 before
    the first) and F_d the day's deposits + withdrawals. A day whose base
    E_prev + F_d is not positive has no return (the ratio is meaningless there).
    """
    out: list[tuple[str, Decimal]] = []
    previous = ZERO
    for end in days:
        base = previous + end.transfers
        if base > 0:
            out.append((end.day, (end.equity - base) / base))
        previous = end.equity
    return out


def monthly(records: Sequence[Realized], returns: Sequence[tuple[str, Decimal]],
            ) -> list[dict[str, Any]]:
    """The monthly returns table: per month ``YYYY-MM`` with a fill or a return, realized
    P&L (sum of the fills' effects) and the compounded return of its daily returns,
    100 * (prod(1 + r_d) - 1) (None when the month has no daily return)."""
    pnl: dict[str, Decimal] = {}
    for record in records:
        pnl[record.day[:7]] = pnl.get(record.day[:7], ZERO) + record.amount
    growth: dict[str, Decimal] = {}
    for day, value in returns:
        growth[day[:7]] = growth.get(day[:7], Decimal(1)) * (1 + value)
    return [{"month": month, "realized_pnl": money(pnl.get(month, ZERO)),
             "return_pct": ratio(HUNDRED * (growth[month] - 1)) if month in growth else None}
            for month in sorted(set(pnl) | set(growth))]


def sharpe(returns: Sequence[Decimal], periods: int) -> Decimal | None:
    """Annualised Sharpe ratio, risk-free rate 0: mean(r) / std(r, ddof=1) * sqrt(periods)
    (as empyrical's ``sharpe_ratio``). None with fewer than 2 returns or zero deviation."""
    n = len(returns)
    if n < 2:
        return None
    mean = _sum(returns) / n
    variance = _sum((r - mean) ** 2 for r in returns) / (n - 1)
    if variance == 0:
        return None
    return mean / variance.sqrt(DECIMAL_CONTEXT) * Decimal(periods).sqrt(DECIMAL_CONTEXT)


def sortino(returns: Sequence[Decimal], periods: int) -> Decimal | None:
    """Annualised Sortino ratio, target 0: mean(r) / DD * sqrt(periods) with the downside
    deviation DD = sqrt(sum(min(r, 0)^2) / n) over all n returns (Sortino & Price 1994;
    empyrical's ``downside_risk``). None with fewer than 2 returns or no negative one."""
    n = len(returns)
    if n < 2:
        return None
    downside = _sum(min(r, ZERO) ** 2 for r in returns) / n
    if downside == 0:
        return None
    mean = _sum(returns) / n
    return mean / downside.sqrt(DECIMAL_CONTEXT) * Decimal(periods).sqrt(DECIMAL_CONTEXT)


@dataclass(frozen=True, slots=True)
class Drawdown:
    """One drawdown: ``amount`` (money, >= 0) below the peak, ``pct`` of the equity at the
    peak (None when that equity is not positive), and where the peak and trough were."""

    amount: Decimal
    pct: Decimal | None
    peak: Sample | None
    trough: Sample | None

    def to_wire(self) -> dict[str, Any]:
        """The drawdown as JSON: ``amount``/equities as exact money text, ``pct`` to 10 places.

        Peak and trough ``*_time`` (RFC 3339), ``*_date`` (trading day) and ``*_equity`` are None
        when there is no such sample.
        """
        return {
            "amount": money(self.amount),
            "pct": ratio(self.pct),
            "peak_time": self.peak.time if self.peak else None,
            "peak_date": self.peak.day if self.peak else None,
            "peak_equity": money(self.peak.equity) if self.peak else None,
            "trough_time": self.trough.time if self.trough else None,
            "trough_date": self.trough.day if self.trough else None,
            "trough_equity": money(self.trough.equity) if self.trough else None,
        }


NO_DRAWDOWN = Drawdown(ZERO, None, None, None)


def drawdown(samples: Sequence[Sample], percent: bool = True,
             ) -> tuple[Drawdown, Drawdown, Drawdown, list[tuple[Sample, Drawdown]]]:
    """Maximum drawdown by money, maximum by percent, the current one, and the curve.

    On the equity samples in order, with transfers taken out so a deposit is not a gain
    and a withdrawal not a loss: x = equity - transfers (cumulative), peak = the running
    maximum of x; drawdown = peak_x - x (money); pct = 100 * drawdown / (equity at the
    peak). Without transfers after the peak this is backtesting.py's and freqtrade's
    drawdown of equity relative to its running peak.
    """
    best = best_pct = current = NO_DRAWDOWN
    peak: Sample | None = None
    curve: list[tuple[Sample, Drawdown]] = []
    for sample in samples:
        x = sample.equity - sample.transfers
        if peak is None or x > peak.equity - peak.transfers:
            peak = sample
        amount = peak.equity - peak.transfers - x
        pct = HUNDRED * amount / peak.equity if percent and peak.equity > 0 else None
        current = Drawdown(amount, pct, peak, sample)
        curve.append((sample, current))
        if amount > best.amount:
            best = current
        if pct is not None and pct > (best_pct.pct or ZERO):
            best_pct = current
    return best, best_pct, current, curve
