"""Trading days and times: pure helpers over zoneinfo (the system's IANA database)."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from schemas.values import format_utc

__all__ = ["to_utc_text", "trading_day", "utc_datetime"]


_UTC_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(?!000000)\d{6})?Z").fullmatch


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=65536)
def utc_datetime(time: str) -> datetime:
    """Parse a canonical event time (RFC 3339 with offset) as an aware datetime."""
    return datetime.fromisoformat(time)


def trading_day(time: str, timezone: str) -> str:
    """The trading day (``YYYY-MM-DD``) of an event time in the account's IANA time zone."""
    return utc_datetime(time).astimezone(_zone(timezone)).date().isoformat()


def to_utc_text(time: str) -> str:
    """An event time re-expressed in UTC (``...Z``), as the views store times.

    A time already in that form (UTC, ``Z``, no fraction or six digits of it: what
    ``isoformat`` writes) is returned as it is; any other is converted."""
    return time if _UTC_TEXT(time) else _converted(time)


@lru_cache(maxsize=65536)
def _converted(time: str) -> str:
    return format_utc(utc_datetime(time))
