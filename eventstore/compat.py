"""Events sent again across the upgrade to contract 1.1: when are they the same event?

A version 1 fill without ``multiplier`` was stored with ``"multiplier": "1"`` (the
default then). In 1.1 a fill without one takes its instrument's, so the same wire event
sent again after the upgrade (a bot retrying an append it never saw answered) has other
canonical bytes. It is the same event the bot sent, so it is answered ``duplicate``,
never -32002: ``same_as_stored`` says so.
"""

from __future__ import annotations

from eventstore.canonical import canonical_data, canonical_event
from eventstore.record import NewEvent

__all__ = ["same_as_stored"]


def same_as_stored(stored: bytes, event: NewEvent) -> bool:
    """True when ``event``, written as version 1 wrote it, has the ``stored`` canonical
    bytes (a fill without ``multiplier`` stored with the 1 it then meant)."""
    if event.event_type != "fill" or "multiplier" in event.data:
        return False
    as_v1 = canonical_event(
        account=event.account, data_json=canonical_data({**event.data, "multiplier": "1"}),
        datacontenttype=event.datacontenttype, event_id=event.event_id, source=event.source,
        specversion=event.specversion, time=event.time, event_type=event.event_type)
    return as_v1 == stored
