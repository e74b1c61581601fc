"""Canonical JSON and the hash chain: the bytes that are hashed and compared."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import GENESIS_HASH, NewEvent, Recorder, canonical_data, chain_hash
from eventstore.canonical import canonical_event
from schemas import parse_event
from tests.support import fill, wire_event

SEQ_FIELDS = ("seq", "recorded_at", "schema_version", "hash")


def _new(raw: dict[str, Any]) -> NewEvent:
    return NewEvent.from_model(parse_event(raw))


def _reference(wire: dict[str, Any]) -> bytes:
    """The canonical form as the issue defines it, with the stdlib JSON encoder."""
    return json.dumps(wire, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def test_canonical_data_sorts_keys_without_whitespace_and_keeps_utf8() -> None:
    """Keys sorted at every level, no whitespace, non-ASCII written as UTF-8 not escaped."""
    text = canonical_data({"b": {"z": 1, "y": ["é", "日本"]}, "a": "Café ☕"})
    assert '{"a":"Café ☕","b":{"y":["é","日本"],"z":1}}' == text


def test_decimals_are_plain_strings_without_trailing_zeros() -> None:
    """Decimals become strings in plain notation: no exponent, no trailing zeros, no -0."""
    event = _new(fill("buy", "1.500", "1E+2", fee="0.000", multiplier=Decimal("10.0")))
    assert {"quantity": "1.5", "price": "100", "fee": "0", "multiplier": "10"} == {
        key: event.data[key] for key in ("quantity", "price", "fee", "multiplier")}
    assert b'"price":"100"' in event.canonical


def test_equal_values_in_other_spellings_canonicalise_the_same() -> None:
    """"1.50", "1.5", 1.5 as an exact JSON number, and "+1.5e0" are the same content; a time
    with ``+00:00`` is the same as with ``Z``."""
    spellings: list[str | Decimal] = ["1.50", "1.5", Decimal("1.5"), Decimal("1.50"),
                                      "+1.5e0", "15E-1"]
    forms = set()
    for price in spellings:
        raw = fill("buy", "1", "0", event_id="e", time_="2024-03-01T12:00:00Z")
        raw["data"]["price"] = price
        forms.add(_new(raw).canonical)
    forms.add(_new(fill("buy", "1", "1.5", event_id="e",
                        time_="2024-03-01T12:00:00+00:00")).canonical)
    assert 1 == len(forms)


def test_default_fields_are_part_of_the_content() -> None:
    """A fill without ``fee`` is the same content as one with fee "0" (the default)."""
    without = _new(fill("buy", "1", "2", event_id="e"))
    explicit = _new(fill("buy", "1", "2", event_id="e", fee="0.00"))
    assert without.canonical == explicit.canonical


def test_new_event_canonical_is_the_sorted_compact_json_of_the_wire_event() -> None:
    """``NewEvent.canonical`` equals the stdlib's sorted, compact, UTF-8 JSON of the event."""
    raw = wire_event("journal", {"text": "naïve \"quotes\" \\ and\nnewline\t☕",
                                 "tags": ["ß"]}, event_id="j-1")
    event = _new(raw)
    expected = dict(raw, specversion="1.0")
    assert _reference(expected) == event.canonical
    assert "ß".encode() in event.canonical


async def test_canonical_of_read_back_events_matches_stdlib_json(tmp_path: Path) -> None:
    """For every event read back, ``canonical_event`` of its columns equals the stdlib
    JSON of its wire form without the stored-only fields, and ``hash`` chains by
    sha256(previous hash bytes + canonical) from the genesis hash."""
    raws = [
        fill("buy", "1.50", "1.0851", exit_reason="manual"),
        wire_event("journal", {"text": "Überlegt — 考え", "tags": ["a", "b"]}),
        wire_event("mark", {"prices": {"B": "2.10", "A": "1"}}),
        dict(wire_event("cash", {"amount": "-5.00", "kind": "fee"}),
             datacontenttype="application/json"),
        wire_event("limits", {"timezone": "Asia/Kolkata", "max_open_positions": 2},
                   time_="2024-03-01T12:00:00.123456789+05:30"),
    ]
    recorder = await Recorder.open(tmp_path / "log.db")
    try:
        await recorder.append([_new(raw) for raw in raws])
        stored = await recorder.read()
    finally:
        await recorder.close()
    previous = GENESIS_HASH
    for event in stored:
        wire = event.to_wire()
        for key in SEQ_FIELDS:
            del wire[key]
        canonical = canonical_event(
            account=event.account, data_json=canonical_data(event.data),
            datacontenttype=event.datacontenttype, event_id=event.event_id,
            source=event.source, specversion=event.specversion, time=event.time,
            event_type=event.event_type)
        assert _reference(wire) == canonical
        expected_hash = hashlib.sha256(bytes.fromhex(previous) + canonical).hexdigest()
        assert expected_hash == event.hash
        assert expected_hash == chain_hash(previous, canonical)
        previous = event.hash
    assert "2024-03-01T12:00:00.123456+05:30" == stored[-1].time


def test_chain_hash_uses_the_raw_bytes_of_the_previous_hash() -> None:
    """``chain_hash`` hashes the 32 raw bytes of the previous hash, not its hex text."""
    canonical = b'{"a":"1"}'
    assert hashlib.sha256(bytes(32) + canonical).hexdigest() == chain_hash(
        GENESIS_HASH, canonical)
    assert 64 == len(GENESIS_HASH)


_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
"""Any UTF-8 text an event may hold (EVENTS.md 1.1: no NUL character in text)."""


@settings(max_examples=100, deadline=None)
@given(account=st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True),
       source=_text.filter(bool), event_id=_text.filter(bool),
       text=_text.filter(bool), tags=st.lists(_text.filter(bool), max_size=3))
def test_canonical_event_matches_stdlib_json_for_any_text(
        account: str, source: str, event_id: str, text: str, tags: list[str]) -> None:
    """For any UTF-8 text (quotes, backslashes, control characters, astral symbols) the
    canonical bytes equal the stdlib's sorted, compact JSON with ``ensure_ascii=False``."""
    raw = wire_event("journal", {"text": text, "tags": tags}, account=account,
                     source=source, event_id=event_id)
    event = _new(raw)
    assert _reference(dict(raw, specversion="1.0")) == event.canonical
