"""The views as SQLite tables: columns, DDL, and rows to and from the fold state.

Every table has the view's EVENTS.md fields first (what ``query`` returns), then any
internal columns the fold needs to resume after a restart. Decimals are stored as TEXT
in canonical form (exact; cast in SQL with ``CAST(x AS REAL)`` or DuckDB ``DECIMAL``),
times as RFC 3339 UTC text, booleans as 0/1, lists and ``attrs`` objects as JSON text
(query ``attrs`` with SQLite's JSON functions, e.g. ``attrs ->> '$.segment'``).
docs/SCHEMA.md describes each column. The ``accounts`` view's table is ``account_info``
(the event store's own ``accounts`` table counts events for ``expected_version``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

from schemas.values import format_decimal

__all__ = ["REFOLDED_TABLES", "TABLES", "VIEWS", "Table", "by_time", "dec", "dec_or_none",
           "json_or_none", "text_dec"]


def text_dec(value: Decimal | None) -> str | None:
    """A decimal as stored: canonical text, or NULL."""
    return None if value is None else format_decimal(value)


def dec(value: str) -> Decimal:
    """Stored decimal text as an exact ``Decimal``; raises ``decimal.InvalidOperation`` if bad."""
    return Decimal(value)


def dec_or_none(value: str | None) -> Decimal | None:
    """As ``dec``, with NULL (None) kept as None."""
    return None if value is None else Decimal(value)


def json_text(value: Any) -> str | None:
    """A JSON value (``attrs``, ``parameters``) as stored: compact text with sorted keys
    (the same row whether folded from a new event or from the log), or NULL for None;
    non-ASCII is kept as is."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def json_or_none(value: str | None) -> Any:
    """Stored JSON text back as its value; NULL (None) kept as None."""
    return None if value is None else json.loads(value)


@dataclass(frozen=True)
class Table:
    """One view table: ``columns`` as (name, kind) with kind in text/dec/int/bool/json;
    the first ``public`` columns are the view's fields; ``key`` the primary key."""

    name: str
    columns: tuple[tuple[str, str], ...]
    public: int
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> list[str]:
        """Every column name, in table order (public fields first)."""
        return [name for name, _ in self.columns]

    @property
    def fields(self) -> list[str]:
        """The view's EVENTS.md fields: the first ``public`` column names."""
        return self.column_names[: self.public]

    def ddl(self, suffix: str = "") -> list[str]:
        """``CREATE TABLE``/``CREATE INDEX IF NOT EXISTS`` statements for ``name + suffix``.

        Decimals, text and JSON are TEXT, ints and bools INTEGER; WITHOUT ROWID unless the key
        is one integer column.
        """
        kinds = {"text": "TEXT", "dec": "TEXT", "int": "INTEGER", "bool": "INTEGER",
                 "json": "TEXT"}
        columns = ", ".join(f"{name} {kinds[kind]}" for name, kind in self.columns)
        kind_of = dict(self.columns)
        integer_key = len(self.key) == 1 and kind_of[self.key[0]] == "int"
        rowid = "" if integer_key else " WITHOUT ROWID"
        statements = [f"CREATE TABLE IF NOT EXISTS {self.name}{suffix} ({columns}, "
                      f"PRIMARY KEY ({', '.join(self.key)})){rowid}"]
        for index in self.indexes:
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {self.index_name(index, suffix)} "
                f"ON {self.name}{suffix} ({', '.join(index)})")
        return statements

    def index_name(self, index: tuple[str, ...], suffix: str = "") -> str:
        """The name of one of ``indexes`` on ``name + suffix``: the table's name and the
        index's terms joined by ``_`` (an expression's ``by_time(c)`` as ``c_time``)."""
        terms = [_INDEX_TERM.get(term, term) for term in index]
        return f"{self.name}{suffix}_{'_'.join(terms)}"

    def upsert_sql(self, suffix: str = "") -> str:
        """``INSERT OR REPLACE`` of a whole row (every column, ``?`` placeholders)."""
        marks = ", ".join("?" * len(self.columns))
        return (f"INSERT OR REPLACE INTO {self.name}{suffix} ({', '.join(self.column_names)}) "
                f"VALUES ({marks})")

    def delete_sql(self, suffix: str = "") -> str:
        """``DELETE`` of one row by its primary key (one ``?`` per key column)."""
        where = " AND ".join(f"{name} = ?" for name in self.key)
        return f"DELETE FROM {self.name}{suffix} WHERE {where}"

    def select_sql(self) -> str:
        """``SELECT`` of every column of every row, in no set order."""
        return f"SELECT {', '.join(self.column_names)} FROM {self.name}"

    @cached_property
    def _wire(self) -> tuple[list[str], list[tuple[str, str]]]:
        """The public column names, and those of them whose stored value is converted."""
        public = self.columns[: self.public]
        return ([name for name, _ in public],
                [(name, kind) for name, kind in public if kind in ("bool", "json")])

    def to_wire(self, row: Iterable[Any]) -> dict[str, Any]:
        """A stored row (public columns first) as the JSON object ``query`` returns."""
        names, converted = self._wire
        out = dict(zip(names, row, strict=False))
        for name, kind in converted:
            value = out.get(name)
            if value is not None:
                out[name] = bool(value) if kind == "bool" else json.loads(value)
        return out


