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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

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


# ------------------------------------------------------------ state -> row tuples

def position_row(p: Position) -> tuple[Any, ...]:
    """An open position as its ``positions`` row: side from the sign, quantity unsigned."""
    return (
        p.account, p.position_key, p.symbol, "long" if p.quantity > 0 else "short",
        text_dec(abs(p.quantity)), text_dec(p.avg_price), text_dec(p.multiplier),
        p.opened_at, p.last_fill_at, text_dec(p.realized_pnl), text_dec(p.fees),
        text_dec(p.mark_price), text_dec(p.unrealized_pnl), p.signal_id,
        text_dec(p.stop_loss), text_dec(p.take_profit), p.strategy, p.venue, p.asset_class,
        json_text(p.attrs), p.trade_id, p.opened_seq,
        text_dec(p.gross_pnl), text_dec(p.max_quantity), text_dec(p.open_quantity),
        text_dec(p.open_notional), text_dec(p.close_quantity), text_dec(p.close_notional),
        p.exit_reason, p.exit_detail,
    )


def trade_row(t: TradeRow) -> tuple[Any, ...]:
    """A closed round trip as its ``trades`` row."""
    return (
        t.account, t.trade_id, t.position_key, t.symbol, t.side, text_dec(t.quantity),
        text_dec(t.entry_price), text_dec(t.exit_price), t.opened_at, t.closed_at,
        t.holding_seconds, text_dec(t.gross_pnl), text_dec(t.fees), text_dec(t.net_pnl),
        text_dec(t.return_pct), t.exit_reason, t.exit_detail, t.signal_id, t.strategy,
        t.venue, t.asset_class, json_text(t.attrs), t.closed_seq,
    )


def balance_row(a: AccountState) -> tuple[Any, ...]:
    """An account as its ``balances`` row: balance = cash + realized_pnl, equity = + unrealized."""
    balance = a.cash + a.realized_pnl
    return (
        a.account, text_dec(a.cash), text_dec(a.realized_pnl), text_dec(balance),
        text_dec(a.unrealized_pnl), text_dec(balance + a.unrealized_pnl), a.open_positions,
        a.timezone, text_dec(a.daily_loss_limit), a.max_open_positions,
        int(a.trading_blocked), json_text(a.limits_attrs),
    )


def account_row(a: AccountState) -> tuple[Any, ...]:
    """An account as its ``accounts`` row: the latest ``account`` event's fields (the
    defaults, kind ``live``, when there was none) and its event count and times."""
    found = a.definition or {"kind": "live"}
    values = [found.get(name) for name in ACCOUNT_FIELDS]
    values[ACCOUNT_FIELDS.index("attrs")] = json_text(values[ACCOUNT_FIELDS.index("attrs")])
    return (a.account, *values, a.first_event_at, a.last_event_at, a.events)


def daily_row(d: DailyRow) -> tuple[Any, ...]:
    """A trading day as its ``daily`` row, with derived ``loss_used`` and ``limit_hit`` (0/1)."""
    return (
        d.account, d.date, text_dec(d.realized_pnl), text_dec(d.gross_profit),
        text_dec(d.gross_loss), text_dec(d.fees), d.trades_closed, d.wins, d.losses,
        d.signals, d.fills, text_dec(d.loss_used), text_dec(d.daily_loss_limit),
        int(d.limit_hit), int(d.trading_blocked), text_dec(d.cash_flow),
        text_dec(d.unrealized_pnl), text_dec(d.equity),
    )


def signal_row(s: SignalRow) -> tuple[Any, ...]:
    """A signal as its ``signals`` row."""
    return (
        s.account, s.signal_id, s.strategy, s.symbol, s.side, s.status,
        text_dec(s.entry_price), text_dec(s.stop_loss), text_dec(s.take_profit),
        text_dec(s.confidence), s.timeframe, s.expires_at, s.note, s.parent_signal_id,
        s.created_at, s.updated_at, s.reason, json_text(s.attrs), s.last_status,
    )


def order_row(o: OrderRow) -> tuple[Any, ...]:
    """An order as its ``orders`` row."""
    return (
        o.account, o.order_id, o.symbol, o.side, o.order_type, text_dec(o.quantity),
        text_dec(o.filled_quantity), text_dec(o.limit_price), text_dec(o.stop_price),
        o.status, o.signal_id, o.created_at, o.updated_at, json_text(o.attrs),
        o.position_id, o.last_status,
    )


def journal_row(j: JournalRow) -> tuple[Any, ...]:
    """A journal entry as its ``journal`` row; ``tags`` as JSON text, or NULL."""
    tags = None if j.tags is None else json.dumps(j.tags, ensure_ascii=False)
    return (j.account, j.seq, j.time, j.text, tags, j.symbol, j.position_id, j.signal_id,
            json_text(j.attrs))


def history_row(h: HistoryRow) -> tuple[Any, ...]:
    """A status change as its ``history`` row."""
    return (h.account, h.seq, h.time, h.entity, h.entity_id, h.status, h.previous_status,
            h.reason, text_dec(h.price), json_text(h.attrs))


def instrument_row(i: InstrumentRow) -> tuple[Any, ...]:
    """An instrument as its ``instruments`` row."""
    return (i.account, i.symbol, i.venue, i.asset_class, i.currency, text_dec(i.multiplier),
            text_dec(i.tick_size), text_dec(i.lot_size), i.underlying, i.expiry,
            text_dec(i.strike), i.option_type, i.description, json_text(i.attrs),
            i.updated_at)


