"""Reading a CSV or JSON records through a ``--map`` mapping (``daemon.importers.mapping``).

Each record (a CSV row, or one element of the JSON array) becomes the events of its
``kind``: a ``round_trip`` gives an opening fill and, when it has an exit price, a
closing fill (``position_id`` = the record's key); a ``fill`` one fill; a ``signal`` one
signal. The key is the record's ``key`` field, else a hash of its whole normalised
content (``content_key``; a repeat of the same record gets ``~2``, ``~3``...). Events
go under ``source`` ``import/map/<name>/<account>``: never the file's name, so a renamed
or re-exported file stores nothing twice. Record fields that no ``[fields]``, ``attrs``
or ``ignore`` entry names are reported in the rows' ``unused`` (warned about once).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO, cast
from zoneinfo import ZoneInfo

from daemon.importers.jsonstream import JSONRecordError, json_array, json_records
from daemon.importers.mapping import Mapping
from daemon.importers.rows import (
    MAX_LINE_CHARS,
    ImportProblem,
    ImportRow,
    Item,
    RowError,
    content_key,
    decimal_field,
    utc_text,
    wire_event,
)
from daemon.importers.trades_csv import EXIT_REASONS, LineTooLongError, bounded_lines

__all__ = ["iter_mapped"]

_LONG = {"long": "long", "buy": "long", "short": "short", "sell": "short"}


def iter_mapped(stream: BinaryIO, name: str, account: str | None, mapping: Mapping,
                quantity: Decimal | None = None, timezone: str = "UTC") -> Iterator[Item]:
    """The records of ``stream`` (a file named ``name``) through ``mapping``, one at a
    time. ``quantity`` (``--quantity``) stands in for a quantity neither mapped nor given
    as a value. A malformed file ends the reading with one last problem."""
    if account is None:
        yield ImportProblem(1, "a mapped file needs an account")
        return
    if mapping.kind != "signal" and not mapping.has_quantity and quantity is None:
        yield ImportProblem(1, "the mapping gives no quantity: map a field to quantity "
                               "under [fields], give one under [values], or give the "
                               "quantity of every record (--quantity, the inbox folder's "
                               ".tradelog.toml)")
        return
    fmt = mapping.format or ("csv" if name.lower().endswith(".csv") else "json")
    reader = _Reader(mapping, account, quantity, timezone)
    records = _csv(stream) if fmt == "csv" else _json(stream, mapping.records)
    for line, record in records:
        if isinstance(record, str):
            yield ImportProblem(line, record)
            return
        try:
            row = reader.row(record)
        except RowError as exc:
            yield ImportProblem(line, str(exc))
            continue
        row.line = line
        yield row


def _csv(stream: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | str]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(bounded_lines(text))
    try:
        for row in reader:
            yield reader.line_num, {k: v for k, v in row.items() if isinstance(k, str)}
    except (LineTooLongError, csv.Error) as exc:
        yield reader.line_num + 1, f"{exc}; the rest was not read"
    except UnicodeDecodeError:
        yield reader.line_num + 1, "not UTF-8 text; the rest was not read"
    finally:
        text.detach()


def _json(stream: BinaryIO, key: str | None) -> Iterator[tuple[int, dict[str, Any] | str]]:
    buffered: Any = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(
        cast(Any, stream))
    head = buffered.peek(64).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    items = (json_array(buffered, MAX_LINE_CHARS) if key is None and head == b"["
             else json_records(buffered, key or "records", MAX_LINE_CHARS))
    for number, item in enumerate(items, 1):
        if isinstance(item, JSONRecordError):
            yield number, str(item)
            return
        if not isinstance(item.value, dict):
            yield number, f"record {number - 1} is not an object"
            continue
        yield number, item.value


class _Reader:
    """Turns records into rows for one mapping and account."""

    def __init__(self, mapping: Mapping, account: str, quantity: Decimal | None,
                 timezone: str) -> None:
        self.mapping = mapping
        self.account = account
        self.source = f"{mapping.source_name}/{account}"
        self.timezone = ZoneInfo(timezone)
        self.fields = {k: v for k, v in mapping.fields.model_dump().items() if v}
        self.values = dict(mapping.values)
        if quantity is not None:
            self.values.setdefault("quantity", str(quantity))
        self.sides = {k.strip().lower(): v for k, v in mapping.sides.items()}
        self.reasons = {k.strip().lower(): v for k, v in mapping.exit_reasons.items()}
        self.placed = {f.split(".", 1)[0] for f in
                       (*self.fields.values(), *mapping.attrs, *mapping.ignore)}
        self.seen: dict[str, int] = {}

    def get(self, record: dict[str, Any], name: str) -> str | None:
        """The text of event field ``name`` in ``record`` (or its constant); None: blank."""
        path = self.fields.get(name)
        if path is None:
            return self.values.get(name)
        value: Any = record
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or isinstance(value, (dict, list)):
            return self.values.get(name) if value is None else json.dumps(value)[:256]
        text = str(value).strip() if not isinstance(value, bool) else str(value).lower()
        return text or self.values.get(name)

    def need(self, record: dict[str, Any], name: str) -> str:
        text = self.get(record, name)
        if text is None:
            raise RowError(f"{self.fields.get(name, name)} is empty")
        return text

    def number(self, record: dict[str, Any], name: str, *, positive: bool = False
               ) -> Decimal | None:
        text = self.get(record, name)
        if text is None:
            return None
        value = decimal_field({self.fields.get(name, name): text}, self.fields.get(name, name))
        if positive and value <= 0:
            raise RowError(f"{self.fields.get(name, name)} must be > 0")
        return value

    def amount(self, record: dict[str, Any], name: str) -> Decimal:
        """Like ``number`` with ``positive``, for a field the event cannot do without."""
        value = self.number(record, name, positive=True)
        if value is None:
            raise RowError(f"{self.fields.get(name, name)} is empty")
        return value

    def time(self, record: dict[str, Any], name: str) -> str:
        text = self.need(record, name)
        label = f"{self.fields.get(name, name)} {text[:30]!r}"
        form = self.mapping.time_format
        try:
            if form in ("unix", "unix_ms"):
                # bounded text (decimal_field), exact arithmetic: no float rounding
                seconds = decimal_field({label: text}, label) / (
                    1000 if form == "unix_ms" else 1)
                whole = int(seconds)
                moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
                    seconds=whole, microseconds=int((seconds - whole) * 1_000_000))
            else:
                moment = (datetime.fromisoformat(text) if form == "iso"
                          else datetime.strptime(text, form))
        except (ValueError, ArithmeticError, OverflowError):  # RowError is a ValueError
            raise RowError(f"{label} is not a time in the {form} format") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.timezone)
        return utc_text(moment, label)

    def side(self, record: dict[str, Any], fill: bool) -> str:
        raw = self.need(record, "side")
        word = self.sides.get(raw.lower()) or _LONG.get(raw.lower())
        if word is None:
            raise RowError(f"{self.fields.get('side', 'side')} {raw[:20]!r} is not a side: "
                           "map it under [sides] (to long, short, buy or sell)")
        long = _LONG[word] == "long"
        return ("buy" if long else "sell") if fill else ("long" if long else "short")

    def key(self, record: dict[str, Any]) -> str:
        given = self.get(record, "key")
        if given is not None:
            if len(given) > 100:
                raise RowError(f"{self.fields['key']} is longer than 100 characters")
            return given
        digest = content_key(json.dumps(record, sort_keys=True, default=str))
        self.seen[digest] = count = self.seen.get(digest, 0) + 1
        return digest if count == 1 else f"{digest}~{count}"

    def attrs(self, record: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in self.mapping.attrs:
            value = record.get(name)
            if value is None or value == "":
                continue
            if isinstance(value, (dict, list)):
                value = json.dumps(value, default=str)
            found[name[:64]] = value[:256] if isinstance(value, str) else value
        return found

    def row(self, record: dict[str, Any]) -> ImportRow:
        key = self.key(record)
        symbol = self.need(record, "symbol")
        attrs = self.attrs(record)
        kind = self.mapping.kind
        if kind == "signal":
            row = self._signal(record, key, symbol)
        else:
            row = self._fills(record, key, symbol, kind == "round_trip")
        for event in row.events:
            if attrs:
                event["data"]["attrs"] = attrs
        row.unused = tuple(sorted(k for k in record if k not in self.placed
                                  and record[k] not in (None, "")))
        return row

    def _signal(self, record: dict[str, Any], key: str, symbol: str) -> ImportRow:
        data: dict[str, Any] = {"signal_id": key, "strategy": self.need(record, "strategy"),
                                "symbol": symbol, "side": self.side(record, fill=False)}
        for name, field in (("entry_price", "entry_price"), ("stop_loss", "stop_loss"),
                            ("take_profit", "take_profit"), ("confidence", "confidence")):
            value = self.number(record, name)
            if value is not None:
                data[field] = str(value)
        note = self.get(record, "note")
        if note:
            data["note"] = note[:2000]
        time = self.time(record, "time")
        return ImportRow(0, [wire_event("signal", f"{key}:signal", self.source, time,
                                        self.account, data)])

    def _fills(self, record: dict[str, Any], key: str, symbol: str,
               round_trip: bool) -> ImportRow:
        side = self.side(record, fill=True)
        qty = self.amount(record, "quantity")
        fee = self.number(record, "fee")
        common: dict[str, Any] = {"symbol": symbol, "quantity": str(qty)}
        if not round_trip:
            data = {**common, "side": side, "price": str(self.amount(record, "price"))}
            position = self.get(record, "position_id")
            if position:
                data["position_id"] = position
            if fee:
                data["fee"] = str(fee)
            reason = self._reason(record)
            if reason:
                data.update(reason)
            return ImportRow(0, [wire_event("fill", key, self.source,
                                            self.time(record, "time"), self.account, data)],
                             self.number(record, "realized_pnl"))
        entry = self.amount(record, "entry_price")
        common["position_id"] = key
        events = [wire_event("fill", f"{key}:open", self.source,
                             self.time(record, "entry_time"), self.account,
                             {**common, "side": side, "price": str(entry)})]
        exit_price = self.number(record, "exit_price", positive=True)
        if exit_price is None:
            return ImportRow(0, events)
        close: dict[str, Any] = {**common, "side": "sell" if side == "buy" else "buy",
                                 "price": str(exit_price), **(self._reason(record) or {})}
        close.setdefault("exit_reason", "other")
        if fee:
            close["fee"] = str(fee)
        events.append(wire_event("fill", f"{key}:close", self.source,
                                 self.time(record, "exit_time"), self.account, close))
        realized = self.number(record, "realized_pnl")
        if realized is None:
            realized = (exit_price - entry) * qty * (1 if side == "buy" else -1)
        return ImportRow(0, events, realized, closed=1)

    def _reason(self, record: dict[str, Any]) -> dict[str, str] | None:
        raw = self.get(record, "exit_reason")
        if not raw:
            return None
        reason = self.reasons.get(raw.lower()) or EXIT_REASONS.get(raw.upper(), "other")
        return {"exit_reason": reason, "exit_detail": raw[:256]}
