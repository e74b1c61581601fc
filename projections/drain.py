"""The views' row writes: what a fold touched, as SQL statements, and the checkpoint.

``drain`` turns the rows the fold marked dirty into upserts and deletes, one block per
view (a new view adds its block here and its table in ``projections.tables``).
"""

from __future__ import annotations

from decimal import localcontext

from eventstore.follow import Statement
from projections import rows
from projections import tables as t
from projections.fold import PROJECTION_VERSION
from projections.state import State
from schemas.values import DECIMAL_CONTEXT

__all__ = ["CHECKPOINT_DDL", "checkpoint_statement", "clear_marks", "drain", "dirty",
           "mark_all_dirty"]

CHECKPOINT_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_checkpoint "
    "(name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID"
)


def checkpoint_statement(last_seq: int) -> Statement:
    """The statement recording ``last_seq`` and ``PROJECTION_VERSION`` as the views' checkpoint."""
    return ("INSERT OR REPLACE INTO projection_checkpoint (name, last_seq, version) "
            "VALUES ('views', ?, ?)", [(last_seq, PROJECTION_VERSION)])


_MARK_SQL = ("UPDATE positions{suffix} SET mark_price = ?, unrealized_pnl = ? "
             "WHERE account = ? AND position_key = ?")
"""A position that only a mark (or a fill of its symbol in another position) moved:
two columns, no index touched (``REPLACE`` of the whole row rewrites every index)."""


def drain(state: State, suffix: str = "", keyed: bool = True) -> list[Statement]:
    """The writes for every row the fold touched since the last drain; clears the marks.

    ``keyed=False`` writes only the append-only rows (trades, journal) and drops the
    marks of the keyed views: a rebuild writes those once, at its end.

    Rows are made in the money context (``DECIMAL_CONTEXT``): derived columns such as
    ``balance``, ``equity`` and ``loss_used`` are exact, never rounded to Python's
    default 28 digits.
    """
    with localcontext(DECIMAL_CONTEXT):
        return _drain(state, suffix, keyed)


def clear_marks(state: State) -> None:
    """Forget which rows the fold touched (nothing is written for them)."""
    for marks in (state.dirty_positions, state.marked_positions, state.dirty_accounts,
                  state.dirty_marks, state.dirty_daily, state.dirty_signals,
                  state.dirty_orders, state.dirty_instruments, state.dirty_strategies):
        marks.clear()


def _drain_refolded(state: State, suffix: str) -> list[Statement]:
    """Delete every row of the accounts a void folded again (their rows are all marked
    for writing), before any other write of the drain."""
    accounts = [(account,) for account in sorted(state.refolded)]
    state.refolded.clear()
    return [(f"DELETE FROM {table.name}{suffix} WHERE account = ?", accounts)
            for table in t.REFOLDED_TABLES]


def _drain(state: State, suffix: str, keyed: bool = True) -> list[Statement]:
    statements: list[Statement] = []
    if state.refolded:
        statements.extend(_drain_refolded(state, suffix))
    if state.history:
        statements.append((t.HISTORY.upsert_sql(suffix),
                           [rows.history_row(x) for x in state.history]))
        state.history.clear()
    if state.voids:
        statements.append((t.VOIDS.upsert_sql(suffix), state.voids[:]))
        state.voids.clear()
    if state.trades:
        statements.append((t.TRADES.upsert_sql(suffix), [rows.trade_row(x) for x in state.trades]))
        state.trades.clear()
    if state.journal:
        statements.append((t.JOURNAL.upsert_sql(suffix),
                           [rows.journal_row(x) for x in state.journal]))
        state.journal.clear()
    if not keyed:
        clear_marks(state)
        return statements
    if state.dirty_positions:
        upserts, deletes = [], []
        for account, key in state.dirty_positions:
            found = state.positions.get(account, {}).get(key)
            if found is None:
                deletes.append((account, key))
            else:
                upserts.append(rows.position_row(found))
        if deletes:
            statements.append((t.POSITIONS.delete_sql(suffix), deletes))
        if upserts:
            statements.append((t.POSITIONS.upsert_sql(suffix), upserts))
    if state.marked_positions:
        marked = [
            (t.text_dec(found.mark_price), t.text_dec(found.unrealized_pnl), account, key)
            for account, key in state.marked_positions - state.dirty_positions
            if (found := state.positions.get(account, {}).get(key)) is not None]
        if marked:
            statements.append((_MARK_SQL.format(suffix=suffix), marked))
        state.marked_positions.clear()
    state.dirty_positions.clear()
    if state.dirty_accounts:
        accounts = [state.accounts[a] for a in state.dirty_accounts if a in state.accounts]
        statements.append((t.BALANCES.upsert_sql(suffix),
                           [rows.balance_row(a) for a in accounts]))
        statements.append((t.ACCOUNTS.upsert_sql(suffix),
                           [rows.account_row(a) for a in accounts]))
        state.dirty_accounts.clear()
    if state.dirty_instruments:
        statements.append((t.INSTRUMENTS.upsert_sql(suffix), [
            rows.instrument_row(state.instruments[k]) for k in state.dirty_instruments]))
        state.dirty_instruments.clear()
    if state.dirty_strategies:
        statements.append((t.STRATEGIES.upsert_sql(suffix), [
            rows.strategy_row(state.strategies[k]) for k in state.dirty_strategies]))
        state.dirty_strategies.clear()
    if state.dirty_marks:
        statements.append((t.PRICES.upsert_sql(suffix),
                           [rows.price_row(state.accounts[a], s) for a, s in state.dirty_marks]))
        state.dirty_marks.clear()
    if state.dirty_daily:
        statements.append((t.DAILY.upsert_sql(suffix),
                           [rows.daily_row(state.daily[key]) for key in state.dirty_daily]))
        state.dirty_daily.clear()
    if state.dirty_signals:
        statements.append((t.SIGNALS.upsert_sql(suffix),
                           [rows.signal_row(state.signals[key]) for key in state.dirty_signals]))
        state.dirty_signals.clear()
    if state.dirty_orders:
        statements.append((t.ORDERS.upsert_sql(suffix),
                           [rows.order_row(state.orders[key]) for key in state.dirty_orders]))
        state.dirty_orders.clear()
    return statements


def dirty(state: State) -> bool:
    """True when the fold touched any row since the last drain."""
    return bool(state.trades or state.journal or state.history or state.voids
                or state.refolded or state.dirty_positions or state.marked_positions
                or state.dirty_accounts or state.dirty_marks or state.dirty_daily
                or state.dirty_signals or state.dirty_orders or state.dirty_instruments
                or state.dirty_strategies)


def mark_all_dirty(state: State) -> None:
    """Mark every row of ``state`` for writing (to dump a whole state into empty tables)."""
    state.dirty_accounts.update(state.accounts)
    state.dirty_positions.update(
        (a, k) for a, keys in state.positions.items() for k in keys)
    state.dirty_daily.update(state.daily)
    state.dirty_signals.update(state.signals)
    state.dirty_orders.update(state.orders)
    state.dirty_instruments.update(state.instruments)
    state.dirty_strategies.update(state.strategies)
    state.dirty_marks.update(
        (a.account, s) for a in state.accounts.values() for s in {*a.marks, *a.last_fills})
