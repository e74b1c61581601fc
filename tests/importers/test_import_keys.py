"""Imports that never count twice, Kite day files and day-level P&L, through the CLI."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from daemon.importers import read_file
from projections.query import ViewQuery, query_view
from tests.importers.test_import import _open

DATA = Path(__file__).parents[1] / "data"
KITE = DATA / "kite_daily_pnl.json"


def tradelog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, check=False)


def views(db: Path, account: str) -> dict[str, list[dict[str, Any]]]:
    """The balances, trades, positions and daily rows of ``account`` in the file ``db``."""

    async def read() -> dict[str, list[dict[str, Any]]]:
        recorder = await _open(db)
        try:
            return {v: (await query_view(recorder, ViewQuery(v, account=account,
                                                             limit=100000)))["rows"]
                    for v in ("balances", "trades", "positions", "daily")}
        finally:
            await recorder.close()

    return asyncio.run(read())


def test_renamed_and_reexported_trades_csv_store_nothing_twice(tmp_path: Path) -> None:
    """The trades CSV under another name stores nothing and says so; a later export with
    the rows in another order and one trade more stores only that trade; realized P&L
    stays 936 (never 1872) and each reconciliation counts only its own file."""
    db = tmp_path / "t.db"
    first = tmp_path / "trades.csv"
    shutil.copy(DATA / "trades.csv", first)
    renamed = tmp_path / "copy of trades (2).csv"
    shutil.copy(first, renamed)
    lines = first.read_text().splitlines()
    extra = lines[1].replace("T00001", "T99999").replace("2017-04-", "2017-05-")
    reexport = tmp_path / "export.csv"
    reexport.write_text("\n".join([lines[0], extra, *reversed(lines[1:])]) + "\n")
    base = ["--format", "trades-csv", "--account", "bot", "--quantity", "100000",
            "--db", str(db)]
    runs = [tradelog("import", str(path), *base) for path in (first, renamed, reexport)]
    for run in runs:
        assert 0 == run.returncode, run.stderr
    assert "263 rows: 789 new events, 0 already stored" in runs[0].stdout
    assert "263 rows: 0 new events, 789 already stored" in runs[1].stdout
    assert ("this file: 262 round trips, realized P&L 936.00000; in the views: 262 round "
            "trips, realized P&L 936  (match)") in runs[1].stdout
    assert "264 rows: 3 new events, 789 already stored" in runs[2].stdout
    per_trade = Decimal("-0.01821") * 100000
    assert ("this file: 263 round trips, realized P&L -885.00000; in the views: 263 round "
            "trips, realized P&L -885  (match)") in runs[2].stdout
    balance = views(db, "bot")["balances"][0]
    assert Decimal(936) + per_trade == Decimal(balance["realized_pnl"])
    assert 263 == len(views(db, "bot")["trades"])


def test_reordered_daily_positions_are_the_same_events(tmp_path: Path) -> None:
    """Positions of a daily P&L file are keyed by their content, not their place: the
    same file with each day's positions reversed is all duplicates."""
    document = json.loads((DATA / "daily_pnl.json").read_text(), parse_float=Decimal)
    for record in document["records"]:
        record["positions"].reverse()
    shuffled = tmp_path / "daily_reordered.json"
    shuffled.write_text(json.dumps(document, default=str))
    first = read_file(DATA / "daily_pnl.json", "daily-pnl-json", "acct")
    second = read_file(shuffled, "daily-pnl-json", "acct")
    assert [] == second.problems
    assert sorted(e["id"] for e in first.events) == sorted(e["id"] for e in second.events)
    assert len(first.events) == len({e["id"] for e in first.events})


