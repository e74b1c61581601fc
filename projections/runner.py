"""The runner: keeps the view tables and their checkpoint in the append's transaction.

``ViewRunner`` implements ``eventstore.follow.Follower``: the writer hands it each group of
newly stored events inside the write transaction; it folds them into its in-memory
state and returns the row writes plus the checkpoint (last folded ``seq``) as SQL
statements, which the writer executes before ``COMMIT``. With ``defer(N)`` (the
daemon's writer process) the rows and checkpoint are returned once per N events and on
``flush`` instead: the tables then trail the log by less than N events. Either way the
checkpoint is written with the rows it describes, so a crash at any point leaves the
tables consistent with their checkpoint; on start the runner loads the state from the
tables and folds only what the log holds past the checkpoint.

A new view: its table in ``projections.tables``, its block of row writes in
``projections.drain`` (``_drain``, ``dirty``, ``mark_all_dirty``, ``clear_marks``),
and its SELECT in ``ViewRunner.load_queries`` and ``_restore`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from decimal import localcontext
from typing import Any

from eventstore.ddl import EVENT_COLUMNS
from eventstore.follow import FoldError, Statement, from_storage
from eventstore.record import StoredEvent
from projections import rows
from projections import tables as t
from projections.drain import (
    CHECKPOINT_DDL,
    checkpoint_statement,
    clear_marks,
    dirty,
    drain,
    mark_all_dirty,
)
from projections.fold import (
    PROJECTION_VERSION,
    VoidRun,
    admitted,
    apply,
    apply_plain,
    current_shape,
)
from projections.loading import Lookup, fill_state, load_queries
from projections.others import fold_known
from projections.rowcache import RowCache
from projections.snapshots import (
    GAP_SQL,
    SNAPSHOT_EVERY,
    Pending,
    add_gap,
    copy_all_sql,
    payload_statement,
    snapshot_ddl,
    snapshot_tables,
    version_statements,
)
from projections.state import LEFT_OUT_KEPT, OrderRow, SignalRow, State
from schemas.values import DECIMAL_CONTEXT

__all__ = ["CHECKPOINT_DDL", "Lookup", "ViewRunner", "checkpoint_statement", "clear_marks",
           "drain"]

CACHE_ROWS = 5_000
"""Signals and orders (each) a daemon keeps in memory; others are loaded when needed."""


class ViewRunner:
    """Folds appended events into the views in the recorder's transaction. ``state`` is
    None until loaded from the tables (and after a rollback, which may have left it
    ahead of what is committed)."""

    def __init__(self) -> None:
        self.state: State | None = None
        self.stored_version: int | None = None
        self.suffix = ""
        self.progress: Callable[[int], None] | None = None
        self.pending = Pending()
        self.snapshot_seq = 0
        self.need_base = False
        self.lookup: Lookup | None = None
        self.gap_from: int | None = None
        self.recent: tuple[set[tuple[str, str]], set[tuple[str, str]]] = (set(), set())
        self.defer_events = 0
        self.flushed = 0
        self.failed: dict[int, str] = {}
        self.left_out: list[tuple[int, str]] = []
        self.left_out_count = 0
        self.noted_upto = 0
        self.log: Lookup | None = None
        self.table_snapshots = False

    def read_log(self, log: Lookup) -> None:
        """Read a void's account history from the events table with ``log`` (on the
        connection the folds run on, so it sees the events of the append being folded)."""
        self.log = log

    def _history(self, account: str, before: int,
                 types: Sequence[str] | None) -> Iterator[StoredEvent]:
        """The account's stored events before seq ``before`` (of ``types``), for a void."""
        log = self.log or self.lookup
        if log is None:
            raise ValueError("a void needs the log, and these views were given no reader")
        sql = (f"SELECT {EVENT_COLUMNS} FROM events WHERE account = ? AND seq < ?"
               + (f" AND type IN ({', '.join('?' * len(types))})" if types else "")
               + " ORDER BY seq")
        for chunk in log.chunks(sql, [account, before, *(types or ())]):
            yield from (StoredEvent.from_row(row) for row in chunk)

    def attach(self, lookup: Lookup) -> None:
        """Keep only recently used signals and orders in memory (``CACHE_ROWS`` each) and
        load any other from its table with ``lookup``, from the next load on."""
        self.lookup = lookup

    @property
    def checkpoint(self) -> int:
        """The views' checkpoint: the ``seq`` of the last event folded (0 while no state
        is loaded); ``flushed`` is the one written to the tables."""
        return self.state.folded_seq if self.state is not None else 0

    def defer(self, events: int) -> None:
        """Write the views' rows and checkpoint once per ``events`` folded events (and on
        ``flush``) instead of with every fold; 0 writes with every fold (the default).

        A row touched by many events of a stretch is then written once. The tables
        (and the checkpoint) may trail the log by up to ``events`` events; what they
        miss is folded again from the log after a crash, as any catch-up.
        """
        self.defer_events = events

    def needs_load(self) -> bool:
        """True while no state is loaded (at start, and after ``discard``)."""
        return self.state is None

    def ddl(self) -> list[str]:
        """CREATE statements for the checkpoint, snapshot and view tables (if missing)."""
        statements = [CHECKPOINT_DDL, *snapshot_ddl()]
        for table in t.TABLES:
            statements.extend(table.ddl())
        return statements

    def load_queries(self) -> list[str]:
        """The SELECTs whose results ``restore`` takes, in order (``loading.load_queries``;
        signals and orders load on demand when a lookup is attached)."""
        return load_queries(on_demand=self.lookup is not None)

    def restore(self, results: list[list[tuple[Any, ...]]]) -> None:
        """Build the state from the rows of ``load_queries``, decimals in ``DECIMAL_CONTEXT``."""
        with localcontext(DECIMAL_CONTEXT):
            self._restore(results)

    def _restore(self, results: list[list[tuple[Any, ...]]]) -> None:
        checkpoint, balances, prices, positions, daily, signals, orders, snapshot = results[:8]
        accounts, instruments, strategies = [*results[8:], [], [], []][:3]
        state = State()
        if checkpoint:
            state.folded_seq, self.stored_version = checkpoint[0]
        # What changed since the last snapshot is not known: the next snapshot holds
        # every row (with a lookup, every row that may have changed).
        self.snapshot_seq = int(snapshot[0][0]) if snapshot else 0
        self.pending = Pending()
        behind = self.snapshot_seq < state.folded_seq
        self.need_base = behind and self.lookup is None
        self.gap_from = self.snapshot_seq if behind and self.lookup is not None else None
        self.recent = (set(), set())
        if self.lookup is not None:
            state.signals = RowCache(self._load_signal, CACHE_ROWS)
            state.orders = RowCache(self._load_order, CACHE_ROWS)
        fill_state(state, balances, prices, accounts, instruments, strategies, positions,
                   daily, signals, orders)
        state.noted_upto = self.noted_upto
        self.state = state
        self.flushed = state.folded_seq

    def _catch_up_tables(self, state: State, events: Sequence[StoredEvent]) -> State:
        """The state at the tables' checkpoint when another's views are ahead of it:
        ``events`` folded in (``others.fold_known``), else reloaded from the tables."""
        assert self.lookup is not None
        stored = self.lookup.rows(
            "SELECT last_seq FROM projection_checkpoint WHERE name = 'views'", ())
        if not stored or stored[0][0] <= state.folded_seq:
            return state
        if caught := fold_known(state, events, int(stored[0][0]), self):
            self.flushed = caught.folded_seq
            return caught
        self.restore([self.lookup.rows(sql, ()) for sql in self.load_queries()])
        assert self.state is not None
        return self.state

    def _load(self, table: t.Table, key: tuple[str, str]) -> tuple[Any, ...] | None:
        """The row of ``table`` (signals, orders) under ``key``, None when it has none."""
        assert self.lookup is not None
        if self.state is not None and key[0] in self.state.refolded:
            return None  # a void folded the account again: all its rows are in memory
        found = self.lookup.rows(f"{table.select_sql()} WHERE account = ? AND "
                                 f"{table.key[1]} = ?", key)
        return found[0] if found else None

    def _load_signal(self, key: tuple[str, str]) -> SignalRow | None:
        return rows.signal_from(found) if (found := self._load(t.SIGNALS, key)) else None

    def _load_order(self, key: tuple[str, str]) -> OrderRow | None:
        return rows.order_from(found) if (found := self._load(t.ORDERS, key)) else None

    def fold(self, events: Sequence[StoredEvent], fresh: bool = False) -> list[Statement]:
        """Fold events into the state; return the row writes, any snapshot, and the checkpoint.

        ``fresh=True``: the events were just validated by the 1.1 schemas (an append), so
        the check for values to leave out is skipped. Raises ``FoldError`` naming the
        first event whose fold raised (the state is then half changed: discard it).
        With a lookup, when the committed views are ahead the state is first brought to
        them (``_catch_up_tables``), and events already folded are skipped. A rebuild
        writes only append-only rows here (no checkpoint). ``[]``: nothing was folded.
        """
        if self.state is None:
            self.state = State()
        state = self.state
        if self.lookup is not None and not self.suffix and not (
                fresh and events and events[0].seq == state.folded_seq + 1):
            # (A group appended right after the state's last event: no views are ahead.)
            state = self._catch_up_tables(state, events)
            events = [event for event in events if event.seq > state.folded_seq]
        if isinstance(state.signals, RowCache) and isinstance(state.orders, RowCache):
            # Rows are loaded on the folding connection, which sees this transaction's
            # writes: any row written by the previous flush, and not changed since (not
            # dirty: its table row is current), may be dropped.
            state.signals.trim(self.recent[0] | state.dirty_signals)
            state.orders.trim(self.recent[1] | state.dirty_orders)
        failed = self.failed
        run = VoidRun()
        for stored_event in events:
            if failed and stored_event.seq in failed:
                state.note_left_out(stored_event.seq, failed[stored_event.seq])
                state.folded_seq = stored_event.seq
                continue
            try:
                event = current_shape(stored_event)
                if not admitted(state, event, fresh) or run.takes(state, event):
                    continue
                state = apply(state, event, True, self._history)
            except Exception as exc:
                if from_storage(exc):
                    raise  # a read of the views failed: the storage's error, not the event's
                self.state = state
                self._take_left_out(state)
                raise FoldError(stored_event.seq,
                                f"{type(exc).__name__}: {exc}"[:500]) from exc
        first_void = run.first_seq()
        if first_void is not None:
            try:
                with localcontext(DECIMAL_CONTEXT):
                    run.settle(state, self._history, apply_plain, skip=failed)
            except Exception as exc:
                if from_storage(exc):
                    raise
                self.state = state
                self._take_left_out(state)
                raise FoldError(first_void, f"{type(exc).__name__}: {exc}"[:500]) from exc
        self.state = state
        if state.left_out_count:
            self._take_left_out(state)
        self.noted_upto = state.noted_upto = max(self.noted_upto, state.folded_seq)
        if self.progress is not None and events:
            self.progress(len(events))
        if not events:
            return []
        if state.refolded:
            # A void's account was folded again: its signals and orders are the dirty
            # ones now (``pending.add``); one it no longer has must not be snapshotted.
            self.pending.signals = {k for k in self.pending.signals
                                    if k[0] not in state.refolded}
            self.pending.orders = {k for k in self.pending.orders
                                   if k[0] not in state.refolded}
        self.pending.add(state)
        if self.suffix:
            # A rebuild writes the keyed views' rows once, in ``rebuild_end``.
            return [*drain(state, self.suffix, keyed=False), *self._snapshot_if_due(state)]
        if state.folded_seq - self.flushed < self.defer_events:
            return []
        return self.flush()

    def _take_left_out(self, state: State) -> None:
        """Move the state's left-out notes to the runner (its first ``LEFT_OUT_KEPT``)."""
        room = max(0, LEFT_OUT_KEPT - len(self.left_out))
        self.left_out.extend(state.left_out[:room])
        self.left_out_count += state.left_out_count
        state.left_out.clear()
        state.left_out_count = 0

    def leave_out(self, seq: int, reason: str) -> None:
        """Leave the stored event ``seq`` out of the views from now on (its fold raised:
        ``reason``), and start the fold again from a state that never saw it: the
        tables' (reloaded) or, in a rebuild, an empty one. The caller folds the log
        again from ``checkpoint``; a rebuild that meets the same event leaves it out the
        same way, so rebuilding gives the same rows."""
        self.failed[seq] = reason
        if self.state is not None:
            self.noted_upto = max(self.noted_upto, self.state.folded_seq)
        if self.suffix:
            self.state = State(noted_upto=self.noted_upto)
            self.pending = Pending()
            self.snapshot_seq = 0
        else:
            self.state = None

    def flush(self) -> list[Statement]:
        """The writes of every row folded since the last flush, any snapshot due, and
        the checkpoint; ``[]`` when the tables are current. Run them before ``COMMIT``."""
        state = self.state
        if state is None or (state.folded_seq <= self.flushed and not dirty(state)):
            return []
        self.recent = (set(state.dirty_signals), set(state.dirty_orders))
        statements = [*drain(state), *self._snapshot_if_due(state),
                      checkpoint_statement(state.folded_seq)]
        self.flushed = state.folded_seq
        return statements

    def _snapshot_if_due(self, state: State) -> list[Statement]:
        """The snapshot statements when ``SNAPSHOT_EVERY`` events have been folded since
        the last one, else ``[]``."""
        if state.folded_seq - self.snapshot_seq >= SNAPSHOT_EVERY:
            return self.snapshot(state)
        return []

    def snapshot(self, state: State) -> list[Statement]:
        """The snapshot rows for the state now (``snapshots`` module), due or not. They
        run after the group's own row writes, so a copy from a view table sees it too.
        On the live tables (not a rebuild's) the signal and order versions are copied
        from them by key (``version_by_key_sql``), and with ``table_snapshots`` (a
        SQLite connection given ``snapshots.use_table_snapshots``) SQLite makes the
        payload from them (``snapshot_sql``): the same rows as from the state, in a
        fraction of the commit's time, and no row loaded into the state to be copied."""
        suffix, seq = self.suffix, state.folded_seq
        from_tables = self.table_snapshots and not suffix
        with localcontext(DECIMAL_CONTEXT):
            statements = [payload_statement(state, seq, suffix, from_tables)]
            if self.need_base or (self.gap_from is not None and
                                  seq - self.gap_from > 4 * SNAPSHOT_EVERY):
                # What changed before this runner started is not known: every row.
                statements.extend((copy_all_sql(name), [(seq,)])
                                  for name in ("signals", "orders"))
            else:
                if self.gap_from is not None and self.lookup is not None:
                    add_gap(self.pending, state, self.lookup.chunks(GAP_SQL, [self.gap_from]),
                            not suffix)
                statements.extend(version_statements(self.pending, state, seq, suffix,
                                                     not suffix))
        self.pending = Pending()
        self.snapshot_seq = seq
        self.need_base = False
        self.gap_from = None
        return statements

    def discard(self) -> None:
        """Forget the in-memory state after a rollback (it is reloaded from the tables).
        A rolled-back rebuild also leaves its ``<view>__rebuild`` tables uncreated, so the
        runner goes back to writing the real tables with a checkpoint.
        """
        self.state = None
        self.suffix = ""

    # ------------------------------------------------------------- rebuilding

    def rebuild_begin(self, suffix: str = "__rebuild") -> list[str]:
        """Start a rebuild into fresh ``<view><suffix>`` tables: SQL to create them."""
        self.suffix = suffix
        self.state = State()
        self.pending = Pending()
        self.snapshot_seq = 0
        self.need_base = False
        statements = [f"DROP TABLE IF EXISTS {name}{suffix}" for name in snapshot_tables()]
        statements.extend(snapshot_ddl(suffix))
        for table in t.TABLES:
            statements.append(f"DROP TABLE IF EXISTS {table.name}{suffix}")
            statements.extend(table.ddl(suffix))
        return statements

    def rebuild_end(self) -> list[Statement]:
        """Finish a rebuild: write the folded state, swap the new tables in, checkpoint."""
        assert self.state is not None
        suffix = self.suffix
        mark_all_dirty(self.state)
        statements = drain(self.state, suffix)
        for table in t.TABLES:
            statements.append((f"DROP TABLE IF EXISTS {table.name}", [()]))
            statements.append((f"ALTER TABLE {table.name}{suffix} RENAME TO {table.name}", [()]))
            for index in table.indexes:
                statements.append((f"DROP INDEX IF EXISTS {table.index_name(index, suffix)}",
                                   [()]))
            statements.extend((sql, [()]) for sql in table.ddl())
        for name in snapshot_tables():
            statements.append((f"DROP TABLE IF EXISTS {name}", [()]))
            statements.append((f"ALTER TABLE {name}{suffix} RENAME TO {name}", [()]))
        statements.append((CHECKPOINT_DDL, [()]))
        statements.append(checkpoint_statement(self.state.folded_seq))
        self.suffix = ""
        self.flushed = self.state.folded_seq
        self.stored_version = PROJECTION_VERSION
        return statements
