"""Folding what other writers appended when the view tables already hold it.

Several daemons on one PostgreSQL log share one set of view tables. Before its own
group, a daemon folds what the others appended since its checkpoint C, up to the
tables' checkpoint T (each of them wrote its rows with its commit). Its state at C is
exact for every row it holds in memory, so folding the events (C, T] into it gives
the state at T, the tables' rows, without reading them all again, except for the
signals and orders it loads on demand: a row loaded from its table is already at T,
and folding (C, T] into it would count those events twice.

So while folding (C, T] every signal and order loaded from its table is noted with the
seq of the event that loaded it, and afterwards dropped from memory (its table row, at
T, is loaded the next time it is needed); the rows the fold made from it are never
written (the tables hold (C, T] already). What the fold read from such a row is right
unless a ``signal`` (for a signal) or ``order`` (for an order) event of (C, T] changed
it after it was loaded: the fields other rows copy from them (a position's stop levels
and strategy from its signal, a fill's signal from its order) change only with those
events, and rows are never deleted but by a void. In that case, with a void in
(C, T], or when the events given do not cover (C, T], ``fold_known`` gives up and the
state is loaded from the tables again (as every turn did before).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore.record import StoredEvent
from projections.drain import clear_marks, dirty
from projections.fold import admitted, apply, current_shape
from projections.rowcache import RowCache
from projections.snapshots import Pending
from projections.state import State

__all__ = ["fold_known"]

Key = tuple[str, str]


class _Noting:
    """A ``RowCache`` loader that notes each key it is asked for, with the seq of the
    event being folded then (the first time), and asks the cache's own loader."""

    def __init__(self, cache: RowCache[Key, Any]) -> None:
        self.cache = cache
        self.inner = cache.loader
        self.first: dict[Key, int] = {}
        self.seq = 0
        cache.loader = self

    def __call__(self, key: Key) -> Any:
        self.first.setdefault(key, self.seq)
        return self.inner(key)

    def done(self, keep: bool) -> None:
        """Give the cache its loader back; drop the noted rows unless the fold failed
        (then the whole state is discarded anyway)."""
        self.cache.loader = self.inner
        if keep:
            for key in self.first:
                dict.pop(self.cache, key, None)


def _rewrites(events: Sequence[StoredEvent]) -> tuple[dict[Key, int], dict[Key, int]]:
    """The first seq of a ``signal`` event per signal key, and of an ``order`` event per
    order key, among ``events``."""
    signals: dict[Key, int] = {}
    orders: dict[Key, int] = {}
    for event in events:
        if event.event_type == "signal":
            signals.setdefault((event.account, event.data["signal_id"]), event.seq)
        elif event.event_type == "order":
            orders.setdefault((event.account, event.data["order_id"]), event.seq)
    return signals, orders


def fold_known(state: State, events: Sequence[StoredEvent], upto: int,
               failed: dict[int, str], pending: Pending) -> State | None:
    """``state`` (at seq C, ``state.folded_seq``) with the events (C, ``upto``] folded in,
    where ``upto`` is the view tables' checkpoint: the state at ``upto``, with nothing
    marked for writing (the tables hold it); ``pending`` takes the signals and orders
    changed, for the next snapshot. Events in ``failed`` are left out, as the runner
    leaves them out.

    None when it cannot be done without double counting (the module's docstring says
    when): ``state`` is then half changed and must be loaded again from the tables.
    """
    known = [event for event in events if state.folded_seq < event.seq <= upto]
    if (len(known) != upto - state.folded_seq or dirty(state)
            or not isinstance(state.signals, RowCache)
            or not isinstance(state.orders, RowCache)
            or any(event.event_type == "void" for event in known)):
        return None
    signal_rewrites, order_rewrites = _rewrites(known)
    noting = (_Noting(state.signals), _Noting(state.orders))
    ok = False
    try:
        for event in known:
            noting[0].seq = noting[1].seq = event.seq
            if event.seq in failed:
                state.folded_seq = event.seq
                continue
            shaped = current_shape(event)
            if admitted(state, shaped):
                state = apply(state, shaped, True)
        ok = all(rewrites.get(key, seq) <= seq
                 for note, rewrites in zip(noting, (signal_rewrites, order_rewrites),
                                           strict=True)
                 for key, seq in note.first.items())
    except Exception:
        return None
    finally:
        for note in noting:
            note.done(ok)
    if not ok:
        return None
    pending.add(state)
    state.trades.clear()
    state.journal.clear()
    state.history.clear()
    state.voids.clear()
    clear_marks(state)
    state.left_out.clear()  # the writer that appended them noted them
    state.left_out_count = 0
    return state
