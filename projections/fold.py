"""The fold of every view: ``apply(state, event) -> state``. Pure: no I/O, clock or logging.

Views are folded in a fixed order for each event, because later ones read what earlier
ones left: history (the status before a change), signals and orders (a fill's signal
and stop levels), instruments, accounts and strategies (a fill's multiplier), positions
and trades (which leave ``state.effect``), balances, daily, journal. A ``void`` folds
its account again without the voided events (``projections.voids``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from decimal import localcontext

from eventstore.record import StoredEvent
from projections import (
    balances,
    catalog,
    daily,
    history,
    journal,
    orders,
    positions,
    signals,
)
from projections.admit import left_out_reason
from projections.state import Effect, State
from projections.voids import History, VoidRun, refold_account, replace_account, void_key
from schemas.upcasters import upcast
from schemas.values import DECIMAL_CONTEXT
from schemas.versions import SCHEMA_VERSIONS

__all__ = ["PROJECTION_VERSION", "History", "VoidRun", "admitted", "apply", "apply_plain",
           "fold"]

PROJECTION_VERSION = 4
"""Bumped whenever the fold's rules or the views' tables change; a stored version that
differs makes the runner rebuild every view from the log on start.

2: rows made in the money context (balance, equity and loss_used were rounded to 28
digits); a reducing fill uses its position's multiplier; a fill's own position is always
rewritten.
3: events whose values version 1.1 refuses are left out of every view
(``projections.admit``); amounts are quantized in a context wide enough never to fail.
4: contract 1.1: attrs, the instruments, accounts, strategies and history views, voids,
the new fields of every view; trades.entry_price is the running average cost and
daily.limit_hit needs a loss."""

_STEPS = (history.apply, signals.apply, orders.apply, catalog.apply, positions.apply,
          balances.apply, daily.apply, journal.apply)


def current_shape(event: StoredEvent) -> StoredEvent:
    """The event with its ``data`` upcast to the type's current ``schema_version``
    (``schemas.upcasters``); the stored event itself is never changed."""
    current = SCHEMA_VERSIONS.get(event.event_type, event.schema_version)
    if event.schema_version >= current:
        return event
    data = upcast(event.event_type, event.schema_version, event.data, current)
    if data is event.data:  # the upcasters had nothing to change (they never mutate)
        return event
    return dataclasses.replace(event, data=data, schema_version=current)


def apply(state: State, event: StoredEvent, checked: bool = False,
          history: History | None = None) -> State:
    """Fold one stored event (``event.seq`` must follow ``state.folded_seq``) into ``state``.

    Events stored with an older ``schema_version`` are upcast first, so the folds only
    ever see the current shape of each type's ``data``. An event whose values 1.1
    refuses (``projections.admit``) is left out: only ``state.folded_seq`` moves, and
    ``state.left_out`` notes its seq and why. ``checked=True`` says the event has just
    passed the 1.1 schemas (a new append), so that check is skipped: it would pass.

    Raises whatever a step raises on an event that breaks the fold's rules (within the
    bounds none does, docs/ACCOUNTING.md); ``state`` may then be half changed and must
    be discarded.

    A ``void`` needs ``history``, the account's stored events up to it (itself
    included): its account is folded again from them without the voided events. Raises
    ``ValueError`` for a void when ``history`` is None. (``fold`` and the runner fold a
    run of events with ``VoidRun`` instead, once per account whatever the voids.)
    """
    event = current_shape(event)
    reason = None if checked else left_out_reason(event)
    if reason is not None:
        state.note_left_out(event.seq, reason)
        state.folded_seq = event.seq
        return state
    if event.event_type == "void":
        if history is None:
            raise ValueError("a void needs its account's stored events to fold it")
        with localcontext(DECIMAL_CONTEXT):
            fresh, targets = refold_account(event.account, event.seq + 1, history,
                                            apply_plain, noted_upto=event.seq)
        replace_account(state, event.account, fresh)
        state.voids.append((event.seq, event.account, targets.get(void_key(event))))
        state.folded_seq = event.seq
        return state
    with localcontext(DECIMAL_CONTEXT):
        state.effect = Effect()
        for step in _STEPS:
            state = step(state, event)
        state.folded_seq = event.seq
    return state


def apply_plain(state: State, event: StoredEvent) -> State:
    """``apply`` with the defaults: an event from the log, checked, no voids expected."""
    return apply(state, event)


def admitted(state: State, event: StoredEvent, checked: bool = False) -> bool:
    """False (and the event noted as left out, ``state.folded_seq`` moved past it) when the
    views leave ``event`` (already in its current shape) out (``projections.admit``);
    True to fold it."""
    reason = None if checked else left_out_reason(event)
    if reason is None:
        return True
    state.note_left_out(event.seq, reason)
    state.folded_seq = event.seq
    return False


class _Kept:
    """The events an in-memory ``fold`` has seen, by account: its ``History``."""

    def __init__(self) -> None:
        self.by_account: dict[str, list[StoredEvent]] = {}

    def keep(self, event: StoredEvent) -> None:
        self.by_account.setdefault(event.account, []).append(event)

    def __call__(self, account: str, before: int,
                 types: Sequence[str] | None) -> Iterable[StoredEvent]:
        return [event for event in self.by_account.get(account, ())
                if event.seq < before and (types is None or event.event_type in types)]


def fold(events: Iterable[StoredEvent], state: State | None = None,
         history: History | None = None) -> State:
    """Fold events in order into ``state`` (a fresh ``State`` when None).

    ``history`` gives a void its account's earlier events; when None, the fold keeps
    the events it folds in memory and serves them (enough when it starts from seq 1).
    """
    current = state if state is not None else State()
    kept = _Kept() if history is None else None
    source = history or kept
    assert source is not None
    run = VoidRun()
    for stored_event in events:
        if kept is not None:
            kept.keep(stored_event)
        event = current_shape(stored_event)
        if not admitted(current, event):
            continue
        if run.takes(current, event):
            continue
        current = apply(current, event, checked=True, history=source)
    with localcontext(DECIMAL_CONTEXT):
        run.settle(current, source, apply_plain)
    return current
