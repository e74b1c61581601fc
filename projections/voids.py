"""``void``: an event taken out of every view by folding its account again without it. Pure.

EVENTS.md invariant 5: after a ``void`` of event E, every view equals that of a fresh
store fed the same events without E and without the void. Every view is per account
and a void's target is an event of its own account, so the fold of that account is
done again from its stored events before the void, leaving out every event voided so
far and every void, and the account's part of the state is replaced by the result.
Seqs are the events' own, so fields holding a seq name the same events.

The cost is one pass over the account's events per void, or per run of events holding
voids (``VoidRun``: a batch of many voids folds each account once; docs/ACCOUNTING.md,
"void").
The events come from ``History``, handed in by whoever owns the log: the runner reads
them on its connection, an in-memory ``fold`` keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from eventstore.record import StoredEvent
from projections.state import State

__all__ = ["History", "VoidRun", "refold_account", "replace_account", "void_key"]

History = Callable[[str, int, Sequence[str] | None], Iterable[StoredEvent]]
"""(account, before seq, types or None for all) -> the account's stored events with a
seq below ``before seq``, of those types, in seq order."""

Apply = Callable[[State, StoredEvent], State]
Key = tuple[str, str]


def void_key(void: StoredEvent) -> Key:
    """The (source, id) a void's data names."""
    return (void.data["target_source"], void.data["target_id"])


def refold_account(account: str, before: int, history: History, apply: Apply,
                   skip: Collection[int] = (), noted_upto: int = 0
                   ) -> tuple[State, dict[Key, int]]:
    """The fold state of ``account`` alone, from its events with a seq below ``before``
    less every voided event and every void; and the seq of each voided event found.

    ``apply`` folds one event (``projections.fold.apply``); events the views leave out
    stay left out (noted only past ``noted_upto``); seqs in ``skip`` (events whose fold
    failed before) are left out too.
    """
    voided = {void_key(event) for event in history(account, before, ("void",))}
    fresh = State(noted_upto=noted_upto)
    targets: dict[Key, int] = {}
    for event in history(account, before, None):
        if event.event_type == "void" or event.seq in skip:
            continue
        key = (event.source, event.event_id)
        if key in voided:
            targets[key] = event.seq
            continue
        fresh = apply(fresh, event)
    fresh.folded_seq = before - 1
    return fresh, targets


class VoidRun:
    """The voids met in a run of events, each account folded again once at its end.

    An account with a void in the run has its later events of the run taken too (only
    ``state.folded_seq`` moves): the fold from the log at the end covers them. So a run
    of many voids costs one fold of each account, not one per void.
    """

    def __init__(self) -> None:
        self.voids: dict[str, list[StoredEvent]] = {}

    def takes(self, state: State, event: StoredEvent) -> bool:
        """True when ``event`` (already admitted to the views) is left to ``settle``."""
        pending = self.voids.get(event.account)
        if pending is None and event.event_type != "void":
            return False
        if pending is None:
            pending = self.voids[event.account] = []
        if event.event_type == "void":
            pending.append(event)
        state.folded_seq = event.seq
        return True

    def first_seq(self) -> int | None:
        """The seq of the first void taken and not settled (None: none)."""
        return min((v[0].seq for v in self.voids.values() if v), default=None)

    def settle(self, state: State, history: History, apply: Apply,
               skip: Collection[int] = ()) -> None:
        """Fold each account with voids again from the log up to ``state.folded_seq`` and
        put the result in ``state`` (``replace_account``); note each void's target."""
        before = state.folded_seq + 1
        for account in sorted(self.voids):
            voids = self.voids[account]
            fresh, targets = refold_account(account, before, history, apply, skip,
                                            noted_upto=voids[0].seq)
            for seq, reason in fresh.left_out:
                state.note_left_out(seq, reason)
            replace_account(state, account, fresh)
            state.voids.extend((void.seq, account, targets.get(void_key(void)))
                               for void in voids)
        self.voids.clear()


def replace_account(state: State, account: str, fresh: State) -> None:
    """Replace every row of ``account`` in ``state`` by those of ``fresh`` (the account's
    fold alone) and mark the account ``refolded``: its rows are deleted from the tables
    and every row of ``fresh`` written at the next drain."""
    for key in list(state.positions.get(account, {})):
        state.remove_position(account, key)
    state.positions.pop(account, None)
    for position in fresh.positions.get(account, {}).values():
        state.add_position(position)
    found = fresh.accounts.get(account)
    if found is None:
        state.accounts.pop(account, None)
    else:
        state.accounts[account] = found
    tables: tuple[dict[tuple[str, str], Any], ...] = (
        state.daily, state.signals, state.orders, state.instruments, state.strategies)
    for table in tables:
        # dict's own methods: a RowCache's would load rows from its table.
        for row_key in [k for k in dict.keys(table) if k[0] == account]:
            dict.__delitem__(table, row_key)
    state.daily.update(fresh.daily)
    for sig_key, signal in fresh.signals.items():
        dict.__setitem__(state.signals, sig_key, signal)
    for order_key, order in fresh.orders.items():
        dict.__setitem__(state.orders, order_key, order)
    state.instruments.update(fresh.instruments)
    state.strategies.update(fresh.strategies)
    state.trades = [row for row in state.trades if row.account != account] + fresh.trades
    state.journal = [row for row in state.journal if row.account != account] + fresh.journal
    state.history = [row for row in state.history if row.account != account] + fresh.history
    marks: set[tuple[str, str]]
    for marks in (state.dirty_positions, state.dirty_daily, state.dirty_signals,
                  state.dirty_orders, state.dirty_instruments, state.dirty_strategies,
                  state.dirty_marks):
        for mark in [k for k in marks if k[0] == account]:
            marks.discard(mark)
    state.dirty_accounts.discard(account)
    state.refolded.add(account)
    if found is not None:
        state.dirty_accounts.add(account)
        state.dirty_marks.update((account, s) for s in {*found.marks, *found.last_fills})
    state.dirty_positions.update((account, k) for k in fresh.positions.get(account, {}))
    state.dirty_daily.update(fresh.daily)
    state.dirty_signals.update(fresh.signals)
    state.dirty_orders.update(fresh.orders)
    state.dirty_instruments.update(fresh.instruments)
    state.dirty_strategies.update(fresh.strategies)
