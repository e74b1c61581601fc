"""What an event is: CloudEvents envelope, event types and exact value types."""

from schemas.events import (
    EVENT_TYPES,
    SCHEMA_VERSIONS,
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
