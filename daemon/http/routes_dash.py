"""The dashboard's figures, with "today" and the period starts from the clock in the
account's time zone (a quiet day shows 0 for today): trades with a summary,
cumulative P&L, daily stats, the P&L calendar and the daily loss card."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from daemon.http.auth import Reader
from daemon.http.common import (
    ERRORS,
    AsOfParam,
    RequiredAccount,
    api_of,
    as_of_value,
    given,
    json_answer,
    read_answer,
    reader_of,
)
from daemon.http.context import clock
from daemon.http.models_dash import (
    CumulativePnl,
    DailyLoss,
    DailyStats,
    EquityCurve,
    PnlCalendar,
    Trades,
)
from projections.query_params import MAX_LIMIT, MAX_OFFSET

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["dashboard"])
ReaderDep = Annotated[Reader, Depends(reader_of)]
Text = Annotated[str | None, Query(min_length=1, max_length=256)]
Time = Annotated[str | None, Query(max_length=64)]
_SUMMARY_PAGE = 10_000


class _Summary:
    """The trades summary, added up a page at a time (no page is kept)."""

    def __init__(self) -> None:
        self.count = self.wins = self.losses = 0
        self.profit = self.loss = self.fees = Decimal(0)
        self.best: Decimal | None = None
        self.worst: Decimal | None = None

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.count += 1
            if row.get("fees") is not None:
                self.fees += Decimal(row["fees"])
            if row.get("net_pnl") is None:
                continue
            net = Decimal(row["net_pnl"])
            if net > 0:
                self.wins, self.profit = self.wins + 1, self.profit + net
            elif net < 0:
                self.losses, self.loss = self.losses + 1, self.loss + net
            self.best = net if self.best is None else max(self.best, net)
            self.worst = net if self.worst is None else min(self.worst, net)

    def wire(self) -> dict[str, Any]:
        decided = self.wins + self.losses
        return {
            "round_trips": self.count, "wins": self.wins, "losses": self.losses,
            "breakevens": self.count - decided,
            "win_rate_pct": str(round(Decimal(100) * self.wins / decided, 2))
            if decided else None,
            "gross_profit": str(self.profit), "gross_loss": str(self.loss),
            "fees": str(self.fees), "net_pnl": str(self.profit + self.loss),
            "best": None if self.best is None else str(self.best),
            "worst": None if self.worst is None else str(self.worst),
        }


@router.get("/trades", response_model=Trades, summary="closed trades with filters and a summary")
async def trades(request: Request, reader: ReaderDep, account: RequiredAccount,
                 symbol: Text = None, strategy: Text = None, venue: Text = None,
                 asset_class: Text = None, since: Time = None, until: Time = None,
                 order: Literal["asc", "desc"] | None = None,
                 offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
                 limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
                 as_of: AsOfParam = None) -> Response:
    """The ``trades`` view's page (as ``/views/trades``) and ``summary``: round trips,
    wins, losses, breakevens, win rate (% of wins among wins + losses, 2 places), gross
    profit and loss, fees, net P&L, best and worst, over every trade the filters match
    (``symbol``, ``strategy``, ``venue``/``asset_class`` for the segment, ``since``/
    ``until`` on ``closed_at``), not only the page."""
    api = api_of(request)
    filters = given(view="trades", account=account, symbol=symbol, strategy=strategy,
                    venue=venue, asset_class=asset_class, since=since, until=until)
    page = await api.query(reader, {**filters, **given(
        order=order, offset=offset, limit=limit, as_of=as_of_value(as_of))})
    seq = page["as_of_seq"]
    summary = _Summary()
    while summary.count < page["total"]:
        part = await api.query(reader, {**filters, "order": "asc", "offset": summary.count,
                                        "limit": _SUMMARY_PAGE, "as_of": seq})
        if not part["rows"]:
            break
        summary.add(part["rows"])
    return await read_answer(request, {**page, "summary": summary.wire()})


async def _figures(request: Request, reader: Reader, account: str) -> dict[str, Any]:
    return await api_of(request).metrics(reader, {"account": account}, now=clock())


@router.get("/cumulative-pnl", response_model=CumulativePnl,
            summary="realized P&L: all time, year, month, week and today")
async def cumulative_pnl(request: Request, reader: ReaderDep,
                         account: RequiredAccount) -> Response:
    """Realized P&L summed all time and from the start of this year, month, week
    (Monday) and today, by the account's trading days on the clock (metrics ``pnl``)."""
    found = await _figures(request, reader, account)
    pnl = found["pnl"]
    return json_answer({"account": account, "as_of_seq": found["as_of_seq"],
                        "now": found["now"], "today": found["today"],
                        "timezone": found["timezone"],
                        "all": pnl.get("all_time"), "year": pnl.get("year_to_date"),
                        "month": pnl.get("month_to_date"), "week": pnl.get("week_to_date"),
                        "day": pnl.get("today")})


