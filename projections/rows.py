"""Rows of the view tables to and from the fold's state, by column name. Pure.

Each view table has one ``RowCodec``: it builds a row tuple from a state object by
reading the attribute of each column's name (``projections.tables`` declares the
columns, and their order, once), stores each value as its column's kind says
(``text_dec``, ``json_text``, 0/1), and reads a stored row back into the object by the
same names. A column whose value is not an attribute of the same name (``side`` of a
position, the fields of an ``account`` event) is given by a function of the object; a
column that is not a field of the object's class (``balance``, ``equity``,
``loss_used``) is derived from the fields (a property of the class) and not read back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

from projections import tables as t
from projections.catalog import ACCOUNT_FIELDS
from projections.state import (
    AccountState,
    DailyRow,
    HistoryRow,
    InstrumentRow,
    JournalRow,
    OrderRow,
    Position,
    SignalRow,
    StrategyRow,
    TradeRow,
)
from projections.tables import dec_or_none, json_or_none, json_text, text_dec

__all__ = ["ACCOUNTS", "PriceRow", "RowCodec", "account_from", "account_info_into",
           "account_row", "balance_row", "daily_from", "daily_row", "history_row",
           "instrument_from", "instrument_row", "journal_row", "order_from", "order_row",
           "position_from", "position_row", "price_from", "price_row", "signal_from",
           "signal_row", "strategy_from", "strategy_row", "trade_row"]

T = TypeVar("T")


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


_STORE: dict[str, Callable[[Any], Any] | None] = {
    "text": None, "int": None, "dec": text_dec, "json": json_text, "bool": _flag}
"""A value as its column's kind stores it (None: as it is)."""
_LOAD: dict[str, Callable[[Any], Any] | None] = {
    "text": None, "int": None, "dec": dec_or_none, "json": json_or_none, "bool": _bool}
"""A stored value back as the state holds it (None: as it is)."""


