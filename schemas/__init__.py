"""What an event is: CloudEvents envelope, event types and exact value types.

The names below load ``schemas.events`` (and pydantic) on first use, not on import of
the package: ``schemas.values`` and ``schemas.versions`` are used without them (the
writer process, the views).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schemas.versions import EVENT_TYPES, SCHEMA_VERSIONS

if TYPE_CHECKING:
    from schemas.events import (
        Event,
        EventProblem,
        EventValidationError,
        WireEvent,
        parse_event,
        parse_events,
        wire_event_json_schema,
    )

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSIONS",
    "Event",
    "EventProblem",
    "EventValidationError",
    "WireEvent",
    "parse_event",
    "parse_events",
    "wire_event_json_schema",
]

_FROM_EVENTS = {"Event", "EventProblem", "EventValidationError", "WireEvent", "parse_event",
                "parse_events", "wire_event_json_schema"}


def __getattr__(name: str) -> Any:
    if name in _FROM_EVENTS:
        from schemas import events

        return getattr(events, name)
    raise AttributeError(f"module 'schemas' has no attribute {name!r}")
