"""The daily P&L JSON: ``{"records": [{"date": ..., "positions": [...]}, ...]}``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from daemon.importers.jsonstream import JSONRecordError, json_records
from daemon.importers.rows import (
    MAX_LINE_CHARS,
    ImportProblem,
    ImportRow,
    Item,
    RowError,
    decimal_field,
    optional_decimal,
    utc_text,
    wire_event,
)

__all__ = ["iter_daily_pnl_json"]


def iter_daily_pnl_json(stream: BinaryIO, name: str, account: str | None,
                        quantity: Decimal | None = None,
                        timezone: str = "UTC") -> Iterator[Item]:
    """The daily P&L JSON: each record's positions are round trips closed that day.

    A position with signed ``quantity`` q, ``average_price`` a and ``last_price`` l
    becomes an opening fill of |q| at a and a closing fill at l on that date (00:00 in
    ``timezone``), keyed ``position_id`` = ``<date>-<n>``; its ``pnl`` is what the file
    says it realized. The document is read one record at a time (``json_records``).
    """
    del quantity
    if account is None:
        yield ImportProblem(1, "a daily P&L JSON needs an account")
        return
    source = f"import/daily-pnl-json/{name}"
    for number, record in enumerate(json_records(stream, "records", MAX_LINE_CHARS)):
        where = number + 1
        if isinstance(record, JSONRecordError):
            yield ImportProblem(where, str(record))
            return
        try:
            rows = _daily_record(record.value, account, source, timezone, where)
        except RowError as exc:
            yield ImportProblem(where, f"record {number}: {exc}")
            continue
        for row in rows:
            row.size = record.size // max(1, len(rows))
            yield row


def _daily_record(record: Any, account: str, source: str, timezone: str,
                  where: int) -> list[ImportRow]:
    if not isinstance(record, dict):
        raise RowError("a record must be an object")
    date = str(record.get("date", ""))
    try:
        day = datetime.strptime(date, "%Y-%m-%d")
    except ValueError:
        raise RowError(f"date {date[:20]!r} is not YYYY-MM-DD") from None
    positions = record.get("positions")
    if not isinstance(positions, list):
        raise RowError("positions must be a list")
    opened = utc_text(day.replace(tzinfo=ZoneInfo(timezone)), f"date {date!r}")
    rows: list[ImportRow] = []
    for index, position in enumerate(positions):
        if not isinstance(position, dict):
            raise RowError(f"position {index} must be an object")
        values = {k: str(position.get(k, "")) for k in
                  ("average_price", "last_price", "quantity", "pnl")}
        try:
            avg = decimal_field(values, "average_price")
            last = decimal_field(values, "last_price")
            qty = decimal_field(values, "quantity")
            pnl = optional_decimal(values, "pnl")
        except RowError as exc:
            raise RowError(f"position {index}: {exc}") from None
        symbol = str(position.get("tradingsymbol") or "").strip()
        if not symbol:
            raise RowError(f"position {index}: tradingsymbol is empty")
        if qty == 0 or avg <= 0 or last <= 0:
            raise RowError(f"position {index}: quantity must not be 0 and prices must be > 0")
        key = f"{date}-{index}"
        side_open, side_close = ("buy", "sell") if qty > 0 else ("sell", "buy")
        common = {"symbol": symbol, "quantity": str(abs(qty)), "position_id": key}
        events = [
            wire_event("fill", f"{key}:open", source, opened, account,
                   {**common, "side": side_open, "price": str(avg)}),
            wire_event("fill", f"{key}:close", source, opened, account,
                   {**common, "side": side_close, "price": str(last), "exit_reason": "other"}),
        ]
        rows.append(ImportRow(where, events, pnl if pnl is not None else (last - avg) * qty))
    return rows
