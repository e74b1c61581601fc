"""The figures added to the account's metrics from its day-end series: the account's
and each strategy's and symbol's equity risk figures, the benchmark, the period table,
the P&L histogram, open positions and the last round trips. Pure (docs/METRICS.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from projections.metrics_bench import benchmark_figures
from projections.metrics_groups import (
    Capital,
    exposure,
    group_days,
    moment,
    series_figures,
)
from projections.metrics_periods import histogram, last_trades, open_positions, period_table
from projections.metrics_series import DayEnd, Realized, Sampler, Trade

__all__ = ["analytics"]

ZERO = Decimal(0)


def _order(keys: set[str | None]) -> list[str | None]:
    return sorted(keys, key=lambda k: (k is None, k or ""))


def analytics(sampler: Sampler, context: dict[str, Any], *, period: str,
              symbol: str | None, strategy: str | None,
              benchmark: tuple[str, Mapping[str, Decimal]] | None) -> dict[str, Any]:
    """The added sections, from ``context`` (the window, capital, day-end series with
    capital, daily returns, annualisation and the filtered records and trades that
    ``compute_metrics`` assembled). ``benchmark``: (name, prices by date) from a file,
    None to use the marks of the account's ``benchmark`` symbol."""
    capital: Capital = context["capital"]
    days: list[DayEnd] = context["days"]
    periods: int = context["periods"]
    keep = context["window"].has_day
    account = sampler.state.accounts[sampler.account]
    start = end = None
    if account.first_event_at is not None and sampler.last_time is not None:
        start, end = context["window"].clip(moment(account.first_event_at),
                                            moment(sampler.last_time))
    positions = list(sampler.state.positions.get(sampler.account, {}).values())
    risk = series_figures(days, periods, capital, keep)
    risk.update(exposure(sampler.trades, [p.opened_at for p in positions], start, end))

    def groups(name: str, of_record: Callable[[Realized], str | None],
               of_trade: Callable[[Trade], str | None],
               unrealized: Callable[[DayEnd, str | None], Decimal],
               of_position: Callable[[Any], str | None], only: str | None,
               curves: bool) -> list[dict[str, Any]]:
        keys = ({of_record(r) for r in sampler.realized}
                | {of_trade(t) for t in sampler.trades} | {of_position(p) for p in positions})
        out = []
        for key in _order(keys):
            if only is not None and key != only:
                continue
            series = group_days(days, [r for r in sampler.realized if of_record(r) == key],
                                lambda d, k=key: unrealized(d, k))  # type: ignore[misc]
            figures = series_figures(series, periods, capital, keep)
            if not curves:
                del figures["equity_curve"]
            figures.update(exposure([t for t in sampler.trades if of_trade(t) == key],
                                    [p.opened_at for p in positions if of_position(p) == key],
                                    start, end))
            out.append({name: key} | figures)
        return out

    strategies = groups(
        "strategy", lambda r: r.strategy, lambda t: t.strategy,
        lambda d, k: d.unrealized_by_strategy.get(k, ZERO),
        lambda p: sampler.strategy_of(p.signal_id), strategy, True)
    symbols = groups(
        "symbol", lambda r: r.symbol, lambda t: t.row.symbol,
        lambda d, k: d.unrealized_by_symbol.get(k or "", ZERO),
        lambda p: p.symbol, symbol, False)
    name: str | None
    if benchmark is not None:
        name, prices = benchmark
        source: str | None = "file"
    else:
        name = (account.definition or {}).get("benchmark") or None
        source = "marks" if name else None
        prices = {d.day: d.benchmark[name] for d in days if name and name in d.benchmark}
    trades: list[Trade] = context["trades"]
    return {
        "ratios": {"sharpe": risk["sharpe"], "sortino": risk["sortino"],
                   "calmar": risk["calmar"], "min_daily_returns": 20,
                   "reason": risk["reason"]},
        "risk": risk,
        "benchmark": benchmark_figures(days, context["returns"], name, source, prices,
                                       periods, capital.reason),
        "strategies": strategies,
        "symbols": symbols,
        "periods": {"period": period,
                    "rows": period_table(period, context["records"], trades,
                                         context["returns"])},
        "histogram": histogram(trades),
        "open_positions": open_positions(sampler),
        "last_trades": last_trades(trades),
    }
