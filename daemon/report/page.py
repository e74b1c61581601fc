"""The report as one self-contained HTML page (also what ``--pdf`` prints).

Charts are drawn by uPlot (daemon/assets/uplot/, MIT, about 50 KB), inlined once with
its stylesheet, so the page opens with no network. Per account: the headline, then one
chart where equity, the benchmark (rebased to the account's equity on the first common
day) and the drawdown share one time axis, per-strategy equity curves, a histogram of
round-trip P&L, the monthly returns grid and every table of ``daemon.report.tables``.
The chart data are the ``metrics`` answer's own figures (floats for drawing only).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import date, datetime
from importlib.resources import files
from itertools import pairwise
from typing import Any

from daemon.report import format as fmt
from daemon.report.tables import Table, account_tables, cell_text, headline

__all__ = ["render_page", "uplot_assets"]

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;background:#fff;max-width:1200px}
h1{font-size:1.4rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:2px solid #ddd}
.headline{display:flex;flex-wrap:wrap;gap:.75rem;margin:.75rem 0}
.card{border:1px solid #ccc;border-radius:6px;padding:.5rem .9rem;min-width:9rem}
.card .label{font-size:.8rem;color:#666}.card .value{font-size:1.35rem;font-weight:600}
table{border-collapse:collapse;margin:.5rem 1.2rem .8rem 0;display:inline-table;
vertical-align:top;font-size:.85rem}caption{font-weight:600;text-align:left;padding:.2rem 0}
th,td{border:1px solid #ccc;padding:.15rem .45rem;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.neg{color:#b00020}.pos{color:#006b2d}.note{color:#666;font-size:.8rem;max-width:60rem}
.chart{margin:.5rem 0 1rem}.grid td{min-width:4.2rem}
@media print{body{margin:0}section+section h2{break-before:page}.chart,table{break-inside:avoid}
table{font-size:.62rem}th,td{padding:.1rem .25rem}}
"""
_SCRIPT = r"""
(function(){
function el(id){return document.getElementById(id);}
function width(node){return Math.max(480,Math.min(1150,(node.parentNode.clientWidth||1000)-10));}
var colours=["#1f77b4","#ff7f0e","#2ca02c","#9467bd","#8c564b","#e377c2","#17becf","#bcbd22"];
document.querySelectorAll("script.chart-data").forEach(function(tag){
  var d=JSON.parse(tag.textContent);
  var main=el("chart-equity-"+d.index);
  new uPlot({title:"Equity, benchmark and drawdown (one time axis, day ends)",
    width:width(main),height:340,
    scales:{x:{time:true},dd:{range:function(u,min,max){return [Math.min(min,-1e-9)*2.5,0];}}},
    series:[{},
      {label:"equity",stroke:"#1f77b4",width:2,scale:"$"},
      {label:"benchmark "+(d.bench_name||""),stroke:"#7f7f7f",dash:[6,4],scale:"$"},
      {label:d.dd_label,stroke:"#b00020",fill:"rgba(176,0,32,0.15)",scale:"dd"}],
    axes:[{},{scale:"$",label:"equity",size:70},
      {scale:"dd",side:1,label:d.dd_label,grid:{show:false},size:60}]},
    [d.days,d.equity,d.bench,d.drawdown],main);
  var strat=el("chart-strategies-"+d.index);
  if(d.strategies.length){
    var series=[{}],data=[d.days];
    d.strategies.forEach(function(s,i){series.push({label:s.name,
      stroke:colours[i%colours.length],width:2});data.push(s.equity);});
    new uPlot({title:"Equity by strategy (capital + the strategy's P&L)",
      width:width(strat),height:280,scales:{x:{time:true}},series:series,
      axes:[{},{size:70}]},data,strat);
  }
  var hist=el("chart-histogram-"+d.index);
  if(d.hist_x.length){
    new uPlot({title:"Round trips by net P&L",width:width(hist),height:240,
      scales:{x:{time:false}},
      series:[{label:"net P&L"},{label:"round trips",fill:"rgba(31,119,180,0.5)",
        stroke:"#1f77b4",paths:uPlot.paths.bars({size:[0.95,100]})}],
      axes:[{label:"net P&L (bin centre)"},{label:"round trips"}]},
      [d.hist_x,d.hist_y],hist);
  }
});
})();
"""


def uplot_assets() -> tuple[str, str]:
    """uPlot's minified JavaScript and stylesheet, from the package's assets."""
    folder = files("daemon").joinpath("assets", "uplot")
    return (folder.joinpath("uPlot.iife.min.js").read_text(encoding="utf-8"),
            folder.joinpath("uPlot.min.css").read_text(encoding="utf-8"))


