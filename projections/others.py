"""Folding what other writers appended when the view tables already hold it.

Several daemons on one PostgreSQL log share one set of view tables. Before its own
group, a daemon folds what the others appended since its checkpoint C, up to the
tables' checkpoint T (each of them wrote its rows with its commit). Its state at C is
exact for every row it holds in memory, so folding the events (C, T] into it gives
the state at T, the tables' rows, without reading them all again, except for the
signals and orders it loads on demand: a row loaded from its table is already at T,
and folding (C, T] into it would count those events twice.

So while folding (C, T] every signal and order asked for is noted with the seq of the
event that asked, and afterwards read again from its table (at T, one query for all)
in place of what the fold made of it; the rows the fold made are never written (the
tables hold (C, T] already). A row asked for by the ``signal`` or ``order`` event that
rewrites it is not read at all (``_Noting``): most are new, and each would cost a
round trip. What the fold read from a row taken from its table is right unless a
``signal`` (for a signal) or ``order`` (for an order) event of (C, T] rewrote it after
it was read: the fields other rows copy from them (a position's stop levels and
strategy from its signal, a fill's signal from its order) change only with those
events, and rows are never deleted but by a void. In that case, with a void in
(C, T], or when the events given do not cover (C, T], ``fold_known`` gives up and the
state is loaded from the tables again (as every turn did before).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from eventstore.record import StoredEvent
from projections import rows
from projections import tables as t
from projections.drain import clear_marks, dirty
from projections.fold import admitted, apply, current_shape
from projections.loading import Lookup
from projections.rowcache import RowCache
from projections.snapshots import Pending
from projections.state import State

__all__ = ["fold_known"]

Key = tuple[str, str]


class Runner(Protocol):
    """What ``fold_known`` takes of ``projections.runner.ViewRunner``."""

    failed: dict[int, str]
    pending: Pending
    lookup: Lookup | None


class _Noting:
    """A ``RowCache`` loader that notes each key it is asked for, with the seq of the
    event being folded then (the first time), and asks the cache's own loader, but for
    a key that event rewrites (in ``rewrites``, at that seq): a ``signal`` event for its
    signal, an ``order`` event for its order. That row is taken as new, unread: the
    fields other rows copy from it are the event's own, and what it carries over from
    before (status, filled quantity) is never copied and the row is dropped after."""

    def __init__(self, cache: RowCache[Key, Any], rewrites: dict[Key, int]) -> None:
        self.cache = cache
        self.inner = cache.loader
        self.rewrites = rewrites
        self.first: dict[Key, int] = {}
        self.seq = 0
        cache.loader = self

    def __call__(self, key: Key) -> Any:
        self.first.setdefault(key, self.seq)
        if self.rewrites.get(key) == self.seq:
            return None
        return self.inner(key)

    def done(self, fresh: dict[Key, Any] | None) -> None:
        """Give the cache its loader back; unless the fold failed (``fresh`` None: the
        whole state is discarded anyway), put the noted rows' ``fresh`` table rows in
        place of what the fold made of them (dropped when their table has none)."""
        self.cache.loader = self.inner
        if fresh is not None:
            for key in self.first:
                dict.pop(self.cache, key, None)
                if key in fresh:
                    dict.__setitem__(self.cache, key, fresh[key])


def _table_rows(lookup: Lookup, table: t.Table, keys: Iterable[Key],
                make: Callable[[tuple[Any, ...]], Any]) -> dict[Key, Any]:
    """The rows of ``table`` (signals, orders) under ``keys``, made by ``make``: one
    query per 256 keys."""
    found: dict[Key, Any] = {}
    ordered = sorted(keys)
    for chunk in (ordered[i:i + 256] for i in range(0, len(ordered), 256)):
        pairs = ", ".join(["(?, ?)"] * len(chunk))
        sql = f"{table.select_sql()} WHERE (account, {table.key[1]}) IN (VALUES {pairs})"
        for row in lookup.rows(sql, [part for key in chunk for part in key]):
            found[(row[0], row[1])] = make(row)
    return found


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


def fold_known(state: State, events: Sequence[StoredEvent], upto: int, runner: Runner
               ) -> State | None:
    """``state`` (at seq C, ``state.folded_seq``) with the events (C, ``upto``] folded in,
    where ``upto`` is the view tables' checkpoint: the state at ``upto``, with nothing
    marked for writing (the tables hold it); the ``runner``'s ``pending`` takes the
    signals and orders changed, for the next snapshot; events in its ``failed`` are left
    out, as it leaves them out; the rows asked for are read again (its ``lookup``).

    None when it cannot be done without double counting (the module's docstring says
    when): ``state`` is then half changed and must be loaded again from the tables.
    """
    failed, pending, lookup = runner.failed, runner.pending, runner.lookup
    known = [event for event in events if state.folded_seq < event.seq <= upto]
    if (lookup is None or len(known) != upto - state.folded_seq or dirty(state)
            or not isinstance(state.signals, RowCache)
            or not isinstance(state.orders, RowCache)
            or any(event.event_type == "void" for event in known)):
        return None
    signal_rewrites, order_rewrites = _rewrites(known)
    noting = (_Noting(state.signals, signal_rewrites), _Noting(state.orders, order_rewrites))
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
        if not ok:
            for note in noting:
                note.done(None)
    if not ok:
        return None
    noting[0].done(_table_rows(lookup, t.SIGNALS, noting[0].first, rows.signal_from))
    noting[1].done(_table_rows(lookup, t.ORDERS, noting[1].first, rows.order_from))
    pending.add(state)
    state.trades.clear()
    state.journal.clear()
    state.history.clear()
    state.voids.clear()
    clear_marks(state)
    state.left_out.clear()  # the writer that appended them noted them
    state.left_out_count = 0
    return state
