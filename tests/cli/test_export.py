"""``tradelog export``: events as JSONL that import takes back as they are; views as CSV."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.cli.export import csv_cell, export
from daemon.importers import read_file
from eventstore.errors import ValidationError
from projections import tables as t
from tests.daemon_support import tradelog
from tests.ops_support import every_type_log, make_log, stored_rows, views_of


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A log of every event type, one commit per event."""
    path = tmp_path / "source.db"
    asyncio.run(make_log(path, [[e] for e in every_type_log()]))
    return path


def _content(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """Stored rows without recorded_at and metadata (set by the importing daemon)."""
    return [row[:9] + row[10:11] + row[12:] for row in rows]


def test_export_then_import_into_an_empty_database(source: Path, tmp_path: Path) -> None:
    """Importing an export into an empty database gives the same events (ids, times,
    data), seqs and hashes, and the same rows in every view."""
    out = tmp_path / "out"
    done = tradelog("export", str(out), "--db", str(source))
    assert 0 == done.returncode, done.stderr
    fresh = tmp_path / "fresh.db"
    imported = tradelog("import", str(out / "events.jsonl"), "--format", "events-jsonl",
                        "--db", str(fresh))
    assert 0 == imported.returncode, imported.stderr
    assert "19 new events" in imported.stdout.decode()
    assert _content(stored_rows(source)) == _content(stored_rows(fresh))
    assert asyncio.run(views_of(source)) == asyncio.run(views_of(fresh))
    again = tradelog("import", str(out / "events.jsonl"), "--format", "events-jsonl",
                     "--db", str(fresh))
    assert "0 new events, 19 already stored" in again.stdout.decode()


async def test_views_as_csv_with_exact_decimals(source: Path, tmp_path: Path) -> None:
    """Each view is a CSV of its EVENTS.md fields whose cells are the query's values as
    text (decimals exactly as stored), from the same seq as events.jsonl."""
    report = await export(source, tmp_path / "out", to_seq=9)
    views = await views_of(source, as_of=9)
    for name, table in t.VIEWS.items():
        with open(tmp_path / "out" / f"{name}.csv", newline="") as handle:
            rows = list(csv.reader(handle))
        assert table.fields == rows[0]
        expected = [[csv_cell(r[f]) for f in table.fields] for r in views[name]]
        assert expected == rows[1:]
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert [r[12] for r in stored_rows(source)[:9]] == [json.loads(x)["hash"] for x in lines]
    assert (9, 9) == (report.events, report.last_seq)
    with open(tmp_path / "out" / "trades.csv", newline="") as handle:
        trades = list(csv.DictReader(handle))
    # 100000 * (1.0790 - 1.0713) - 2.14 - 2.16, exactly
    assert Decimal("765.70") == Decimal(trades[0]["net_pnl"])
    modes = {stat.S_IMODE(os.stat(p).st_mode) for p in (tmp_path / "out").iterdir()}
    assert {0o600} == modes


async def test_export_refuses_a_directory_with_files(source: Path, tmp_path: Path) -> None:
    """Export never mixes with files already there."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(ValidationError, match="not empty"):
        await export(source, tmp_path / "out")


async def test_import_checks_the_exports_chain(source: Path, tmp_path: Path) -> None:
    """An altered, reordered or half-stored export line is refused by line, naming the
    stored field; an intact one reads cleanly."""
    await export(source, tmp_path / "out")
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert [] == read_file(tmp_path / "out" / "events.jsonl", "events-jsonl", None).problems
    altered = json.loads(lines[4])
    altered["data"]["price"] = "1.0714"
    missing = json.loads(lines[6])
    del missing["hash"]
    bad_version = json.loads(lines[7])
    bad_version["schema_version"] = 99
    edited = [*lines[:4], json.dumps(altered), lines[5], json.dumps(missing),
              json.dumps(bad_version), lines[9], lines[8], *lines[10:]]
    (tmp_path / "bad.jsonl").write_text("\n".join(edited) + "\n")
    problems = read_file(tmp_path / "bad.jsonl", "events-jsonl", None).problems
    assert [(5, "hash"), (7, "a stored"), (8, "schema_v"), (10, "seq")] == [
        (p.line, p.reason.split(":")[0][:8]) for p in problems]


async def test_views_as_one_workbook(source: Path, tmp_path: Path) -> None:
    """--xlsx writes views.xlsx: a sheet per view with the view's fields as header;
    decimals of up to 15 digits read back as exactly the decimal, longer ones as their
    exact text; text that looks like a formula stays text."""
    from openpyxl import load_workbook

    from daemon.cli.export_xlsx import cell_value

    report = await export(source, tmp_path / "out", xlsx=True)
    assert report.xlsx
    book = load_workbook(tmp_path / "out" / "views.xlsx", read_only=True)
    views = await views_of(source)
    assert list(t.VIEWS) == book.sheetnames
    for name, table in t.VIEWS.items():
        rows = [list(r) for r in book[name].iter_rows(values_only=True)]
        assert table.fields == rows[0]
        kinds = dict(table.columns)
        expected = [[cell_value(kinds[f], r[f]) for f in table.fields] for r in views[name]]
        assert expected == rows[1:]
    trades = [list(r) for r in book["trades"].iter_rows(values_only=True)]
    net = trades[1][trades[0].index("net_pnl")]
    assert Decimal("765.7") == Decimal(repr(net))
    assert "1234567890.1234567" == cell_value("dec", "1234567890.1234567")
    assert "=1+1" == cell_value("text", "=1+1")
