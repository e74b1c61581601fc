"""The dashboard in a real headless Chromium (Debian's ``chromium`` driven by Playwright
through ``executable_path``; no browser is downloaded): it loads with no console
error, shows the daemon's numbers as a trader reads them, and a fill appended over the
socket appears on the page within 2 s, without a reload.

Skipped only when chromium is not installed (CI installs it). With ``$CI`` set, a
screenshot is kept under ``$CI_OUT`` (default ``.ci/out/``) as an artifact.
"""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from daemon.client import Client
from tests.http_support import ACCOUNT, HttpDaemon, http_daemon, seed
from tests.support import fill

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def money(value: str) -> str:
    """Money as the page shows it: 2 decimals, thousands separators."""
    return f"{Decimal(value):,.2f}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpDaemon]:
    """A daemon with HTTP holding the demo bot's first 400 bars."""
    with http_daemon(tmp_path_factory.mktemp("http-page")) as daemon:
        seed(daemon.proc.socket, bars=400)
        yield daemon


def test_page_shows_the_numbers_and_updates_live(served: HttpDaemon) -> None:
    balance = served.json("/api/v1/balance", account=ACCOUNT)["balance"]
    trades = served.json("/api/v1/trades", account=ACCOUNT, limit=1)
    problems: list[str] = []
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM,
                                       args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto(served.base + "/")
            expect(page.locator("#balance")).to_have_text(money(balance["balance"]),
                                                          timeout=15_000)
            expect(page.locator("#equity")).to_have_text(money(balance["equity"]))
            summary = trades["summary"]
            expect(page.locator("#trade-summary")).to_contain_text(
                f"{summary['round_trips']} round trips")
            expect(page.locator("#trade-summary")).to_contain_text(money(summary["net_pnl"]))
            first = trades["rows"][0]
            expect(page.locator("#trades tbody tr").first).to_contain_text(first["exit_price"])
            expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            expect(page.locator("#chart canvas")).to_have_count(1, timeout=10_000)
            expect(page.locator("#positions")).not_to_contain_text("GBPUSD")

            with Client(served.proc.socket) as client:
                client.append([fill("buy", "25000", "1.28765", symbol="GBPUSD",
                                    account=ACCOUNT, time_="2017-06-02T09:00:00Z")])
            row = page.locator("#positions tbody tr", has_text="GBPUSD")
            expect(row).to_have_count(1, timeout=2_000)
            expect(row).to_contain_text("25000")
            expect(row).to_contain_text("1.28765")
            _keep_screenshot(page)
        finally:
            browser.close()
    assert [] == problems


def _keep_screenshot(page: Page) -> None:
    """Under CI, keep a screenshot of the whole page as an artifact."""
    if not os.environ.get("CI"):
        return
    folder = Path(os.environ.get("CI_OUT", ".ci/out"))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "dashboard.png"), full_page=True)


def test_page_with_tokens_asks_for_one_and_streams_with_it(tmp_path: Path) -> None:
    """With tokens required, the page asks for one; given a token that reads one account,
    it shows that account (the only one offered) and goes live with the token."""
    token = "t" * 40
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[[tokens]]\nname = "desk"\ntoken = "{token}"\nread = ["{ACCOUNT}"]\n')
    tokens.chmod(0o600)
    with http_daemon(tmp_path, env={"TRADELOG_HTTP_TOKENS_FILE": str(tokens)}) as daemon:
        seed(daemon.proc.socket, bars=120)
        with Client(daemon.proc.socket) as client:
            client.append([fill("buy", "1", "10", symbol="XYZ", account="other-desk")])
        balance = daemon.get("/api/v1/balance", token=token, account=ACCOUNT).json()
        problems: list[str] = []
        with sync_playwright() as play:
            browser = play.chromium.launch(executable_path=CHROMIUM,
                                           args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                page.goto(daemon.base + "/")
                expect(page.locator("#auth")).to_be_visible(timeout=10_000)
                page.fill("#token", token)
                page.click("#token-save")
                expect(page.locator("#balance")).to_have_text(
                    money(balance["balance"]["balance"]), timeout=10_000)
                expect(page.locator("#account option")).to_have_count(1)
                expect(page.locator("#live")).to_have_text("live", timeout=10_000)
            finally:
                browser.close()
    assert [] == problems
