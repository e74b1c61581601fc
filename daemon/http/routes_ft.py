"""freqtrade-style routes (its REST API's ``ping``, ``profit``, ``daily``/``weekly``/
``monthly``, ``performance``, ``balance``, ``status``), answered from the views and
``metrics`` with the clock's "today"."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from daemon.http.auth import Reader
from daemon.http.common import ERRORS, RequiredAccount, api_of, json_answer, reader_of
from daemon.http.context import clock
from daemon.http.models import VIEW_ANSWERS, Ping
from daemon.http.models_dash import Balance, Performance, PeriodProfit, Profit

__all__ = ["period_start", "router"]

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["freqtrade-style"])
ReaderDep = Annotated[Reader, Depends(reader_of)]


@router.get("/ping", response_model=Ping, summary="is the API up")
async def ping() -> dict[str, str]:
    """``{"status": "pong"}``, without a token."""
    return {"status": "pong"}


async def _account_row(request: Request, reader: Reader, account: str
                       ) -> tuple[int, dict[str, Any] | None, str | None]:
    api = api_of(request)
    balances = await api.query(reader, {"view": "balances", "account": account})
    info = await api.query(reader, {"view": "accounts", "account": account})
    currency = info["rows"][0].get("currency") if info["rows"] else None
    row = balances["rows"][0] if balances["rows"] else None
    return balances["as_of_seq"], row, currency


@router.get("/profit", response_model=Profit, summary="profit summary")
async def profit(request: Request, reader: ReaderDep, account: RequiredAccount) -> Response:
    """Realized and total P&L, trade counts, win rate, profit factor, expectancy, the
    worst drawdown and the best symbol (by net P&L)."""
    found = await api_of(request).metrics(reader, {"account": account}, now=clock())
    _, row, currency = await _account_row(request, reader, account)
    stats = found["trades"]
    realized = Decimal(found["pnl"]["all_time"] or 0)
    unrealized = Decimal(row["unrealized_pnl"] or 0) if row else Decimal(0)
    symbols = [s for s in found["by_symbol"] if s.get("net_pnl") is not None]
    best = max(symbols, key=lambda s: Decimal(s["net_pnl"]), default=None)
    closes = found["equity"]["balance_curve"]
    return json_answer({
        "account": account, "as_of_seq": found["as_of_seq"], "currency": currency,
        "profit_closed": str(realized), "profit_all": str(realized + unrealized),
        "closed_trade_count": stats["round_trips"],
        "open_trade_count": int(row["open_positions"] or 0) if row else 0,
        "winning_trades": stats["wins"], "losing_trades": stats["losses"],
        "winrate_pct": stats.get("win_rate_pct"), "profit_factor": stats.get("profit_factor"),
        "expectancy": stats.get("expectancy"),
        "max_drawdown": found["drawdown"]["max"].get("amount"),
        "max_drawdown_pct": found["drawdown"]["max_pct"].get("pct"),
        "best_symbol": best["symbol"] if best else None,
        "first_trade_time": closes[0]["time"] if closes else None,
        "latest_trade_time": closes[-1]["time"] if closes else None,
        "balance": row.get("balance") if row else None,
        "equity": row.get("equity") if row else None,
    })


def period_start(day: date, unit: str) -> date:
    """The first trading day of ``day``'s period: itself, its week's Monday, its month's 1st."""
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def _back(start: date, unit: str) -> date:
    if unit == "week":
        return start - timedelta(days=7)
    if unit == "month":
        return (start - timedelta(days=1)).replace(day=1)
    return start - timedelta(days=1)


async def _periods(request: Request, reader: Reader, account: str, unit: str,
                   timescale: int) -> Response:
    found = await api_of(request).metrics(reader, {"account": account}, now=clock())
    start = period_start(date.fromisoformat(found["today"]), unit)
    starts = [start]
    for _ in range(timescale - 1):
        starts.append(_back(starts[-1], unit))
    pnl = {s: Decimal(0) for s in starts}
    count = dict.fromkeys(starts, 0)
    for day in found["calendar"]["days"]:
        key = period_start(date.fromisoformat(day["date"]), unit)
        if key in pnl:
            pnl[key] += Decimal(day["realized_pnl"])
            count[key] += int(day["round_trips"])
    return json_answer({
        "account": account, "as_of_seq": found["as_of_seq"], "timezone": found["timezone"],
        "unit": unit,
        "data": [{"date": s.isoformat(), "abs_profit": str(pnl[s]),
                  "trade_count": count[s]} for s in starts]})


Timescale = Annotated[int, Query(ge=1, le=366, description="periods, newest first")]


@router.get("/daily", response_model=PeriodProfit, summary="realized P&L per day")
async def daily(request: Request, reader: ReaderDep, account: RequiredAccount,
                timescale: Timescale = 7) -> Response:
    """The last ``timescale`` trading days to today (the clock's, in the account's zone)."""
    return await _periods(request, reader, account, "day", timescale)


@router.get("/weekly", response_model=PeriodProfit, summary="realized P&L per week")
async def weekly(request: Request, reader: ReaderDep, account: RequiredAccount,
                 timescale: Timescale = 4) -> Response:
    """The last ``timescale`` weeks (from Monday) to this one."""
    return await _periods(request, reader, account, "week", timescale)


@router.get("/monthly", response_model=PeriodProfit, summary="realized P&L per month")
async def monthly(request: Request, reader: ReaderDep, account: RequiredAccount,
                  timescale: Timescale = 6) -> Response:
    """The last ``timescale`` months to this one."""
    return await _periods(request, reader, account, "month", timescale)


@router.get("/performance", response_model=Performance,
            summary="round trips and net P&L per symbol or per strategy")
async def performance(request: Request, reader: ReaderDep, account: RequiredAccount,
                      by: Literal["symbol", "strategy"] = "symbol") -> Response:
    """metrics ``by_symbol`` / ``by_strategy``: round trips, wins, losses, breakevens and
    net P&L per group, sorted by key."""
    found = await api_of(request).metrics(reader, {"account": account}, now=clock())
    return json_answer({"account": account, "as_of_seq": found["as_of_seq"], "by": by,
                        "data": found[f"by_{by}"]})


@router.get("/balance", response_model=Balance, summary="balance and equity")
async def balance(request: Request, reader: ReaderDep, account: RequiredAccount) -> Response:
    """The account's ``balances`` row (cash, realized and unrealized P&L, balance, equity,
    open positions) and its currency."""
    seq, row, currency = await _account_row(request, reader, account)
    return json_answer({"account": account, "as_of_seq": seq, "currency": currency,
                        "balance": row})


@router.get("/status", response_model=VIEW_ANSWERS["positions"],
            summary="open positions with unrealized P&L")
async def status(request: Request, reader: ReaderDep, account: RequiredAccount) -> Response:
    """The ``positions`` view of the account (as ``/views/positions``)."""
    return json_answer(await api_of(request).query(
        reader, {"view": "positions", "account": account}))
