"""Readers for each legacy format (see the package docstring)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO, TextIO
from zoneinfo import ZoneInfo

from daemon.importers.jsonstream import JSONRecordError, json_records
from daemon.importers.stored_fields import StoredChain, split_stored
from daemon.jsonread import JSONReadError, loads
from schemas import EventValidationError, parse_event
from schemas.values import format_utc

__all__ = ["FORMATS", "MAX_LINE_CHARS", "ImportProblem", "ImportRow", "Item", "ReadResult",
           "detect_format", "format_of", "iter_rows", "read_file"]

TRADES_COLUMNS = (
    "trade_id", "symbol", "entry_date", "entry_price", "stop_loss_price", "target_price",
    "risk_reward_ratio", "atr_at_entry", "trade_type", "source_signal_date", "status",
    "current_price", "unrealized_pnl", "exit_date", "exit_price", "realized_pnl",
    "exit_reason", "holding_period", "notes", "created_at", "updated_at",
)
EXIT_REASONS = {
    "SIGNAL_REVERSAL": "signal", "SIGNAL": "signal", "STOP_LOSS": "stop_loss",
    "STOPLOSS": "stop_loss", "SL": "stop_loss", "TARGET": "take_profit",
    "TAKE_PROFIT": "take_profit", "TP": "take_profit", "TARGET_HIT": "take_profit",
    "TRAILING_STOP": "trailing_stop", "MANUAL": "manual", "EXPIRY": "expiry",
    "EXPIRED": "expiry", "DAILY_LOSS_LIMIT": "daily_loss_limit",
    "LIQUIDATION": "liquidation",
}


@dataclass(frozen=True)
class ImportProblem:
    """Why one row of a file cannot be imported: its ``line`` (1-based) and ``reason``."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportRow:
    """The events of one row, with the realized P&L the file states for it (account
    currency, gross of fees; None when the row states none)."""

    line: int
    events: list[dict[str, Any]]
    realized: Decimal | None = None
    size: int = 0
    """Characters of the file the row came from (bounds the bytes of one append)."""


@dataclass
class ReadResult:
    """Every row of a file, or the problems that stop it from being imported."""

    rows: list[ImportRow] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The wire events of every row, in file order."""
        return [event for row in self.rows for event in row.events]

    @property
    def realized(self) -> Decimal:
        """The realized P&L the rows state, summed (account currency, gross of fees)."""
        return sum((r.realized for r in self.rows if r.realized is not None), Decimal(0))


class _RowError(ValueError):
    pass


MAX_NUMBER_CHARS = 40
MAX_EXPONENT = 40
"""A number in a file is refused past these before any arithmetic (PROTOCOL.md bounds
numbers the same way); the events' own bounds (EVENTS.md) are checked after."""


def _optional(row: dict[str, str], name: str) -> Decimal | None:
    if not (row.get(name) or "").strip():
        return None
    return _decimal(row, name)


