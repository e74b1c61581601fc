"""Performance metrics of one account: the ``metrics`` method and ``tradelog report``.

``compute_metrics`` reads the account's events (in pages, up to ``as_of``), folds them
with the views' own rules while sampling the series it needs (``metrics_series``), and
applies the formulas of ``metrics_stats``. Every definition, its formula and the
convention it follows are in docs/METRICS.md.

The answer is JSON-ready: money and every other decimal are strings (money exact,
quotients rounded half-even to 10 places), counts are ints, times are UTC RFC 3339
(``...Z``) and trading days ``YYYY-MM-DD`` in the account's time zone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from eventstore.errors import ValidationError
from eventstore.store import ViewReader
from projections.metrics_analytics import analytics
from projections.metrics_groups import Capital, find_capital, with_capital
from projections.metrics_series import Realized, Sample, Sampler, Trade
from projections.metrics_stats import (
    Drawdown,
    daily_returns,
    drawdown,
    group_stats,
    money,
    monthly,
    period_pnl,
    ratio,
    trade_stats,
)
from projections.metrics_window import (
    Window,
    check_params,
    default_annualization,
    parse_now,
)
from projections.query import as_of_seq
from schemas.values import DECIMAL_CONTEXT, format_time

__all__ = ["PAGE", "Window", "compute_metrics", "default_annualization"]

PAGE = 4096
"""Events read per page."""
ZERO = Decimal(0)


async def _voided(recorder: ViewReader, account: str, last: int) -> set[tuple[str, str]]:
    """source+id of every event a void of the account at seq <= ``last`` voided."""
    found: set[tuple[str, str]] = set()
    next_seq = 1
    while True:
        voids = [e for e in await recorder.read(next_seq, PAGE, account=account,
                                                types=["void"]) if e.seq <= last]
        found.update((e.data["target_source"], e.data["target_id"]) for e in voids)
        if len(voids) < PAGE:
            return found
        next_seq = voids[-1].seq + 1


async def _sample(recorder: ViewReader, account: str, last: int) -> Sampler:
    """Fold the account's events 1..last, reading the next page while folding one."""
    sampler = Sampler(account)
    if last < 1:
        sampler.finish()
        return sampler
    sampler.voided = await _voided(recorder, account, last)
    pending = asyncio.ensure_future(recorder.read(1, PAGE, account=account))
    while True:
        events = [e for e in await pending if e.seq <= last]
        if not events or events[-1].seq >= last:
            sampler.feed(events)
            sampler.finish()
            return sampler
        pending = asyncio.ensure_future(recorder.read(events[-1].seq + 1, PAGE, account=account))
        try:
            sampler.feed(events)
        except BaseException:
            await asyncio.gather(pending, return_exceptions=True)
            raise


