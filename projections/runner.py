"""The runner: keeps the view tables and their checkpoint in the append's transaction.

``ViewRunner`` implements ``eventstore.ViewUpdater``: the recorder hands it each group of
newly stored events inside the write transaction; it folds them into its in-memory
state and returns the row writes plus the checkpoint (last folded ``seq``) as SQL
statements, which the recorder executes before ``COMMIT``. A crash at any point leaves
views and log consistent: either both the events and their rows are committed, or
neither. On start it loads the state from the tables and folds only what the log holds
past the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import localcontext
from typing import Any

from eventstore.record import StoredEvent
from eventstore.recorder import Statement
from projections import tables as t
from projections.fold import PROJECTION_VERSION, apply
from projections.state import State
from schemas.values import DECIMAL_CONTEXT

__all__ = ["CHECKPOINT_DDL", "ViewRunner", "checkpoint_statement"]

CHECKPOINT_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_checkpoint "
    "(name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID"
)


def checkpoint_statement(last_seq: int) -> Statement:
    return ("INSERT OR REPLACE INTO projection_checkpoint (name, last_seq, version) "
            "VALUES ('views', ?, ?)", [(last_seq, PROJECTION_VERSION)])


def drain(state: State, suffix: str = "") -> list[Statement]:
    """The writes for every row the fold touched since the last drain; clears the marks.

    Rows are made in the money context (``DECIMAL_CONTEXT``): derived columns such as
    ``balance``, ``equity`` and ``loss_used`` are exact, never rounded to Python's
    default 28 digits.
    """
    with localcontext(DECIMAL_CONTEXT):
        return _drain(state, suffix)


def _drain(state: State, suffix: str) -> list[Statement]:
    statements: list[Statement] = []
    if state.trades:
        statements.append((t.TRADES.upsert_sql(suffix), [t.trade_row(x) for x in state.trades]))
        state.trades.clear()
    if state.journal:
        statements.append((t.JOURNAL.upsert_sql(suffix),
                           [t.journal_row(x) for x in state.journal]))
        state.journal.clear()
    if state.dirty_positions:
        upserts, deletes = [], []
        for account, key in state.dirty_positions:
            found = state.positions.get(account, {}).get(key)
            if found is None:
                deletes.append((account, key))
            else:
                upserts.append(t.position_row(found))
        if deletes:
            statements.append((t.POSITIONS.delete_sql(suffix), deletes))
        if upserts:
            statements.append((t.POSITIONS.upsert_sql(suffix), upserts))
        state.dirty_positions.clear()
    if state.dirty_accounts:
        statements.append((t.BALANCES.upsert_sql(suffix),
                           [t.balance_row(state.accounts[a]) for a in state.dirty_accounts]))
        state.dirty_accounts.clear()
    if state.dirty_marks:
        statements.append((t.PRICES.upsert_sql(suffix),
                           [t.price_row(state.accounts[a], s) for a, s in state.dirty_marks]))
        state.dirty_marks.clear()
    if state.dirty_daily:
        statements.append((t.DAILY.upsert_sql(suffix),
                           [t.daily_row(state.daily[key]) for key in state.dirty_daily]))
        state.dirty_daily.clear()
    if state.dirty_signals:
        statements.append((t.SIGNALS.upsert_sql(suffix),
                           [t.signal_row(state.signals[key]) for key in state.dirty_signals]))
        state.dirty_signals.clear()
    if state.dirty_orders:
        statements.append((t.ORDERS.upsert_sql(suffix),
                           [t.order_row(state.orders[key]) for key in state.dirty_orders]))
        state.dirty_orders.clear()
    return statements


def mark_all_dirty(state: State) -> None:
    """Mark every row of ``state`` for writing (to dump a whole state into empty tables)."""
    state.dirty_accounts.update(state.accounts)
    state.dirty_positions.update(
        (a, k) for a, keys in state.positions.items() for k in keys)
    state.dirty_daily.update(state.daily)
    state.dirty_signals.update(state.signals)
    state.dirty_orders.update(state.orders)
    state.dirty_marks.update(
        (a.account, s) for a in state.accounts.values() for s in {*a.marks, *a.last_fills})


class ViewRunner:
    """Folds appended events into the views in the recorder's transaction.

    ``state`` is None until loaded from the tables (and after a rollback, which may
    have left it ahead of what is committed).
    """

    def __init__(self) -> None:
        self.state: State | None = None
        self.stored_version: int | None = None
        self.suffix = ""
        self.progress: Callable[[int], None] | None = None

    @property
    def position(self) -> int:
        return self.state.position if self.state is not None else 0

    def needs_load(self) -> bool:
        return self.state is None

    def ddl(self) -> list[str]:
        statements = [CHECKPOINT_DDL]
        for table in t.TABLES:
            statements.extend(table.ddl())
        return statements

    def load_queries(self) -> list[str]:
        return [
            "SELECT last_seq, version FROM projection_checkpoint WHERE name = 'views'",
            t.BALANCES.select_sql(),
            t.PRICES.select_sql(),
            t.POSITIONS.select_sql(),
            t.DAILY.select_sql(),
            t.SIGNALS.select_sql(),
            t.ORDERS.select_sql(),
        ]

    def restore(self, results: list[list[tuple[Any, ...]]]) -> None:
        with localcontext(DECIMAL_CONTEXT):
            self._restore(results)

    def _restore(self, results: list[list[tuple[Any, ...]]]) -> None:
        checkpoint, balances, prices, positions, daily, signals, orders = results
        state = State()
        if checkpoint:
            state.position, self.stored_version = checkpoint[0]
        for row in balances:
            state.accounts[row[0]] = t.account_from(row)
        for account, symbol, mark, last_fill in prices:
            holder = state.accounts[account]
            if mark is not None:
                holder.marks[symbol] = t.dec(mark)
            if last_fill is not None:
                holder.last_fills[symbol] = t.dec(last_fill)
        for row in positions:
            position = t.position_from(row)
            state.positions.setdefault(position.account, {})[position.position_key] = position
        for row in daily:
            found = t.daily_from(row)
            state.daily[(found.account, found.date)] = found
        for row in signals:
            signal = t.signal_from(row)
            state.signals[(signal.account, signal.signal_id)] = signal
        for row in orders:
            order = t.order_from(row)
            state.orders[(order.account, order.order_id)] = order
        self.state = state

    def fold(self, events: Sequence[StoredEvent]) -> list[Statement]:
        if self.state is None:
            self.state = State()
        state = self.state
        for event in events:
            state = apply(state, event)
        self.state = state
        if self.progress is not None and events:
            self.progress(len(events))
        if not events:
            return []
        statements = drain(state, self.suffix)
        if not self.suffix:
            statements.append(checkpoint_statement(state.position))
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
        statements = []
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
                name = "_".join(index)
                statements.append((f"DROP INDEX IF EXISTS {table.name}{suffix}_{name}", [()]))
            statements.extend((sql, [()]) for sql in table.ddl())
        statements.append((CHECKPOINT_DDL, [()]))
        statements.append(checkpoint_statement(self.state.position))
        self.suffix = ""
        self.stored_version = PROJECTION_VERSION
        return statements
