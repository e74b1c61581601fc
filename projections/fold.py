"""The fold of every view: ``apply(state, event) -> state``. Pure: no I/O, clock or logging.

Views are folded in a fixed order for each event, because later ones read what earlier
ones left: signals and orders (a fill's signal and stop levels), positions and trades
(which leave ``state.effect``), balances, daily, journal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import localcontext

from eventstore.record import StoredEvent
from projections import balances, daily, journal, orders, positions, signals
from projections.admit import left_out_reason
from projections.state import Effect, State
from schemas.upcasters import upcast
from schemas.values import DECIMAL_CONTEXT
from schemas.versions import SCHEMA_VERSIONS

__all__ = ["PROJECTION_VERSION", "apply", "fold"]

PROJECTION_VERSION = 3
"""Bumped whenever the fold's rules or the views' tables change; a stored version that
differs makes the runner rebuild every view from the log on start.

2: rows made in the money context (balance, equity and loss_used were rounded to 28
digits); a reducing fill uses its position's multiplier; a fill's own position is always
rewritten.
3: events whose values version 1.1 refuses are left out of every view
(``projections.admit``); amounts are quantized in a context wide enough never to fail."""

_STEPS = (signals.apply, orders.apply, positions.apply, balances.apply, daily.apply,
          journal.apply)


def current_shape(event: StoredEvent) -> StoredEvent:
    """The event with its ``data`` upcast to the type's current ``schema_version``
    (``schemas.upcasters``); the stored event itself is never changed."""
    current = SCHEMA_VERSIONS.get(event.event_type, event.schema_version)
    if event.schema_version >= current:
        return event
    data = upcast(event.event_type, event.schema_version, dict(event.data), current)
    return dataclasses.replace(event, data=data, schema_version=current)


def apply(state: State, event: StoredEvent, checked: bool = False) -> State:
    """Fold one stored event (``event.seq`` must follow ``state.folded_seq``) into ``state``.

    Events stored with an older ``schema_version`` are upcast first, so the folds only
    ever see the current shape of each type's ``data``. An event whose values 1.1
    refuses (``projections.admit``) is left out: only ``state.folded_seq`` moves, and
    ``state.left_out`` notes its seq and why. ``checked=True`` says the event has just
    passed the 1.1 schemas (a new append), so that check is skipped: it would pass.

    Raises whatever a step raises on an event that breaks the fold's rules (within the
    bounds none does, docs/ACCOUNTING.md); ``state`` may then be half changed and must
    be discarded.
    """
    event = current_shape(event)
    reason = None if checked else left_out_reason(event)
    if reason is not None:
        state.note_left_out(event.seq, reason)
        state.folded_seq = event.seq
        return state
    with localcontext(DECIMAL_CONTEXT):
        state.effect = Effect()
        for step in _STEPS:
            state = step(state, event)
        state.folded_seq = event.seq
    return state


def fold(events: Iterable[StoredEvent], state: State | None = None) -> State:
    """Fold events in order into ``state`` (a fresh ``State`` when None)."""
    current = state if state is not None else State()
    for event in events:
        current = apply(current, event)
    return current
