"""Pure upcasters: old stored ``data`` payloads to the current ``schema_version``.

A released model is never edited in place. When a type's ``data`` changes shape, its
version in ``schemas.events.SCHEMA_VERSIONS`` goes up by one and a function is
registered here that turns version N's payload into N+1's. Stored events keep the
version they were written with; readers call ``upcast`` before validating. An upcaster
never changes the payload it is given: it returns it as it is when it has nothing to
change, else a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["UPCASTERS", "upcast"]

Payload = dict[str, Any]


def fill_1_to_2(data: Payload) -> Payload:
    """fill 1 -> 2: version 1 read a missing ``multiplier`` as 1; version 2 reads it as
    the instrument's, so a version 1 payload without one gets ``"1"`` (a new dict)."""
    if "multiplier" in data:
        return data
    return {**data, "multiplier": "1"}


UPCASTERS: dict[tuple[str, int], Callable[[Payload], Payload]] = {("fill", 1): fill_1_to_2}
"""(event type, from version) -> pure function returning the next version's payload."""


def upcast(event_type: str, version: int, data: Payload, target: int) -> Payload:
    """Apply the registered upcasters from ``version`` up to ``target``.

    Raises:
        KeyError: when a step between the two versions has no upcaster.
    """
    while version < target:
        data = UPCASTERS[(event_type, version)](data)
        version += 1
    return data
