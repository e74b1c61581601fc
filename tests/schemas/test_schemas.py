"""The event schemas (EVENTS.md): every type accepted, every kind of mistake refused with
the field path and a message that says what to fix."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from schemas import EVENT_TYPES, EventValidationError, parse_event, parse_events
from schemas import wire_event_json_schema as json_schema
from tests.support import fill, wire_event

VALID: dict[str, dict[str, Any]] = {
    "signal": wire_event("signal", {
        "signal_id": "sig-1", "strategy": "sma-cross", "symbol": "EURUSD", "side": "long",
        "entry_price": "1.0850", "stop_loss": "1.08", "take_profit": "1.095",
        "confidence": "0.7", "timeframe": "1h", "expires_at": "2024-03-01T18:00:00+01:00",
        "note": "golden cross"}),
    "order": wire_event("order", {
        "order_id": "o-1", "symbol": "EURUSD", "side": "buy", "quantity": "10000",
        "order_type": "stop_limit", "limit_price": "1.09", "stop_price": "1.089",
        "signal_id": "sig-1", "position_id": "p-1"}),
    "fill": fill("buy", "10000", "1.0851", fee="2.5", order_id="o-1", position_id="p-1",
                 signal_id="sig-1", exit_reason="take_profit", multiplier="1"),
    "status_signal": wire_event("status", {
        "entity": "signal", "entity_id": "sig-1", "status": "triggered",
        "reason": "entry hit", "price": "1.0851"}),
    "status_order": wire_event("status", {
        "entity": "order", "entity_id": "o-1", "status": "partially_filled"}),
    "journal": wire_event("journal", {
        "text": "Waited for the retest — patience paid.", "tags": ["patience", "fx"],
        "symbol": "EURUSD", "position_id": "p-1", "signal_id": "sig-1"}),
    "cash_deposit": wire_event("cash", {"amount": "10000", "kind": "deposit"}),
    "cash_withdrawal": wire_event("cash", {"amount": "-500", "kind": "withdrawal"}),
    "cash_fee": wire_event("cash", {"amount": "-1.25", "kind": "fee", "note": "platform"}),
    "cash_funding": wire_event("cash", {"amount": "0.37", "kind": "funding"}),
    "cash_interest": wire_event("cash", {"amount": "3.10", "kind": "interest"}),
    "cash_dividend": wire_event("cash", {"amount": "12", "kind": "dividend"}),
    "cash_adjustment": wire_event("cash", {"amount": "-0.01", "kind": "adjustment"}),
    "mark": wire_event("mark", {"prices": {"EURUSD": "1.0860", "GBPUSD": Decimal("1.27")}}),
    "limits": wire_event("limits", {"daily_loss_limit": "250", "max_open_positions": 3,
                                    "timezone": "America/New_York", "trading_blocked": True,
                                    "attrs": {"set_by": "risk-desk"}}),
    "signal_bracket_leg": wire_event("signal", {
        "signal_id": "sig-2", "strategy": "plays", "symbol": "SPY 240621C00500000",
        "side": "long", "parent_signal_id": "sig-1",
        "attrs": {"play_class": "oco", "delta": Decimal("0.45"), "contracts": 3,
                  "conditional": True, "ref": None}}),
    "fill_with_detail": fill("sell", "50", "101.5", exit_reason="trailing_stop",
                             exit_detail="auto_trailing_sl",
                             attrs={"segment": "NFO-OPT", "instrument_token": 12345678}),
    "instrument": wire_event("instrument", {
        "symbol": "NIFTY24JUN22500CE", "venue": "NSE", "asset_class": "option",
        "currency": "INR", "multiplier": "50", "tick_size": "0.05", "lot_size": "50",
        "underlying": "NIFTY", "expiry": "2024-06-27", "strike": "22500",
        "option_type": "call", "description": "NIFTY 27 Jun 22500 CE",
        "attrs": {"exchange": "NFO", "segment": "NFO-OPT", "instrument_token": 10667522}}),
    "account": wire_event("account", {
        "name": "Backtest 2024-05", "kind": "backtest", "broker": "none", "currency": "USD",
        "benchmark": "SPY", "description": "SMA grid", "attrs": {"run_id": "bt-17"}}),
    "strategy": wire_event("strategy", {
        "strategy": "sma-cross", "description": "fast/slow moving averages",
        "parameters": {"fast": 10, "slow": 30, "grid": [{"atr": Decimal("1.5")}]},
        "active": False, "attrs": {"timeframe": "1h"}}),
    "void": wire_event("void", {"target_source": "bot/test", "target_id": "f-1",
                                "reason": "the venue busted this fill"}),
}


def _only_problem(raw: Any) -> tuple[str, str]:
    """Parse ``raw``, expect exactly one problem, and return its ``(path, message)``."""
    with pytest.raises(EventValidationError) as caught:
        parse_event(raw)
    problems = caught.value.problems
    assert 1 == len(problems), problems
    return problems[0].path, problems[0].message


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_event_of_every_type_is_accepted(name: str) -> None:
    """A valid event of each type in EVENTS.md (every status entity and cash kind) parses,
    and keeps its type, account and data fields."""
    raw = VALID[name]
    event = parse_event(raw)
    dumped = event.model_dump(mode="json", exclude_none=True)
    assert raw["type"] == dumped["type"]
    assert raw["account"] == dumped["account"]
    assert set(raw["data"]) <= set(dumped["data"])


def test_valid_examples_cover_every_event_type() -> None:
    """The examples above include every event type the schemas know."""
    assert set(EVENT_TYPES) == {VALID[name]["type"] for name in VALID}


def test_optional_fields_take_their_defaults() -> None:
    """A minimal fill gets fee 0 and specversion 1.0, and no multiplier (it takes its
    instrument's); limits default to UTC, trading_blocked left out (not blocked, and not
    stored, as version 1 stored limits); an instrument's multiplier is 1,
    an account is live and a strategy active."""
    dumped = parse_event(fill("sell", "1", "2")).model_dump(mode="json", exclude_none=True)
    assert ("1.0", "0") == (dumped["specversion"], dumped["data"]["fee"])
    assert "multiplier" not in dumped["data"]
    limits = parse_event(wire_event("limits", {})).model_dump(mode="json", exclude_none=True)
    assert ("UTC", None) == (limits["data"]["timezone"], limits["data"].get("trading_blocked"))
    instrument = parse_event(wire_event("instrument", {"symbol": "X"})).model_dump(mode="json")
    account = parse_event(wire_event("account", {})).model_dump(mode="json")
    strategy = parse_event(wire_event("strategy", {"strategy": "s"})).model_dump(mode="json")
    assert ("1", "live", True) == (instrument["data"]["multiplier"], account["data"]["kind"],
                                   strategy["data"]["active"])


def test_attrs_numbers_are_stored_as_the_exact_json_numbers_sent() -> None:
    """attrs keep strings, booleans and null as sent; an integral number stays an integer
    and a decimal the JSON number with exactly its digits (never a rounded float)."""
    raw = VALID["signal_bracket_leg"]
    dumped = parse_event(raw).model_dump(mode="json", exclude_none=True)
    attrs = dumped["data"]["attrs"]
    assert {"play_class": "oco", "delta": 0.45, "contracts": 3, "conditional": True,
            "ref": None} == attrs
    assert '{"conditional":true,"contracts":3,"delta":0.45,"play_class":"oco","ref":null}' \
        == json.dumps(attrs, sort_keys=True, separators=(",", ":"))


def _copy(raw: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    return copy


def _without(raw: dict[str, Any], *path: str) -> dict[str, Any]:
    copy = _copy(raw)
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def _with(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy = _copy(raw)
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


BASE_FILL = fill("buy", "1", "1.5", event_id="f-1")
REJECTED: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (raw event, expected path, a phrase the message must contain)
    "missing data field": (_without(BASE_FILL, "data", "price"), "data.price",
                           "required field is missing"),
    "missing envelope field": (_without(BASE_FILL, "time"), "time",
                               "required field is missing"),
    "unknown top-level field": (_with(BASE_FILL, ("acount",), "acct-1"), "acount",
                                "unknown field"),
    "unknown data field": (_with(BASE_FILL, ("data", "prize"), "1.5"), "data.prize",
                           "unknown field"),
    "zero price": (_with(BASE_FILL, ("data", "price"), "0"), "data.price",
                   "greater than 0"),
    "NaN as a string": (_with(BASE_FILL, ("data", "price"), "NaN"), "data.price",
                        "not a decimal number"),
    "NaN as a Decimal": (_with(BASE_FILL, ("data", "price"), Decimal("NaN")), "data.price",
                         "NaN"),
    "infinity as a Decimal": (_with(BASE_FILL, ("data", "price"), Decimal("Infinity")),
                              "data.price", "infinities"),
    "a binary float": (_with(BASE_FILL, ("data", "price"), 1.5), "data.price",
                       "floats are not accepted"),
    "time without offset": (_with(BASE_FILL, ("time",), "2024-03-01T12:00:00"), "time",
                            "no UTC offset"),
    "negative quantity": (_with(BASE_FILL, ("data", "quantity"), "-1"), "data.quantity",
                          "greater than 0"),
    "bad account name": (_with(BASE_FILL, ("account",), "my account/1"), "account",
                         "letters, digits"),
    "unknown type": (_with(BASE_FILL, ("type",), "fil"), "type", "unknown event type 'fil'"),
    "order status on a signal": (
        wire_event("status", {"entity": "signal", "entity_id": "s-1", "status": "filled"}),
        "data.status", "not a valid signal status"),
    "signal status on an order": (
        wire_event("status", {"entity": "order", "entity_id": "o-1", "status": "triggered"}),
        "data.status", "not a valid order status"),
    "withdrawal with a positive amount": (
        wire_event("cash", {"amount": "100", "kind": "withdrawal"}), "data.amount",
        "withdrawal's amount must be < 0"),
    "deposit with a negative amount": (
        wire_event("cash", {"amount": "-100", "kind": "deposit"}), "data.amount",
        "deposit's amount must be > 0"),
    "zero cash amount": (wire_event("cash", {"amount": "0", "kind": "fee"}), "data.amount",
                         "must not be 0"),
    "unknown IANA time zone": (wire_event("limits", {"timezone": "Mars/Olympus_Mons"}),
                               "data.timezone", "not an IANA time zone"),
    "confidence above 1": (
        _with(VALID["signal"], ("data", "confidence"), "1.01"), "data.confidence",
        "at most 1"),
    "mark price of zero": (wire_event("mark", {"prices": {"EURUSD": "0"}}),
                           "data.prices.EURUSD", "greater than 0"),
    "specversion other than 1.0": (_with(BASE_FILL, ("specversion",), "0.3"), "specversion",
                                   "'1.0'"),
    "attrs with 33 members": (_with(BASE_FILL, ("data", "attrs"),
                                    {f"k{i}": i for i in range(33)}),
                              "data.attrs", "at most 32 members"),
    "attrs key with a space": (_with(BASE_FILL, ("data", "attrs"), {"a b": 1}),
                               "data.attrs", "1-64 of letters"),
    "attrs key of 65 characters": (_with(BASE_FILL, ("data", "attrs"), {"k" * 65: 1}),
                                   "data.attrs", "1-64 of letters"),
    "attrs nested object": (_with(BASE_FILL, ("data", "attrs"), {"greeks": {"delta": 1}}),
                            "data.attrs", "no nested objects or arrays"),
    "attrs nested array": (_with(BASE_FILL, ("data", "attrs"), {"legs": [1, 2]}),
                           "data.attrs", "no nested objects or arrays"),
    "attrs string of 257 characters": (_with(BASE_FILL, ("data", "attrs"), {"n": "x" * 257}),
                                       "data.attrs", "at most 256 characters"),
    "attrs string with NUL": (_with(BASE_FILL, ("data", "attrs"), {"n": "a\x00b"}),
                              "data.attrs", "NUL"),
    "attrs number of 10^15": (_with(BASE_FILL, ("data", "attrs"), {"n": 10**15}),
                              "data.attrs", "below 10^15"),
    "attrs number with 19 places": (
        _with(BASE_FILL, ("data", "attrs"), {"n": Decimal("0.1234567890123456789")}),
        "data.attrs", "18 digits after the point"),
    "attrs number past what JSON keeps": (
        _with(BASE_FILL, ("data", "attrs"), {"n": Decimal("0.12345678901234567")}),
        "data.attrs", "send it as a string"),
    "attrs a binary float": (_with(BASE_FILL, ("data", "attrs"), {"n": 0.5}),
                             "data.attrs", "floats are not accepted"),
    "attrs not an object": (_with(BASE_FILL, ("data", "attrs"), ["a"]), "data.attrs",
                            "must be a JSON object"),
    "instrument with an unknown asset class": (
        wire_event("instrument", {"symbol": "X", "asset_class": "stock"}),
        "data.asset_class", "'stock' is not allowed"),
    "instrument multiplier above 10^6": (
        wire_event("instrument", {"symbol": "X", "multiplier": "1000001"}),
        "data.multiplier", "at most 1000000"),
    "instrument expiry outside the dates": (
        wire_event("instrument", {"symbol": "X", "expiry": "2200-01-01"}),
        "data.expiry", "outside the accepted dates"),
    "instrument strike of zero": (
        wire_event("instrument", {"symbol": "X", "strike": "0"}), "data.strike",
        "greater than 0"),
    "account of an unknown kind": (wire_event("account", {"kind": "demo"}), "data.kind",
                                   "'demo' is not allowed"),
    "strategy parameters over 16 KiB": (
        wire_event("strategy", {"strategy": "s", "parameters": {"blob": "x" * 17000}}),
        "data.parameters", "16384 bytes"),
    "void without a reason": (
        wire_event("void", {"target_source": "bot/test", "target_id": "f-1"}),
        "data.reason", "required field is missing"),
    "void reason over 1000 characters": (
        wire_event("void", {"target_source": "b", "target_id": "f", "reason": "r" * 1001}),
        "data.reason", "at most 1000 characters"),
    "signal note over 2000 characters": (
        _with(VALID["signal"], ("data", "note"), "n" * 2001), "data.note",
        "at most 2000 characters"),
}


@pytest.mark.parametrize("name", list(REJECTED))
def test_invalid_event_is_rejected_with_path_and_message(name: str) -> None:
    """Each kind of mistake is refused with exactly one problem naming the field's dotted
    path and a message that says what is wrong."""
    raw, expected_path, phrase = REJECTED[name]
    path, message = _only_problem(raw)
    assert expected_path == path
    assert phrase in message


def test_batch_reports_problems_of_every_event_with_its_index() -> None:
    """``parse_events`` lists the problems of all events of a batch, each with its index."""
    batch = [BASE_FILL, _with(BASE_FILL, ("data", "price"), "0"),
             _without(BASE_FILL, "account")]
    with pytest.raises(EventValidationError) as caught:
        parse_events(batch)
    assert [(1, "data.price"), (2, "account")] == [
        (p.index, p.path) for p in caught.value.problems]
    assert str(caught.value).startswith("event 1: data.price:")


def test_non_object_event_is_rejected() -> None:
    """An event that is not a JSON object is refused at the empty path."""
    path, message = _only_problem(["not", "an", "event"])
    assert ("", "an event must be a JSON object") == (path, message)


def test_strings_are_not_coerced_from_numbers() -> None:
    """Strict types: a number where a string is expected is refused, not converted."""
    path, message = _only_problem(_with(BASE_FILL, ("id",), 17))
    assert ("id", "expected a string") == (path, message)


def _check_refs(node: Any, defs: dict[str, Any]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            assert ref.startswith("#/$defs/")
            assert ref.removeprefix("#/$defs/") in defs
        for value in node.values():
            _check_refs(value, defs)
    elif isinstance(node, list):
        for value in node:
            _check_refs(value, defs)


def _assert_wire_schema(schema: dict[str, Any]) -> None:
    assert "https://json-schema.org/draft/2020-12/schema" == schema["$schema"]
    defs = schema["$defs"]
    _check_refs(schema, defs)
    mapping = schema["discriminator"]["mapping"]
    assert "type" == schema["discriminator"]["propertyName"]
    assert set(EVENT_TYPES) == set(mapping)
    assert sorted(mapping.values()) == sorted(option["$ref"] for option in schema["oneOf"])
    for event_type, ref in mapping.items():
        definition = defs[ref.removeprefix("#/$defs/")]
        assert event_type == definition["properties"]["type"]["const"]
        assert definition["additionalProperties"] is False
        assert {"id", "source", "type", "time", "account", "data"} <= set(
            definition["required"])


def test_wire_event_json_schema_has_every_event_type() -> None:
    """The JSON Schema is a discriminated ``oneOf`` on ``type`` over all 12 event types,
    each closed to unknown attributes, with every ``$ref`` resolving."""
    _assert_wire_schema(json_schema())


def test_wire_event_json_schema_states_contract_1_1_bounds_and_attrs_rules() -> None:
    """The exported JSON Schema says it is contract 1.1, states the bounds, and gives
    ``attrs`` its rules: at most 32 members, the key pattern, scalar values only."""
    schema = json_schema()
    assert "1.1" == schema["x-tradelog-contract"]
    assert "10^15" in schema["description"]
    fill_data = schema["$defs"]["FillData"]["properties"]["attrs"]["anyOf"][0]
    assert 32 == fill_data["maxProperties"]
    assert "^[A-Za-z0-9_.-]{1,64}$" == fill_data["propertyNames"]["pattern"]
    kinds = [option["type"] for option in fill_data["additionalProperties"]["anyOf"]]
    assert ["string", "number", "boolean", "null"] == kinds


def test_schema_command_prints_the_json_schema() -> None:
    """``tradelog schema`` prints the same JSON Schema as valid JSON and exits 0."""
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "schema"],
                          capture_output=True, check=False, timeout=60)
    assert 0 == done.returncode, done.stderr.decode()
    printed = json.loads(done.stdout)
    _assert_wire_schema(printed)
    assert json_schema() == printed
