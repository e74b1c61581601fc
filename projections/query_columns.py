"""What ``query`` may ask of each view: its filters, its time column and its total order.

Generic over ``projections.tables.VIEWS``: a filter applies to a view exactly when the
view's table has the filter's column among its public fields (``FILTER_COLUMNS``), so a
view or column added to ``tables.py`` takes its filters with no change here.
``VIEW_ORDER`` names each view's time column and total order; a view not in it is
ordered by its primary key and has no time column. Also the pieces of SQL a filter
needs (time keys, prefix bounds, attrs paths), used by ``projections.query_sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from eventstore.errors import ValidationError
from projections import tables as t
from schemas.values import format_decimal, parse_date, parse_time

__all__ = [
    "DEFAULT_LIMIT",
    "FILTER_COLUMNS",
    "SEQ_COLUMN",
    "VIEW_ORDER",
    "ViewOrder",
    "attrs_condition",
    "attrs_path",
    "filters_of",
    "order_of",
    "prefix_bounds",
    "time_bound",
    "time_key",
    "utc_key",
]


DEFAULT_LIMIT = 1000
"""Rows a ``query`` returns when it gives no ``limit``."""

FILTER_COLUMNS: dict[str, str] = {
    "account": "account",
    "symbol": "symbol",
    "symbol_prefix": "symbol",
    "strategy": "strategy",
    "status": "status",
    "venue": "venue",
    "asset_class": "asset_class",
    "entity": "entity",
    "entity_id": "entity_id",
    "attrs": "attrs",
    "updated_since": "updated_at",
}
"""Each filter param of ``query`` and the view column it tests."""


@dataclass(frozen=True)
class ViewOrder:
    """A view's ``time`` column (what ``since``/``until`` bound; None: it has none), its
    kind (``time``: RFC 3339 UTC text; ``date``: ``YYYY-MM-DD``), and ``order``: the columns
    of its total order, the time column's key first (a row's place is always the same,
    so pages never repeat or skip a row)."""

    time: str | None
    kind: str
    order: tuple[str, ...]


VIEW_ORDER: dict[str, ViewOrder] = {
    "positions": ViewOrder("opened_at", "time", ("opened_at", "account", "position_key")),
    "trades": ViewOrder("closed_at", "time", ("closed_at", "closed_seq")),
    "daily": ViewOrder("date", "date", ("date", "account")),
    "signals": ViewOrder("created_at", "time", ("created_at", "account", "signal_id")),
    "orders": ViewOrder("created_at", "time", ("created_at", "account", "order_id")),
    "journal": ViewOrder("time", "time", ("seq",)),
    "history": ViewOrder("time", "time", ("seq",)),
}
"""Views whose order is their time column; every other view is in its key's order."""


def order_of(view: str) -> ViewOrder:
    """The ``ViewOrder`` of a view of ``tables.VIEWS``: its entry, else its primary key."""
    found = VIEW_ORDER.get(view)
    return found if found is not None else ViewOrder(None, "", t.VIEWS[view].key)


def filters_of(view: str) -> list[str]:
    """The filter params the view takes (those whose column it has), in a fixed order."""
    fields = set(t.VIEWS[view].fields)
    return [name for name, column in FILTER_COLUMNS.items() if column in fields]


def time_key(column: str) -> str:
    """The SQL expression that orders a view's RFC 3339 UTC text by time, exactly
    (``tables.by_time``: the time indexes are on this very expression)."""
    return t.by_time(column)


def utc_key(moment: datetime) -> str:
    """A time as ``time_key`` puts a stored time: UTC, six fraction digits or none."""
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00")


def prefix_bounds(prefix: str) -> tuple[str, bytes]:
    """``(low, high)``: a text starts with ``prefix`` exactly when low <= text < high
    under SQLite's BINARY collation (memcmp of UTF-8). ``high`` is the prefix's UTF-8
    bytes with the last one raised by one (never 0xFF in UTF-8), bound as bytes and cast
    to TEXT in the SQL."""
    raw = prefix.encode()
    return prefix, raw[:-1] + bytes([raw[-1] + 1])


def attrs_path(key: str) -> str:
    """The JSON path of one ``attrs`` key (keys are ``[A-Za-z0-9_.-]``, so quoting is safe)."""
    return f'$."{key}"'


def attrs_condition(column: str, key: str, value: Any) -> tuple[str, list[Any]]:
    """SQL (and its params) keeping the rows whose ``attrs`` has ``key`` equal to ``value``.

    A string matches a JSON string; ``true``/``false``/``null`` their JSON value (a
    missing key is not ``null``); a number matches a JSON number or string whose text is
    the number's canonical decimal text (``1.50`` matches ``1.5`` and ``"1.5"``).
    """
    path = attrs_path(key)
    if value is None or isinstance(value, bool):
        word = "null" if value is None else ("true" if value else "false")
        return f"json_type({column}, ?) = '{word}'", [path]
    if isinstance(value, str):
        return (f"(json_type({column}, ?) = 'text' AND json_extract({column}, ?) = ?)",
                [path, path, value])
    number = Decimal(value) if isinstance(value, int) else value
    assert isinstance(number, Decimal)
    text = format_decimal(number)
    return (f"(CASE json_type({column}, ?) WHEN 'text' THEN json_extract({column}, ?) "
            f"WHEN 'integer' THEN {column} -> ? WHEN 'real' THEN {column} -> ? END) = ?",
            [path, path, path, path, text])


def time_bound(value: Any, name: str, end_of_day: bool = False) -> datetime:
    """A ``since``/``until``/``updated_since`` value as an aware time.

    A date ``YYYY-MM-DD`` is its UTC midnight, or with ``end_of_day`` the last
    microsecond of that UTC day (so ``until`` a date includes the whole day). Raises
    ``ValidationError`` naming ``name``.
    """
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            day: date = parse_date(value)
        except ValueError as exc:
            raise ValidationError(f"{name}: {exc}") from None
        start = datetime.combine(day, time(), tzinfo=UTC)
        return start + timedelta(days=1, microseconds=-1) if end_of_day else start
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a date YYYY-MM-DD or an RFC 3339 time")
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ValidationError(f"{name}: {exc}") from None


SEQ_COLUMN: dict[str, str] = {"trades": "closed_seq", "journal": "seq", "history": "seq"}
"""Append-only views: the column holding the seq of the event that wrote each row (a
row never changes once written, so ``as_of`` N reads the rows of seq <= N)."""