def _decimal(row: dict[str, str], name: str) -> Decimal:
    text = (row.get(name) or "").strip()
    if not text:
        raise _RowError(f"{name} is empty")
    if len(text) > MAX_NUMBER_CHARS:
        raise _RowError(f"{name} has {len(text)} characters; a number has at most "
                        f"{MAX_NUMBER_CHARS}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _RowError(f"{name} {text[:30]!r} is not a number") from None
    if not value.is_finite():
        raise _RowError(f"{name} {text[:30]!r} is not a finite number")
    if value and abs(value.adjusted()) > MAX_EXPONENT:
        raise _RowError(f"{name} {text!r} is beyond 10^\u00b1{MAX_EXPONENT}")
    return value


def _utc(moment: datetime, what: str) -> str:
    try:
        return format_utc(moment)
    except (OverflowError, ValueError):
        raise _RowError(f"{what} is out of the range of dates") from None


def _time(row: dict[str, str], name: str, timezone: str) -> str:
    text = (row.get(name) or "").strip()
    if not text:
        raise _RowError(f"{name} is empty")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _RowError(f"{name} {text[:30]!r} is not a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return _utc(moment, f"{name} {text[:30]!r}")


def _event(kind: str, event_id: str, source: str, time: str, account: str,
           data: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "source": source, "type": kind, "time": time, "account": account,
            "data": data}


def _trade_row(row: dict[str, str], account: str, quantity: Decimal, source: str,
               timezone: str) -> ImportRow:
    trade_id = (row.get("trade_id") or "").strip()
    symbol = (row.get("symbol") or "").strip()
    if not trade_id:
        raise _RowError("trade_id is empty")
    if not symbol:
        raise _RowError("symbol is empty")
    kind = (row.get("trade_type") or "").strip().upper()
    if kind not in ("LONG", "SHORT"):
        raise _RowError(f"trade_type {kind[:20]!r} is neither LONG nor SHORT")
    status = (row.get("status") or "").strip().upper()
    if status not in ("ACTIVE", "OPEN", "CLOSED"):
        raise _RowError(f"status {status[:20]!r} is not ACTIVE, OPEN or CLOSED")
    if "quantity" in row and (row.get("quantity") or "").strip():
        qty = _decimal(row, "quantity")
    else:
        qty = quantity
    if qty <= 0:
        raise _RowError("quantity must be > 0")
    entry_price = _decimal(row, "entry_price")
    if entry_price <= 0:
        raise _RowError("entry_price must be > 0")
    opened = _time(row, "entry_date", timezone)
    stop = _optional(row, "stop_loss_price")
    target = _optional(row, "target_price")
    side_open, side_close = ("buy", "sell") if kind == "LONG" else ("sell", "buy")
    events: list[dict[str, Any]] = []
    signal_id = None
    if (row.get("source_signal_date") or "").strip():
        signal_id = f"{trade_id}-signal"
        signal: dict[str, Any] = {"signal_id": signal_id, "strategy": "legacy-import",
                                  "symbol": symbol,
                                  "side": "long" if kind == "LONG" else "short",
                                  "entry_price": str(entry_price)}
        if stop is not None and stop > 0:
            signal["stop_loss"] = str(stop)
        if target is not None and target > 0:
            signal["take_profit"] = str(target)
        events.append(_event("signal", f"{trade_id}:signal", source, opened, account, signal))
    opening: dict[str, Any] = {"symbol": symbol, "side": side_open, "quantity": str(qty),
                               "price": str(entry_price), "position_id": trade_id}
    if signal_id:
        opening["signal_id"] = signal_id
    events.append(_event("fill", f"{trade_id}:open", source, opened, account, opening))
    realized = None
    if status == "CLOSED":
        exit_price = _decimal(row, "exit_price")
        if exit_price <= 0:
            raise _RowError("exit_price must be > 0")
        closed = _time(row, "exit_date", timezone)
        reason_text = (row.get("exit_reason") or "").strip().upper()
        closing: dict[str, Any] = {"symbol": symbol, "side": side_close, "quantity": str(qty),
                                   "price": str(exit_price), "position_id": trade_id,
                                   "exit_reason": EXIT_REASONS.get(reason_text, "other")}
        if signal_id:
            closing["signal_id"] = signal_id
        events.append(_event("fill", f"{trade_id}:close", source, closed, account, closing))
        per_unit = _optional(row, "realized_pnl")
        if per_unit is None:
            sign = 1 if kind == "LONG" else -1
            per_unit = (exit_price - entry_price) * sign
        realized = per_unit * qty
    else:
        current = _optional(row, "current_price")
        if current is not None and current > 0:
            marked = _time(row, "updated_at", timezone) if (
                row.get("updated_at") or "").strip() else opened
            events.append(_event("mark", f"{trade_id}:mark", source, marked, account,
                                 {"prices": {symbol: str(current)}}))
    notes = (row.get("notes") or "").strip()
    if notes:
        events.append(_event("journal", f"{trade_id}:notes", source, opened, account, {
            "text": notes[:10000], "tags": ["imported"], "symbol": symbol,
            "position_id": trade_id}))
    return ImportRow(0, events, realized)


Item = ImportRow | ImportProblem
"""What a reader yields: a row ready to append, or why a line cannot be imported."""

MAX_LINE_CHARS = 1 << 20
"""Longest line (JSONL, CSV) or JSON record a reader takes; longer is a problem."""


class _LineTooLongError(ValueError):
    pass


def _bounded_lines(text: TextIO) -> Iterator[str]:
    """The lines of ``text``, raising ``_LineTooLongError`` for one of more than
    ``MAX_LINE_CHARS`` characters instead of holding it in memory."""
    while True:
        line = text.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS:
            raise _LineTooLongError(f"a line longer than {MAX_LINE_CHARS} characters")
        yield line


def iter_trades_csv(stream: BinaryIO, name: str, account: str | None,
                    quantity: Decimal | None = None, timezone: str = "UTC") -> Iterator[Item]:
    """The trades CSV (one row per trade, P&L per unit; ``quantity`` column optional).

    Times without an offset are read in ``timezone``. Each row becomes: a ``signal`` when
    ``source_signal_date`` is set, the opening ``fill``, the closing ``fill`` with its
    exit reason when CLOSED (else a ``mark`` at ``current_price``), and a ``journal``
    entry for ``notes``. Each trade is its own position (``position_id`` = trade_id).
    ``quantity`` (None: the file must have a quantity column) is used for rows without one.
    A line over ``MAX_LINE_CHARS``, text that is not UTF-8 or a malformed CSV stops the
    reading with one last problem.
    """
    if account is None:
        yield ImportProblem(1, "a trades CSV needs an account")
        return
    source = f"import/trades-csv/{name}"
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(_bounded_lines(text))
    try:
        header = reader.fieldnames or []
        missing = [c for c in ("trade_id", "symbol", "entry_date", "entry_price",
                               "trade_type", "status") if c not in header]
        if missing:
            yield ImportProblem(1, f"missing columns: {', '.join(missing)}")
            return
        if "quantity" not in header and quantity is None:
            yield ImportProblem(1, "the file has no quantity column; add one, or give the "
                                   "quantity of every row (--quantity, inbox_quantity)")
            return
        for row in reader:
            line = reader.line_num
            try:
                found = _trade_row(row, account, quantity or Decimal(0), source, timezone)
            except _RowError as exc:
                yield ImportProblem(line, str(exc))
                continue
            found.line = line
            found.size = sum(len(v) for v in row.values() if isinstance(v, str))
            yield found
    except (_LineTooLongError, csv.Error) as exc:
        yield ImportProblem(reader.line_num + 1, f"{exc}; the rest was not read")
    except UnicodeDecodeError:
        yield ImportProblem(reader.line_num + 1, "not UTF-8 text; the rest was not read")
    finally:
        text.detach()


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
        except _RowError as exc:
            yield ImportProblem(where, f"record {number}: {exc}")
            continue
        for row in rows:
            row.size = record.size // max(1, len(rows))
            yield row


def _daily_record(record: Any, account: str, source: str, timezone: str,
                  where: int) -> list[ImportRow]:
    if not isinstance(record, dict):
        raise _RowError("a record must be an object")
    date = str(record.get("date", ""))
    try:
        day = datetime.strptime(date, "%Y-%m-%d")
    except ValueError:
        raise _RowError(f"date {date[:20]!r} is not YYYY-MM-DD") from None
    positions = record.get("positions")
    if not isinstance(positions, list):
        raise _RowError("positions must be a list")
    opened = _utc(day.replace(tzinfo=ZoneInfo(timezone)), f"date {date!r}")
    rows: list[ImportRow] = []
    for index, position in enumerate(positions):
        if not isinstance(position, dict):
            raise _RowError(f"position {index} must be an object")
        values = {k: str(position.get(k, "")) for k in
                  ("average_price", "last_price", "quantity", "pnl")}
        try:
            avg = _decimal(values, "average_price")
            last = _decimal(values, "last_price")
            qty = _decimal(values, "quantity")
            pnl = _optional(values, "pnl")
        except _RowError as exc:
            raise _RowError(f"position {index}: {exc}") from None
        symbol = str(position.get("tradingsymbol") or "").strip()
        if not symbol:
            raise _RowError(f"position {index}: tradingsymbol is empty")
        if qty == 0 or avg <= 0 or last <= 0:
            raise _RowError(f"position {index}: quantity must not be 0 and prices must be > 0")
        key = f"{date}-{index}"
        side_open, side_close = ("buy", "sell") if qty > 0 else ("sell", "buy")
        common = {"symbol": symbol, "quantity": str(abs(qty)), "position_id": key}
        events = [
            _event("fill", f"{key}:open", source, opened, account,
                   {**common, "side": side_open, "price": str(avg)}),
            _event("fill", f"{key}:close", source, opened, account,
                   {**common, "side": side_close, "price": str(last), "exit_reason": "other"}),
        ]
        rows.append(ImportRow(where, events, pnl if pnl is not None else (last - avg) * qty))
    return rows


def iter_events_jsonl(stream: BinaryIO, name: str, account: str | None,
                      quantity: Decimal | None = None, timezone: str = "UTC", *,
                      check: bool = True) -> Iterator[Item]:
    """CloudEvents, one per line, validated as the daemon would (unless ``check`` is
    False: lines already validated); ``account`` (when given) must match each event's
    own. A line longer than ``MAX_LINE_CHARS`` bytes is a problem and is skipped without
    being held in memory. Stored events (an export) are taken too: their stored fields
    are checked (when ``check``) and left out (``daemon.importers.stored_fields``)."""
    del quantity, timezone, name
    chain = StoredChain()  # an export's stored fields: checked, then left to the log
    line = 0
    while True:
        raw = stream.readline(MAX_LINE_CHARS + 1)
        if not raw:
            return
        line += 1
        if len(raw) > MAX_LINE_CHARS and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(MAX_LINE_CHARS)
            yield ImportProblem(line, f"longer than {MAX_LINE_CHARS} bytes")
            continue
        if not raw.strip():
            continue
        try:
            event, stored = split_stored(loads(raw))
            if check:
                parse_event(event)
        except JSONReadError as exc:
            yield ImportProblem(line, str(exc))
            continue
        except EventValidationError as exc:
            detail = "; ".join(f"{p.path}: {p.message}" for p in exc.problems)
            yield ImportProblem(line, detail)
            continue
        except (ValueError, ArithmeticError) as exc:
            yield ImportProblem(line, f"a value is out of range: {exc}")
            continue
        bad = chain.check(event, stored) if check else None
        if bad is not None:
            yield ImportProblem(line, bad)
            continue
        if account is not None and event["account"] != account:
            yield ImportProblem(line, f"account {str(event['account'])[:64]!r} is not "
                                      f"{account!r}, the folder it is in")
            continue
        yield ImportRow(line, [event], size=len(raw))


Reader = Callable[[BinaryIO, str, Any, Decimal | None, str], Iterator[Item]]
FORMATS: dict[str, Reader] = {
    "trades-csv": iter_trades_csv,
    "daily-pnl-json": iter_daily_pnl_json,
    "events-jsonl": iter_events_jsonl,
}


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
              validate: bool = True) -> Iterator[Item]:
    """The rows of ``stream`` in format ``fmt`` (``name`` is the file's name, part of the
    events' ``source``), one at a time: memory stays bounded whatever the file's size.
    With ``validate`` every event is checked as the daemon would (a row with a bad event
    becomes a problem naming its line).

    Raises:
        KeyError: an unknown format name.
    """
    checks = validate and fmt != "events-jsonl"  # that reader validates as it parses
    items = (iter_events_jsonl(stream, name, account, check=False)
             if fmt == "events-jsonl" and not validate
             else FORMATS[fmt](stream, name, account, quantity, timezone))
    for item in items:
        if checks and isinstance(item, ImportRow):
            bad = _validate(item.events)
            if bad:
                yield ImportProblem(item.line, bad)
                continue
        yield item


def read_file(path: Path, fmt: str, account: str | None, quantity: Decimal | None = None,
              timezone: str = "UTC") -> ReadResult:
    """Read the whole of ``path`` in format ``fmt`` (``tradelog import``); every event is
    validated, problems carry lines.

    Raises:
        KeyError: an unknown format name.
    """
    checked = ReadResult()
    with path.open("rb") as handle:
        for item in iter_rows(handle, fmt, path.name, account, quantity, timezone):
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
            return "; ".join(f"{p.path}: {p.message}" for p in exc.problems)
        except (ValueError, ArithmeticError) as exc:
            return f"a value is out of range: {exc}"
    return None