def test_kite_day_file_imports_squared_off_positions_as_round_trips(tmp_path: Path) -> None:
    """Kite's squared-off positions (quantity 0, buy and sell quantities) become a buy
    and a sell fill each: 39 round trips realizing 7652.5, Kite's own `realised`; the
    NRML position carried overnight stays open short 50 at 88.45, marked at 114.1
    (unrealized -1282.5); the two days given only as non_equity_pnl (-2494 and -38) are
    labelled cash adjustments. Equity then equals the sum of the file's day-level P&L."""
    document = json.loads(KITE.read_text(), parse_float=Decimal)
    day_total = sum((Decimal(str(r["non_equity_pnl"])) for r in document["records"]),
                    Decimal(0))
    db = tmp_path / "k.db"
    run = tradelog("import", str(KITE), "--format", "daily-pnl-json", "--account", "kite",
                   "--db", str(db))
    assert 0 == run.returncode, run.stderr
    assert ("this file: 39 round trips, realized P&L 7652.5, day-level P&L as cash "
            "adjustments -2532.0; in the views: 39 round trips, realized P&L 7652.5  "
            "(match)") in run.stdout
    assert "warning" not in run.stderr
    got = views(db, "kite")
    balance = got["balances"][0]
    assert (Decimal("7652.5"), Decimal(-2532), Decimal("-1282.5")) == (
        Decimal(balance["realized_pnl"]), Decimal(balance["cash"]),
        Decimal(balance["unrealized_pnl"]))
    assert day_total == Decimal(balance["equity"]) == Decimal(3838)
    [carried] = got["positions"]
    assert ("NIFTY24MAR21650PE", "short", "50", "88.45", "114.1") == (
        carried["symbol"], carried["side"], carried["quantity"], carried["avg_price"],
        carried["mark_price"])
    assert "2024-03-18:NFO:NIFTY24MAR21650PE:NRML" == carried["position_key"]
    first = got["trades"][0]
    assert (Decimal("116.65"), Decimal("157.65"), Decimal(2050)) == (
        Decimal(first["entry_price"]), Decimal(first["exit_price"]),
        Decimal(first["net_pnl"]))
    assert {"exchange": "NFO", "product": "MIS", "instrument_token": 12000001} == first["attrs"]
    cash_days = {d["date"]: Decimal(d["cash_flow"]) for d in got["daily"]
                 if Decimal(d["cash_flow"])}
    assert {"2024-03-12": Decimal(-2494), "2024-03-25": Decimal(-38)} == cash_days
    read = read_file(KITE, "daily-pnl-json", "kite")
    notes = [e["data"]["note"] for e in read.events if e["type"] == "cash"]
    assert ["day-level P&L of 2024-03-12 from the file's non_equity_pnl (-2494.0); no "
            "positions were listed"] == notes[:1]
    again = tradelog("import", str(KITE), "--format", "daily-pnl-json", "--account", "kite",
                     "--db", str(db))
    assert "42 rows: 0 new events, 82 already stored" in again.stdout


def test_day_pnl_beyond_the_positions_is_the_difference(tmp_path: Path) -> None:
    """A day whose non_equity_pnl differs from its positions' pnl records only the
    difference, saying so; unknown fields are warned about once, by name."""
    record = {"date": "2024-03-04", "non_equity_pnl": "100.5", "brokerage": "20",
              "positions": [{"tradingsymbol": "X", "exchange": "NSE", "product": "MIS",
                             "quantity": 0, "buy_quantity": 10, "buy_price": "10",
                             "sell_quantity": 10, "sell_price": "11", "realised": "10",
                             "pnl": "10", "m2m": "10", "day_buy_quantity": 10}]}
    path = tmp_path / "day.json"
    path.write_text(json.dumps({"records": [record, {**record, "date": "2024-03-05"}]}))
    read = read_file(path, "daily-pnl-json", "a")
    assert [] == read.problems
    [cash] = [e for e in read.events if e["type"] == "cash"][:1]
    assert "90.5" == cash["data"]["amount"]
    assert "its 1 positions give 10, this is the rest" in cash["data"]["note"]
    run = tradelog("import", str(path), "--format", "daily-pnl-json", "--account", "a",
                   "--db", str(tmp_path / "d.db"))
    assert 0 == run.returncode, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "warning" in line]
    assert 3 == len(warnings)
    for name in ("brokerage", "day_buy_quantity", "m2m"):
        assert sum(f"field {name!r} has no place" in line for line in warnings) == 1
    assert "(2 rows have it)" in warnings[0]
