"""A database written by the release before contract 1.1 opens with the current daemon:
its log reads back as stored (``schema_version`` 1 kept), its views are rebuilt once
(projection version 4), and it answers the new views and fields."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.daemon_support import RawConnection, log_records, read_all, sqlite_rows
from tests.support import DaemonProcess, fill, wire_event

RELEASE_1_0 = Path(__file__).parents[1] / "data" / "release_1_0.db"


def _ready_events(proc: DaemonProcess) -> list[int]:
    return [r["caught_up_events"] for r in log_records(proc) if r.get("event") == "daemon_ready"]


def test_a_release_1_0_database_rebuilds_once_and_answers_the_new_views(
        tmp_path: Path) -> None:
    """The previous release's file: the first start rebuilds the views from its 15 events
    (entry_price becomes the running average cost, 10); the new views answer; the stored
    events keep schema_version 1; a limits event and a fill without multiplier sent again
    as the bot first sent them are duplicates; a void of an old fill works; a second
    start folds nothing."""
    shutil.copyfile(RELEASE_1_0, tmp_path / "tradelog.db")
    with DaemonProcess(tmp_path) as daemon:
        with RawConnection(daemon.socket) as conn:
            trade = conn.result("query", {"view": "trades"})["rows"][0]
            history = conn.result("query", {"view": "history"})["rows"]
            signal = conn.result("query", {"view": "signals"})["rows"][0]
            account = conn.result("query", {"view": "accounts"})["rows"][0]
            strategies = conn.result("query", {"view": "strategies"})["rows"]
            order = conn.result("query", {"view": "orders"})["rows"][0]
            again = conn.result("append", {"events": [
                {"id": "e0", "source": "old/bot", "type": "limits",
                 "time": "2024-03-01T12:00:00Z", "account": "acct-1",
                 "data": {"daily_loss_limit": "0", "timezone": "Europe/London"}},
                {"id": "e5", "source": "old/bot", "type": "fill",
                 "time": "2024-03-01T12:00:00Z", "account": "acct-1",
                 "data": {"symbol": "EURUSD", "side": "buy", "quantity": "100",
                          "price": "8", "order_id": "o1"}},
            ]})
        stored = read_all(daemon.socket)
        assert [15] == _ready_events(daemon)
    assert [(4, 15)] == sqlite_rows(tmp_path / "tradelog.db",
                                    "SELECT version, last_seq FROM projection_checkpoint")
    # buy 100 @ 8, buy 100 @ 9 (avg 8.5), sell 100 @ 10, buy 150 @ 11 (avg 10),
    # sell 250 @ 12: gross 150 + 500 = 650, fee 1.5, net 648.5;
    # return = 100 * 648.5 / (10 * 250) = 25.94
    assert ("10", "648.5", "25.94", "sma-cross") == (
        trade["entry_price"], trade["net_pnl"], trade["return_pct"], trade["strategy"])
    assert [("order", "accepted", None), ("order", "filled", "accepted"),
            ("signal", "triggered", None)] == [
        (h["entity"], h["status"], h["previous_status"]) for h in history]
    assert ("1h", "2024-03-02T11:00:00Z", "golden cross") == (
        signal["timeframe"], signal["expires_at"], signal["note"])
    assert ("live", 15) == (account["kind"], account["events"])
    assert [("sma-cross", 1, None)] == [
        (s["strategy"], s["signals"], s["description"]) for s in strategies]
    assert "s1" == order["signal_id"]
    # Sent again exactly as the bot sent them to the previous release: duplicates.
    assert [(1, True), (6, True)] == [(r["seq"], r["duplicate"]) for r in again["results"]]
    assert {1} == {e["schema_version"] for e in stored}
    assert ["1"] == [e["data"]["multiplier"] for e in stored if e["id"] == "e5"]

    with DaemonProcess(tmp_path) as daemon:
        with RawConnection(daemon.socket) as conn:
            conn.result("append", {"events": [
                wire_event("void", {"target_source": "old/bot", "target_id": "e12",
                                    "reason": "the futures fill was a test"}),
                wire_event("instrument", {"symbol": "ES", "multiplier": "50"}),
                fill("buy", "1", "5000", symbol="ES"),
            ]})
            positions = conn.result("query", {"view": "positions"})["rows"]
        assert [15, 0] == _ready_events(daemon)  # the same log file: both starts
    assert [("ES", "50", "1")] == [
        (p["symbol"], p["multiplier"], p["quantity"]) for p in positions]
