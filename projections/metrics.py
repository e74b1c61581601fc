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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from eventstore.errors import ValidationError
from eventstore.recorder import Recorder
from projections.calendar import utc_datetime
from projections.metrics_series import Realized, Sampler, Trade
from projections.metrics_stats import (
    daily_returns,
    drawdown,
    group_stats,
    money,
    monthly,
    period_pnl,
    ratio,
    sharpe,
    sortino,
    trade_stats,
)
from projections.query import as_of_seq
from schemas.values import DECIMAL_CONTEXT, format_time, parse_time

__all__ = ["PAGE", "Window", "compute_metrics", "default_annualization"]

PAGE = 4096
"""Events read per page."""
_ACCOUNT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Window:
    """``since``/``until`` bounds, inclusive: each a date ``YYYY-MM-DD`` (a trading day)
    or an RFC 3339 time. Times compare with event times; dates with trading days (a time
    bound compares with a day through its date in the account's time zone)."""

    since: str | None
    until: str | None
    timezone: str = "UTC"

    @staticmethod
    def check(value: str | None, name: str) -> None:
        """Raises ``ValidationError`` when ``value`` is neither a date nor an RFC 3339 time."""
        if value is None:
            return
        if not isinstance(value, str):
            raise ValidationError(f"{name} must be a date YYYY-MM-DD or an RFC 3339 time")
        if _DATE.match(value):
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValidationError(f"{name}: {value!r} is not a date YYYY-MM-DD") from None
            return
        try:
            parse_time(value)
        except ValueError as exc:
            raise ValidationError(
                f"{name}: {exc} (give a date YYYY-MM-DD or an RFC 3339 time)") from None

    def _day(self, value: str) -> str:
        if _DATE.match(value):
            return value
        return parse_time(value).astimezone(ZoneInfo(self.timezone)).date().isoformat()

    def has_day(self, day: str) -> bool:
        """Whether a trading day is inside the bounds."""
        if self.since is not None and day < self._day(self.since):
            return False
        return self.until is None or day <= self._day(self.until)

    def has(self, time: str, day: str) -> bool:
        """Whether an event at ``time`` (UTC text) on trading day ``day`` is inside."""
        for bound, before in ((self.since, True), (self.until, False)):
            if bound is None:
                continue
            if _DATE.match(bound):
                if (day < bound) if before else (day > bound):
                    return False
            else:
                moment, limit = utc_datetime(time), _parsed(bound)
                if (moment < limit) if before else (moment > limit):
                    return False
        return True


@lru_cache(maxsize=16)
def _parsed(bound: str) -> datetime:
    return parse_time(bound)


def default_annualization(fill_days: Sequence[str]) -> int:
    """365 when the trading days with fills include a Saturday and a Sunday (a market that
    trades every day), else 252 (FX and stock markets; FX opens on Sunday evening)."""
    weekdays = {date.fromisoformat(day).weekday() for day in fill_days}
    return 365 if {5, 6} <= weekdays else 252


