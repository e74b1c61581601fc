"""``void``: an event taken out of every view by folding its account again without it. Pure.

EVENTS.md invariant 5: after a ``void`` of event E, every view equals that of a fresh
store fed the same events without E and without the void. Every view is per account
and a void's target is an event of its own account, so the fold of that account is
done again from its stored events before the void, leaving out every event voided so
far and every void, and the account's part of the state is replaced by the result.
Seqs are the events' own, so fields holding a seq name the same events.

The cost is one pass over the account's events per void (docs/ACCOUNTING.md, "void").
The events come from ``History``, handed in by whoever owns the log: the runner reads
them on its connection, an in-memory ``fold`` keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eventstore.record import StoredEvent
from projections.state import State

__all__ = ["History", "refold_account", "replace_account"]

History = Callable[[str, int, Sequence[str] | None], Iterable[StoredEvent]]
"""(account, before seq, types or None for all) -> the account's stored events with a
seq below ``before seq``, of those types, in seq order."""

Apply = Callable[[State, StoredEvent], State]


def refold_account(void: StoredEvent, history: History, apply: Apply) -> tuple[State, int | None]:
    """The fold state of ``void``'s account alone, from its events before the void less
    every voided event and every void; and the seq of this void's target (None: not found).

    ``apply`` folds one event (``projections.fold.apply`` without voids); events the
    views leave out stay left out, and are not counted again.
    """
    account = void.account
    voided = {(void.data["target_source"], void.data["target_id"])}
    for earlier in history(account, void.seq, ("void",)):
        voided.add((earlier.data["target_source"], earlier.data["target_id"]))
    fresh = State(noted_upto=void.seq)
    target: int | None = None
    mine = (void.data["target_source"], void.data["target_id"])
    for event in history(account, void.seq, None):
        if event.event_type == "void":
            continue
        if (event.source, event.event_id) in voided:
            if (event.source, event.event_id) == mine:
                target = event.seq
            continue
        fresh = apply(fresh, event)
    fresh.position = void.seq
    return fresh, target


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