async def compute_metrics(recorder: ViewReader, account: str, *, since: str | None = None,
                          until: str | None = None, symbol: str | None = None,
                          strategy: str | None = None, as_of: int | str | None = None,
                          annualization: int | None = None,
                          now: datetime | str | None = None, period: str = "month",
                          benchmark_prices: Mapping[str, Decimal] | None = None,
                          benchmark_name: str | None = None) -> dict[str, Any]:
    """The performance metrics of ``account`` (docs/METRICS.md has every definition).

    ``since``/``until`` (dates or RFC 3339 times, inclusive) bound every series;
    ``symbol``/``strategy`` keep only the round trips and realized P&L of that symbol or
    strategy (the account's equity, drawdown and ratios stay the whole account's:
    ``scope``; ``strategies``/``symbols`` give each one's own equity figures); ``as_of``
    (seq or RFC 3339 recorded time) folds only the events up to it; ``now`` (datetime or
    RFC 3339 text) sets "today" and the period starts, default the wall clock at the
    call; ``annualization`` overrides the periods per year of the ratios (default 365
    when the account fills on both Saturdays and Sundays, else 252); ``period`` ("day",
    "week" or "month") picks the period table; ``benchmark_prices`` (date ``YYYY-MM-DD``
    -> price, named ``benchmark_name``) replaces the marks of the account's benchmark.

    Returns a JSON-ready dict (money as exact decimal strings, ratios rounded to 10
    places, counts as ints); see docs/METRICS.md for its shape.

    Raises:
        ValidationError: a bad parameter, or an account with no events up to ``as_of``.
    """
    check_params(account, symbol, strategy, as_of, annualization, now, since, until, period)
    moment = parse_now(now) or datetime.now(UTC)
    last = await recorder.last_seq() if as_of is None else await as_of_seq(recorder, as_of)
    sampler = await _sample(recorder, account, last)
    if sampler.last_time is None:
        raise ValidationError(f"account {account!r} has no events (as of seq {last}); "
                              "check the account name")
    with localcontext(DECIMAL_CONTEXT):
        answer = _assemble(sampler, last, since=since, until=until, symbol=symbol,
                           strategy=strategy, annualization=annualization, now=moment)
        extra = analytics(sampler, answer.pop("_context"), period=period, symbol=symbol,
                          strategy=strategy,
                          benchmark=(benchmark_name or "file", benchmark_prices)
                          if benchmark_prices is not None else None)
        answer["ratios"] = extra.pop("ratios") | answer["ratios"]
        answer.update(extra)
        answer["headline"] = _headline(answer)
        return answer


def _headline(answer: dict[str, Any]) -> dict[str, Any]:
    """The five figures a reader wants first, each taken from its section."""
    risk = answer["risk"]
    return {"net_pnl": risk["net_pnl"], "return_pct": risk["return_pct"],
            "max_drawdown": answer["drawdown"]["max"]["amount"],
            "max_drawdown_pct": answer["drawdown"]["max_pct"]["pct"],
            "sharpe": answer["ratios"]["sharpe"],
            "win_rate_pct": answer["trades"]["win_rate_pct"],
            "reason": risk["reason"]}


def _with_opening(samples: Sequence[Sample], capital: Capital) -> list[Sample]:
    if not capital.opening:
        return list(samples)
    return [replace(s, equity=s.equity + capital.opening,
                    transfers=s.transfers + capital.opening) for s in samples]


def _recovery(samples: Sequence[Sample], best: Drawdown) -> dict[str, Any]:
    """The first sample after the trough whose trading equity is back at the peak's."""
    out: dict[str, Any] = {"recovery_time": None, "recovery_date": None,
                           "recovery_days": None, "recovered": None}
    if best.peak is None or best.trough is None or not best.amount:
        return out
    level = best.peak.equity - best.peak.transfers
    out["recovered"] = False
    for sample in samples:
        if sample.seq > best.trough.seq and sample.equity - sample.transfers >= level:
            seconds = (datetime.fromisoformat(sample.time.replace("Z", "+00:00"))
                       - datetime.fromisoformat(best.trough.time.replace("Z", "+00:00"))
                       ).total_seconds()
            out.update(recovery_time=sample.time, recovery_date=sample.day,
                       recovery_days=ratio(Decimal(seconds) / 86400), recovered=True)
            break
    return out


