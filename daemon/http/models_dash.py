"""The shapes of the dashboard's and the freqtrade-style answers (OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from daemon.http.models import ROW_MODELS, VIEW_ANSWERS, list_of, optional

__all__ = ["Balance", "CumulativePnl", "DailyLoss", "DailyStats", "EquityCurve", "Performance",
           "PeriodProfit", "PnlCalendar", "Profit", "Trades"]

Dec = str


class TradesSummary(BaseModel):
    """Over every trade the filters match; money as decimal strings."""

    round_trips: int
    wins: int
    losses: int
    breakevens: int
    win_rate_pct: Dec | None
    gross_profit: Dec
    gross_loss: Dec
    fees: Dec
    net_pnl: Dec
    best: Dec | None
    worst: Dec | None


Trades: type[BaseModel] = create_model(
    "Trades", __base__=VIEW_ANSWERS["trades"], __doc__="The ``trades`` view's page and the "
    "``summary`` of every matching trade.", summary=(TradesSummary, ...))


class CumulativePnl(BaseModel):
    """Realized P&L from the start of each period to now (the account's trading days)."""

    account: str
    as_of_seq: int
    now: str
    today: str
    timezone: str
    all: Dec | None
    year: Dec | None
    month: Dec | None
    week: Dec | None
    day: Dec | None = Field(description="today")


DailyStats: type[BaseModel] = create_model(
    "DailyStats", account=(str, ...), timezone=(str, ...),
    today=(dict[str, Any], Field(description="today's daily row (zeros without events)")),
    as_of_seq=(int, ...), days=(list_of(ROW_MODELS["daily"]), ...))


class PnlCalendar(BaseModel):
    account: str
    as_of_seq: int
    today: str
    timezone: str
    days: list[dict[str, Any]]
    months: list[dict[str, Any]]


class DailyLoss(BaseModel):
    account: str
    as_of_seq: int
    timezone: str
    date: str
    loss_used: Dec | None
    limit: Dec | None
    used_pct: Dec | None
    blocked: bool


class Profit(BaseModel):
    """freqtrade's ``/profit``, in this log's terms."""

    account: str
    as_of_seq: int
    currency: str | None
    profit_closed: Dec | None = Field(description="realized P&L, all time")
    profit_all: Dec | None = Field(description="realized + unrealized P&L")
    closed_trade_count: int
    open_trade_count: int
    winning_trades: int
    losing_trades: int
    winrate_pct: Dec | None
    profit_factor: Dec | None
    expectancy: Dec | None
    max_drawdown: Dec | None
    max_drawdown_pct: Dec | None
    best_symbol: str | None
    first_trade_time: str | None
    latest_trade_time: str | None
    balance: Dec | None
    equity: Dec | None


class PeriodRow(BaseModel):
    date: str = Field(description="the period's first trading day")
    abs_profit: Dec
    trade_count: int


class PeriodProfit(BaseModel):
    """freqtrade's ``/daily``, ``/weekly``, ``/monthly``: realized P&L per period,
    newest first, periods without trades included."""

    account: str
    as_of_seq: int
    timezone: str
    unit: Literal["day", "week", "month"]
    data: list[PeriodRow]


class Performance(BaseModel):
    """freqtrade's ``/performance``: round trips and net P&L per symbol or strategy."""

    account: str
    as_of_seq: int
    by: Literal["symbol", "strategy"]
    data: list[dict[str, Any]]


Balance: type[BaseModel] = create_model(
    "Balance", __doc__="freqtrade's ``/balance``: the account's ``balances`` row and its "
    "currency.", account=(str, ...), as_of_seq=(int, ...), currency=(str | None, ...),
    balance=(optional(ROW_MODELS["balances"]), ...))


class CurvePoint(BaseModel):
    seq: int
    time: str
    equity: Dec | None
    drawdown: Dec | None
    drawdown_pct: Dec | None


class EquityCurve(BaseModel):
    """Equity and drawdown per sample, oldest first."""

    account: str
    as_of_seq: int
    points: list[CurvePoint]
