"""``tradelog import --map``: a bot's own JSON and CSV files through a TOML mapping."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.importers import read_file
from daemon.importers.mapping import MappingError, load_mapping, parse_mapping
from tests.importers.test_import_keys import views

DATA = Path(__file__).parents[1] / "data"
TRADES_MAP = DATA / "trades_data.map.toml"


def tradelog(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, check=False)


def test_trades_data_json_imports_through_a_mapping_and_reconciles(tmp_path: Path) -> None:
    """The bot's trades_data.json (the legacy EUR/USD trades as that bot writes them)
    becomes 262 closed round trips realizing 936, the same as the trades CSV, and one
    open trade; exit reasons and attrs carried; the field the mapping leaves out is
    warned about once, by name; a second run stores nothing."""
    db = tmp_path / "m.db"
    args = ["import", str(DATA / "trades_data.json"), "--map", str(TRADES_MAP),
            "--account", "ict", "--db", str(db)]
    first = tradelog(*args)
    assert 0 == first.returncode, first.stderr
    assert ("263 rows: 525 new events, 0 already stored; this file: 262 round trips, "
            "realized P&L 936.0; in the views: 262 round trips, realized P&L 936  (match)"
            ) in first.stdout
    warned = [line for line in first.stderr.splitlines() if "warning" in line]
    assert ["import: warning: field 'entryReason' has no place in tradelog's events and "
            "was not imported (263 rows have it)"] == warned
    got = views(db, "ict")
    trade = got["trades"][0]
    assert ("T00001:open", "short", "signal", "SIGNAL_REVERSAL", Decimal(-1821)) == (
        trade["trade_id"], trade["side"], trade["exit_reason"], trade["exit_detail"],
        Decimal(trade["net_pnl"]))
    assert {"profitPercent": "-1.6994"} == {k: str(v) for k, v in trade["attrs"].items()}
    [open_trade] = got["positions"]
    assert ("T00263", "short", "100000") == (open_trade["position_key"], open_trade["side"],
                                             open_trade["quantity"])
    again = tradelog(*args)
    assert "0 new events, 525 already stored" in again.stdout


def test_predictions_json_become_signals(tmp_path: Path) -> None:
    """predictions.json, a top-level array with unix times, becomes one signal per
    prediction keyed by the prediction's content; BUY/SELL read as long/short."""
    mapping = load_mapping(DATA / "predictions.map.toml")
    read = read_file(DATA / "predictions.json", "mapped", "p", mapping=mapping)
    assert [] == read.problems
    assert 263 == len(read.rows)
    first = read.rows[0].events[0]
    assert "signal" == first["type"]
    assert "2017-04-20T22:00:00Z" == first["time"]
    assert "import/map/sma-predictor/p" == first["source"]
    assert {"strategy": "sma-crossover", "symbol": "EURUSD", "side": "short",
            "entry_price": "1.07156", "stop_loss": "1.08228", "take_profit": "1.05013",
            "attrs": {"horizon": "1h"}} == {k: v for k, v in first["data"].items()
                                            if k != "signal_id"}
    assert len({r.events[0]["id"] for r in read.rows}) == 263
    run = tradelog("import", str(DATA / "predictions.json"), "--map",
                   str(DATA / "predictions.map.toml"), "--account", "p",
                   "--db", str(tmp_path / "p.db"))
    assert 0 == run.returncode, run.stderr
    assert "263 rows: 263 new events" in run.stdout


def test_a_csv_through_a_mapping_with_a_constant_quantity(tmp_path: Path) -> None:
    """A CSV's columns map the same way; a quantity given under [values] applies to
    every row; a side the mapping does not know, or a blank price, is a problem naming
    the row and what to fix."""
    path = tmp_path / "fills.csv"
    path.write_text("time,ticker,action,px,commission\n"
                    "2024-01-02 10:00:00,AAPL,BOT,185.5,1\n"
                    "2024-01-02 15:00:00,AAPL,SLD,187.25,1\n"
                    "2024-01-03 15:00:00,AAPL,HOLD,187.25,1\n"
                    "2024-01-03 16:00:00,AAPL,BOT,,1\n")
    text = ('name = "ibkr"\nkind = "fill"\n[fields]\ntime = "time"\nsymbol = "ticker"\n'
            'side = "action"\nprice = "px"\nfee = "commission"\n[values]\nquantity = "10"\n'
            '[sides]\nBOT = "buy"\nSLD = "sell"\n')
    read = read_file(path, "mapped", "ib", timezone="America/New_York",
                     mapping=parse_mapping(text))
    assert [(4, "action 'HOLD' is not a side: map it under [sides] (to long, short, buy "
                "or sell)"), (5, "px is empty")] == [(p.line, p.reason) for p in read.problems]
    assert [("buy", "10", "185.5", "1", "2024-01-02T15:00:00Z"),
            ("sell", "10", "187.25", "1", "2024-01-02T20:00:00Z")] == [
        (e["data"]["side"], e["data"]["quantity"], e["data"]["price"], e["data"]["fee"],
         e["time"]) for e in read.events]


@pytest.mark.parametrize(("text", "messages"), [
    ('name = "x"\nkind = "trade"\n', ["kind: Input should be 'round_trip', 'fill' or "
                                      "'signal'"]),
    ('name = "x"\nkind = "fill"\n[fields]\nsymbol = "s"\nsidee = "d"\n',
     ["fields.sidee: Extra inputs are not permitted"]),
    ('name = "x"\nkind = "round_trip"\n[fields]\nsymbol = "s"\nexit_price = "p"\n',
     ["a round_trip needs side, entry_time, entry_price: name the record's "
      "field under [fields] or give a constant under [values]",
      "exit_price and exit_time come together"]),
    ('name = "no spaces"\nkind = "signal"\n', ["name: String should match pattern"]),
    ('name = "x"\nkind = ', ["is not valid TOML"]),
])
def test_bad_mappings_are_refused_with_every_problem_named(text: str,
                                                           messages: list[str]) -> None:
    """A mapping that is not TOML, has an unknown key or kind, or lacks what its kind
    needs is refused, each problem named by its place."""
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, "m.toml")
    for message in messages:
        assert message in str(caught.value)


def test_cli_refuses_a_bad_mapping_before_reading_the_file(tmp_path: Path) -> None:
    """`--map` with a bad mapping exits 2 naming the problem; `--map` and `--format`
    together are refused."""
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nkind = "fill"\n')
    run = tradelog("import", str(DATA / "trades_data.json"), "--map", str(bad),
                   "--account", "a", "--db", str(tmp_path / "x.db"))
    assert 2 == run.returncode
    assert "a fill needs symbol, side, price, time" in run.stderr
    both = tradelog("import", str(DATA / "trades_data.json"), "--map", str(TRADES_MAP),
                    "--format", "trades-csv", "--account", "a", "--db", str(tmp_path / "x.db"))
    assert 2 == both.returncode
    assert "not both" in both.stderr
    assert not (tmp_path / "x.db").exists()