def _assemble(sampler: Sampler, last: int, *, since: str | None, until: str | None,
              symbol: str | None, strategy: str | None, annualization: int | None,
              now: datetime) -> dict[str, Any]:
    account = sampler.state.accounts[sampler.account]
    window = Window(since, until, account.timezone)
    today = now.astimezone(ZoneInfo(account.timezone)).date()
    capital = find_capital(sampler)

    def chosen(sym: str, strat: str | None) -> bool:
        return (symbol is None or sym == symbol) and (strategy is None or strat == strategy)

    records = [r for r in sampler.realized
               if chosen(r.symbol, r.strategy) and window.has(r.time, r.day)]
    trades = [t for t in sampler.trades
              if chosen(t.row.symbol, t.strategy) and window.has(t.row.closed_at, t.day)]
    samples = _with_opening([s for s in sampler.samples if window.has(s.time, s.day)], capital)
    days = with_capital(list(sampler.days.values()), capital)
    returns = [(d, r) for d, r in daily_returns(days)
               if window.has_day(d)] if capital.source else []
    fill_days = [d.day for d in days if d.fills]
    periods = annualization or default_annualization(fill_days)
    best, best_pct, current, curve = drawdown(samples, percent=capital.source is not None)
    today_row = sampler.state.daily.get((sampler.account, today.isoformat()))
    loss_used = today_row.loss_used if today_row is not None else ZERO
    limit = account.daily_loss_limit
    returns_by_day = dict(returns)
    return {
        "account": sampler.account,
        "as_of_seq": last,
        "now": format_time(now),
        "today": today.isoformat(),
        "timezone": account.timezone,
        "filters": {"since": since, "until": until, "symbol": symbol, "strategy": strategy},
        "scope": {"trades": "filtered" if symbol or strategy else "account",
                  "equity": "account"},
        "capital": capital.to_wire(),
        "pnl": period_pnl(records, today),
        "calendar": {"days": _calendar_days(records, trades),
                     "months": monthly(records, returns)},
        "trades": trade_stats(trades),
        "by_symbol": group_stats(trades, lambda t: t.row.symbol, "symbol"),
        "by_strategy": group_stats(trades, _strategy_of, "strategy"),
        "equity": {
            "balance_curve": [{"seq": s.seq, "time": s.time, "trade_id": s.trade_id,
                               "balance": money(s.balance - capital.opening)}
                              for s in samples if s.kind == "close"],
            "marked_curve": [{"seq": s.seq, "time": s.time,
                              "equity": money(s.equity - capital.opening)}
                             for s in samples if s.kind == "mark"],
            "daily": [{"date": d.day, "equity": money(d.equity - capital.opening),
                       "transfers": money(d.transfers - (capital.opening if i == 0 else 0)),
                       "return_pct": ratio(100 * returns_by_day[d.day])
                       if d.day in returns_by_day else None}
                      for i, d in enumerate(days) if window.has_day(d.day)],
            "final": {"balance": money(account.balance), "equity": money(account.equity)},
        },
        "drawdown": {
            "max": best.to_wire() | _recovery(samples, best),
            "max_pct": best_pct.to_wire(),
            "current": current.to_wire(),
            "curve": [{"seq": s.seq, "time": s.time, "drawdown": money(d.amount),
                       "drawdown_pct": ratio(d.pct)} for s, d in curve],
            "reason": capital.reason,
        },
        "ratios": {"annualization": periods,
                   "annualization_source": "given" if annualization else "default",
                   "daily_returns": len(returns),
                   "risk_free_rate": "0"},
        "daily_loss": {
            "date": today.isoformat(),
            "loss_used": money(loss_used),
            "limit": money(limit),
            "used_pct": ratio(100 * loss_used / limit) if limit else None,
            "blocked": limit is not None and loss_used >= limit,
        },
        "_context": {"window": window, "capital": capital, "days": days,
                     "returns": returns, "periods": periods, "records": records,
                     "trades": trades},
    }


def _strategy_of(trade: Trade) -> str | None:
    return trade.strategy


def _calendar_days(records: Sequence[Realized], trades: Sequence[Trade],
                   ) -> list[dict[str, Any]]:
    """Realized P&L and round trips closed per trading day with a fill, oldest first."""
    pnl: dict[str, Decimal] = {}
    for record in records:
        pnl[record.day] = pnl.get(record.day, ZERO) + record.amount
    closed: dict[str, int] = {}
    for trade in trades:
        closed[trade.day] = closed.get(trade.day, 0) + 1
    return [{"date": day, "realized_pnl": money(pnl.get(day, ZERO)),
             "round_trips": closed.get(day, 0)} for day in sorted(set(pnl) | set(closed))]
