"""Events as an older tradelog stored them: values that version 1.1 refuses, written
straight into a log (hash chain and all) without the 1.1 schemas."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from eventstore.canonical import canonical_data, canonical_event
from eventstore.record import NewEvent, StoredEvent
from eventstore.recorder import Recorder

__all__ = ["LEGACY", "legacy_event", "legacy_stored", "write_log", "write_log_async"]

_ids = itertools.count(1)

LEGACY: dict[str, tuple[str, dict[str, Any], str]] = {
    # name: (type, data, time) of an event an older version accepted and stored
    "huge quantity": ("fill", {"symbol": "BIG", "side": "buy",
                               "quantity": "900000000000000000000000", "price": "1",
                               "fee": "0", "multiplier": "1"}, "2024-03-01T12:00:00Z"),
    "huge multiplier": ("fill", {"symbol": "MUL", "side": "buy",
                                 "quantity": "100000000000000000000000", "price": "1",
                                 "fee": "0", "multiplier": "100000000000000000000000"},
                        "2024-03-01T12:00:00Z"),
    "zero quantity (1e-999999999 stored as 0)": (
        "fill", {"symbol": "ZERO", "side": "buy", "quantity": "0", "price": "1", "fee": "0",
                 "multiplier": "1"}, "2024-03-01T12:00:00Z"),
    "year 1": ("fill", {"symbol": "OLD", "side": "buy", "quantity": "1", "price": "1",
                        "fee": "0", "multiplier": "1"}, "0001-01-01T00:00:00+01:00"),
    "year 9999": ("cash", {"kind": "deposit", "amount": "5"}, "9999-12-31T23:59:59-01:00"),
    "unknown zone": ("limits", {"timezone": "America"}, "2024-03-01T12:00:00Z"),
    "21 places": ("cash", {"kind": "deposit", "amount": "0.000000000000000000001"},
                  "2024-03-01T12:00:00Z"),
}


def legacy_event(event_type: str, data: dict[str, Any], time: str, *,
                 account: str = "acct-1") -> NewEvent:
    """A ``NewEvent`` made as the recorder takes it, with ``data`` stored as given
    (not validated: an older version's bounds)."""
    data_json = canonical_data(data)
    event_id = f"legacy-{next(_ids)}"
    canonical = canonical_event(account=account, data_json=data_json, datacontenttype=None,
                                event_id=event_id, source="old/bot", specversion="1.0",
                                time=time, event_type=event_type)
    return NewEvent(event_id, "old/bot", event_type, time, account, "1.0", None, data,
                    data_json, canonical, 1)


def legacy_stored(events: list[NewEvent], first_seq: int = 1) -> list[StoredEvent]:
    """``events`` numbered from ``first_seq`` as the log returns them."""
    return [StoredEvent(seq, e.event_id, e.source, e.event_type, e.time, e.account,
                        e.specversion, e.datacontenttype, e.data, "2024-03-01T00:00:00Z",
                        e.schema_version, "hash") for seq, e in enumerate(events, first_seq)]


async def write_log_async(path: Path, events: list[NewEvent]) -> None:
    """Append ``events`` to the log at ``path`` (created if missing) without views, as
    an older version wrote them."""
    recorder = await Recorder.open(path)
    try:
        await recorder.append(events)
    finally:
        await recorder.close()


def write_log(path: Path, events: list[NewEvent]) -> None:
    """``write_log_async`` outside an event loop."""
    asyncio.run(write_log_async(path, events))
