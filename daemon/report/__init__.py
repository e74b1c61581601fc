"""``tradelog report``: the performance metrics as text, JSON or one self-contained HTML page.

    tradelog report [--account A] [--json] [--html FILE] [--db PATH]

The report reads the database file directly and read-only (``--db``, else the
configured one), so it works with or without a running daemon. Without ``--account``
it reports every account, one section each. The HTML page draws its charts with plotly,
whose JavaScript is inlined: the page opens with no network.

Figures and their definitions: docs/METRICS.md (``projections.metrics``).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped,unused-ignore]
import plotly.io as pio  # type: ignore[import-untyped,unused-ignore]
from rich.console import Console
from rich.table import Table

from daemon.config import Config
from eventstore.recorder import Recorder
from projections.metrics import compute_metrics

__all__ = ["MAX_POINTS", "collect", "render_html", "render_page", "report_command"]

MAX_POINTS = 4000
"""Points per line drawn; longer curves are thinned to each bucket's first, lowest and
highest point, so the shape and every extreme stay."""
_WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fff; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 1.5rem .5rem 0; display: inline-table;
        vertical-align: top; }
th, td { border: 1px solid #ccc; padding: .2rem .5rem; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.neg { color: #b00020; } .pos { color: #006b2d; } .note { color: #666; font-size: .85rem; }
.blocked { color: #fff; background: #b00020; padding: .1rem .4rem; }
"""


def _f(value: str | None) -> float | None:
    """A decimal string as a float, for drawing only (the figures shown are the strings)."""
    return None if value is None else float(value)


def _thin(xs: Sequence[str], ys: Sequence[float | None]) -> tuple[list[str], list[float | None]]:
    """At most about ``MAX_POINTS`` points: per bucket the first, lowest and highest."""
    if len(xs) <= MAX_POINTS:
        return list(xs), list(ys)
    size = -(-len(xs) * 3 // MAX_POINTS)
    keep: set[int] = set()
    for start in range(0, len(xs), size):
        idx = [i for i in range(start, min(start + size, len(xs))) if ys[i] is not None]
        if idx:
            keep |= {idx[0], min(idx, key=lambda i: ys[i] or 0.0),
                     max(idx, key=lambda i: ys[i] or 0.0)}
    keep.add(len(xs) - 1)
    order = sorted(keep)
    return [xs[i] for i in order], [ys[i] for i in order]


def _figure_html(fig: go.Figure, first: bool, div_id: str) -> str:
    fig.update_layout(template="plotly_white", height=360,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40})
    text: str = pio.to_html(fig, include_plotlyjs=first, full_html=False,
                            config=_PLOT_CONFIG, div_id=div_id)
    return text


def equity_figure(metrics: dict[str, Any]) -> go.Figure:
    """Marked equity at each mark and the balance after each closed round trip."""
    equity = metrics["equity"]
    fig = go.Figure()
    marked = equity["marked_curve"]
    xs, ys = _thin([p["time"] for p in marked], [_f(p["equity"]) for p in marked])
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="equity (marked)"))
    closes = equity["balance_curve"]
    xs, ys = _thin([p["time"] for p in closes], [_f(p["balance"]) for p in closes])
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if len(xs) <= 200 else "lines",
                             name="balance after round trip", line={"shape": "hv"},
                             marker={"size": 4}))
    fig.update_layout(title="Equity curve", yaxis_title="account currency")
    return fig


def drawdown_figure(metrics: dict[str, Any]) -> go.Figure:
    """Drawdown below the running peak, in percent of the peak's equity (else money)."""
    curve = metrics["drawdown"]["curve"]
    pct = any(p["drawdown_pct"] is not None for p in curve)
    key = "drawdown_pct" if pct else "drawdown"
    xs, ys = _thin([p["time"] for p in curve],
                   [None if _f(p[key]) is None else -(_f(p[key]) or 0.0) for p in curve])
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", fill="tozeroy", name="drawdown",
                               line={"color": "#b00020"}))
    fig.update_layout(title="Drawdown", yaxis_title="% below peak" if pct else "money below peak")
    return fig


def calendar_figure(metrics: dict[str, Any]) -> go.Figure:
    """The P&L calendar: realized P&L per trading day, a week per column, Mon..Sun rows."""
    days = metrics["calendar"]["days"]
    by_day = {d["date"]: _f(d["realized_pnl"]) for d in days}
    weeks: list[str] = []
    if days:
        first = date.fromisoformat(days[0]["date"])
        last = date.fromisoformat(days[-1]["date"])
        monday = first - timedelta(days=first.weekday())
        while monday <= last:
            weeks.append(monday.isoformat())
            monday += timedelta(days=7)
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for weekday in range(7):
        row: list[float | None] = []
        labels: list[str] = []
        for week in weeks:
            day = (date.fromisoformat(week) + timedelta(days=weekday)).isoformat()
            row.append(by_day.get(day))
            labels.append(f"{day}: {by_day[day]:,.2f}" if day in by_day else day)
        z.append(row)
        text.append(labels)
    fig = go.Figure(go.Heatmap(z=z, x=weeks, y=_WEEKDAYS, text=text, hoverinfo="text",
                               colorscale="RdYlGn", zmid=0, xgap=1, ygap=1,
                               colorbar={"title": "P&L"}))
    fig.update_layout(title="P&L calendar (realized P&L per trading day)",
                      yaxis={"autorange": "reversed"}, xaxis_title="week starting")
    return fig


