"""``tradelog report --html``: one self-contained page whose charts render in a browser.

The browser checks run Debian's headless chromium (skipped only when it is not
installed; CI installs it): ``--dump-dom`` after the scripts ran must hold plotly's
rendered SVG in every chart, and a screenshot must be far from blank (many colours).
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from daemon.config import Config, load_config
from daemon.report import render_html, report_command
from eventstore.recorder import Recorder
from projections.metrics import compute_metrics
from tests.fold_support import new_event
from tests.projections.test_metrics import ACCOUNT, hand_history

CHARTS = ("equity", "drawdown", "calendar", "monthly")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def make_db(path: Path) -> Path:
    """A log with ``hand_history`` in accounts ``hand`` and ``other``."""

    async def fill() -> None:
        recorder = await Recorder.open(path)
        try:
            await recorder.append([new_event(e) for e in hand_history()])
            await recorder.append([new_event(e) for e in hand_history("other")])
        finally:
            await recorder.close()

    asyncio.run(fill())
    return path


def config_for(db: Path) -> Config:
    return load_config(None, {"db": db, "socket": db.parent / "none.sock"})


def write_page(tmp_path: Path, account: str | None) -> Path:
    """``tradelog report --html`` into ``tmp_path``; returns the page's path."""
    db = make_db(tmp_path / "log.db")
    page = tmp_path / "report.html"
    args = argparse.Namespace(account=account, json=False, html=page, db=None, socket=None)
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


def test_page_is_self_contained_with_every_chart(tmp_path: Path) -> None:
    """Without --account the page has a section per account, each with the four charts,
    the monthly table and the figures; plotly's JavaScript is inlined once and nothing
    is loaded from the network (no script, image or link outside the inlined code)."""
    text = write_page(tmp_path, None).read_text()
    for index in (0, 1):
        for chart in CHARTS:
            assert 1 == text.count(f'id="chart-{chart}-{index}"')
    assert 1 == text.count("plotly.js v")
    tags = re.findall(r"<script[^>]*>", text)
    assert [] == [tag for tag in tags if "src" in tag]
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.DOTALL)
    assert None is re.search(r"(src|href)\s*=", markup)
    assert "Account hand" in text
    assert "Account other" in text
    assert "<caption>Monthly returns</caption>" in text


def test_render_html_shows_the_figures(tmp_path: Path) -> None:
    """``render_html`` of one account's metrics shows its key figures in its tables."""

    db = make_db(tmp_path / "log.db")

    async def metrics() -> str:
        recorder = await Recorder.open(db, readonly=True)
        try:
            return render_html(await compute_metrics(recorder, ACCOUNT))
        finally:
            await recorder.close()

    text = asyncio.run(metrics())
    assert "<td>profit factor</td><td>1.7872340426</td>" in text
    assert '<td>max drawdown</td><td>105</td>' in text
    assert text.startswith("<!DOCTYPE html>")


def test_report_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` for one account prints its metrics; the text form names the figures."""
    import json

    db = make_db(tmp_path / "log.db")
    args = argparse.Namespace(account=ACCOUNT, json=True, html=None, db=db, socket=None)
    assert 0 == report_command(args, config_for(tmp_path / "elsewhere.db"))
    answer = json.loads(capsys.readouterr().out)
    assert (ACCOUNT, "74") == (answer["account"], answer["pnl"]["all_time"])
    args.json = False
    assert 0 == report_command(args, config_for(db))
    out = capsys.readouterr().out
    assert "profit factor" in out
    assert "1.7872340426" in out


@needs_chromium
def test_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    """After the scripts ran, every chart holds plotly's rendered SVG (``main-svg``)."""
    page = write_page(tmp_path, None)
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout.decode()
    dom = re.sub(r"<script[^>]*>.*?</script>", "", dom, flags=re.DOTALL)  # plotly's own code
    for index in (0, 1):
        for chart in CHARTS:
            start = dom.index(f'id="chart-{chart}-{index}"')
            following = dom.find('id="chart-', start + 1)
            block = dom[start:following if following > 0 else len(dom)]
            assert 'class="main-svg"' in block, f"chart-{chart}-{index} not rendered"


@needs_chromium
def test_screenshot_is_not_blank(tmp_path: Path) -> None:
    """A screenshot of the page has many distinct colours (the charts are drawn)."""
    page = write_page(tmp_path, ACCOUNT)
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1000,1800", page.as_uri(),
             profile=tmp_path / "profile")
    width, height, rows = png_pixels(shot.read_bytes())
    assert (1000, 1800) == (width, height)
    bpp = len(rows[0]) // width
    colours = {row[i:i + 3] for row in rows[::3] for i in range(0, len(row), bpp * 2)}
    assert len(colours) > 200, f"only {len(colours)} colours"
