"""Loading the views' state back from their tables (at start, after a rollback): the
SELECTs and how their rows refill a ``State``. Pure: the caller runs the SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from projections import rows
from projections import tables as t
from projections.state import State

__all__ = ["Lookup", "fill_state", "load_queries"]

Rows = Sequence[tuple[Any, ...]]


class Lookup(Protocol):
    """Reads of the view tables on the connection that folds (it sees its own transaction)."""

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of ``sql`` run with ``params``, as tuples in column order."""
        ...

    def chunks(self, sql: str, params: Sequence[Any]) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``sql`` run with ``params``, lazily, as lists of rows (chunks)."""
        ...


def load_queries(on_demand: bool) -> list[str]:
    """The SELECTs a runner restores from, in this order: checkpoint, balances, prices,
    positions, daily, signals, orders (no rows when ``on_demand``: those load by key as
    the fold asks), the last snapshot seq, accounts, instruments and strategies."""
    return [
        "SELECT last_seq, version FROM projection_checkpoint WHERE name = 'views'",
        t.BALANCES.select_sql(),
        t.PRICES.select_sql(),
        t.POSITIONS.select_sql(),
        t.DAILY.select_sql(),
        t.SIGNALS.select_sql() + (" WHERE 0" if on_demand else ""),
        t.ORDERS.select_sql() + (" WHERE 0" if on_demand else ""),
        "SELECT coalesce(max(seq), 0) FROM view_snapshots",
        t.ACCOUNTS.select_sql(),
        t.INSTRUMENTS.select_sql(),
        t.STRATEGIES.select_sql(),
    ]


def fill_state(state: State, balances: Rows, prices: Rows, accounts: Rows, instruments: Rows,
               strategies: Rows, positions: Rows, daily: Rows, signals: Rows,
               orders: Rows) -> None:
    """Put the rows of each view table (as ``load_queries`` read them) into ``state``.
    Call in ``DECIMAL_CONTEXT``."""
    for row in balances:
        account = rows.account_from(row)
        state.accounts[account.account] = account
    for row in prices:
        price = rows.price_from(row)
        holder = state.accounts[price.account]
        if price.mark_price is not None:
            holder.marks[price.symbol] = price.mark_price
        if price.last_fill_price is not None:
            holder.last_fills[price.symbol] = price.last_fill_price
    for row in accounts:
        name = rows.ACCOUNTS.named(row)["account"]
        if name in state.accounts:
            rows.account_info_into(state.accounts[name], row)
    for row in instruments:
        instrument = rows.instrument_from(row)
        state.instruments[(instrument.account, instrument.symbol)] = instrument
    for row in strategies:
        strategy = rows.strategy_from(row)
        state.strategies[(strategy.account, strategy.strategy)] = strategy
    for row in positions:
        state.add_position(rows.position_from(row))
    for row in daily:
        found = rows.daily_from(row)
        state.daily[(found.account, found.date)] = found
    for row in signals:
        signal = rows.signal_from(row)
        state.signals[(signal.account, signal.signal_id)] = signal
    for row in orders:
        order = rows.order_from(row)
        state.orders[(order.account, order.order_id)] = order
