"""The bounds on event values (EVENTS.md 1.1, "Bounds on values"): every value within
them is accepted exactly and round-trips; every value outside is refused naming the
field, never rounded or clamped."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.errors import ValidationError
from projections.query import ViewQuery
from schemas import EventValidationError, parse_event
from schemas.values import (
    check_decimal,
    check_timezone,
    format_decimal,
    format_time,
    parse_date,
    parse_decimal,
    parse_time,
)

FILL: dict[str, Any] = {"id": "f", "source": "s", "type": "fill",
                        "time": "2024-03-01T12:00:00Z", "account": "a",
                        "data": {"symbol": "X", "side": "buy", "quantity": "1", "price": "1"}}


def _with(path: str, value: Any, base: dict[str, Any] = FILL) -> dict[str, Any]:
    event = copy.deepcopy(base)
    target = event
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    return event


def _refused_paths(event: dict[str, Any]) -> list[str]:
    with pytest.raises(EventValidationError) as caught:
        parse_event(event)
    return [problem.path for problem in caught.value.problems]


def _stored(event: dict[str, Any]) -> dict[str, Any]:
    dumped: dict[str, Any] = parse_event(event).model_dump(mode="json", exclude_none=True)
    return dumped


# ------------------------------------------------------------------ decimals

in_bounds = st.builds(
    lambda sign, whole, places, frac: Decimal(sign * (whole * 10**places + frac))
    .scaleb(-places),
    st.sampled_from([1, -1]), st.integers(0, 10**15 - 1), st.integers(0, 18),
    st.integers(0, 10**18 - 1),
).filter(lambda d: abs(d) < 10**15)
positive_in_bounds = in_bounds.map(abs).filter(lambda d: d > 0)


@given(in_bounds)
def test_any_decimal_within_the_bounds_is_read_exactly(value: Decimal) -> None:
    """A decimal below 10^15 with at most 18 places is read exactly from its text, its
    scientific text, and as a JSON number, and its canonical text reads back equal."""
    scientific = f"{value:e}"  # at most 18 + 15 digits, a sign, a point and e-NN
    assert (value, value, value) == (parse_decimal(format_decimal(value)),
                                     parse_decimal(scientific), parse_decimal(value))


@given(positive_in_bounds)
def test_any_price_within_the_bounds_round_trips_through_the_schema(value: Decimal) -> None:
    """A price within the bounds is stored digit for digit (canonical text)."""
    stored = _stored(_with("data.price", format_decimal(value)))
    assert value == Decimal(stored["data"]["price"])
    assert format_decimal(value) == stored["data"]["price"]


@given(st.integers(15, 10**9), st.integers(1, 9))
def test_any_magnitude_of_1e15_or_more_is_refused(exponent: int, digit: int) -> None:
    """``d e N`` with N >= 15 is refused, however large N, and the message names 10^15."""
    with pytest.raises(ValueError, match=r"below 10\^15"):
        parse_decimal(f"{digit}e{exponent}")


@given(st.integers(19, 10**9), st.integers(1, 9))
def test_any_value_with_more_than_18_places_is_refused(places: int, digit: int) -> None:
    """``d e -N`` with N > 18 is refused (never stored as 0), the message naming 18."""
    with pytest.raises(ValueError, match="at most 18 digits after the point"):
        parse_decimal(f"{digit}e-{places}")


@pytest.mark.parametrize("field", ["quantity", "price", "fee", "multiplier"])
@pytest.mark.parametrize("value", ["1e15", "1e999999999", "1e-19", "1e-999999999",
                                   "0." + "1" * 100_000, 10**15, Decimal("1e23"),
                                   Decimal("1e-999999999")])
def test_a_fill_decimal_outside_the_bounds_is_refused_naming_it(field: str,
                                                                value: Any) -> None:
    """Each decimal field of a fill refuses each kind of out-of-bounds value at its path."""
    assert [f"data.{field}"] == _refused_paths(_with(f"data.{field}", value))


def test_a_long_decimal_text_is_refused_by_its_length() -> None:
    """A 100,000-digit text is refused on its length (no conversion), saying the limit."""
    with pytest.raises(ValueError, match="at most 40 characters"):
        parse_decimal("1" * 100_000)


def test_trailing_zeros_do_not_count_as_places() -> None:
    """1.5 written with 19 trailing zeros is the value 1.5 (18 places is about the value)."""
    assert Decimal("1.5") == parse_decimal("1.5" + "0" * 19)


def test_check_decimal_refuses_a_wire_number_with_a_huge_exponent() -> None:
    """A JSON number read as Decimal('1e999999999') is refused on its exponent."""
    with pytest.raises(ValueError, match=r"below 10\^15"):
        check_decimal(Decimal("1e999999999"))
    assert Decimal(0) == check_decimal(Decimal("0e-999999999"))


@pytest.mark.parametrize(("value", "ok"), [("1000000", True), ("1000000.000000000000000001",
                                                                False), ("2000000", False)])
def test_multiplier_is_at_most_a_million(value: str, ok: bool) -> None:
    """A fill's multiplier may be 10^6 but no more."""
    event = _with("data.multiplier", value)
    if ok:
        assert value == _stored(event)["data"]["multiplier"]
    else:
        assert ["data.multiplier"] == _refused_paths(event)


