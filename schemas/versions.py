"""The event types and the current ``schema_version`` of each one's ``data``.

Free of pydantic, so that the writer process and the views can know them without
loading the schemas (``schemas.events`` checks its models against ``EVENT_TYPES``).
"""

from __future__ import annotations

__all__ = ["EVENT_TYPES", "SCHEMA_VERSIONS"]

EVENT_TYPES: tuple[str, ...] = (
    "signal", "order", "fill", "status", "journal", "cash", "mark", "limits", "instrument",
    "account", "strategy", "void")
"""Every event ``type`` of EVENTS.md, in its order."""

SCHEMA_VERSIONS: dict[str, int] = {**dict.fromkeys(EVENT_TYPES, 1), "fill": 2}
"""The current ``schema_version`` of each event type's ``data`` (a new version comes
with an upcaster in ``schemas.upcasters``).

fill 2 (contract 1.1): a fill without ``multiplier`` takes its instrument's; version 1
meant 1, so its upcaster writes that 1 down."""