def by_time(column: str) -> str:
    """The SQL expression that sorts a time column (RFC 3339 UTC text, ``Z``, six
    fraction digits or none) in time order: the text without its ``Z``, since
    ``...00Z`` > ``...00.500000Z`` as text but ``...00`` < ``...00.500000``. ``query``
    orders and bounds by it, and the indexes below are on it."""
    return f"rtrim({column}, 'Z')"


_TIME_COLUMNS = ("opened_at", "closed_at", "created_at", "updated_at", "time")
_INDEX_TERM = {by_time(c): f"{c}_time" for c in _TIME_COLUMNS}


def _cols(spec: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in spec.split():
        name, _, kind = item.partition(":")
        pairs.append((name, kind or "text"))
    return tuple(pairs)


POSITIONS = Table(
    "positions",
    _cols("account position_key symbol side quantity:dec avg_price:dec multiplier:dec "
          "opened_at last_fill_at realized_pnl:dec fees:dec mark_price:dec "
          "unrealized_pnl:dec signal_id stop_loss:dec take_profit:dec strategy venue "
          "asset_class attrs:json "
          "trade_id opened_seq:int gross_pnl:dec max_quantity:dec open_quantity:dec "
          "open_notional:dec close_quantity:dec close_notional:dec exit_reason exit_detail"),
    public=20, key=("account", "position_key"),
    indexes=(("account", "symbol", by_time("opened_at")), ("account", by_time("opened_at")),
             ("account", "strategy", by_time("opened_at"))))
TRADES = Table(
    "trades",
    _cols("account trade_id position_key symbol side quantity:dec entry_price:dec "
          "exit_price:dec opened_at closed_at holding_seconds:int gross_pnl:dec fees:dec "
          "net_pnl:dec return_pct:dec exit_reason exit_detail signal_id strategy venue "
          "asset_class attrs:json closed_seq:int"),
    public=22, key=("closed_seq",),
    indexes=(("account", "closed_seq"), ("account", by_time("closed_at")),
             ("account", "symbol", by_time("closed_at")), (by_time("closed_at"),),
             ("symbol", by_time("closed_at")), ("account", "strategy", by_time("closed_at"))))
BALANCES = Table(
    "balances",
    _cols("account cash:dec realized_pnl:dec balance:dec unrealized_pnl:dec equity:dec "
          "open_positions:int timezone daily_loss_limit:dec max_open_positions:int "
          "trading_blocked:bool limits_attrs:json"),
    public=7, key=("account",))
DAILY = Table(
    "daily",
    _cols("account date realized_pnl:dec gross_profit:dec gross_loss:dec fees:dec "
          "trades_closed:int wins:int losses:int signals:int fills:int loss_used:dec "
          "daily_loss_limit:dec limit_hit:bool trading_blocked:bool cash_flow:dec "
          "unrealized_pnl:dec equity:dec"),
    public=18, key=("account", "date"))
SIGNALS = Table(
    "signals",
    _cols("account signal_id strategy symbol side status entry_price:dec stop_loss:dec "
          "take_profit:dec confidence:dec timeframe expires_at note parent_signal_id "
          "created_at updated_at reason attrs:json last_status"),
    public=18, key=("account", "signal_id"),
    indexes=(("account", by_time("created_at")), ("account", "status", by_time("created_at")),
             ("account", "symbol", by_time("created_at")), ("account", by_time("updated_at")),
             (by_time("created_at"),), ("account", "strategy", by_time("created_at"))))
ORDERS = Table(
    "orders",
    _cols("account order_id symbol side order_type quantity:dec filled_quantity:dec "
          "limit_price:dec stop_price:dec status signal_id created_at updated_at attrs:json "
          "position_id last_status"),
    public=14, key=("account", "order_id"),
    indexes=(("account", by_time("created_at")), ("account", "status", by_time("created_at")),
             ("account", "symbol", by_time("created_at")), ("account", by_time("updated_at")),
             (by_time("created_at"),)))
JOURNAL = Table(
    "journal",
    _cols("account seq:int time text tags:json symbol position_id signal_id attrs:json"),
    public=9, key=("seq",),
    indexes=(("account", "seq"), ("account", "symbol", "seq"), ("account", by_time("time"))))
HISTORY = Table(
    "history",
    _cols("account seq:int time entity entity_id status previous_status reason price:dec "
          "attrs:json"),
    public=10, key=("seq",),
    indexes=(("account", "seq"), ("account", "entity", "entity_id", "seq"),
             ("account", by_time("time"))))
INSTRUMENTS = Table(
    "instruments",
    _cols("account symbol venue asset_class currency multiplier:dec tick_size:dec "
          "lot_size:dec underlying expiry strike:dec option_type description attrs:json "
          "updated_at"),
    public=15, key=("account", "symbol"), indexes=(("account", by_time("updated_at")),))
ACCOUNTS = Table(
    "account_info",
    _cols("account name kind broker currency benchmark description attrs:json "
          "first_event_at last_event_at events:int"),
    public=11, key=("account",))
STRATEGIES = Table(
    "strategies",
    _cols("account strategy description parameters:json active:bool attrs:json "
          "signals:int updated_at"),
    public=8, key=("account", "strategy"), indexes=(("account", by_time("updated_at")),))
PRICES = Table(
    "prices",
    _cols("account symbol mark_price:dec last_fill_price:dec"),
    public=4, key=("account", "symbol"))
VOIDS = Table(
    "view_voids",
    _cols("seq:int account target_seq:int"),
    public=3, key=("seq",))
"""Internal: the voids folded, so that ``as_of`` knows which stored rows a later void
changed (``projections.query``)."""

VIEWS: dict[str, Table] = {
    "positions": POSITIONS,
    "trades": TRADES,
    "balances": BALANCES,
    "daily": DAILY,
    "signals": SIGNALS,
    "orders": ORDERS,
    "journal": JOURNAL,
    "history": HISTORY,
    "instruments": INSTRUMENTS,
    "accounts": ACCOUNTS,
    "strategies": STRATEGIES,
}
"""The views of EVENTS.md, by the name ``query`` takes."""
TABLES: tuple[Table, ...] = (*VIEWS.values(), PRICES, VOIDS)
REFOLDED_TABLES: tuple[Table, ...] = (*VIEWS.values(), PRICES)
"""The tables holding an account's rows, all rewritten when a void folds it again."""