def monthly_figure(metrics: dict[str, Any]) -> go.Figure:
    """The monthly returns table as a heatmap: a year per row, realized P&L per month."""
    months = metrics["calendar"]["months"]
    years = sorted({m["month"][:4] for m in months})
    cells = {m["month"]: m for m in months}
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for year in years:
        row: list[float | None] = []
        labels: list[str] = []
        for number in range(1, 13):
            cell = cells.get(f"{year}-{number:02d}")
            row.append(_f(cell["realized_pnl"]) if cell else None)
            if cell is None:
                labels.append("")
            else:
                ret = cell["return_pct"]
                pct = "" if ret is None else f"<br>{float(ret):+.2f}%"
                labels.append(f"{float(cell['realized_pnl']):,.0f}{pct}")
        z.append(row)
        text.append(labels)
    fig = go.Figure(go.Heatmap(z=z, x=_MONTHS, y=years, text=text, texttemplate="%{text}",
                               colorscale="RdYlGn", zmid=0, xgap=2, ygap=2,
                               colorbar={"title": "P&L"}))
    fig.update_layout(title="Monthly returns (realized P&L, and equity return %)",
                      yaxis={"type": "category", "autorange": "reversed"})
    return fig


def _cls(value: Any) -> str:
    if isinstance(value, str) and value[:1] == "-":
        return ' class="neg"'
    return ""


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = [f"<table><caption>{html.escape(title)}</caption><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr>")
    for row in rows:
        cells = "".join(f"<td{_cls(v)}>{html.escape('—' if v is None else str(v))}</td>"
                        for v in row)
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "".join(out)


def _section(metrics: dict[str, Any], index: int) -> str:
    name = html.escape(metrics["account"])
    trades, dd, ratios, card = (metrics["trades"], metrics["drawdown"], metrics["ratios"],
                                metrics["daily_loss"])
    pnl = metrics["pnl"]
    blocked = ' <span class="blocked">TRADING BLOCKED</span>' if card["blocked"] else ""
    parts = [
        f'<section id="account-{index}"><h2>Account {name}</h2>',
        f'<p class="note">as of seq {metrics["as_of_seq"]}; today = {metrics["today"]} '
        f'({html.escape(metrics["timezone"])}); figures defined in docs/METRICS.md.</p>',
        _table("Realized P&L", ["period", "P&L"], [
            (label, pnl[key]) for label, key in (
                ("all time", "all_time"), ("year to date", "year_to_date"),
                ("month to date", "month_to_date"), ("week to date", "week_to_date"),
                ("today", "today"))]),
        _table("Round trips", ["figure", "value"], [
            (key.replace("_", " "), value) for key, value in trades.items()]),
        _table("Risk", ["figure", "value"], [
            ("max drawdown", dd["max"]["amount"]), ("max drawdown %", dd["max"]["pct"]),
            ("peak", dd["max"]["peak_date"]), ("trough", dd["max"]["trough_date"]),
            ("deepest drawdown %", dd["max_pct"]["pct"]),
            ("current drawdown", dd["current"]["amount"]),
            ("current drawdown %", dd["current"]["pct"]),
            ("Sharpe", ratios["sharpe"]), ("Sortino", ratios["sortino"]),
            ("annualisation (days/year)", ratios["annualization"]),
            ("final equity", metrics["equity"]["final"]["equity"])]),
        f"<h3>Daily loss{blocked}</h3>",
        _table("Daily loss limit", ["date", "loss used", "limit", "used %", "blocked"], [
            (card["date"], card["loss_used"], card["limit"], card["used_pct"],
             "yes" if card["blocked"] else "no")]),
        _table("Per symbol", ["symbol", "round trips", "wins", "losses", "breakevens", "net P&L"],
               [tuple(r.values()) for r in metrics["by_symbol"]]),
        _table("Per strategy", ["strategy", "round trips", "wins", "losses", "breakevens",
                                "net P&L"], [tuple(r.values()) for r in metrics["by_strategy"]]),
    ]
    figures = [("equity", equity_figure), ("drawdown", drawdown_figure),
               ("calendar", calendar_figure), ("monthly", monthly_figure)]
    for number, (slug, make) in enumerate(figures):
        parts.append(_figure_html(make(metrics), index == 0 and number == 0,
                                  f"chart-{slug}-{index}"))
    parts.append(_table("Monthly returns", ["month", "realized P&L", "return %"], [
        (m["month"], m["realized_pnl"], m["return_pct"]) for m in metrics["calendar"]["months"]]))
    parts.append("</section>")
    return "\n".join(parts)


