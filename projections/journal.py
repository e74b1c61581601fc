"""The ``journal`` view: trading-journal entries in seq order. Pure fold."""

from __future__ import annotations

from eventstore.record import StoredEvent
from projections.calendar import to_utc_text
from projections.state import JournalRow, State

__all__ = ["apply"]


def apply(state: State, event: StoredEvent) -> State:
    """Append a row for each ``journal`` event."""
    if event.event_type == "journal":
        data = event.data
        state.journal.append(JournalRow(
            account=event.account,
            seq=event.seq,
            time=to_utc_text(event.time),
            text=data["text"],
            tags=data.get("tags"),
            symbol=data.get("symbol"),
            position_id=data.get("position_id"),
            signal_id=data.get("signal_id"),
            attrs=data.get("attrs"),
        ))
    return state
