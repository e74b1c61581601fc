"""``tradelog export DIR [--db PATH | --store URL] [--to-seq N]``: the log and every view
as plain files.

Into a new (or empty) directory ``DIR``, read-only from the database file or the
PostgreSQL log (safe while daemons serve it), all from one point of the log, seq N
(default: its last):

- ``events.jsonl``: events 1..N, one stored event per line exactly as ``read`` returns
  it (the wire event plus ``seq``, ``recorded_at``, ``schema_version``, ``hash``);
  ``tradelog import --format events-jsonl`` takes it back as it is.
- ``<view>.csv`` for every view, as ``query`` with ``as_of`` N answers it: a header of
  the view's fields (EVENTS.md), then its rows in the view's order. Decimals are written
  as their exact text (``"1.0713"``, never through a float, so a spreadsheet or pandas
  reading them as text loses nothing), booleans as ``true``/``false``, JSON fields
  (``attrs``, ``tags``) as canonical JSON text, null as an empty cell.

Every file is created 0600 under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.cli.cells import csv_cell
from eventstore.backup import private_file, publish
from eventstore.errors import ValidationError
from eventstore.store import StoreURL, ViewReader, open_reader
from projections import tables as t
from projections.query import ViewQuery, query_view
from projections.query_params import MAX_LIMIT

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.locations import Locations

__all__ = ["ExportReport", "csv_cell", "export", "export_command"]

_PAGE = 4096


@dataclass
class ExportReport:
    """What ``export`` wrote: ``events`` (1..``last_seq``) and rows per view CSV."""

    directory: Path
    last_seq: int
    events: int = 0
    views: dict[str, int] = field(default_factory=dict)
    xlsx: bool = False

    def summary(self) -> str:
        """The line ``tradelog export`` prints."""
        views = ", ".join(f"{name}.csv {rows} rows" for name, rows in self.views.items())
        book = "; views.xlsx (every view)" if self.xlsx else ""
        return (f"export: {self.directory}: events.jsonl {self.events} events (seq 1.."
                f"{self.last_seq}); {views}{book}")


def _write_private(directory: Path, name: str, chunks: Iterable[str]) -> None:
    temp = private_file(directory, name)
    try:
        with open(temp, "w", encoding="utf-8", newline="") as handle:
            for chunk in chunks:
                handle.write(chunk)
    except BaseException:
        os.unlink(temp)
        raise
    publish(temp, directory / name)


def _csv_text(fields: list[str], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([csv_cell(row.get(name)) for name in fields])
    return buffer.getvalue()


async def export(db: Path | StoreURL, directory: Path, to_seq: int | None = None,
                 xlsx: bool = False) -> ExportReport:
    """Write ``events.jsonl`` and one CSV per view of the log at ``db`` (a file's path, or
    a store URL: a PostgreSQL log) (module docstring),
    and with ``xlsx`` every view in one workbook ``views.xlsx`` (``daemon.cli.export_xlsx``).

    Raises:
        ValidationError: ``directory`` holds files already, ``to_seq`` is past the end,
            or ``xlsx`` without XlsxWriter installed.
        DatabaseFileError: ``db`` is not a tradelog log.
        StorageUnavailableError: a file cannot be written, or the server cannot be reached.
    """
    if directory.exists() and any(directory.iterdir()):
        raise ValidationError(f"{directory} is not empty; export into a new directory")
    recorder = await open_reader(db)
    try:
        last = await recorder.last_seq()
        if to_seq is not None and not 0 <= to_seq <= last:
            raise ValidationError(f"--to-seq {to_seq} is outside the log: seqs 1..{last}")
        point = last if to_seq is None else to_seq
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        report = ExportReport(directory, point)
        temp = private_file(directory, "events.jsonl")
        try:
            with open(temp, "w", encoding="utf-8", newline="") as handle:
                next_seq = 1
                while next_seq <= point:
                    page = await recorder.read(next_seq, min(_PAGE, point - next_seq + 1))
                    if not page:
                        break
                    handle.writelines(json.dumps(e.to_wire(), ensure_ascii=False) + "\n"
                                      for e in page)
                    report.events += len(page)
                    next_seq = page[-1].seq + 1
        except BaseException:
            os.unlink(temp)
            raise
        publish(temp, directory / "events.jsonl")
        views: dict[str, list[dict[str, Any]]] = {}
        for name, table in t.VIEWS.items():
            rows = await _all_rows(recorder, name, point)
            text = _csv_text(table.fields, rows)
            _write_private(directory, f"{name}.csv", [text])
            report.views[name] = len(rows)
            if xlsx:
                views[name] = rows
        if xlsx:
            from daemon.cli.export_xlsx import write_workbook

            write_workbook(directory, views)
            report.xlsx = True
        return report
    finally:
        await recorder.close()


async def _all_rows(recorder: ViewReader, view: str, point: int) -> list[dict[str, Any]]:
    """Every row of ``view`` as of seq ``point``, in the view's order, page by page
    (``query`` returns at most ``MAX_LIMIT`` rows at a time)."""
    rows: list[dict[str, Any]] = []
    while True:
        answer = await query_view(recorder, ViewQuery(
            view, as_of=point, order="asc", offset=len(rows), limit=MAX_LIMIT))
        rows += answer["rows"]
        if len(rows) >= answer["total"] or not answer["rows"]:
            return rows


def export_command(args: argparse.Namespace, config: Config | Locations) -> int:
    """``tradelog export``: prints ``ExportReport.summary``."""
    store = config.store_url()
    source = config.db if store.kind == "sqlite" else store
    report = asyncio.run(export(source, args.directory, args.to_seq, args.xlsx))
    print(report.summary())
    return 0