def render_page(reports: Sequence[dict[str, Any]]) -> str:
    """One self-contained HTML page with a section per account's metrics (plotly's
    JavaScript inlined once; no network needed to open it)."""
    accounts = ", ".join(html.escape(m["account"]) for m in reports) or "no accounts"
    body = "\n".join(_section(m, i) for i, m in enumerate(reports))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>tradelog report: {accounts}</title><style>{_STYLE}</style></head>"
            f"<body><h1>tradelog report: {accounts}</h1>\n{body}\n</body></html>\n")


def render_html(metrics: dict[str, Any]) -> str:
    """One account's metrics (``compute_metrics``'s answer) as a self-contained HTML page:
    the equity curve, the drawdown, the P&L calendar heatmap and the monthly returns
    table, plus the figures' tables."""
    return render_page([metrics])


async def collect(db: Path, account: str | None, **params: Any) -> list[dict[str, Any]]:
    """Metrics of ``account`` (None: every account in the log, by name) from the file at
    ``db``, opened read-only. ``params`` go to ``compute_metrics``.

    Raises:
        ValidationError: a bad parameter or an account with no events.
        EventStoreError: the file cannot be read.
    """
    recorder = await Recorder.open(db, readonly=True)
    try:
        if account is None:
            rows = await recorder.fetch("SELECT DISTINCT account FROM events ORDER BY account")
            names = [str(row[0]) for row in rows]
        else:
            names = [account]
        return [await compute_metrics(recorder, name, **params) for name in names]
    finally:
        await recorder.close()


def _t(value: Any) -> str:
    return "—" if value is None else str(value)


def _pct(value: Any) -> str:
    return "" if value is None else f" ({value}%)"


def _print_text(metrics: dict[str, Any], console: Console) -> None:
    trades, dd, ratios, card = (metrics["trades"], metrics["drawdown"], metrics["ratios"],
                                metrics["daily_loss"])
    table = Table(title=f"{metrics['account']} (as of seq {metrics['as_of_seq']}, "
                        f"today {metrics['today']} {metrics['timezone']})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        (f"realized P&L {k.replace('_', ' ')}", v) for k, v in metrics["pnl"].items()]
    rows += [(k.replace("_", " "), v) for k, v in trades.items()]
    rows += [("max drawdown", f"{_t(dd['max']['amount'])}{_pct(dd['max']['pct'])}"
                              + (f" {dd['max']['peak_date']} -> {dd['max']['trough_date']}"
                                 if dd["max"]["peak_date"] else "")),
             ("current drawdown", f"{_t(dd['current']['amount'])}{_pct(dd['current']['pct'])}"),
             ("Sharpe / Sortino", f"{_t(ratios['sharpe'])} / {_t(ratios['sortino'])} "
                                  f"(x sqrt({ratios['annualization']}))"),
             ("final equity", metrics["equity"]["final"]["equity"]),
             ("daily loss", (f"{_t(card['loss_used'])} of {card['limit']}"
                             f"{_pct(card['used_pct'])}" if card["limit"] is not None
                             else f"{_t(card['loss_used'])} (no limit set)")
                            + (" BLOCKED" if card["blocked"] else ""))]
    for name, value in rows:
        table.add_row(name, "—" if value is None else str(value))
    console.print(table)
    for key, title in (("by_symbol", "per symbol"), ("by_strategy", "per strategy")):
        group = Table(title=title)
        for column in ("name", "round trips", "wins", "losses", "breakevens", "net P&L"):
            group.add_column(column, justify="left" if column == "name" else "right")
        for row in metrics[key]:
            group.add_row(*("—" if v is None else str(v) for v in row.values()))
        console.print(group)


def report_command(args: argparse.Namespace, config: Config) -> int:
    """``tradelog report``: print the metrics (a table, or ``--json``) and, with ``--html
    FILE``, write the HTML page. Reads ``args.db`` or ``config.db`` read-only; ignores
    ``--socket``. Optional ``since``/``until``/``symbol``/``strategy``/``as_of``/
    ``annualization`` attributes of ``args`` pass to ``compute_metrics``.

    Returns 0. Raises ValidationError (bad parameter, unknown account) and
    EventStoreError (unreadable file), which the CLI turns into exit code 1.
    """
    params: dict[str, Any] = {}
    for name in ("since", "until", "symbol", "strategy", "annualization"):
        if getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    as_of = getattr(args, "as_of", None)
    if as_of is not None:
        params["as_of"] = int(as_of) if str(as_of).isdigit() else as_of
    db = args.db if getattr(args, "db", None) is not None else config.db
    reports = asyncio.run(collect(db, args.account, **params))
    if args.html is not None:
        Path(args.html).write_text(render_page(reports), encoding="utf-8")
    if args.json:
        answer: Any = reports[0] if args.account is not None else {"accounts": reports}
        print(json.dumps(answer, indent=2))
    else:
        console = Console()
        for metrics in reports:
            _print_text(metrics, console)
        if not reports:
            console.print("no accounts in the log")
        if args.html is not None:
            console.print(f"report: wrote {args.html}")
    return 0