def _epoch(day: str) -> int:
    moment = datetime.combine(date.fromisoformat(day), datetime.min.time())
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def chart_data(m: dict[str, Any], index: int) -> dict[str, Any]:
    """The numbers the charts of one account draw (day-end series, floats)."""
    curve = m["risk"]["equity_curve"]
    days = [p["date"] for p in curve]
    equity = [_f(p["equity"]) for p in curve]
    percent = any(p["drawdown_pct"] is not None for p in curve)
    drawdown = [-(_f(p["drawdown_pct"] if percent else p["drawdown"]) or 0.0) for p in curve]
    growth = {p["date"]: float(p["growth"]) for p in m["benchmark"]["curve"]}
    base = next(((e, growth[d]) for d, e in zip(days, equity, strict=True)
                 if d in growth and e is not None), None)
    bench = [base[0] * growth[d] / base[1] if base and d in growth else None for d in days]
    strategies = []
    for row in m["strategies"]:
        points = {p["date"]: _f(p["equity"]) for p in row["equity_curve"]}
        strategies.append({"name": row["strategy"] or "(none)",
                           "equity": [points.get(d) for d in days]})
    edges = [float(e) for e in m["histogram"]["edges"]]
    return {"index": index, "days": [_epoch(d) for d in days], "equity": equity,
            "bench": bench, "bench_name": m["benchmark"]["symbol"],
            "drawdown": drawdown,
            "dd_label": "drawdown % below peak" if percent else "drawdown (money)",
            "strategies": strategies,
            "hist_x": [(a + b) / 2 for a, b in pairwise(edges)]
            if len(edges) > 1 else [],
            "hist_y": m["histogram"]["counts"]}


def _table(table: Table) -> str:
    out = [f'<table data-key="{table.key}"><caption>{html.escape(table.title)}</caption><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in table.header]
    out.append("</tr>")
    for row in table.rows:
        cells = []
        for cell in row:
            cls = fmt.signed_class(cell.raw) if cell.signed else ""
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(cell_text(cell))}</td>")
        out.append(f"<tr>{''.join(cells)}</tr>")
    if not table.rows:
        out.append(f'<tr><td colspan="{len(table.header)}">none</td></tr>')
    out.append("</table>")
    if table.note:
        out.append(f'<p class="note">{html.escape(table.title)}: {html.escape(table.note)}</p>')
    return "".join(out)


def _months(m: dict[str, Any]) -> str:
    cells = {r["month"]: r for r in m["calendar"]["months"]}
    years = sorted({k[:4] for k in cells})
    out = ['<table class="grid"><caption>Monthly returns (realized P&amp;L; return)</caption>'
           "<tr><th>year</th>" + "".join(f"<th>{n}</th>" for n in _MONTHS) + "</tr>"]
    for year in years:
        row = [f"<td>{year}</td>"]
        for number in range(1, 13):
            cell = cells.get(f"{year}-{number:02d}")
            if cell is None:
                row.append("<td></td>")
                continue
            cls = fmt.signed_class(cell["realized_pnl"])
            ret = "" if cell["return_pct"] is None else f"<br>{fmt.pct(cell['return_pct'])}"
            row.append(f'<td class="{cls}">{fmt.money(cell["realized_pnl"])}{ret}</td>')
        out.append("<tr>" + "".join(row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _section(m: dict[str, Any], index: int) -> str:
    name = html.escape(m["account"])
    cards = "".join(
        f'<div class="card"><div class="label">{html.escape(label)}</div>'
        f'<div class="value {fmt.signed_class(cell.raw) if cell.signed else ""}">'
        f"{html.escape(cell_text(cell))}</div></div>" for label, cell in headline(m))
    reason = m["headline"]["reason"]
    data = json.dumps(chart_data(m, index), separators=(",", ":")).replace("</", "<\\/")
    parts = [
        f'<section id="account-{index}"><h2>Account {name}</h2>',
        f'<div class="headline" id="headline-{index}">{cards}</div>',
        f'<p class="note">as of seq {m["as_of_seq"]}; today {m["today"]} '
        f'({html.escape(m["timezone"])}, clock {html.escape(m["now"])}); capital: '
        f'{fmt.money(m["capital"]["amount"])} ({html.escape(str(m["capital"]["source"]))})'
        + (f"; {html.escape(reason)}" if reason else "")
        + "; every figure is defined in docs/METRICS.md.</p>",
        f'<div class="chart" id="chart-equity-{index}"></div>',
        f'<div class="chart" id="chart-strategies-{index}"></div>',
        f'<div class="chart" id="chart-histogram-{index}"></div>',
        f'<script type="application/json" class="chart-data">{data}</script>',
    ]
    parts += [_table(t) for t in account_tables(m)]
    parts.append(_months(m))
    parts.append("</section>")
    return "\n".join(parts)


def render_page(reports: Sequence[dict[str, Any]]) -> str:
    """One self-contained page with a section per account's ``metrics`` answer."""
    script, style = uplot_assets()
    accounts = ", ".join(html.escape(m["account"]) for m in reports) or "no accounts"
    body = "\n".join(_section(m, i) for i, m in enumerate(reports))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>tradelog report: {accounts}</title><style>{style}</style>"
            f"<style>{_STYLE}</style><script>{script}</script></head>"
            f"<body><h1>tradelog report: {accounts}</h1>\n{body}\n"
            f"<script>{_SCRIPT}</script></body></html>\n")
