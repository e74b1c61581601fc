"""Unit tests: how one value is shown in each output format, and the once-a-second log
summary (``daemon.logs.Tally``)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from rich.console import Console

from daemon.cli.tables import print_answer, print_view, table_cell, tsv_cell
from daemon.logs import Tally


def test_table_cells_round_money_only_and_say_yes_no() -> None:
    """Money to 2 decimals half up (exact with ``exact``); prices and quantities as
    stored; booleans yes/no; None blank; objects as compact JSON."""
    assert "97433.10" == table_cell("97433.1", "equity", "dec")
    assert "2.15" == table_cell("2.145", "fees", "dec")
    assert "-1007.47" == table_cell("-1007.4650", "net_pnl", "dec")
    assert "97433.1" == table_cell("97433.1", "equity", "dec", exact=True)
    assert "1.07125" == table_cell("1.07125", "entry_price", "dec")
    assert ("yes", "no", "") == (table_cell(True, "limit_hit", "bool"),
                                 table_cell(False, "limit_hit", "bool"),
                                 table_cell(None, "cash", "dec"))
    assert '{"a":1}' == table_cell({"a": 1}, "attrs", "json")


def test_tsv_cells_are_exact_and_one_line() -> None:
    """TSV keeps the stored text and writes tab, newline and ESC as visible escapes."""
    assert "97433.1" == tsv_cell("97433.1")
    assert ("true", "false", "") == (tsv_cell(True), tsv_cell(False), tsv_cell(None))
    assert "a\\x09b\\x0ac\\x1b" == tsv_cell("a\tb\nc\x1b")


def _answer(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"view": "balances", "as_of_seq": 3, "total": len(rows), "rows": rows}


def test_wide_view_on_a_narrow_console_is_printed_as_records() -> None:
    """A view wider than the console: one block per row, each number whole."""
    row = {"account": "paper-1", "cash": "1000.5", "realized_pnl": "-1007.4650",
           "balance": "97433.1", "unrealized_pnl": "0", "equity": "97433.1",
           "open_positions": 12}
    out = io.StringIO()
    print_view(_answer([row]), Console(file=out, width=40))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 40
    assert "-1007.47" in text
    assert "97433.10" in text
    wide = io.StringIO()
    print_view(_answer([row]), Console(file=wide, width=200))
    [line] = [x for x in wide.getvalue().splitlines() if "paper-1" in x]
    assert "-1007.47" in line


def test_csv_and_tsv_answers_have_a_header_and_exact_values() -> None:
    """``print_answer`` in csv and tsv: a header line, then the exact values."""
    rows = [{"account": "a,b", "cash": "1000.5"}]
    out = io.StringIO()
    print_answer(_answer(rows), "csv", out=out)
    assert 'account,cash\n"a,b",1000.5\n' == out.getvalue()
    out = io.StringIO()
    print_answer(_answer(rows), "tsv", out=out)
    assert "account\tcash\na,b\t1000.5\n" == out.getvalue()


class _Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.records.append((event, fields))


def test_tally_sums_an_interval_into_one_record() -> None:
    """Three operations give one record with sums, maxima, the latest values and the
    count; an empty interval gives none."""
    logger = _Recorder()
    tally = Tally(logger, "appends_committed", interval_s=1.0, count_name="groups")
    tally.add({"events": 2, "rejected": 0}, most={"group_requests": 1}, last={"last_seq": 2})
    tally.add({"events": 5, "rejected": 1}, most={"group_requests": 4}, last={"last_seq": 7})
    tally.add({"events": 0, "rejected": 1}, most={"group_requests": 2}, last={"last_seq": 7})
    tally.flush()
    tally.flush()
    assert [("appends_committed", {"interval_s": 1.0, "groups": 3, "events": 7,
                                   "rejected": 2, "max_group_requests": 4,
                                   "last_seq": 7})] == logger.records


async def test_tally_logs_by_itself_after_the_interval() -> None:
    """Within an event loop the record comes ``interval_s`` after the first operation,
    without a ``flush``; later operations start a new record."""
    logger = _Recorder()
    tally = Tally(logger, "appends_committed", interval_s=0.05)
    tally.add({"events": 1})
    tally.add({"events": 1})
    assert [] == logger.records
    await asyncio.sleep(0.2)
    tally.add({"events": 3})
    await asyncio.sleep(0.2)
    assert [2, 3] == [fields["events"] for _, fields in logger.records]
