"""What every legacy-format reader yields, and the checks they share on a row's fields.

A reader (``trades_csv``, ``daily_pnl_json``, ``events_jsonl``) turns a file into
``Item`` values: an ``ImportRow`` (the wire events of one row) or an ``ImportProblem``
(why a line cannot be imported). The field readers here raise ``RowError`` with a
message naming the field and what is wrong with it; the reader turns it into a problem
on the row's line. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from schemas import EventValidationError
from schemas.values import format_utc

__all__ = ["MAX_EXPONENT", "MAX_LINE_CHARS", "MAX_NUMBER_CHARS", "ImportProblem", "ImportRow",
           "Item", "ReadResult", "RowError", "content_key", "decimal_field", "import_source",
           "optional_decimal", "problems_text", "time_field", "utc_text", "wire_event"]


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
    closed: int = 0
    """Round trips the row closes, as the file states them (for the reconciliation)."""
    cash: Decimal | None = None
    """Day-level P&L the row records as a ``cash`` adjustment (account currency)."""
    unused: tuple[str, ...] = ()
    """Names of the row's fields that have no place in the events (warned about once)."""


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


Item = ImportRow | ImportProblem
"""What a reader yields: a row ready to append, or why a line cannot be imported."""

MAX_LINE_CHARS = 1 << 20
"""Longest line (JSONL, CSV) or JSON record a reader takes; longer is a problem."""

MAX_NUMBER_CHARS = 40
MAX_EXPONENT = 40
"""A number in a file is refused past these before any arithmetic (PROTOCOL.md bounds
numbers the same way); the events' own bounds (EVENTS.md) are checked after."""


class RowError(ValueError):
    """One field of a row is unusable; the message names it and says why."""


def optional_decimal(row: dict[str, str], name: str) -> Decimal | None:
    """``row[name]`` as a decimal, or None when it is missing or blank.

    Raises:
        RowError: it is not a finite number within the bounds above.
    """
    if not (row.get(name) or "").strip():
        return None
    return decimal_field(row, name)


def decimal_field(row: dict[str, str], name: str) -> Decimal:
    """``row[name]`` as a decimal (at most ``MAX_NUMBER_CHARS`` characters, exponent
    within ±``MAX_EXPONENT``).

    Raises:
        RowError: it is missing, blank, not a finite number or beyond those bounds.
    """
    text = (row.get(name) or "").strip()
    if not text:
        raise RowError(f"{name} is empty")
    if len(text) > MAX_NUMBER_CHARS:
        raise RowError(f"{name} has {len(text)} characters; a number has at most "
                       f"{MAX_NUMBER_CHARS}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError(f"{name} {text[:30]!r} is not a number") from None
    if not value.is_finite():
        raise RowError(f"{name} {text[:30]!r} is not a finite number")
    if value and abs(value.adjusted()) > MAX_EXPONENT:
        raise RowError(f"{name} {text!r} is beyond 10^\u00b1{MAX_EXPONENT}")
    return value


def utc_text(moment: datetime, what: str) -> str:
    """``moment`` (aware) as canonical RFC 3339 UTC text.

    Raises:
        RowError: it falls outside the range of dates (``what`` names it).
    """
    try:
        return format_utc(moment)
    except (OverflowError, ValueError):
        raise RowError(f"{what} is out of the range of dates") from None


def time_field(row: dict[str, str], name: str, timezone: str) -> str:
    """``row[name]``, an ISO 8601 date and time, as RFC 3339 UTC text; without an offset
    it is read in ``timezone`` (an IANA name).

    Raises:
        RowError: it is missing, blank, not a date and time, or out of range.
    """
    text = (row.get(name) or "").strip()
    if not text:
        raise RowError(f"{name} is empty")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"{name} {text[:30]!r} is not a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return utc_text(moment, f"{name} {text[:30]!r}")


def wire_event(kind: str, event_id: str, source: str, time: str, account: str,
               data: dict[str, Any]) -> dict[str, Any]:
    """A wire event (PROTOCOL.md) of type ``kind``, as a bot would send it."""
    return {"id": event_id, "source": source, "type": kind, "time": time, "account": account,
            "data": data}


def problems_text(exc: EventValidationError) -> str:
    """Every problem of an event that fails validation, ``path: message``, joined."""
    return "; ".join(f"{p.path}: {p.message}" for p in exc.problems)


def import_source(fmt: str, account: str) -> str:
    """The ``source`` of the events a legacy file of format ``fmt`` gives ``account``.

    It names neither the file nor its folder: with event ids made from each row's own key
    (``content_key``), the same rows under another file name, or in a later export
    holding more rows, are the same events, stored once (PROTOCOL.md: ``source`` + ``id``
    is the idempotency key)."""
    return f"import/{fmt}/{account}"


def content_key(*parts: object) -> str:
    """A row's key made from its normalised content, for rows with no key of their own:
    the first 16 hex digits of the SHA-256 of ``parts`` (decimals normalised, so ``1.50``
    and ``1.5`` give the same key; text stripped), joined by U+001F."""
    def norm(part: object) -> str:
        if isinstance(part, Decimal):
            return format(part.normalize(), "f") if part else "0"
        return str(part).strip()
    text = "\x1f".join(norm(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
