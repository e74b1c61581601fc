"""Parameters of ``metrics``: the ``since``/``until`` window, the checks of every
parameter, and the default annualisation. Pure (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from eventstore.errors import ValidationError
from projections.calendar import utc_datetime
from schemas.values import parse_time

__all__ = ["PERIODS", "Window", "check_params", "default_annualization", "parse_now"]

_ACCOUNT = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PERIODS = ("day", "week", "month")
"""The period tables: trading days, ISO weeks, calendar months."""


def parse_now(now: datetime | str | None) -> datetime | None:
    """``now`` as an aware datetime: a datetime as it is, an RFC 3339 text parsed.

    Raises:
        ValidationError: neither, or a naive datetime.
    """
    if now is None:
        return None
    if isinstance(now, str):
        try:
            return parse_time(now)
        except ValueError as exc:
            raise ValidationError(f"now: {exc} (give an RFC 3339 time)") from None
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise ValidationError("now must be an RFC 3339 time with its offset")
    return now


@dataclass(frozen=True)
class Window:
    """``since``/``until`` bounds, inclusive: each a date ``YYYY-MM-DD`` (a trading day)
    or an RFC 3339 time. Times compare with event times; dates with trading days (a time
    bound compares with a day through its date in the account's time zone)."""

    since: str | None
    until: str | None
    timezone: str = "UTC"

    @staticmethod
    def check(value: str | None, name: str) -> None:
        """Raises ``ValidationError`` when ``value`` is neither a date nor an RFC 3339 time."""
        if value is None:
            return
        if not isinstance(value, str):
            raise ValidationError(f"{name} must be a date YYYY-MM-DD or an RFC 3339 time")
        if _DATE.match(value):
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValidationError(f"{name}: {value!r} is not a date YYYY-MM-DD") from None
            return
        try:
            parse_time(value)
        except ValueError as exc:
            raise ValidationError(
                f"{name}: {exc} (give a date YYYY-MM-DD or an RFC 3339 time)") from None

    def _day(self, value: str) -> str:
        if _DATE.match(value):
            return value
        return parse_time(value).astimezone(ZoneInfo(self.timezone)).date().isoformat()

    def has_day(self, day: str) -> bool:
        """Whether a trading day is inside the bounds."""
        if self.since is not None and day < self._day(self.since):
            return False
        return self.until is None or day <= self._day(self.until)

    def clip(self, first: datetime, last: datetime) -> tuple[datetime, datetime]:
        """[first, last] narrowed to the bounds: a date bound starts (``since``) or ends
        (``until``, exclusive of the next day) at midnight in the account's time zone."""
        zone = ZoneInfo(self.timezone)
        if self.since is not None:
            start = (datetime.combine(date.fromisoformat(self.since), datetime.min.time(),
                                      zone) if _DATE.match(self.since) else _parsed(self.since))
            first = max(first, start)
        if self.until is not None:
            end = (datetime.combine(date.fromisoformat(self.until) + timedelta(days=1),
                                    datetime.min.time(), zone)
                   if _DATE.match(self.until) else _parsed(self.until))
            last = min(last, end)
        return first, max(first, last)

    def has(self, time: str, day: str) -> bool:
        """Whether an event at ``time`` (UTC text) on trading day ``day`` is inside."""
        for bound, before in ((self.since, True), (self.until, False)):
            if bound is None:
                continue
            if _DATE.match(bound):
                if (day < bound) if before else (day > bound):
                    return False
            else:
                moment, limit = utc_datetime(time), _parsed(bound)
                if (moment < limit) if before else (moment > limit):
                    return False
        return True


@lru_cache(maxsize=16)
def _parsed(bound: str) -> datetime:
    return parse_time(bound)


def default_annualization(fill_days: Sequence[str]) -> int:
    """365 when the trading days with fills include a Saturday and a Sunday (a market that
    trades every day), else 252 (FX and stock markets; FX opens on Sunday evening)."""
    weekdays = {date.fromisoformat(day).weekday() for day in fill_days}
    return 365 if {5, 6} <= weekdays else 252


def check_params(account: str, symbol: str | None, strategy: str | None,
                 as_of: int | str | None, annualization: int | None,
                 now: datetime | str | None, since: str | None, until: str | None,
                 period: str = "month") -> None:
    """Raises ``ValidationError`` naming the first bad parameter and what to give."""
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise ValidationError("account must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-'")
    for name, value in (("symbol", symbol), ("strategy", strategy)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValidationError(f"{name} must be a non-empty string (or left out)")
    Window.check(since, "since")
    Window.check(until, "until")
    if as_of is not None:
        if isinstance(as_of, bool) or not isinstance(as_of, int | str):
            raise ValidationError("as_of must be a seq >= 0 or an RFC 3339 time")
        if isinstance(as_of, int) and as_of < 0:
            raise ValidationError("as_of must be a seq >= 0 or an RFC 3339 time")
        if isinstance(as_of, str):
            try:
                parse_time(as_of)
            except ValueError as exc:
                raise ValidationError(f"as_of: {exc}") from None
    if annualization is not None and (isinstance(annualization, bool)
                                      or not isinstance(annualization, int)
                                      or not 1 <= annualization <= 1000):
        raise ValidationError("annualization must be an integer of periods per year, 1-1000 "
                              "(365 for markets open every day, 252 otherwise)")
    parse_now(now)
    if period not in PERIODS:
        raise ValidationError("period must be one of day, week, month")
