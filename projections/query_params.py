"""The params of ``query`` (PROTOCOL.md), checked: ``ViewQuery`` and its bounds.

Every check names the parameter and what to fix, and raises ``ValidationError``
(-32602 on the wire). A filter the view has no column for is refused, never ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from eventstore.errors import ValidationError
from projections import tables as t
from projections.query_columns import (
    DEFAULT_LIMIT,
    FILTER_COLUMNS,
    filters_of,
    order_of,
    time_bound,
)
from schemas.values import ACCOUNT_PATTERN, MAX_TEXT, parse_decimal, parse_time

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_ATTRS",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "TEXT_FILTERS",
    "ViewQuery",
]

MAX_LIMIT = 100_000
"""The largest ``limit``."""
MAX_OFFSET = 10_000_000
"""The largest ``offset``: skipping rows costs the daemon a walk over them."""
MAX_ATTRS = 32
"""Keys in one ``attrs`` filter (as in an event's ``attrs``)."""
TEXT_FILTERS = ("symbol", "symbol_prefix", "strategy", "status", "venue", "asset_class",
                "entity_id")
"""Filters that take a text of 1..256 characters, compared exactly."""
ENTITIES = ("signal", "order")

_ACCOUNT = re.compile(ACCOUNT_PATTERN)
_ATTRS_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class ViewQuery:
    """``query`` params (PROTOCOL.md); None leaves a param out.

    - ``account``, ``symbol``, ``strategy``, ``status``, ``venue``, ``asset_class``,
      ``entity``, ``entity_id``: keep the rows whose field equals the value;
      ``symbol_prefix``: whose symbol starts with it; ``attrs``: whose ``attrs`` holds
      every given key with that value (str, int, ``Decimal``, bool or None).
    - ``since``/``until``: inclusive bounds on the view's time column, a date
      ``YYYY-MM-DD`` (a whole UTC day) or an RFC 3339 time; ``updated_since``: rows
      whose ``updated_at`` is at or after it.
    - ``order`` ``"asc"``/``"desc"``, ``offset`` (0..``MAX_OFFSET``) and ``limit``
      (1..``MAX_LIMIT``, default ``DEFAULT_LIMIT``): with neither ``order`` nor
      ``offset``, the ``limit`` most recent rows, oldest first.
    - ``as_of``: a seq (int >= 0) or an RFC 3339 recorded time; ``as_of_time``: an RFC
      3339 event time. At most one of them.
    """

    view: str
    account: str | None = None
    symbol: str | None = None
    symbol_prefix: str | None = None
    strategy: str | None = None
    status: str | None = None
    venue: str | None = None
    asset_class: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    attrs: dict[str, Any] | None = None
    since: str | None = None
    until: str | None = None
    updated_since: str | None = None
    order: str | None = None
    offset: int | None = None
    limit: int | None = None
    as_of: int | str | None = None
    as_of_time: str | None = None

    def given(self) -> dict[str, Any]:
        """The params given (not None), ``view`` included."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    def check(self) -> None:
        """Raises ``ValidationError`` naming the parameter to fix."""
        if self.view not in t.VIEWS:
            raise ValidationError(
                f"unknown view {str(self.view)[:64]!r}; use one of {', '.join(t.VIEWS)}")
        self._check_filters()
        self._check_values()
        self._check_paging()
        self._check_times()

    def _check_filters(self) -> None:
        has = filters_of(self.view)
        for name in FILTER_COLUMNS:
            if getattr(self, name) is not None and name not in has:
                raise ValidationError(
                    f"view {self.view!r} has no field {FILTER_COLUMNS[name]!r}: leave out "
                    f"{name!r} (the filters of {self.view}: {', '.join(has)})")
        time = order_of(self.view).time
        for name in ("since", "until"):
            if getattr(self, name) is not None and time is None:
                raise ValidationError(
                    f"view {self.view!r} has no time column: leave out {name!r}")

    def _check_values(self) -> None:
        if self.account is not None and not (
                isinstance(self.account, str) and _ACCOUNT.match(self.account)):
            raise ValidationError("account must match [A-Za-z0-9._-]{1,64}")
        for name in TEXT_FILTERS:
            value = getattr(self, name)
            if value is not None:
                _text(value, name)
        if self.entity is not None and self.entity not in ENTITIES:
            raise ValidationError("entity must be 'signal' or 'order'")
        if self.attrs is not None:
            _check_attrs(self.attrs)

    def _check_paging(self) -> None:
        if self.order is not None and self.order not in ("asc", "desc"):
            raise ValidationError("order must be 'asc' or 'desc'")
        if self.offset is not None and not (
                _is_int(self.offset) and 0 <= self.offset <= MAX_OFFSET):
            raise ValidationError(f"offset must be an integer from 0 to {MAX_OFFSET}")
        if self.limit is not None and not (_is_int(self.limit) and 1 <= self.limit <= MAX_LIMIT):
            raise ValidationError(f"limit must be an integer from 1 to {MAX_LIMIT}")

    def _check_times(self) -> None:
        for name in ("since", "until", "updated_since"):
            value = getattr(self, name)
            if value is not None:
                time_bound(value, name, name == "until")
        if self.as_of is not None and self.as_of_time is not None:
            raise ValidationError("give one of as_of (seq or recorded time) and as_of_time "
                                  "(event time), not both")
        if _is_int(self.as_of) and self.as_of < 0:  # type: ignore[operator]
            raise ValidationError("as_of must be a seq >= 0 or an RFC 3339 time")
        if isinstance(self.as_of, str):
            _time_param(self.as_of, "as_of")
        if self.as_of_time is not None:
            _time_param(self.as_of_time, "as_of_time")

    @property
    def paged(self) -> bool:
        """True when ``order`` or ``offset`` is given: rows in order from ``offset``;
        False: the ``limit`` most recent rows, oldest first."""
        return self.order is not None or self.offset is not None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT:
        raise ValidationError(f"{name} must be a text of 1 to {MAX_TEXT} characters")
    if "\x00" in value:
        raise ValidationError(f"{name} must not contain the NUL character (\\u0000)")
    return value


def _check_attrs(attrs: Any) -> None:
    """The ``attrs`` filter: an object of 1..32 members, keys and values as an event's."""
    if not isinstance(attrs, dict) or not attrs:
        raise ValidationError("attrs must be an object of 1 to 32 key: value members")
    if len(attrs) > MAX_ATTRS:
        raise ValidationError(f"attrs has {len(attrs)} keys; at most {MAX_ATTRS}")
    for key, value in attrs.items():
        if not isinstance(key, str) or not _ATTRS_KEY.match(key):
            raise ValidationError(
                f"attrs key {str(key)[:70]!r} must match [A-Za-z0-9_.-]{{1,64}}")
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, str):
            _text(value, f"attrs.{key}")
        elif isinstance(value, int | Decimal):
            try:
                parse_decimal(value)
            except ValueError as exc:
                raise ValidationError(f"attrs.{key}: {exc}") from None
        else:
            raise ValidationError(
                f"attrs.{key} must be a string, a number, true, false or null (no objects, "
                "arrays or binary floats)")


def _time_param(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be an RFC 3339 time")
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ValidationError(f"{name}: {exc}") from None