@pytest.mark.parametrize("value", ["0", "0e5", "0.000", "-0", 0])
def test_zero_is_refused_where_more_than_zero_is_required(value: Any) -> None:
    """Zero, however written, is refused as a quantity after it is read exactly."""
    assert ["data.quantity"] == _refused_paths(_with("data.quantity", value))


# --------------------------------------------------------------------- times

offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2199, 12, 31, 23, 59,
                                                                         59)), offsets)
def test_any_time_within_the_range_is_accepted_and_round_trips(moment: datetime,
                                                              zone: timezone) -> None:
    """A time whose UTC instant is within 1900..2199 is accepted whatever its offset,
    and its canonical text reads back to the same instant."""
    local = moment.replace(tzinfo=UTC).astimezone(zone)
    assert local == parse_time(format_time(local))


@settings(max_examples=50)
@given(st.integers(1, 9999).filter(lambda y: not 1899 <= y <= 2200), offsets)
def test_any_year_outside_the_range_is_refused_naming_the_time(year: int,
                                                              zone: timezone) -> None:
    """A year before 1899 or after 2200 is refused at ``time`` with any offset."""
    text = format_time(datetime(year, 6, 1, tzinfo=zone))
    assert ["time"] == _refused_paths(_with("time", text))


@pytest.mark.parametrize(("text", "ok"), [
    ("1900-01-01T00:00:00Z", True), ("1899-12-31T23:59:59Z", False),
    ("1900-01-01T00:59:59+01:00", False), ("1899-12-31T23:00:00-01:00", True),
    ("2199-12-31T23:59:59Z", True), ("2199-12-31T23:59:59.000001Z", False),
    ("2200-01-01T00:59:59+01:00", True), ("2199-12-31T23:00:00-01:00", False),
])
def test_time_edges_are_judged_in_utc(text: str, ok: bool) -> None:
    """The range is judged after conversion to UTC, both ends included."""
    if ok:
        assert text == _stored(_with("time", text))["time"]
    else:
        assert ["time"] == _refused_paths(_with("time", text))


@pytest.mark.parametrize(("text", "ok"), [("1900-01-01", True), ("2199-12-31", True),
                                          ("1899-12-31", False), ("2200-01-01", False),
                                          ("0001-01-01", False), ("2024-02-30", False)])
def test_dates_are_from_1900_to_2199(text: str, ok: bool) -> None:
    """A date is read from 1900-01-01 to 2199-12-31; outside or impossible is refused."""
    if ok:
        assert date.fromisoformat(text) == parse_date(text)
    else:
        with pytest.raises(ValueError, match="date"):
            parse_date(text)


# ------------------------------------------------------- time zones and texts

@settings(max_examples=100)
@given(st.sampled_from(sorted(available_timezones())))
def test_every_zone_of_the_database_is_accepted(name: str) -> None:
    """Every name the system's zone database lists is a valid ``timezone``."""
    assert name == check_timezone(name)


@pytest.mark.parametrize("name", ["America", "Europe", "x" * 65, "../etc/passwd",
                                  "/etc/localtime", "Europe/../UTC", "zone.tab", "",
                                  "Europe/London\u0000", "Mars/Olympus"])
