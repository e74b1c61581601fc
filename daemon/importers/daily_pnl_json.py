"""The daily P&L JSON: ``{"records": [{"date": ..., "positions": [...]}, ...]}``.

Two kinds of position are read: the plain one (signed ``quantity``, ``average_price``,
``last_price``, ``pnl``: a round trip closed that day) and Kite Connect's (buy and sell
quantities and values, ``quantity`` 0 when squared off: ``daemon.importers.kite``). A
record's day-level P&L (``non_equity_pnl``) that its positions do not account for (a
day given only at day level, or a difference) is recorded as a ``cash`` event of kind
``adjustment`` whose ``note`` says where it came from: never dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from daemon.importers.jsonstream import JSONRecordError, json_records
from daemon.importers.kite import is_kite, kite_position
from daemon.importers.rows import (
    MAX_LINE_CHARS,
    ImportProblem,
    ImportRow,
    Item,
    RowError,
    content_key,
    decimal_field,
    import_source,
    optional_decimal,
    utc_text,
    wire_event,
)

__all__ = ["DAY_PNL", "iter_daily_pnl_json"]

DAY_PNL = "non_equity_pnl"
"""The record field holding the day's P&L (the Kite day file's name for it)."""


RECORD_FIELDS = frozenset({"date", "positions", "positions_count", DAY_PNL})
PLAIN_FIELDS = frozenset({"tradingsymbol", "exchange", "average_price", "last_price",
                          "quantity", "pnl"})


def iter_daily_pnl_json(stream: BinaryIO, name: str, account: str | None,
                        quantity: Decimal | None = None,
                        timezone: str = "UTC") -> Iterator[Item]:
    """The daily P&L JSON: each record's positions are that day's round trips.

    A plain position with signed ``quantity`` q, ``average_price`` a and ``last_price`` l
    becomes an opening fill of |q| at a and a closing fill at l on that date (00:00 in
    ``timezone``), keyed ``position_id`` = ``<date>:<symbol>:<content key>`` (a hash of
    the position's values, ``content_key``; a repeat of the same values that day gets
    ``~2``, ``~3``...); its ``pnl`` is what the file says it realized. A Kite position is
    read by ``daemon.importers.kite``. ``non_equity_pnl`` minus the positions' ``pnl``
    (when not 0) is a ``cash`` adjustment, id ``<date>:day-pnl``. Ids never hold the
    file's name (``import_source``). The document is read one record at a time
    (``json_records``).
    """
    del quantity, name
    if account is None:
        yield ImportProblem(1, "a daily P&L JSON needs an account")
        return
    source = import_source("daily-pnl-json", account)
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


def _plain_position(position: dict[str, Any], date: str, opened: str, account: str,
                    source: str, seen: dict[str, int]) -> ImportRow:
    values = {k: "" if position.get(k) is None else str(position.get(k))
              for k in ("average_price", "last_price", "quantity", "pnl")}
    avg = decimal_field(values, "average_price")
    last = decimal_field(values, "last_price")
    qty = decimal_field(values, "quantity")
    pnl = optional_decimal(values, "pnl")
    symbol = str(position.get("tradingsymbol") or "").strip()
    if not symbol:
        raise RowError("tradingsymbol is empty")
    if qty == 0 or avg <= 0 or last <= 0:
        raise RowError("quantity must not be 0 and prices must be > 0")
    key = f"{date}:{symbol}:{content_key(avg, last, qty, pnl if pnl is not None else '')}"
    seen[key] = count = seen.get(key, 0) + 1
    if count > 1:
        key = f"{key}~{count}"
    side_open, side_close = ("buy", "sell") if qty > 0 else ("sell", "buy")
    common: dict[str, Any] = {"symbol": symbol, "quantity": str(abs(qty)), "position_id": key}
    exchange = position.get("exchange")
    if isinstance(exchange, str) and exchange.strip():
        common["attrs"] = {"exchange": exchange.strip()[:256]}
    events = [
        wire_event("fill", f"{key}:open", source, opened, account,
                   {**common, "side": side_open, "price": str(avg)}),
        wire_event("fill", f"{key}:close", source, opened, account,
                   {**common, "side": side_close, "price": str(last), "exit_reason": "other"}),
    ]
    unused = tuple(sorted(k for k in position if k not in PLAIN_FIELDS))
    return ImportRow(0, events, pnl if pnl is not None else (last - avg) * qty, closed=1,
                     unused=unused)


def _daily_record(record: Any, account: str, source: str, timezone: str,
                  where: int) -> list[ImportRow]:
    if not isinstance(record, dict):
        raise RowError("a record must be an object")
    date = str(record.get("date", ""))
    try:
        day = datetime.strptime(date, "%Y-%m-%d")
    except ValueError:
        raise RowError(f"date {date[:20]!r} is not YYYY-MM-DD") from None
    positions = record.get("positions", [])
    if not isinstance(positions, list):
        raise RowError("positions must be a list")
    count = record.get("positions_count")
    if count is not None and count != len(positions):
        raise RowError(f"positions_count is {str(count)[:20]} but {len(positions)} "
                       "positions are listed")
    opened = utc_text(day.replace(tzinfo=ZoneInfo(timezone)), f"date {date!r}")
    rows: list[ImportRow] = []
    seen: dict[str, int] = {}
    day_pnl = Decimal(0)
    for index, position in enumerate(positions):
        if not isinstance(position, dict):
            raise RowError(f"position {index} must be an object")
        try:
            if is_kite(position):
                row = kite_position(position, date, opened, account, source)
            else:
                row = _plain_position(position, date, opened, account, source, seen)
            pnl = optional_decimal({"pnl": "" if position.get("pnl") is None
                                    else str(position["pnl"])}, "pnl")
        except RowError as exc:
            raise RowError(f"position {index}: {exc}") from None
        day_pnl += pnl if pnl is not None else row.realized or Decimal(0)
        row.line = where
        rows.append(row)
    adjustment = _day_level(record, date, opened, account, source, day_pnl, len(positions))
    if adjustment is not None:
        adjustment.line = where
        rows.append(adjustment)
    if rows:
        rows[0].unused = tuple(sorted({*rows[0].unused,
                                       *(k for k in record if k not in RECORD_FIELDS)}))
    return rows


def _day_level(record: dict[str, Any], date: str, time: str, account: str, source: str,
               positions_pnl: Decimal, count: int) -> ImportRow | None:
    """The ``cash`` adjustment for the day's P&L its positions do not give, or None."""
    raw = record.get(DAY_PNL)
    if raw is None:
        return None
    stated = decimal_field({DAY_PNL: str(raw)}, DAY_PNL)
    rest = stated - positions_pnl
    if not rest:
        return None
    note = (f"day-level P&L of {date} from the file's {DAY_PNL} ({stated}); "
            + ("no positions were listed" if not count
               else f"its {count} positions give {positions_pnl}, this is the rest"))
    event = wire_event("cash", f"{date}:day-pnl", source, time, account,
                       {"amount": str(rest), "kind": "adjustment", "note": note[:256]})
    return ImportRow(0, [event], cash=rest)
