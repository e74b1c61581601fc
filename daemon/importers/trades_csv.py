"""The trades CSV: one row per trade, P&L per unit, ``quantity`` column optional."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO, TextIO

from daemon.importers.rows import (
    MAX_LINE_CHARS,
    ImportProblem,
    ImportRow,
    Item,
    RowError,
    decimal_field,
    import_source,
    optional_decimal,
    time_field,
    wire_event,
)

__all__ = ["EXIT_REASONS", "TRADES_COLUMNS", "LineTooLongError", "bounded_lines",
           "iter_trades_csv"]

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
"""The file's ``exit_reason`` (upper-cased) to EVENTS.md's; any other is ``other``."""
DERIVED = ("holding_period", "unrealized_pnl")
"""Columns the views compute from the events (``trades.holding_seconds``,
``positions.unrealized_pnl``): not stored, not warned about."""
ATTRS = ("atr_at_entry", "risk_reward_ratio")
"""Columns kept in the opening fill's ``attrs`` (EVENTS.md: what tradelog has no field for)."""
_PLACED = frozenset(TRADES_COLUMNS) - {"created_at"} | {"quantity"}


class LineTooLongError(ValueError):
    """A line of more than ``MAX_LINE_CHARS`` characters."""


def bounded_lines(text: TextIO) -> Iterator[str]:
    """The lines of ``text``, raising ``LineTooLongError`` for one of more than
    ``MAX_LINE_CHARS`` characters instead of holding it in memory."""
    while True:
        line = text.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS:
            raise LineTooLongError(f"a line longer than {MAX_LINE_CHARS} characters")
        yield line


def iter_trades_csv(stream: BinaryIO, name: str, account: str | None,
                    quantity: Decimal | None = None, timezone: str = "UTC") -> Iterator[Item]:
    """The trades CSV (one row per trade, P&L per unit; ``quantity`` column optional).

    Times without an offset are read in ``timezone``. Each row becomes: a ``signal`` when
    ``source_signal_date`` is set, the opening ``fill``, the closing ``fill`` with its
    exit reason when CLOSED (else a ``mark`` at ``current_price``), and a ``journal``
    entry for ``notes``. Each trade is its own position (``position_id`` = trade_id).
    ``quantity`` (None: the file must have a quantity column) is used for rows without one.
    Ids are ``<trade_id>:<part>`` under ``import_source``: never the file's name, so the
    same trades in a renamed or re-exported file are stored once. A column with no place
    in the events (``created_at``, any unknown one) is named in the rows' ``unused``.
    A line over ``MAX_LINE_CHARS``, text that is not UTF-8 or a malformed CSV stops the
    reading with one last problem.
    """
    if account is None:
        yield ImportProblem(1, "a trades CSV needs an account")
        return
    del name
    source = import_source("trades-csv", account)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(bounded_lines(text))
    try:
        header = reader.fieldnames or []
        missing = [c for c in ("trade_id", "symbol", "entry_date", "entry_price",
                               "trade_type", "status") if c not in header]
        if missing:
            yield ImportProblem(1, f"missing columns: {', '.join(missing)}")
            return
        if "quantity" not in header and quantity is None:
            yield ImportProblem(1, "the file has no quantity column; add one, or give the "
                                   "quantity of every row (--quantity; in the inbox, "
                                   "quantity in the folder's .tradelog.toml, or "
                                   "inbox_quantity)")
            return
        extra = tuple(c for c in header if c not in _PLACED and c not in DERIVED)
        for row in reader:
            line = reader.line_num
            try:
                found = _trade_row(row, account, quantity or Decimal(0), source, timezone)
            except RowError as exc:
                yield ImportProblem(line, str(exc))
                continue
            found.line = line
            found.unused = tuple(c for c in extra if (row.get(c) or "").strip())
            found.size = sum(len(v) for v in row.values() if isinstance(v, str))
            yield found
    except (LineTooLongError, csv.Error) as exc:
        yield ImportProblem(reader.line_num + 1, f"{exc}; the rest was not read")
    except UnicodeDecodeError:
        yield ImportProblem(reader.line_num + 1, "not UTF-8 text; the rest was not read")
    finally:
        text.detach()


def _trade_row(row: dict[str, str], account: str, quantity: Decimal, source: str,
               timezone: str) -> ImportRow:
    trade_id = (row.get("trade_id") or "").strip()
    symbol = (row.get("symbol") or "").strip()
    if not trade_id:
        raise RowError("trade_id is empty")
    if not symbol:
        raise RowError("symbol is empty")
    kind = (row.get("trade_type") or "").strip().upper()
    if kind not in ("LONG", "SHORT"):
        raise RowError(f"trade_type {kind[:20]!r} is neither LONG nor SHORT")
    status = (row.get("status") or "").strip().upper()
    if status not in ("ACTIVE", "OPEN", "CLOSED"):
        raise RowError(f"status {status[:20]!r} is not ACTIVE, OPEN or CLOSED")
    if "quantity" in row and (row.get("quantity") or "").strip():
        qty = decimal_field(row, "quantity")
    else:
        qty = quantity
    if qty <= 0:
        raise RowError("quantity must be > 0")
    entry_price = decimal_field(row, "entry_price")
    if entry_price <= 0:
        raise RowError("entry_price must be > 0")
    opened = time_field(row, "entry_date", timezone)
    stop = optional_decimal(row, "stop_loss_price")
    target = optional_decimal(row, "target_price")
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
        events.append(wire_event("signal", f"{trade_id}:signal", source, opened, account, signal))
    opening: dict[str, Any] = {"symbol": symbol, "side": side_open, "quantity": str(qty),
                               "price": str(entry_price), "position_id": trade_id}
    attrs = {k: v for k in ATTRS if (v := (row.get(k) or "").strip()[:256])}
    if attrs:
        opening["attrs"] = attrs
    if signal_id:
        opening["signal_id"] = signal_id
    events.append(wire_event("fill", f"{trade_id}:open", source, opened, account, opening))
    realized = None
    if status == "CLOSED":
        exit_price = decimal_field(row, "exit_price")
        if exit_price <= 0:
            raise RowError("exit_price must be > 0")
        closed = time_field(row, "exit_date", timezone)
        reason_text = (row.get("exit_reason") or "").strip().upper()
        closing: dict[str, Any] = {"symbol": symbol, "side": side_close, "quantity": str(qty),
                                   "price": str(exit_price), "position_id": trade_id,
                                   "exit_reason": EXIT_REASONS.get(reason_text, "other")}
        if signal_id:
            closing["signal_id"] = signal_id
        events.append(wire_event("fill", f"{trade_id}:close", source, closed, account, closing))
        per_unit = optional_decimal(row, "realized_pnl")
        if per_unit is None:
            sign = 1 if kind == "LONG" else -1
            per_unit = (exit_price - entry_price) * sign
        realized = per_unit * qty
    else:
        current = optional_decimal(row, "current_price")
        if current is not None and current > 0:
            marked = time_field(row, "updated_at", timezone) if (
                row.get("updated_at") or "").strip() else opened
            events.append(wire_event("mark", f"{trade_id}:mark", source, marked, account,
                                 {"prices": {symbol: str(current)}}))
    notes = (row.get("notes") or "").strip()
    if notes:
        events.append(wire_event("journal", f"{trade_id}:notes", source, opened, account, {
            "text": notes[:10000], "tags": ["imported"], "symbol": symbol,
            "position_id": trade_id}))
    return ImportRow(0, events, realized, closed=int(status == "CLOSED"))
