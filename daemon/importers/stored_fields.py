"""The stored fields of an exported event, taken back by ``import --format events-jsonl``.

An export line is a stored event: the wire event plus ``seq``, ``recorded_at``,
``schema_version`` and ``hash`` (PROTOCOL.md, "Stored events"). The importer splits
them off (``split_stored``) and checks them (``StoredChain``) instead of refusing the
line: the four come together, each well formed, seqs increase, ``schema_version`` is
one this tradelog knows for the type, and where a line follows its predecessor's seq
(or is seq 1) its ``hash`` is the chain hash of the event's canonical bytes, so an
altered or reordered export is refused. The event itself is then appended as any
other; the log gives it its own ``seq``, ``recorded_at`` and ``hash``, which equal the
file's when an export is imported into an empty database (the hash covers the event's
content only). ``recorded_at`` is the importing daemon's clock: a client never sets it.
"""

from __future__ import annotations

import re
from typing import Any

from eventstore.canonical import GENESIS_HASH, chain_hash
from eventstore.record import NewEvent
from schemas import parse_event
from schemas.values import parse_time
from schemas.versions import SCHEMA_VERSIONS

__all__ = ["STORED_FIELDS", "StoredChain", "split_stored"]

STORED_FIELDS = ("seq", "recorded_at", "schema_version", "hash")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def split_stored(value: Any) -> tuple[Any, dict[str, Any]]:
    """``(wire event, stored fields)``: ``value`` without ``STORED_FIELDS``, and those it
    had. A value that is not an object comes back as is, with ``{}``."""
    if not isinstance(value, dict):
        return value, {}
    stored = {k: value[k] for k in STORED_FIELDS if k in value}
    if not stored:
        return value, {}
    return {k: v for k, v in value.items() if k not in stored}, stored


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class StoredChain:
    """Checks the stored fields of consecutive lines of one file (module docstring)."""

    def __init__(self) -> None:
        self.previous: tuple[int, str] | None = None

    def check(self, event: dict[str, Any], stored: dict[str, Any]) -> str | None:
        """Why ``stored`` (of the valid wire ``event``) is wrong, or None when it is fine
        (or empty: a plain wire event)."""
        if not stored:
            return None
        missing = [k for k in STORED_FIELDS if k not in stored]
        if missing:
            return (f"a stored event carries {', '.join(STORED_FIELDS)} together; "
                    f"missing {', '.join(missing)} (or remove all four)")
        seq, recorded, version, digest = (stored[k] for k in STORED_FIELDS)
        if not _is_int(seq) or seq < 1:
            return "seq: must be an integer >= 1"
        try:
            parse_time(recorded)
        except ValueError as exc:
            return f"recorded_at: {exc}"
        known = SCHEMA_VERSIONS.get(event["type"], 0)
        if not _is_int(version) or not 1 <= version <= known:
            return (f"schema_version: must be an integer from 1 to {known} for a "
                    f"{event['type']!r} event")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            return "hash: must be 64 lowercase hex digits"
        previous = self.previous
        if previous is not None and seq <= previous[0]:
            return f"seq: {seq} does not follow seq {previous[0]}; seqs must increase"
        before = GENESIS_HASH if seq == 1 else (
            previous[1] if previous is not None and seq == previous[0] + 1 else None)
        if before is not None:
            canonical = NewEvent.from_model(parse_event(event)).canonical
            if chain_hash(before, canonical) != digest:
                return (f"hash: does not match the event's content after seq {seq - 1}: "
                        "the line was altered, or lines were reordered or removed")
        self.previous = (seq, digest)
        return None
