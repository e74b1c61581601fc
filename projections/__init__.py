"""The views folded from the event log: positions, trades, balances, daily, signals,
orders, journal, history, instruments, accounts and strategies, kept as plain SQLite
tables in the same file."""

from projections.fold import PROJECTION_VERSION, apply, fold
from projections.query import ViewQuery, query_view
from projections.runner import ViewRunner
from projections.state import State
from projections.tables import VIEWS

__all__ = ["PROJECTION_VERSION", "VIEWS", "State", "ViewQuery", "ViewRunner", "apply", "fold",
           "query_view"]