def _check(account: str, symbol: str | None, strategy: str | None,
           as_of: int | str | None, annualization: int | None, now: datetime | None,
           since: str | None, until: str | None) -> None:
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise ValidationError("account must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
    for name, value in (("symbol", symbol), ("strategy", strategy)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValidationError(f"{name} must be a non-empty string (or left out)")
    Window.check(since, "since")
    Window.check(until, "until")
    if as_of is not None:
        if isinstance(as_of, bool) or not isinstance(as_of, int | str):
            raise ValidationError("as_of must be a seq >= 0 or an RFC 3339 time")
        if isinstance(as_of, int) and as_of < 0:
            raise ValidationError("as_of must be a seq >= 0 or an RFC 3339 time")
        if isinstance(as_of, str):
            try:
                parse_time(as_of)
            except ValueError as exc:
                raise ValidationError(f"as_of: {exc}") from None
    if annualization is not None and (isinstance(annualization, bool)
                                      or not isinstance(annualization, int)
                                      or not 1 <= annualization <= 1000):
        raise ValidationError("annualization must be an integer of periods per year, 1-1000 "
                              "(365 for markets open every day, 252 otherwise)")
    if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
        raise ValidationError("now must be a timezone-aware datetime")


async def _voided(recorder: Recorder, account: str, last: int) -> set[tuple[str, str]]:
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


async def _sample(recorder: Recorder, account: str, last: int) -> Sampler:
    """Fold the account's events 1..last, reading the next page while folding one."""
    sampler = Sampler(account)
    if last < 1:
        return sampler
    sampler.voided = await _voided(recorder, account, last)
    pending = asyncio.ensure_future(recorder.read(1, PAGE, account=account))
    while True:
        events = [e for e in await pending if e.seq <= last]
        if not events or events[-1].seq >= last:
            sampler.feed(events)
            return sampler
        pending = asyncio.ensure_future(recorder.read(events[-1].seq + 1, PAGE, account=account))
        try:
            sampler.feed(events)
        except BaseException:
            await asyncio.gather(pending, return_exceptions=True)
            raise


async def compute_metrics(recorder: Recorder, account: str, *, since: str | None = None,
                          until: str | None = None, symbol: str | None = None,
                          strategy: str | None = None, as_of: int | str | None = None,
                          annualization: int | None = None, now: datetime | None = None,
                          ) -> dict[str, Any]:
    """The performance metrics of ``account`` (docs/METRICS.md has every definition).

    ``since``/``until`` (dates or RFC 3339 times, inclusive) bound every series;
    ``symbol``/``strategy`` keep only the round trips and realized P&L of that symbol or
    strategy (the equity, drawdown and ratios stay the whole account's: ``scope``);
    ``as_of`` (seq or RFC 3339 recorded time) folds only the events up to it; ``now``
    sets "today" (default: the time of the account's latest event); ``annualization``
    overrides the periods per year of Sharpe and Sortino (default 365 when the account
    fills on both Saturdays and Sundays, else 252).

    Returns a JSON-ready dict (money as exact decimal strings, ratios rounded to 10
    places, counts as ints); see docs/METRICS.md for its shape.

    Raises:
        ValidationError: a bad parameter, or an account with no events up to ``as_of``.
    """
    _check(account, symbol, strategy, as_of, annualization, now, since, until)
    last = await recorder.last_seq() if as_of is None else await as_of_seq(recorder, as_of)
    sampler = await _sample(recorder, account, last)
    if sampler.last_time is None:
        raise ValidationError(f"account {account!r} has no events (as of seq {last}); "
                              "check the account name")
    with localcontext(DECIMAL_CONTEXT):
        return _assemble(sampler, last, since=since, until=until, symbol=symbol,
                         strategy=strategy, annualization=annualization,
                         now=now or utc_datetime(sampler.last_time))


def _assemble(sampler: Sampler, last: int, *, since: str | None, until: str | None,
              symbol: str | None, strategy: str | None, annualization: int | None,
              now: datetime) -> dict[str, Any]:
    account = sampler.state.accounts[sampler.account]
    window = Window(since, until, account.timezone)
    today = now.astimezone(ZoneInfo(account.timezone)).date()

    def chosen(sym: str, strat: str | None) -> bool:
        return (symbol is None or sym == symbol) and (strategy is None or strat == strategy)

    records = [r for r in sampler.realized
               if chosen(r.symbol, r.strategy) and window.has(r.time, r.day)]
    trades = [t for t in sampler.trades
              if chosen(t.row.symbol, t.strategy) and window.has(t.row.closed_at, t.day)]
    samples = [s for s in sampler.samples if window.has(s.time, s.day)]
    days = list(sampler.days.values())
    returns = [(d, r) for d, r in daily_returns(days) if window.has_day(d)]
    fill_days = [d.day for d in days if d.fills]
    periods = annualization or default_annualization(fill_days)
    best, best_pct, current, curve = drawdown(samples)
    values = [r for _, r in returns]
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
        "pnl": period_pnl(records, today),
        "calendar": {"days": _calendar_days(records, trades),
                     "months": monthly(records, returns)},
        "trades": trade_stats(trades),
        "by_symbol": group_stats(trades, lambda t: t.row.symbol, "symbol"),
        "by_strategy": group_stats(trades, _strategy_of, "strategy"),
        "equity": {
            "balance_curve": [{"seq": s.seq, "time": s.time, "trade_id": s.trade_id,
                               "balance": money(s.balance)}
                              for s in samples if s.kind == "close"],
            "marked_curve": [{"seq": s.seq, "time": s.time, "equity": money(s.equity)}
                             for s in samples if s.kind == "mark"],
            "daily": [{"date": d.day, "equity": money(d.equity),
                       "transfers": money(d.transfers),
                       "return_pct": ratio(100 * returns_by_day[d.day])
                       if d.day in returns_by_day else None}
                      for d in days if window.has_day(d.day)],
            "final": {"balance": money(account.cash + account.realized_pnl),
                      "equity": money(account.cash + account.realized_pnl
                                      + account.unrealized_pnl)},
        },
        "drawdown": {
            "max": best.to_wire(),
            "max_pct": best_pct.to_wire(),
            "current": current.to_wire(),
            "curve": [{"seq": s.seq, "time": s.time, "drawdown": money(d.amount),
                       "drawdown_pct": ratio(d.pct)} for s, d in curve],
        },
        "ratios": {"sharpe": ratio(sharpe(values, periods)),
                   "sortino": ratio(sortino(values, periods)),
                   "annualization": periods,
                   "annualization_source": "given" if annualization else "default",
                   "daily_returns": len(values),
                   "risk_free_rate": "0"},
        "daily_loss": {
            "date": today.isoformat(),
            "loss_used": money(loss_used),
            "limit": money(limit),
            "used_pct": ratio(100 * loss_used / limit) if limit else None,
            "blocked": limit is not None and loss_used >= limit,
        },
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