class RowCodec(Generic[T]):
    """One view table's rows to and from objects of ``kind``, by column name.

    ``given``: column name -> function of the object, for a column that is not an
    attribute of the same name (its value is stored as the function gives it).

    ``row`` and ``load`` are compiled once from the column names, in the way of
    ``dataclasses`` and ``namedtuple`` (one generated function each, the columns named
    in it as the table declares them): rows are built for every changed row of every
    flush, so a per-column loop of calls would be paid many times over.
    """

    def __init__(self, table: t.Table, kind: type[T],
                 given: Mapping[str, Callable[[T], Any]] | None = None) -> None:
        given = given or {}
        self.table = table
        self.kind = kind
        own = set(getattr(kind, "_fields", ())) or {f.name for f in fields(kind)}  # type: ignore[arg-type]
        space: dict[str, Any] = {"kind": kind, "given": dict(given),
                                 **{f"store_{k}": f for k, f in _STORE.items() if f},
                                 **{f"load_{k}": f for k, f in _LOAD.items() if f}}
        out = []
        for name, column_kind in table.columns:
            if name in given:
                out.append(f"given[{name!r}](item)")
            elif _STORE[column_kind] is None:
                out.append(f"item.{name}")
            else:
                out.append(f"store_{column_kind}(item.{name})")
        back = []
        for index, (name, column_kind) in enumerate(table.columns):
            if name in own:
                value = f"row[{index}]"
                back.append(f"{name}={value}" if _LOAD[column_kind] is None
                            else f"{name}=load_{column_kind}({value})")
        source = (f"def row(item):\n    return ({', '.join(out)},)\n"
                  f"def load(row):\n    return kind({', '.join(back)})\n")
        exec(compile(source, f"<rows of {table.name}>", "exec"), space)
        self.row: Callable[[T], tuple[Any, ...]] = space["row"]
        """``item`` as its stored row, the columns in the table's order."""
        self.load: Callable[[tuple[Any, ...]], T] = space["load"]
        """A stored row back as a ``kind``."""

    def named(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """A stored row (every column, in the table's order) by column name, as stored."""
        return dict(zip(self.table.column_names, row, strict=True))

    def index(self, name: str) -> int:
        """The place of column ``name`` in a row."""
        return self.table.column_names.index(name)


class PriceRow(NamedTuple):
    """A ``prices`` row: the latest mark and fill price of a symbol (per unit; None if none)."""

    account: str
    symbol: str
    mark_price: Decimal | None
    last_fill_price: Decimal | None


def _definition(name: str) -> Callable[[AccountState], Any]:
    """The ``accounts`` column ``name``: that field of the latest ``account`` event (the
    defaults, kind ``live``, when there was none); ``attrs`` as JSON text."""
    def get(a: AccountState) -> Any:
        value = (a.definition or {"kind": "live"}).get(name)
        return json_text(value) if name == "attrs" else value
    return get


POSITIONS = RowCodec(t.POSITIONS, Position, {
    "side": lambda p: "long" if p.quantity > 0 else "short",
    "quantity": lambda p: text_dec(abs(p.quantity))})
"""An open position: side from the sign of its quantity, the quantity unsigned."""
TRADES = RowCodec(t.TRADES, TradeRow)
BALANCES = RowCodec(t.BALANCES, AccountState)
"""``balance`` and ``equity`` are ``AccountState``'s properties (the formula is there)."""
ACCOUNTS = RowCodec(t.ACCOUNTS, AccountState, {name: _definition(name) for name in ACCOUNT_FIELDS})
DAILY = RowCodec(t.DAILY, DailyRow)
"""``loss_used`` and ``limit_hit`` are ``DailyRow``'s properties."""
SIGNALS = RowCodec(t.SIGNALS, SignalRow)
ORDERS = RowCodec(t.ORDERS, OrderRow)
JOURNAL = RowCodec(t.JOURNAL, JournalRow, {
    "tags": lambda j: None if j.tags is None else json.dumps(j.tags, ensure_ascii=False)})
"""``tags`` as JSON text as ``json.dumps`` writes a list (the form stored since 1.0)."""
HISTORY = RowCodec(t.HISTORY, HistoryRow)
INSTRUMENTS = RowCodec(t.INSTRUMENTS, InstrumentRow)
STRATEGIES = RowCodec(t.STRATEGIES, StrategyRow)
PRICES = RowCodec(t.PRICES, PriceRow)

_SIDE = POSITIONS.index("side")

# ------------------------------------------------------------ state -> row tuples

position_row = POSITIONS.row
trade_row = TRADES.row
balance_row = BALANCES.row
account_row = ACCOUNTS.row
daily_row = DAILY.row
signal_row = SIGNALS.row
order_row = ORDERS.row
journal_row = JOURNAL.row
history_row = HISTORY.row
instrument_row = INSTRUMENTS.row
strategy_row = STRATEGIES.row


def price_row(a: AccountState, symbol: str) -> tuple[Any, ...]:
    """The ``prices`` row of ``symbol`` in the account."""
    return PRICES.row(PriceRow(a.account, symbol, a.marks.get(symbol), a.last_fills.get(symbol)))


# ------------------------------------------------------------ row tuples -> state

def position_from(r: tuple[Any, ...]) -> Position:
    """A ``positions`` row back as the open ``Position`` (signed quantity from ``side``)."""
    position = POSITIONS.load(r)
    if r[_SIDE] != "long":
        position.quantity = -position.quantity
    return position


def account_from(r: tuple[Any, ...]) -> AccountState:
    """A ``balances`` row back as ``AccountState``, without marks and fill prices (``prices``)."""
    return BALANCES.load(r)


def account_info_into(a: AccountState, r: tuple[Any, ...]) -> None:
    """Put an ``accounts`` row (``account_row``) back into its ``AccountState``."""
    named = ACCOUNTS.named(r)
    values = {name: named[name] for name in ACCOUNT_FIELDS}
    values["attrs"] = json_or_none(values["attrs"])
    a.definition = None if all(v is None for k, v in values.items() if k != "kind") \
        and values["kind"] == "live" else values
    a.first_event_at, a.last_event_at = named["first_event_at"], named["last_event_at"]
    a.events = named["events"]


daily_from = DAILY.load
signal_from = SIGNALS.load
order_from = ORDERS.load
instrument_from = INSTRUMENTS.load
strategy_from = STRATEGIES.load


def price_from(r: tuple[Any, ...]) -> PriceRow:
    """A ``prices`` row back as its ``PriceRow`` (decimals exact)."""
    return PRICES.load(r)
