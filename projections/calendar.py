"""Trading days and times: pure helpers over zoneinfo (the system's IANA database)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from schemas.values import format_utc

__all__ = ["to_utc_text", "trading_day", "utc_datetime"]


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


@lru_cache(maxsize=65536)
def to_utc_text(time: str) -> str:
    """An event time re-expressed in UTC (``...Z``), as the views store times."""
    return format_utc(utc_datetime(time))
