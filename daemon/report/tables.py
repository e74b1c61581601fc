"""The report's tables, built once from a ``metrics`` answer and written by each form
(text, HTML and PDF, XLSX). A cell keeps its raw value (the answer's exact text) and its
kind, which says how it is displayed (``daemon.report.format``) and stored (a number in
a spreadsheet)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.report import format as fmt

__all__ = ["Cell", "Table", "account_tables", "cell_text", "headline"]

_SHOW: dict[str, Callable[[Any], str]] = {
    "money": fmt.money, "pct": fmt.pct, "num": fmt.number, "dur": fmt.duration,
    "days": fmt.days,
    "int": lambda v: fmt.DASH if v is None else f"{v:,}",
    "text": lambda v: fmt.DASH if v is None else str(v),
}


@dataclass(frozen=True, slots=True)
class Cell:
    """One value: ``kind`` is money, pct, num, int, dur (seconds), days or text."""

    kind: str
    raw: Any
    signed: bool = False
    """A gain or loss: shown green when positive and red when negative."""


def cell_text(cell: Cell) -> str:
    """The cell as the report shows it."""
    return _SHOW[cell.kind](cell.raw)


@dataclass(slots=True)
class Table:
    """A titled table: a header and rows of cells; ``note`` says why figures are absent."""

    title: str
    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str | None = None
    key: str = ""


def _t(value: Any) -> Cell:
    return Cell("text", value)


def _pnl(value: Any) -> Cell:
    return Cell("money", value, True)


def _ret(value: Any) -> Cell:
    return Cell("pct", value, True)


def headline(m: dict[str, Any]) -> list[tuple[str, Cell]]:
    """The five figures first: net P&L, return, max drawdown, Sharpe, win rate."""
    h = m["headline"]
    dd = Cell("money", h["max_drawdown"])
    return [("Net P&L", _pnl(h["net_pnl"])), ("Return", _ret(h["return_pct"])),
            ("Max drawdown", dd), ("Max drawdown %", Cell("pct", h["max_drawdown_pct"])),
            ("Sharpe", Cell("num", h["sharpe"])), ("Win rate", Cell("pct", h["win_rate_pct"]))]


def _vertical(title: str, rows: Sequence[tuple[str, Cell]], key: str,
              note: str | None = None) -> Table:
    return Table(title, ["figure", "value"], [[_t(name), cell] for name, cell in rows],
                 note, key)


def _risk_rows(f: dict[str, Any]) -> list[tuple[str, Cell]]:
    dd = f["max_drawdown"]
    recovery = ("not recovered" if dd["recovered"] is False else
                f"{dd['recovery_date']} ({dd['recovery_days']} days after the trough)"
                if dd["recovered"] else None)
    return [
        ("return", _ret(f["return_pct"])),
        ("annual return (CAGR)", _ret(f["annual_return_pct"])),
        ("Sharpe", Cell("num", f["sharpe"])), ("Sortino", Cell("num", f["sortino"])),
        ("Calmar", Cell("num", f["calmar"])),
        ("volatility (annualised)", Cell("pct", f["volatility_pct"])),
        ("VaR 95 % (historical, 1 day)", Cell("pct", f["var_95_pct"])),
        ("CVaR 95 % (expected shortfall)", Cell("pct", f["cvar_95_pct"])),
        ("VaR 95 % (normal)", Cell("pct", f["parametric_var_95_pct"])),
        ("VaR 99 % (historical, 1 day)", Cell("pct", f["var_99_pct"])),
        ("CVaR 99 % (expected shortfall)", Cell("pct", f["cvar_99_pct"])),
        ("VaR 99 % (normal)", Cell("pct", f["parametric_var_99_pct"])),
        ("skew", Cell("num", f["skew"])), ("excess kurtosis", Cell("num", f["kurtosis"])),
        ("longest losing run (days)", Cell("int", f["longest_losing_days"])),
        ("exposure (time in the market)", Cell("pct", f["exposure_pct"])),
        ("max drawdown (day ends)", Cell("money", dd["amount"])),
        ("max drawdown % (day ends)", Cell("pct", dd["pct"])),
        ("peak -> trough", _t(f"{dd['peak_date']} -> {dd['trough_date']}"
                              if dd["peak_date"] and dd["amount"] != "0" else None)),
        ("recovery", _t(recovery)),
        ("daily returns", Cell("int", f["daily_returns"])),
    ]


def _group(m: dict[str, Any], key: str, name: str) -> list[Table]:
    """Per strategy (symbol): its equity figures, then its deepest drawdown."""
    counts = {r[name]: r for r in m["by_" + name]}
    table = Table(f"Per {name}", [name, "net P&L", "return", "Sharpe", "Sortino", "Calmar",
                                  "volatility", "VaR 95 %", "CVaR 95 %", "exposure",
                                  "round trips", "win rate"], key=key)
    drawdowns = Table(f"Per {name}: deepest drawdown (day ends)",
                      [name, "max drawdown", "max DD %", "peak", "trough", "recovered",
                       "days to recover"], key=f"{key}_drawdown")
    for row in m[key]:
        c = counts.get(row[name], {})
        wins, losses = c.get("wins", 0), c.get("losses", 0)
        label = _t(row[name] if row[name] is not None else "(none)")
        table.rows.append([
            label, _pnl(row["net_pnl"]), _ret(row["return_pct"]),
            Cell("num", row["sharpe"]), Cell("num", row["sortino"]),
            Cell("num", row["calmar"]), Cell("pct", row["volatility_pct"]),
            Cell("pct", row["var_95_pct"]), Cell("pct", row["cvar_95_pct"]),
            Cell("pct", row["exposure_pct"]), Cell("int", c.get("round_trips", 0)),
            Cell("pct", str(100 * wins / (wins + losses)) if wins + losses else None)])
        dd = row["max_drawdown"]
        drawn = dd["amount"] not in (None, "0")
        drawdowns.rows.append([
            label, Cell("money", dd["amount"]), Cell("pct", dd["pct"]),
            _t(dd["peak_date"] if drawn else None), _t(dd["trough_date"] if drawn else None),
            _t(None if dd["recovered"] is None else
               dd["recovery_date"] if dd["recovered"] else "not recovered"),
            Cell("int", dd["recovery_days"]) if dd["recovered"] else _t(None)])
    table.note = m[key][0]["reason"] if m[key] else None
    return [table, drawdowns]


def account_tables(m: dict[str, Any]) -> list[Table]:
    """Every table of one account's report, in reading order."""
    t, dd, b, card = m["trades"], m["drawdown"], m["benchmark"], m["daily_loss"]
    recovery = dd["max"]
    out = [
        _vertical("Realized P&L", [(label, _pnl(m["pnl"][k])) for label, k in (
            ("today", "today"), ("week to date", "week_to_date"),
            ("month to date", "month_to_date"), ("year to date", "year_to_date"),
            ("all time", "all_time"))], "pnl"),
        _vertical("Round trips", [
            ("round trips", Cell("int", t["round_trips"])),
            ("wins / losses / breakevens", _t(f"{t['wins']} / {t['losses']} / "
                                               f"{t['breakevens']}")),
            ("win rate", Cell("pct", t["win_rate_pct"])),
            ("net P&L", _pnl(t["net_pnl"])), ("fees", Cell("money", t["fees"])),
            ("gross profit", _pnl(t["gross_profit"])),
            ("gross loss", _pnl(t["gross_loss"])),
            ("average win", _pnl(t["average_win"])),
            ("average loss", _pnl(t["average_loss"])),
            ("largest win", _pnl(t["largest_win"])),
            ("largest loss", _pnl(t["largest_loss"])),
            ("profit factor", Cell("num", t["profit_factor"])),
            ("expectancy", _pnl(t["expectancy"])),
            ("average holding time", Cell("dur", t["average_holding_seconds"])),
            ("longest winning streak", Cell("int", t["longest_winning_streak"])),
            ("longest losing streak", Cell("int", t["longest_losing_streak"]))], "trades"),
        _vertical("Drawdown (every mark and close)", [
            ("max drawdown", Cell("money", recovery["amount"])),
            ("max drawdown %", Cell("pct", recovery["pct"])),
            ("peak", _t(recovery["peak_time"])), ("trough", _t(recovery["trough_time"])),
            ("recovered", _t(None if recovery["recovered"] is None else
                             recovery["recovery_time"] or "not recovered")),
            ("trough to recovery", Cell("days", recovery["recovery_days"])),
            ("deepest drawdown %", Cell("pct", dd["max_pct"]["pct"])),
            ("current drawdown", Cell("money", dd["current"]["amount"])),
            ("current drawdown %", Cell("pct", dd["current"]["pct"]))],
            "drawdown", dd["reason"]),
        _vertical("Risk (day-end equity)", _risk_rows(m["risk"]), "risk", m["risk"]["reason"]),
        _vertical(f"Benchmark {b['symbol'] or ''}".strip(), [
            ("source", _t(b["source"])), ("days compared", Cell("int", b["days"])),
            ("benchmark return", _ret(b["return_pct"])),
            ("account return, same days", _ret(b["account_return_pct"])),
            ("excess return", _ret(b["excess_return_pct"])),
            ("alpha (annualised)", Cell("num", b["alpha"])), ("beta", Cell("num", b["beta"])),
            ("correlation", Cell("num", b["correlation"])),
            ("tracking error", Cell("pct", b["tracking_error_pct"])),
            ("information ratio", Cell("num", b["information_ratio"]))],
            "benchmark", b["reason"]),
        *_group(m, "strategies", "strategy"),
        *_group(m, "symbols", "symbol"),
    ]
    p = m["periods"]
    out.append(Table(f"By {p['period']}", [p["period"], "P&L", "return", "round trips",
                                            "win rate"],
                     [[_t(r["period"]), _pnl(r["realized_pnl"]),
                       _ret(r["return_pct"]), Cell("int", r["round_trips"]),
                       Cell("pct", r["win_rate_pct"])] for r in p["rows"]],
                     m["capital"]["reason"], "periods"))
    out.append(Table("Open positions", ["symbol", "side", "quantity", "avg price", "mark",
                                        "unrealized P&L", "strategy", "opened"],
                     [[_t(r["symbol"]), _t(r["side"]), Cell("text", r["quantity"]),
                       Cell("text", r["avg_price"]), Cell("text", r["mark_price"]),
                       _pnl(r["unrealized_pnl"]), _t(r["strategy"]),
                       _t(r["opened_at"])] for r in m["open_positions"]], key="open"))
    out.append(Table("Last round trips", ["closed", "symbol", "side", "strategy", "quantity",
                                          "entry", "exit", "held", "net P&L", "exit reason"],
                     [[_t(r["closed_at"]), _t(r["symbol"]), _t(r["side"]), _t(r["strategy"]),
                       Cell("text", r["quantity"]), Cell("text", r["entry_price"]),
                       Cell("text", r["exit_price"]), Cell("dur", r["holding_seconds"]),
                       _pnl(r["net_pnl"]), _t(r["exit_reason"])]
                      for r in m["last_trades"]], key="last"))
    out.append(_vertical("Daily loss limit", [
        ("date", _t(card["date"])), ("loss used", Cell("money", card["loss_used"])),
        ("limit", Cell("money", card["limit"])), ("used", Cell("pct", card["used_pct"])),
        ("trading blocked", _t("yes" if card["blocked"] else "no"))], "daily_loss"))
    return out
