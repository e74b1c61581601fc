"""Reading the log in pages bounded in bytes (``read`` and the subscriptions' pumps)."""

from __future__ import annotations

import asyncio
from typing import Any

from daemon.wire.jsonread import encode
from daemon.wire.rpc import INVALID_PARAMS, RpcError
from eventstore.record import StoredEvent
from eventstore.store import ViewReader
from schemas import EVENT_TYPES

__all__ = ["check_types", "read_bounded"]


def check_types(types: list[str] | None) -> None:
    """Refuse event type names that are not types (None: no filter).

    Raises:
        RpcError: -32602 naming the unknown types and listing the known ones.
    """
    if types is None:
        return
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise RpcError(INVALID_PARAMS, f"unknown event types {unknown}; use "
                       + ", ".join(EVENT_TYPES))


async def read_bounded(recorder: ViewReader, from_seq: int, limit: int, account: str | None,
                       types: list[str] | None, max_bytes: int
                       ) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` stored events in wire form from ``from_seq`` on, and the seq to
    read next, taking at most ``max_bytes`` encoded (at least one event). The log is
    read in chunks sized from the events seen so far, so neither many events nor
    large ones are held beyond about ``max_bytes`` at a time.

    Raises what ``ViewReader.read_page`` raises (``StorageDamagedError`` at damage).
    """
    out: list[dict[str, Any]] = []
    size = 0
    seq = from_seq
    chunk = min(limit, 64)
    while True:
        events, last = await recorder.read_page(seq, chunk, account, types)
        # Off the event loop: a page of 1,000 events costs tens of ms to convert and size.
        size, seq, done = await asyncio.to_thread(_take, events, out, size, seq, limit,
                                                  max_bytes)
        if done:
            return out, seq
        if len(events) < chunk:
            return out, max(seq, last + 1)
        average = max(size // max(len(out), 1), 1)
        chunk = max(1, min(limit - len(out), 1000, (max_bytes - size) // average + 1))


def _take(events: list[StoredEvent], out: list[dict[str, Any]], size: int, seq: int,
          limit: int, max_bytes: int) -> tuple[int, int, bool]:
    """Append ``events`` in wire form to ``out`` while they fit (``read_bounded``);
    returns the bytes taken, the seq to read next, and whether the page is complete."""
    for event in events:
        wire = event.to_wire()
        cost = len(encode(wire)) + 1
        if out and size + cost > max_bytes:
            return size, event.seq, True
        out.append(wire)
        size += cost
        seq = event.seq + 1
        if len(out) == limit:
            return size, seq, True
    return size, seq, False
