"""``tradelog report``: the HTML page, its charts in a browser, the PDF, the XLSX and
the text, each showing the figures of the ``metrics`` answer, formatted for reading.

The browser checks run Debian's headless chromium (skipped only when it is not
installed; CI installs it): ``--dump-dom`` after the scripts ran must hold uPlot's
drawn chart (a canvas in a ``uplot`` box) in every chart, a screenshot must be far from
blank (many colours), and the printed PDF's text must hold the headline.
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import struct
import subprocess
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from daemon.config import Config, load_config
from daemon.report import read_benchmark, render_html, report_command
from eventstore.errors import ValidationError
from eventstore.recorder import Recorder
from projections.metrics import compute_metrics
from tests.fold_support import new_event
from tests.projections.test_metrics import ACCOUNT, hand_history
from tests.projections.test_metrics_library import ACCOUNT as LIB
from tests.projections.test_metrics_library import history

CHARTS = ("equity", "strategies", "histogram")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOW = "2024-03-08T23:00:00Z"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def make_db(path: Path) -> Path:
    """A log with ``hand_history`` in accounts ``hand`` and ``other``, and the 45-day
    two-strategy history with a benchmark in account ``lib``."""

    async def fill() -> None:
        recorder = await Recorder.open(path)
        try:
            await recorder.append([new_event(e) for e in hand_history()])
            await recorder.append([new_event(e) for e in hand_history("other")])
            await recorder.append([new_event(e) for e in history()[0]])
        finally:
            await recorder.close()

    asyncio.run(fill())
    return path


def config_for(db: Path) -> Config:
    return load_config(None, {"db": db, "socket": db.parent / "none.sock"})


def args_for(account: str | None, **given: Any) -> argparse.Namespace:
    """``report`` arguments as the CLI parses them, a historical ``now``."""
    values: dict[str, Any] = {"account": account, "json": False, "html": None, "db": None,
                              "socket": None, "now": NOW, "period": "month"}
    values.update(given)
    return argparse.Namespace(**values)


def write_page(tmp_path: Path, account: str | None) -> Path:
    """``tradelog report --html`` into ``tmp_path``; returns the page's path."""
    db = make_db(tmp_path / "log.db")
    page = tmp_path / "report.html"
    args = args_for(account, html=page)
    assert 0 == report_command(args, config_for(db))
    return page


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    """Headless chromium with no network services and a fresh profile."""
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               "--virtual-time-budget=15000", *args]
    return subprocess.run(command, capture_output=True, timeout=120, check=True)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB or RGBA PNG (zlib + struct): width, height and each row's
    unfiltered bytes (PNG specification, section 9: filters None, Sub, Up, Average,
    Paeth)."""
    assert b"\x89PNG\r\n\x1a\n" == data[:8]
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert 8 == depth
            bpp = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], (previous[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def lib_metrics(db: Path, **params: Any) -> dict[str, Any]:
    """``compute_metrics`` of the ``lib`` account at ``NOW``."""

    async def run() -> dict[str, Any]:
        recorder = await Recorder.open(db, readonly=True)
        try:
            return await compute_metrics(recorder, LIB, now=NOW, **params)
        finally:
            await recorder.close()

    return asyncio.run(run())


def test_page_is_small_self_contained_with_every_chart(tmp_path: Path) -> None:
    """Without --account the page has a section per account, each with its charts and
    monthly grid; uPlot is inlined once (no plotly), nothing is loaded from the network,
    and three accounts take well under 1 MB (about 0.2 MB)."""
    page = write_page(tmp_path, None)
    text = page.read_text()
    for index in (0, 1, 2):
        for chart in CHARTS:
            assert 1 == text.count(f'id="chart-{chart}-{index}"')
    assert 1 == text.count("var uPlot=function(){")
    assert "plotly" not in text.lower()
    tags = re.findall(r"<script[^>]*>", text)
    assert [] == [tag for tag in tags if "src" in tag]
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.DOTALL)
    assert None is re.search(r"(src|href)\s*=", markup)
    for name in ("hand", "lib", "other"):
        assert f"Account {name}" in text
    assert "<caption>Monthly returns (realized P&amp;L; return)</caption>" in text
    assert page.stat().st_size < 250_000


def test_headline_first_and_figures_formatted(tmp_path: Path) -> None:
    """The headline (net P&L, return, max drawdown, Sharpe, win rate) comes before any
    chart or table; money shows 2 decimals with separators, percents 2 decimals, the
    holding time in hours and minutes, and no table cell shows more than 2 decimals."""
    db = make_db(tmp_path / "log.db")
    m = lib_metrics(db)
    text = render_html(m)
    h = m["headline"]
    start = text.index('id="headline-0"')
    assert start < text.index('id="chart-equity-0"') < text.index("<table")
    cards = text[start:text.index("</div></div></div>", start)]
    net = Decimal(h["net_pnl"])
    assert f"{net.quantize(Decimal('0.01')):,.2f}" in cards
    assert "," in f"{net:,.2f}"  # the history makes thousands
    assert f"{Decimal(h['return_pct']).quantize(Decimal('0.01'))} %" in cards
    assert f"{Decimal(h['sharpe']).quantize(Decimal('0.01'))}" in cards
    assert f"{Decimal(h['win_rate_pct']).quantize(Decimal('0.01'))} %" in cards
    for label in ("Net P&amp;L", "Return", "Max drawdown", "Sharpe", "Win rate"):
        assert label in cards
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", text)
    assert [] == [c for c in cells if re.fullmatch(r"-?[\d,]*\.\d{3,}( %)?", c)]
    seconds = Decimal(m["trades"]["average_holding_seconds"])
    hours, rest = divmod(int(seconds.to_integral_value()), 3600)
    assert f"<td>average holding time</td><td>{hours} h {rest // 60} min</td>" in text


def test_every_figure_is_on_the_page_and_in_the_text(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Risk, benchmark, per-strategy, period, open-position and last-trade figures are in
    the HTML page and in the text report, as the answer gives them (2 decimals)."""
    db = make_db(tmp_path / "log.db")
    m = lib_metrics(db)
    text = render_html(m)
    assert 0 == report_command(args_for(LIB, db=db), config_for(db))
    out = capsys.readouterr().out
    risk, bench = m["risk"], m["benchmark"]
    shown = {
        "Sortino": risk["sortino"], "Calmar": risk["calmar"],
        "VaR 95 % (historical, 1 day)": risk["var_95_pct"],
        "CVaR 99 % (expected shortfall)": risk["cvar_99_pct"],
        "VaR 99 % (normal)": risk["parametric_var_99_pct"],
        "volatility (annualised)": risk["volatility_pct"], "skew": risk["skew"],
        "excess kurtosis": risk["kurtosis"], "beta": bench["beta"],
        "alpha (annualised)": bench["alpha"], "correlation": bench["correlation"],
        "tracking error": bench["tracking_error_pct"],
        "information ratio": bench["information_ratio"],
        "benchmark return": bench["return_pct"],
        "exposure (time in the market)": risk["exposure_pct"],
    }
    for label, value in shown.items():
        figure = f"{Decimal(value).quantize(Decimal('0.01')):,.2f}"
        assert re.search(rf"<td>{re.escape(html_label(label))}</td><td[^>]*>{re.escape(figure)}",
                         text), label
        assert re.search(rf"{re.escape(label)}\s*│\s*{re.escape(figure)}", out), label
    for row in m["strategies"]:
        dd = row["max_drawdown"]
        figures = [f"{Decimal(row[k]).quantize(Decimal('0.01')):,.2f}"
                   for k in ("net_pnl", "sharpe", "sortino", "calmar")]
        net, *ratios = (rf"<td[^>]*>{re.escape(f)}</td>" for f in figures)
        assert re.search(rf"<td>{row['strategy']}</td>{net}<td[^>]*>[^<]*</td>"
                         + "".join(ratios), text), row["strategy"]
        cells = [dd["peak_date"], dd["trough_date"],
                 dd["recovery_date"] if dd["recovered"] else "not recovered"]
        assert re.search(rf"<td>{row['strategy']}</td><td>[^<]*</td><td>[^<]*</td>"
                         + "".join(f"<td>{c}</td>" for c in cells), text), row["strategy"]
        assert dd["peak_date"] in out
    assert "Open positions" in out
    assert "Last round trips" in out
    assert m["last_trades"][0]["closed_at"] in text
    assert m["open_positions"][0]["symbol"] in {"BBB"}
    assert f"<td>{m['periods']['rows'][0]['period']}</td>" in text
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[1].startswith("Net P&L: ")  # the headline right after the title


