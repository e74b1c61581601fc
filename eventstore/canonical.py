"""Canonical JSON: the one place where the bytes that are hashed and compared are made.

Sorted keys, no whitespace, UTF-8 (non-ASCII kept as is, as in RFC 8785), decimals as
plain strings without exponent or trailing zeros, times as RFC 3339 with ``Z`` for UTC.
Two events with the same canonical bytes are the same event.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["GENESIS_HASH", "canonical_data", "canonical_event", "chain_hash"]

GENESIS_HASH = "0" * 64
"""The ``previous hash`` of the first event: 32 zero bytes, in hex."""

_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode
_string = json.JSONEncoder(ensure_ascii=False).encode


def canonical_data(data: dict[str, Any]) -> str:
    """Canonical text of an event's JSON-ready ``data`` (strings for decimals and times)."""
    return _encode(data)


def canonical_event(
    *,
    account: str,
    data_json: str,
    datacontenttype: str | None,
    event_id: str,
    source: str,
    specversion: str,
    time: str,
    event_type: str,
) -> bytes:
    """Canonical bytes of a wire event, assembled from its stored columns.

    ``data_json`` must already be canonical (``canonical_data``). Equal to
    ``canonical_data(whole_event)``: the keys are written in sorted order here so that the
    stored ``data`` text is reused instead of being parsed and re-serialised.
    """
    parts = ['{"account":', _string(account), ',"data":', data_json]
    if datacontenttype is not None:
        parts += [',"datacontenttype":', _string(datacontenttype)]
    parts += [
        ',"id":', _string(event_id),
        ',"source":', _string(source),
        ',"specversion":', _string(specversion),
        ',"time":', _string(time),
        ',"type":', _string(event_type),
        "}",
    ]
    return "".join(parts).encode()


def chain_hash(previous: str, canonical: bytes) -> str:
    """``hash`` = hex SHA-256 of the previous event's hash (32 raw bytes) then ``canonical``."""
    return hashlib.sha256(bytes.fromhex(previous) + canonical).hexdigest()