def strategy_row(s: StrategyRow) -> tuple[Any, ...]:
    """A strategy as its ``strategies`` row."""
    return (s.account, s.strategy, s.description, json_text(s.parameters),
            None if s.active is None else int(s.active), json_text(s.attrs), s.signals,
            s.updated_at)


def price_row(a: AccountState, symbol: str) -> tuple[Any, ...]:
    """The latest mark and fill price of ``symbol`` in the account (per unit; NULL if none)."""
    return (a.account, symbol, text_dec(a.marks.get(symbol)),
            text_dec(a.last_fills.get(symbol)))


# ------------------------------------------------------------ row tuples -> state

def position_from(r: tuple[Any, ...]) -> Position:
    """A ``positions`` row back as the open ``Position`` (signed quantity from ``side``)."""
    quantity = dec(r[4]) if r[3] == "long" else -dec(r[4])
    return Position(
        account=r[0], position_key=r[1], symbol=r[2], quantity=quantity,
        avg_price=dec(r[5]), multiplier=dec(r[6]), opened_at=r[7], last_fill_at=r[8],
        fees=dec(r[10]), mark_price=dec_or_none(r[11]), unrealized_pnl=dec(r[12]),
        signal_id=r[13], stop_loss=dec_or_none(r[14]), take_profit=dec_or_none(r[15]),
        strategy=r[16], venue=r[17], asset_class=r[18], attrs=json_or_none(r[19]),
        trade_id=r[20], opened_seq=r[21], gross_pnl=dec(r[22]), max_quantity=dec(r[23]),
        open_quantity=dec(r[24]), open_notional=dec(r[25]), close_quantity=dec(r[26]),
        close_notional=dec(r[27]), exit_reason=r[28], exit_detail=r[29],
    )


def account_from(r: tuple[Any, ...]) -> AccountState:
    """A ``balances`` row back as ``AccountState``, without marks and fill prices (``prices``)."""
    return AccountState(
        account=r[0], cash=dec(r[1]), realized_pnl=dec(r[2]), unrealized_pnl=dec(r[4]),
        open_positions=r[6], timezone=r[7], daily_loss_limit=dec_or_none(r[8]),
        max_open_positions=r[9], trading_blocked=bool(r[10]), limits_attrs=json_or_none(r[11]),
    )


def account_info_into(a: AccountState, r: tuple[Any, ...]) -> None:
    """Put an ``accounts`` row (``account_row``) back into its ``AccountState``."""
    values = dict(zip(ACCOUNT_FIELDS, r[1:8], strict=True))
    values["attrs"] = json_or_none(values["attrs"])
    a.definition = None if all(v is None for k, v in values.items() if k != "kind") \
        and values["kind"] == "live" else values
    a.first_event_at, a.last_event_at, a.events = r[8], r[9], r[10]


def daily_from(r: tuple[Any, ...]) -> DailyRow:
    """A ``daily`` row back as ``DailyRow`` (derived columns are recomputed, not read)."""
    return DailyRow(
        account=r[0], date=r[1], realized_pnl=dec(r[2]), gross_profit=dec(r[3]),
        gross_loss=dec(r[4]), fees=dec(r[5]), trades_closed=r[6], wins=r[7], losses=r[8],
        signals=r[9], fills=r[10], daily_loss_limit=dec_or_none(r[12]),
        trading_blocked=bool(r[14]), cash_flow=dec(r[15]), unrealized_pnl=dec(r[16]),
        equity=dec(r[17]),
    )


def signal_from(r: tuple[Any, ...]) -> SignalRow:
    """A ``signals`` row back as ``SignalRow``."""
    return SignalRow(
        account=r[0], signal_id=r[1], strategy=r[2], symbol=r[3], side=r[4], status=r[5],
        entry_price=dec_or_none(r[6]), stop_loss=dec_or_none(r[7]),
        take_profit=dec_or_none(r[8]), confidence=dec_or_none(r[9]), timeframe=r[10],
        expires_at=r[11], note=r[12], parent_signal_id=r[13], created_at=r[14],
        updated_at=r[15], reason=r[16], attrs=json_or_none(r[17]), last_status=r[18],
    )


def order_from(r: tuple[Any, ...]) -> OrderRow:
    """An ``orders`` row back as ``OrderRow``."""
    return OrderRow(
        account=r[0], order_id=r[1], symbol=r[2], side=r[3], order_type=r[4],
        quantity=dec(r[5]), filled_quantity=dec(r[6]), limit_price=dec_or_none(r[7]),
        stop_price=dec_or_none(r[8]), status=r[9], signal_id=r[10], created_at=r[11],
        updated_at=r[12], attrs=json_or_none(r[13]), position_id=r[14], last_status=r[15],
    )


def instrument_from(r: tuple[Any, ...]) -> InstrumentRow:
    """An ``instruments`` row back as ``InstrumentRow``."""
    return InstrumentRow(
        account=r[0], symbol=r[1], venue=r[2], asset_class=r[3], currency=r[4],
        multiplier=dec(r[5]), tick_size=dec_or_none(r[6]), lot_size=dec_or_none(r[7]),
        underlying=r[8], expiry=r[9], strike=dec_or_none(r[10]), option_type=r[11],
        description=r[12], attrs=json_or_none(r[13]), updated_at=r[14])


def strategy_from(r: tuple[Any, ...]) -> StrategyRow:
    """A ``strategies`` row back as ``StrategyRow``."""
    return StrategyRow(
        account=r[0], strategy=r[1], description=r[2], parameters=json_or_none(r[3]),
        active=None if r[4] is None else bool(r[4]), attrs=json_or_none(r[5]),
        signals=r[6], updated_at=r[7])


RowFn = Callable[[Any], tuple[Any, ...]]
