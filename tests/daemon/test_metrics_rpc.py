"""The ``metrics`` method over the socket and ``tradelog report`` on the CLI."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest

from daemon.client import Client, RemoteError
from tests.support import DaemonProcess, fill, wire_event

pytestmark = pytest.mark.both_stores


def test_metrics_method_answers_from_the_daemon(daemon: DaemonProcess) -> None:
    """A winning and a losing round trip give 2 round trips, a 50% win rate, realized +5;
    bad params are -32602; the CLI report, reading the log itself (``--db`` or
    ``--store``), prints the same figures as JSON."""
    events = [
        wire_event("cash", {"amount": "1000", "kind": "deposit"}, time_="2024-03-04T09:00:00Z"),
        fill("buy", "10", "100", time_="2024-03-04T10:00:00Z"),
        fill("sell", "10", "102", time_="2024-03-04T11:00:00Z"),
        fill("buy", "5", "100", time_="2024-03-05T10:00:00Z"),
        fill("sell", "5", "97", time_="2024-03-05T11:00:00Z"),
    ]
    with Client(daemon.socket) as client:
        client.append(events)
        answer = client.call("metrics", {"account": "acct-1"})
        weekly = client.call("metrics", {"account": "acct-1", "period": "week",
                                         "now": "2024-03-05T20:00:00Z"})
        with pytest.raises(RemoteError) as refused:
            client.call("metrics", {"account": "acct-1", "annualization": "often"})
    report = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "report", *daemon.log_args(),
         "--account", "acct-1", "--json"], capture_output=True, text=True, check=False)
    assert 2 == answer["trades"]["round_trips"]
    assert "5" == answer["pnl"]["all_time"]
    assert Decimal(50) == Decimal(answer["trades"]["win_rate_pct"])
    assert -32602 == refused.value.code
    # "today" is the daemon's clock (no event today: 0), or the ``now`` given
    assert "0" == answer["pnl"]["today"]
    assert ("2024-03-05", "-15") == (weekly["today"], weekly["pnl"]["today"])
    assert [("2024-W10", "5", 2, "50")] == [
        (r["period"], r["realized_pnl"], r["round_trips"], r["win_rate_pct"])
        for r in weekly["periods"]["rows"]]
    assert "needs at least 20 daily returns; there are 2" == answer["ratios"]["reason"]
    assert None is answer["ratios"]["sharpe"]
    assert 0 == report.returncode, report.stderr
    assert answer["trades"] == json.loads(report.stdout)["trades"]