_ZERO_DAY = {"realized_pnl": "0", "gross_profit": "0", "gross_loss": "0", "fees": "0",
             "trades_closed": 0, "wins": 0, "losses": 0, "signals": 0, "fills": 0,
             "loss_used": "0", "limit_hit": False}


@router.get("/daily-stats", response_model=DailyStats,
            summary="per-day statistics, today first")
async def daily_stats(request: Request, reader: ReaderDep, account: RequiredAccount,
                      since: Time = None, until: Time = None,
                      limit: Annotated[int, Query(ge=1, le=3660)] = 31) -> Response:
    """``today``: the ``daily`` row of today on the clock in the account's time zone
    (zeros on a day without events); ``days``: the ``daily`` rows (the ``limit`` most
    recent, oldest first, within ``since``/``until``)."""
    api = api_of(request)
    figures = await _figures(request, reader, account)
    zone, day = figures["timezone"], figures["today"]
    found = await api.query(reader, {"view": "daily", "account": account,
                                     "since": day, "until": day})
    row = found["rows"][0] if found["rows"] else {"account": account, "date": day,
                                                  **_ZERO_DAY}
    days = await api.query(reader, given(view="daily", account=account, since=since,
                                         until=until, limit=limit))
    return json_answer({"account": account, "timezone": zone, "today": row,
                        "as_of_seq": days["as_of_seq"], "days": days["rows"]})


@router.get("/pnl-calendar", response_model=PnlCalendar,
            summary="realized P&L per trading day and per month")
async def pnl_calendar(request: Request, reader: ReaderDep,
                       account: RequiredAccount) -> Response:
    """Per trading day with a fill: realized P&L and round trips closed; per month:
    realized P&L and the compounded return (metrics ``calendar``)."""
    found = await _figures(request, reader, account)
    return json_answer({"account": account, "as_of_seq": found["as_of_seq"],
                        "today": found["today"], "timezone": found["timezone"],
                        **found["calendar"]})


@router.get("/daily-loss", response_model=DailyLoss, summary="the daily loss card")
async def daily_loss(request: Request, reader: ReaderDep, account: RequiredAccount) -> Response:
    """Today's loss used against the daily loss limit, as money and as a percentage
    (None without a limit), and whether trading is blocked (metrics ``daily_loss``)."""
    found = await _figures(request, reader, account)
    return json_answer({"account": account, "as_of_seq": found["as_of_seq"],
                        "timezone": found["timezone"], **found["daily_loss"]})


@router.get("/equity-curve", response_model=EquityCurve,
            summary="equity and drawdown on one time axis")
async def equity_curve(request: Request, reader: ReaderDep, account: RequiredAccount,
                       max_points: Annotated[int, Query(ge=2, le=100_000)] = 5000
                       ) -> Response:
    """One point per metrics sample (a ``mark``, or a round trip's close), oldest first:
    ``equity`` (at a close, the balance then), ``drawdown`` below the running peak
    (money) and ``drawdown_pct`` (metrics ``drawdown.curve``). More than ``max_points``
    samples are thinned evenly, the last one always kept."""
    found = await _figures(request, reader, account)
    equity = {p["seq"]: p["balance"] for p in found["equity"]["balance_curve"]}
    equity.update({p["seq"]: p["equity"] for p in found["equity"]["marked_curve"]})
    points = [{"seq": p["seq"], "time": p["time"], "equity": equity.get(p["seq"]),
               "drawdown": p["drawdown"], "drawdown_pct": p["drawdown_pct"]}
              for p in found["drawdown"]["curve"]]
    if len(points) > max_points:
        step = len(points) / (max_points - 1)
        points = [points[int(i * step)] for i in range(max_points - 1)] + [points[-1]]
    return json_answer({"account": account, "as_of_seq": found["as_of_seq"],
                        "points": points})
