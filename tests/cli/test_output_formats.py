"""``tradelog show``'s output through the installed command: TSV in a pipe by default,
``--format table|tsv|csv|json``, tables that read well at 80 columns and wide."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests.cli.first_hour import clean_env, run, seed
from tests.support import DaemonProcess

# The values come from the daemon's views, whose store the tests marked both_stores vary;
# ``table``'s layouts are drawn by the command from the same values on either store.


def _show(daemon: DaemonProcess, *args: str, columns: int = 80) -> str:
    done = run("show", *args, "--socket", str(daemon.socket),
               env=clean_env(COLUMNS=str(columns)))
    assert 0 == done.returncode, done.stderr
    return done.stdout


@pytest.mark.both_stores
def test_pipe_gets_exact_tab_separated_values(daemon: DaemonProcess) -> None:
    """In a pipe, ``show`` prints a header line and one tab-separated line per row, the
    decimals exactly as stored (1000.5, not rounded or padded)."""
    seed(daemon)
    lines = _show(daemon, "balances").splitlines()
    header = lines[0].split("\t")
    row = dict(zip(header, lines[1].split("\t"), strict=True))
    assert 2 == len(lines)
    assert ("paper-1", "1000.5", "1") == (row["account"], row["cash"], row["open_positions"])


@pytest.mark.both_stores
def test_csv_and_json_keep_decimals_exact(daemon: DaemonProcess) -> None:
    """``--format csv`` is RFC 4180 with exact values; ``--format json`` (and ``--json``)
    keeps every decimal the exact string the daemon gave."""
    seed(daemon)
    [row] = list(csv.DictReader(io.StringIO(_show(daemon, "balances", "--format", "csv"))))
    assert ("1000.5", "1") == (row["cash"], row["open_positions"])
    answer = json.loads(_show(daemon, "balances", "--format", "json"))
    assert answer == json.loads(_show(daemon, "balances", "--json"))
    assert "1000.5" == answer["rows"][0]["cash"]
    assert "1.0712" == json.loads(_show(daemon, "positions", "--json"))["rows"][0]["avg_price"]


def test_table_at_80_columns_keeps_numbers_whole(daemon: DaemonProcess) -> None:
    """At 80 columns a view too wide for the screen is printed a record at a time: no
    line is wider than 80, money has 2 decimals (1000.50), numbers are right-aligned
    and never split, no ``False`` anywhere."""
    seed(daemon)
    text = _show(daemon, "balances", "--format", "table")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "False" not in text
    assert "True" not in text
    cash = next(line for line in text.splitlines() if line.startswith("cash "))
    positions = next(line for line in text.splitlines() if line.startswith("open_positions"))
    assert cash.rstrip().endswith("1000.50")
    # Right-aligned: both numbers end in the same column.
    assert len(cash.rstrip()) == len(positions.rstrip())
    exact = _show(daemon, "balances", "--format", "table", "--exact")
    assert re.search(r"^cash\s+1000\.5\s*$", exact, re.MULTILINE), exact


def test_wide_table_has_one_line_per_row(daemon: DaemonProcess) -> None:
    """On a wide terminal the table has one line per row, money to 2 decimals and
    right-aligned under its header, booleans as yes/no."""
    seed(daemon)
    text = _show(daemon, "balances", "--format", "table", columns=250)
    [row] = [line for line in text.splitlines() if "paper-1" in line]
    header = next(line for line in text.splitlines() if "unrealized_pnl" in line)
    assert "1000.50" in row
    assert "False" not in row
    cash_end = header.index("cash") + len("cash")
    assert row[:cash_end].endswith("1000.50")
    blocked = _show(daemon, "daily", "--format", "table", columns=400)
    assert "False" not in blocked
    assert re.search(r"\bno\b", blocked), blocked
