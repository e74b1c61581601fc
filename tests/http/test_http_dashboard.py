"""The dashboard's figures take "today" from the clock in the account's time zone: on a
quiet day today's P&L is 0, and a round trip closed now shows in today's, this week's
and the daily loss card at once; the freqtrade-style routes agree with them."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.client import Client
from tests.http_support import http_daemon
from tests.support import fill, wire_event

pytestmark = pytest.mark.both_stores

ACCOUNT = "desk"
ZONE = "Pacific/Kiritimati"
"""UTC+14: its day differs from UTC's for ten hours of each UTC day."""


def _history() -> list[dict[str, object]]:
    return [
        wire_event("limits", {"daily_loss_limit": "1000", "timezone": ZONE}, account=ACCOUNT,
                   time_="2024-01-02T09:00:00Z"),
        wire_event("cash", {"amount": "10000", "kind": "deposit"}, account=ACCOUNT,
                   time_="2024-01-02T09:30:00Z"),
        fill("buy", "10", "100", symbol="XYZ", account=ACCOUNT, time_="2024-01-03T10:00:00Z"),
        fill("sell", "10", "110", symbol="XYZ", account=ACCOUNT, time_="2024-01-03T11:00:00Z"),
    ]


def test_today_is_the_clocks_in_the_accounts_zone(tmp_path: Path, store: str) -> None:
    with http_daemon(tmp_path, store=store) as daemon:
        with Client(daemon.proc.socket) as client:
            client.append(_history())
        today = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date().isoformat()
        quiet = daemon.json("/api/v1/cumulative-pnl", account=ACCOUNT)
        card = daemon.json("/api/v1/daily-loss", account=ACCOUNT)
        stats = daemon.json("/api/v1/daily-stats", account=ACCOUNT)
        # The socket's metrics, too, take "today" from the clock in the account's zone.
        socket_like = daemon.json("/api/v1/metrics", account=ACCOUNT)

        now = datetime.now(UTC) - timedelta(minutes=1)
        closed_day = now.astimezone(ZoneInfo(ZONE)).date().isoformat()
        with Client(daemon.proc.socket) as client:
            client.append([
                fill("buy", "10", "100", symbol="ABC", account=ACCOUNT,
                     time_=(now - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")),
                fill("sell", "10", "95", symbol="ABC", account=ACCOUNT,
                     time_=now.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ])
        busy = daemon.json("/api/v1/cumulative-pnl", account=ACCOUNT)
        busy_card = daemon.json("/api/v1/daily-loss", account=ACCOUNT)
        busy_stats = daemon.json("/api/v1/daily-stats", account=ACCOUNT)
        days = daemon.json("/api/v1/daily", account=ACCOUNT, timescale=2)
        profit = daemon.json("/api/v1/profit", account=ACCOUNT)
        trades = daemon.json("/api/v1/trades", account=ACCOUNT)
        per_symbol = daemon.json("/api/v1/performance", account=ACCOUNT)

    assert (today, ZONE) == (quiet["today"], quiet["timezone"])
    assert ("100", "0", "0") == (quiet["all"], quiet["day"], quiet["week"])
    assert (today, "0", "1000", "0", False) == (
        card["date"], card["loss_used"], card["limit"], card["used_pct"], card["blocked"])
    assert (today, "0", 0) == (stats["today"]["date"], stats["today"]["realized_pnl"],
                               stats["today"]["trades_closed"])
    assert today == socket_like["today"]

    assert closed_day == today or closed_day == busy["today"]
    assert (Decimal(50), Decimal(-50)) == (Decimal(busy["all"]), Decimal(busy["day"]))
    assert Decimal(-50) == Decimal(busy["week"])
    assert (Decimal(50), Decimal(5)) == (Decimal(busy_card["loss_used"]),
                                         Decimal(busy_card["used_pct"]))
    assert (Decimal(-50), 1) == (Decimal(busy_stats["today"]["realized_pnl"]),
                                 busy_stats["today"]["trades_closed"])
    assert (busy["today"], Decimal(-50), 1) == (
        days["data"][0]["date"], Decimal(days["data"][0]["abs_profit"]),
        days["data"][0]["trade_count"])
    assert (Decimal(50), 2, 1, 1) == (Decimal(profit["profit_closed"]),
                                      profit["closed_trade_count"], profit["winning_trades"],
                                      profit["losing_trades"])
    assert "XYZ" == profit["best_symbol"]
    summary = trades["summary"]
    assert (2, 1, 1, "50.00") == (summary["round_trips"], summary["wins"], summary["losses"],
                                  summary["win_rate_pct"])
    assert (Decimal(50), Decimal(100), Decimal(-50)) == (
        Decimal(summary["net_pnl"]), Decimal(summary["best"]), Decimal(summary["worst"]))
    assert [("ABC", 1), ("XYZ", 1)] == [(g["symbol"], g["round_trips"])
                                        for g in per_symbol["data"]]