def test_a_name_that_is_no_zone_is_refused_saying_what_to_send(name: str) -> None:
    """A directory, path, file of the database that is no zone, or unknown name is
    refused at data.timezone with examples of names to send."""
    event = {"id": "l", "source": "s", "type": "limits", "time": "2024-03-01T12:00:00Z",
             "account": "a", "data": {"timezone": name}}
    with pytest.raises(EventValidationError) as caught:
        parse_event(event)
    [problem] = caught.value.problems
    assert ("data.timezone", True) == (problem.path, "Europe/London" in problem.message)


@given(st.text(min_size=0, max_size=20), st.text(min_size=0, max_size=20))
def test_nul_anywhere_in_a_text_is_refused(before: str, after: str) -> None:
    """A NUL character anywhere in an id, source or symbol is refused at that field."""
    text = f"{before}\u0000{after}"
    for path in ("id", "source", "data.symbol"):
        assert path in _refused_paths(_with(path, text))


@pytest.mark.parametrize(("event_type", "data", "field", "longest"), [
    ("signal", {"signal_id": "s", "strategy": "x", "symbol": "X", "side": "long"}, "note",
     2000),
    ("journal", {}, "text", 10000),
    ("status", {"entity": "order", "entity_id": "o", "status": "filled"}, "reason", 256),
    ("cash", {"kind": "deposit", "amount": "1"}, "note", 256),
])
def test_text_lengths_follow_the_types(event_type: str, data: dict[str, Any], field: str,
                                       longest: int) -> None:
    """A text of its type's longest length is kept; one character more is refused."""
    base = {"id": "e", "source": "s", "type": event_type, "time": "2024-03-01T12:00:00Z",
            "account": "a", "data": {**data, field: "n" * longest}}
    assert "n" * longest == _stored(base)["data"][field]
    assert [f"data.{field}"] == _refused_paths(_with(f"data.{field}", "n" * (longest + 1),
                                                     base))


def test_event_source_is_at_most_256_characters() -> None:
    """``source`` takes 256 characters, not 257."""
    assert "s" * 256 == _stored(_with("source", "s" * 256))["source"]
    assert ["source"] == _refused_paths(_with("source", "s" * 257))


@pytest.mark.parametrize(("count", "ok"), [(10_000, True), (10_001, False)])
def test_mark_takes_at_most_10000_symbols(count: int, ok: bool) -> None:
    """A mark of 10,000 symbols is kept; 10,001 is refused at data.prices."""
    event = {"id": "m", "source": "s", "type": "mark", "time": "2024-03-01T12:00:00Z",
             "account": "a", "data": {"prices": {f"S{i}": "1" for i in range(count)}}}
    if ok:
        assert count == len(_stored(event)["data"]["prices"])
    else:
        assert ["data.prices"] == _refused_paths(event)


@pytest.mark.parametrize(("count", "ok"), [(32, True), (33, False)])
def test_journal_takes_at_most_32_tags(count: int, ok: bool) -> None:
    """A journal entry with 32 tags is kept; 33 is refused at data.tags."""
    event = {"id": "j", "source": "s", "type": "journal", "time": "2024-03-01T12:00:00Z",
             "account": "a", "data": {"text": "t", "tags": [f"t{i}" for i in range(count)]}}
    if ok:
        assert count == len(_stored(event)["data"]["tags"])
    else:
        assert ["data.tags"] == _refused_paths(event)


def test_max_open_positions_is_below_1e15() -> None:
    """``max_open_positions`` takes 10^15 - 1 but not 10^15 (an integer bound like the
    decimals', so that a stored row always fits SQLite's integer)."""
    base = {"id": "l", "source": "s", "type": "limits", "time": "2024-03-01T12:00:00Z",
            "account": "a", "data": {"max_open_positions": 10**15 - 1}}
    assert 10**15 - 1 == _stored(base)["data"]["max_open_positions"]
    assert ["data.max_open_positions"] == _refused_paths(
        _with("data.max_open_positions", 10**15, base))


@pytest.mark.parametrize(("name", "value"), [
    ("since", "0001-01-01"), ("until", "9999-12-31"),
    ("since", "0001-01-01T00:00:00+01:00"), ("until", "9999-12-31T23:59:59-01:00"),
    ("as_of", "9999-12-31T23:59:59-01:00"),
])
def test_query_bounds_outside_the_range_are_refused_naming_them(name: str, value: str) -> None:
    """A query's date or time bound outside 1900..2199 is refused naming the parameter."""
    params: dict[str, Any] = {name: value}
    with pytest.raises(ValidationError, match=f"^{name}: .*1900"):
        ViewQuery("daily", **params).check()
