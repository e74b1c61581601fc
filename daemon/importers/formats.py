"""The legacy formats by name: which reader takes a file, and reading one whole.

One module per format (``trades_csv``, ``daily_pnl_json``, ``events_jsonl``) over the
shared rows and field checks of ``rows``; this module names them (``FORMATS``), tells a
file's format from its name and first bytes, and validates every event of a row as the
daemon would (``iter_rows``, ``read_file``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from daemon.importers.daily_pnl_json import iter_daily_pnl_json
from daemon.importers.events_jsonl import iter_events_jsonl
from daemon.importers.mapped import iter_mapped
from daemon.importers.mapping import Mapping
from daemon.importers.rows import (
    MAX_LINE_CHARS,
    ImportProblem,
    ImportRow,
    Item,
    ReadResult,
    problems_text,
)
from daemon.importers.trades_csv import iter_trades_csv
from schemas import EventValidationError, parse_event

# The rows' types and MAX_LINE_CHARS are named here too, where they were first defined.
__all__ = ["FORMATS", "MAPPED", "MAX_LINE_CHARS", "ImportProblem", "ImportRow", "Item",
           "ReadResult", "Reader", "detect_format", "format_of", "iter_rows", "read_file"]

Reader = Callable[[BinaryIO, str, Any, Decimal | None, str], Iterator[Item]]
"""A format's reader: ``(stream, file name, account or None, quantity or None, time
zone)`` to the file's rows and problems, one at a time."""

FORMATS: dict[str, Reader] = {
    "trades-csv": iter_trades_csv,
    "daily-pnl-json": iter_daily_pnl_json,
    "events-jsonl": iter_events_jsonl,
}


MAPPED = "mapped"
"""The format name of a file read through a ``--map`` mapping."""


def format_of(name: str, head: bytes) -> str | None:
    """The format of a file named ``name`` whose first bytes are ``head`` (4 KiB is
    enough), or None if unknown."""
    suffix = Path(name).suffix.lower()
    if suffix == ".jsonl":
        return "events-jsonl"
    if suffix == ".csv" and b"trade_id" in head.split(b"\n", 1)[0]:
        return "trades-csv"
    if suffix == ".json" and b'"records"' in head:
        return "daily-pnl-json"
    return None


def detect_format(path: Path) -> str | None:
    """The format of a file from its extension and header, or None if unknown."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    return format_of(path.name, head)


def iter_rows(stream: BinaryIO, fmt: str, name: str, account: str | None,
              quantity: Decimal | None = None, timezone: str = "UTC",
              validate: bool = True, mapping: Mapping | None = None,
              revision: int = 1) -> Iterator[Item]:
    """The rows of ``stream`` in format ``fmt`` (``name`` is the file's name: a mapped
    file's format may come from its extension; it is never part of an event), one at a
    time: memory stays bounded whatever the file's size. With ``mapping`` the file is
    read through it (``MAPPED``, whatever ``fmt`` says). With ``validate`` every event
    is checked as the daemon would (a row with a bad event becomes a problem naming its
    line). A ``revision`` above 1 adds ``/r<revision>`` to the ``source`` of a legacy
    file's events: a corrected import of rows whose first import was voided (the same
    ids under the first source would be refused as changed content).

    Raises:
        KeyError: an unknown format name.
    """
    checks = validate and fmt != "events-jsonl"  # that reader validates as it parses
    suffix = f"/r{revision}" if revision > 1 and fmt != "events-jsonl" else ""
    if mapping is not None:
        checks = validate
        items = iter_mapped(stream, name, account, mapping, quantity, timezone)
    elif fmt == "events-jsonl" and not validate:
        items = iter_events_jsonl(stream, name, account, check=False)
    else:
        items = FORMATS[fmt](stream, name, account, quantity, timezone)
    for item in items:
        if suffix and isinstance(item, ImportRow):
            for event in item.events:
                event["source"] += suffix
        if checks and isinstance(item, ImportRow):
            bad = _validate(item.events)
            if bad:
                yield ImportProblem(item.line, bad)
                continue
        yield item


def read_file(path: Path, fmt: str, account: str | None, quantity: Decimal | None = None,
              timezone: str = "UTC", mapping: Mapping | None = None,
              revision: int = 1) -> ReadResult:
    """Read the whole of ``path`` in format ``fmt`` (``tradelog import``); every event is
    validated, problems carry lines.

    Raises:
        KeyError: an unknown format name.
    """
    checked = ReadResult()
    with path.open("rb") as handle:
        for item in iter_rows(handle, fmt, path.name, account, quantity, timezone,
                              mapping=mapping, revision=revision):
            if isinstance(item, ImportRow):
                checked.rows.append(item)
            else:
                checked.problems.append(item)
    checked.problems.sort(key=lambda p: p.line)
    return checked


def _validate(events: list[dict[str, Any]]) -> str | None:
    for event in events:
        try:
            parse_event(event)
        except EventValidationError as exc:
            return problems_text(exc)
        except (ValueError, ArithmeticError) as exc:
            return f"a value is out of range: {exc}"
    return None
