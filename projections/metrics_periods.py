"""Period tables, the P&L histogram, open positions and the last round trips: pure
functions of the series ``metrics_series`` sampled (docs/METRICS.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from projections.metrics_series import Realized, Sampler, Trade
from projections.metrics_stats import money, ratio

__all__ = ["LAST_TRADES", "histogram", "last_trades", "open_positions",
           "period_key", "period_table"]

ZERO = Decimal(0)
HUNDRED = Decimal(100)
LAST_TRADES = 20
"""Round trips in ``last_trades``."""
BINS = 20
"""Bars of the P&L histogram."""


def period_key(day: str, period: str) -> str:
    """The period a trading day belongs to: the day itself, its ISO week ``YYYY-Www``
    (weeks start on Monday; the ISO year can differ from the calendar year near 1
    January) or its month ``YYYY-MM``."""
    if period == "day":
        return day
    if period == "week":
        year, week, _ = date.fromisoformat(day).isocalendar()
        return f"{year}-W{week:02d}"
    return day[:7]


def period_table(period: str, records: Sequence[Realized], trades: Sequence[Trade],
                 returns: Sequence[tuple[str, Decimal]]) -> list[dict[str, Any]]:
    """Per period with a fill, a round trip or a return, oldest first: realized P&L,
    compounded return 100 * (prod(1 + r_d) - 1) of its daily returns (None without
    one), round trips closed, wins, losses and win rate 100 * wins / (wins + losses)."""
    pnl: dict[str, Decimal] = {}
    first: dict[str, str] = {}
    last: dict[str, str] = {}

    def seen(day: str) -> str:
        key = period_key(day, period)
        first[key] = min(first.get(key, day), day)
        last[key] = max(last.get(key, day), day)
        return key

    for record in records:
        key = seen(record.day)
        pnl[key] = pnl.get(key, ZERO) + record.amount
    growth: dict[str, Decimal] = {}
    for day, value in returns:
        key = seen(day)
        growth[key] = growth.get(key, Decimal(1)) * (1 + value)
    counts: dict[str, list[int]] = {}
    for trade in trades:
        key = seen(trade.day)
        row = counts.setdefault(key, [0, 0, 0])
        row[0] += 1
        row[1] += trade.row.net_pnl > 0
        row[2] += trade.row.net_pnl < 0
    out = []
    for key in sorted(first):
        closed, wins, losses = counts.get(key, [0, 0, 0])
        out.append({
            "period": key, "first_day": first[key], "last_day": last[key],
            "realized_pnl": money(pnl.get(key, ZERO)),
            "return_pct": ratio(HUNDRED * (growth[key] - 1)) if key in growth else None,
            "round_trips": closed, "wins": wins, "losses": losses,
            "win_rate_pct": ratio(HUNDRED * wins / (wins + losses)) if wins + losses else None,
        })
    return out


def histogram(trades: Sequence[Trade]) -> dict[str, Any]:
    """Round trips by net P&L in ``BINS`` equal bins from the smallest to the largest:
    ``edges`` (BINS + 1 money texts) and ``counts`` (the last bin includes its top edge)."""
    nets = [t.row.net_pnl for t in trades]
    if not nets:
        return {"edges": [], "counts": []}
    low, high = min(nets), max(nets)
    if low == high:
        return {"edges": [money(low), money(high)], "counts": [len(nets)]}
    width = (high - low) / BINS
    counts = [0] * BINS
    for net in nets:
        counts[min(int((net - low) / width), BINS - 1)] += 1
    return {"edges": [ratio(low + width * i) for i in range(BINS + 1)], "counts": counts}


def open_positions(sampler: Sampler) -> list[dict[str, Any]]:
    """The account's open positions at the end, by symbol: signed quantity, average and
    mark price, unrealized P&L (money), strategy and the opening time."""
    rows = []
    for position in sampler.state.positions.get(sampler.account, {}).values():
        rows.append({
            "symbol": position.symbol, "position_key": position.position_key,
            "side": "long" if position.quantity > 0 else "short",
            "quantity": money(position.quantity), "avg_price": money(position.avg_price),
            "mark_price": money(position.mark_price),
            "unrealized_pnl": money(position.unrealized_pnl),
            "strategy": sampler.strategy_of(position.signal_id),
            "opened_at": position.opened_at,
        })
    return sorted(rows, key=lambda r: (r["symbol"], r["position_key"]))


def last_trades(trades: Sequence[Trade]) -> list[dict[str, Any]]:
    """The last ``LAST_TRADES`` round trips, newest first."""
    return [{
        "trade_id": t.row.trade_id, "symbol": t.row.symbol, "side": t.row.side,
        "strategy": t.strategy, "quantity": money(t.row.quantity),
        "entry_price": money(t.row.entry_price), "exit_price": money(t.row.exit_price),
        "opened_at": t.row.opened_at, "closed_at": t.row.closed_at,
        "holding_seconds": t.row.holding_seconds, "net_pnl": money(t.row.net_pnl),
        "exit_reason": t.row.exit_reason,
    } for t in reversed(trades[-LAST_TRADES:])]