def html_label(label: str) -> str:
    return label.replace("&", "&amp;")


def test_no_capital_shows_no_percent(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """An account with no deposit: percents are dashes and the reason is printed."""

    async def fill() -> None:
        recorder = await Recorder.open(tmp_path / "bare.db")
        try:
            await recorder.append([new_event(e) for e in history(deposit=False)[0]])
        finally:
            await recorder.close()

    asyncio.run(fill())
    db = tmp_path / "bare.db"
    page = tmp_path / "bare.html"
    assert 0 == report_command(args_for(LIB, db=db, html=page), config_for(db))
    out = capsys.readouterr().out
    text = page.read_text()
    assert "Return: —" in out
    assert "no capital: the account has no deposit" in out
    assert "no capital: the account has no deposit" in text
    assert not re.search(r"<td[^>]*>-?[\\d,.]+ %</td>", text.split("Round trips")[0])


def test_report_json_and_period(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` prints the ``metrics`` answer; ``--period week`` gives ISO weeks in the
    answer and in the text."""
    db = make_db(tmp_path / "log.db")
    assert 0 == report_command(args_for(ACCOUNT, db=db, json=True),
                               config_for(tmp_path / "elsewhere.db"))
    answer = json.loads(capsys.readouterr().out)
    assert (ACCOUNT, "74") == (answer["account"], answer["pnl"]["all_time"])
    assert 0 == report_command(args_for(LIB, db=db, period="week", json=True), config_for(db))
    weekly = json.loads(capsys.readouterr().out)
    assert "2024-W01" == weekly["periods"]["rows"][0]["period"]
    assert 0 == report_command(args_for(LIB, db=db, period="week"), config_for(db))
    out = capsys.readouterr().out
    assert "By week" in out
    assert "2024-W01" in out
    assert "profit factor" in out


def test_benchmark_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--benchmark FILE``: prices from a CSV replace the marks (SPY doubled: the same
    beta); a file without a price column or with a bad line is refused, saying where."""
    db = make_db(tmp_path / "log.db")
    _, books = history()
    prices = tmp_path / "spy.csv"
    prices.write_text("Date,Close\n" + "".join(
        f"{d},{2 * p:.2f}\n" for d, p in zip(books.days, books.spy, strict=True)))
    assert 0 == report_command(args_for(LIB, db=db, json=True, benchmark=prices),
                               config_for(db))
    bench = json.loads(capsys.readouterr().out)["benchmark"]
    marks = lib_metrics(db)["benchmark"]
    assert ("spy.csv", "file") == (bench["symbol"], bench["source"])
    assert float(marks["beta"]) == pytest.approx(float(bench["beta"]), rel=1e-6)
    assert read_benchmark(prices)[books.days[0]] == Decimal(f"{2 * books.spy[0]:.2f}")
    bad = tmp_path / "bad.csv"
    bad.write_text("date,volume\n2024-01-01,5\n")
    with pytest.raises(ValidationError, match="close"):
        read_benchmark(bad)
    bad.write_text("date,close\n2024-01-01,5\n2024-01-02,-1\n")
    with pytest.raises(ValidationError, match="line 3"):
        read_benchmark(bad)


def test_xlsx_holds_the_tables_as_numbers(tmp_path: Path) -> None:
    """``--xlsx``: a headline sheet and a sheet per table, figures as numbers equal to
    the answer's (read back with openpyxl)."""
    openpyxl = pytest.importorskip("openpyxl")
    db = make_db(tmp_path / "log.db")
    book = tmp_path / "report.xlsx"
    assert 0 == report_command(args_for(LIB, db=db, xlsx=book), config_for(db))
    m = lib_metrics(db)
    wb = openpyxl.load_workbook(book)
    assert {"headline", "risk", "benchmark", "strategies", "periods", "last"} <= set(
        wb.sheetnames)
    head = [c.value for c in wb["headline"][2]]
    assert float(m["headline"]["net_pnl"]) == head[0]
    assert float(m["headline"]["sharpe"]) == pytest.approx(head[4], rel=1e-12)
    risk = {r[0].value: r[1].value for r in wb["risk"].iter_rows(min_row=2)}
    assert float(m["risk"]["var_95_pct"]) == pytest.approx(
        risk["VaR 95 % (historical, 1 day)"], rel=1e-12)


def test_pdf_without_chromium_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no Chromium is found, ``--pdf`` fails with a message naming the fix."""
    db = make_db(tmp_path / "log.db")
    monkeypatch.setenv("CHROME_PATH", str(tmp_path / "no-such-browser"))
    with pytest.raises(ValidationError, match="apt-get install chromium"):
        report_command(args_for(LIB, db=db, pdf=tmp_path / "r.pdf"), config_for(db))
    assert not (tmp_path / "r.pdf").exists()


@pytest.mark.daemon  # report --pdf starts chromium
@needs_chromium
def test_pdf_holds_the_headline_and_tables(tmp_path: Path) -> None:
    """``--pdf``: Chromium prints the page; its text holds the headline figures and the
    risk table."""
    pypdf = pytest.importorskip("pypdf")
    db = make_db(tmp_path / "log.db")
    pdf = tmp_path / "r.pdf"
    assert 0 == report_command(args_for(LIB, db=db, pdf=pdf), config_for(db))
    assert pdf.read_bytes().startswith(b"%PDF")
    words = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    m = lib_metrics(db)
    for figure in (m["headline"]["net_pnl"], m["risk"]["var_95_pct"]):
        assert f"{Decimal(figure).quantize(Decimal('0.01')):,.2f}" in words
    for label in ("Net P&L", "Sharpe", "CVaR 95 %", "Benchmark SPY", "Per strategy"):
        assert label in words


@needs_chromium
def test_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    """After the scripts ran, every chart of every account holds uPlot's canvas."""
    page = write_page(tmp_path, None)
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout.decode()
    dom = re.sub(r"<script[^>]*>.*?</script>", "", dom, flags=re.DOTALL)
    for index in (0, 1, 2):
        for chart in CHARTS:
            start = dom.index(f'id="chart-{chart}-{index}"')
            following = dom.find('id="chart-', start + 1)
            block = dom[start:following if following > 0 else len(dom)]
            assert 'class="uplot' in block, f"chart-{chart}-{index} not rendered"
            assert "<canvas" in block, f"chart-{chart}-{index} not drawn"


@needs_chromium
def test_screenshot_is_not_blank(tmp_path: Path) -> None:
    """A screenshot of the page has many distinct colours (the charts are drawn)."""
    page = write_page(tmp_path, LIB)
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1000,1800", page.as_uri(),
             profile=tmp_path / "profile")
    width, height, rows = png_pixels(shot.read_bytes())
    assert (1000, 1800) == (width, height)
    bpp = len(rows[0]) // width
    colours = {row[i:i + 3] for row in rows[::3] for i in range(0, len(row), bpp * 2)}
    assert len(colours) > 200, f"only {len(colours)} colours"
