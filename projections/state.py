"""The in-memory fold state of every view, and the rows it turns into.

Plain mutable dataclasses owned by one fold at a time. Decimals are exact and in the
account currency (prices per unit of the symbol; P&L scaled by the multiplier).
Times are canonical RFC 3339 strings in UTC (``Z``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["AccountState", "DailyRow", "Effect", "HistoryRow", "InstrumentRow", "JournalRow",
           "OrderRow", "Position", "SignalRow", "State", "StrategyRow", "TradeRow",
           "merge_attrs"]

Attrs = dict[str, Any]
"""An ``attrs`` object as stored: key -> str, int, float (exact), bool or None."""


def merge_attrs(old: Attrs | None, new: Attrs | None) -> Attrs | None:
    """``old`` with ``new``'s keys merged over it (EVENTS.md: key by key, a ``null`` value
    kept as null); None when neither has any. Never changes its arguments."""
    if not new:
        return old
    if not old:
        return dict(new)
    return {**old, **new}

ZERO = Decimal(0)
LEFT_OUT_KEPT = 100
"""Left-out events whose seq and reason a state keeps until they are taken (the rest are
only counted)."""


@dataclass(slots=True)
class Position:
    """An open position: the current round trip on one key (position_id, else symbol).

    ``quantity`` is signed (long > 0, short < 0). ``gross_pnl`` and ``fees`` run over the
    round trip so far; ``open_*``/``close_*`` sum quantities and notionals of opening and
    closing fills for the trade's average entry and exit prices.
    """

    account: str
    position_key: str
    symbol: str
    quantity: Decimal
    avg_price: Decimal
    multiplier: Decimal
    opened_at: str
    last_fill_at: str
    trade_id: str
    opened_seq: int
    signal_id: str | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    gross_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    max_quantity: Decimal = ZERO
    open_quantity: Decimal = ZERO
    open_notional: Decimal = ZERO
    close_quantity: Decimal = ZERO
    close_notional: Decimal = ZERO
    exit_reason: str | None = None
    mark_price: Decimal | None = None
    unrealized_pnl: Decimal = ZERO
    strategy: str | None = None
    venue: str | None = None
    asset_class: str | None = None
    attrs: Attrs | None = None
    exit_detail: str | None = None

    @property
    def realized_pnl(self) -> Decimal:
        """Partial closes so far, net of every fee of the round trip."""
        return self.gross_pnl - self.fees


@dataclass(slots=True)
class TradeRow:
    """A closed round trip (EVENTS.md ``trades``)."""

    account: str
    trade_id: str
    position_key: str
    symbol: str
    side: str
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal
    opened_at: str
    closed_at: str
    holding_seconds: int
    gross_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal
    exit_reason: str | None
    signal_id: str | None
    closed_seq: int
    return_pct: Decimal | None = None
    exit_detail: str | None = None
    strategy: str | None = None
    venue: str | None = None
    asset_class: str | None = None
    attrs: Attrs | None = None


@dataclass(slots=True)
class AccountState:
    """Per-account money and settings. ``marks``/``last_fills``: symbol -> price."""

    account: str
    cash: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    open_positions: int = 0
    timezone: str = "UTC"
    daily_loss_limit: Decimal | None = None
    max_open_positions: int | None = None
    marks: dict[str, Decimal] = field(default_factory=dict)
    last_fills: dict[str, Decimal] = field(default_factory=dict)
    trading_blocked: bool = False
    limits_attrs: Attrs | None = None
    definition: dict[str, Any] | None = None
    first_event_at: str | None = None
    last_event_at: str | None = None
    events: int = 0

    @property
    def balance(self) -> Decimal:
        """cash + realized_pnl, account currency (EVENTS.md ``balances``)."""
        return self.cash + self.realized_pnl

    @property
    def equity(self) -> Decimal:
        """balance + unrealized_pnl, account currency."""
        return self.balance + self.unrealized_pnl


@dataclass(slots=True)
class DailyRow:
    """One trading day of one account (EVENTS.md ``daily``)."""

    account: str
    date: str
    realized_pnl: Decimal = ZERO
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO
    fees: Decimal = ZERO
    trades_closed: int = 0
    wins: int = 0
    losses: int = 0
    signals: int = 0
    fills: int = 0
    daily_loss_limit: Decimal | None = None
    cash_flow: Decimal = ZERO
    trading_blocked: bool = False
    unrealized_pnl: Decimal = ZERO
    equity: Decimal = ZERO

    @property
    def loss_used(self) -> Decimal:
        """The day's loss so far: max(0, -realized_pnl), account currency (EVENTS.md)."""
        return max(ZERO, -self.realized_pnl)

    @property
    def limit_hit(self) -> bool:
        """True when a ``daily_loss_limit`` is set, the day has a loss (``loss_used`` > 0)
        and ``loss_used`` >= the limit; False with no limit or no loss (EVENTS.md 1.1)."""
        loss = self.loss_used
        return self.daily_loss_limit is not None and loss > 0 and loss >= self.daily_loss_limit


@dataclass(slots=True)
class SignalRow:
    """A strategy signal and its latest status (EVENTS.md ``signals``).

    Prices are per unit; ``confidence`` is 0..1; None means the signal did not give it.
    ``reason`` is that of the latest signal ``status`` event, None if it gave none.
    """

    account: str
    signal_id: str
    strategy: str
    symbol: str
    side: str
    status: str
    entry_price: Decimal | None
    stop_loss: Decimal | None
    take_profit: Decimal | None
    confidence: Decimal | None
    created_at: str
    updated_at: str
    reason: str | None = None
    timeframe: str | None = None
    expires_at: str | None = None
    note: str | None = None
    parent_signal_id: str | None = None
    attrs: Attrs | None = None
    last_status: str | None = None
    """The status of the latest ``status`` event of this signal (None before any): the
    ``previous_status`` of the next ``history`` row."""


@dataclass(slots=True)
class OrderRow:
    """An order, its filled quantity and latest status (EVENTS.md ``orders``).

    ``filled_quantity`` sums the fills naming its ``order_id``; ``status`` changes only by
    ``status`` events. Prices are per unit; None means the order did not give one.
    """

    account: str
    order_id: str
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    filled_quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: str
    created_at: str
    updated_at: str
    signal_id: str | None = None
    position_id: str | None = None
    attrs: Attrs | None = None
    last_status: str | None = None
    """As ``SignalRow.last_status``."""


@dataclass(slots=True)
class JournalRow:
    """A trading-journal entry (EVENTS.md ``journal``) at its event's ``seq``; None: not given."""

    account: str
    seq: int
    time: str
    text: str
    tags: list[str] | None
    symbol: str | None
    position_id: str | None
    signal_id: str | None
    attrs: Attrs | None = None


@dataclass(slots=True)
class HistoryRow:
    """A ``status`` event of a known signal or order (EVENTS.md ``history``), at its seq."""

    account: str
    seq: int
    time: str
    entity: str
    entity_id: str
    status: str
    previous_status: str | None
    reason: str | None
    price: Decimal | None
    attrs: Attrs | None


@dataclass(slots=True)
class InstrumentRow:
    """The latest ``instrument`` event of a symbol (EVENTS.md ``instruments``)."""

    account: str
    symbol: str
    venue: str | None
    asset_class: str | None
    currency: str | None
    multiplier: Decimal
    tick_size: Decimal | None
    lot_size: Decimal | None
    underlying: str | None
    expiry: str | None
    strike: Decimal | None
    option_type: str | None
    description: str | None
    attrs: Attrs | None
    updated_at: str


@dataclass(slots=True)
class StrategyRow:
    """A strategy (EVENTS.md ``strategies``): its latest ``strategy`` event's fields (None
    when only signals named it), how many signal events named it, and when it last changed."""

    account: str
    strategy: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    active: bool | None = None
    attrs: Attrs | None = None
    signals: int = 0
    updated_at: str = ""


@dataclass(slots=True)
class Effect:
    """What one fill did to the books, for the balances and daily folds.

    ``realized``: net change of realized P&L (gross of the reducing part minus the fee);
    ``fee``: the whole fill's fee; ``closed``: the round trip it closed, if any.
    """

    realized: Decimal = ZERO
    fee: Decimal = ZERO
    closed: TradeRow | None = None


@dataclass(slots=True)
class State:
    """Every view's fold state, plus what changed since the runner last drained it.

    ``positions``: account -> position_key -> Position; ``by_symbol`` indexes the same
    objects by (account, symbol) -> position_key (kept by ``add_position`` and
    ``remove_position``, so a mark touches only its symbol's positions).
    ``trades``/``journal``/``history`` hold the rows added since the last drain (all of
    them in a scratch fold); ``voids`` the (seq, account, target seq) of the voids folded
    since. ``refolded`` names the accounts a void folded again from the log: every row
    of theirs is rewritten at the next drain. ``dirty_*`` name the keys whose rows must
    be written (a dirty position key no longer in ``positions`` is a deleted row);
    ``marked_positions`` those whose mark and unrealized P&L alone changed.
    ``left_out`` and ``left_out_count``: events left out of the views since the runner
    last took them. ``folded_seq``: the seq of the last event folded into this state
    (the views' checkpoint once written).
    """

    folded_seq: int = 0
    accounts: dict[str, AccountState] = field(default_factory=dict)
    positions: dict[str, dict[str, Position]] = field(default_factory=dict)
    by_symbol: dict[tuple[str, str], dict[str, Position]] = field(default_factory=dict)
    daily: dict[tuple[str, str], DailyRow] = field(default_factory=dict)
    signals: dict[tuple[str, str], SignalRow] = field(default_factory=dict)
    orders: dict[tuple[str, str], OrderRow] = field(default_factory=dict)
    trades: list[TradeRow] = field(default_factory=list)
    journal: list[JournalRow] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    instruments: dict[tuple[str, str], InstrumentRow] = field(default_factory=dict)
    strategies: dict[tuple[str, str], StrategyRow] = field(default_factory=dict)
    voids: list[tuple[int, str, int | None]] = field(default_factory=list)
    effect: Effect = field(default_factory=Effect)
    dirty_accounts: set[str] = field(default_factory=set)
    dirty_positions: set[tuple[str, str]] = field(default_factory=set)
    marked_positions: set[tuple[str, str]] = field(default_factory=set)
    dirty_daily: set[tuple[str, str]] = field(default_factory=set)
    dirty_signals: set[tuple[str, str]] = field(default_factory=set)
    dirty_orders: set[tuple[str, str]] = field(default_factory=set)
    dirty_marks: set[tuple[str, str]] = field(default_factory=set)
    dirty_instruments: set[tuple[str, str]] = field(default_factory=set)
    dirty_strategies: set[tuple[str, str]] = field(default_factory=set)
    refolded: set[str] = field(default_factory=set)
    left_out: list[tuple[int, str]] = field(default_factory=list)
    left_out_count: int = 0
    noted_upto: int = 0

    def note_left_out(self, seq: int, reason: str) -> None:
        """Count an event left out of the views; the first ``LEFT_OUT_KEPT`` are kept in
        ``left_out`` as (seq, reason) until the runner takes them. Events at or before
        ``noted_upto`` (already counted by an earlier fold of the same log) are not."""
        if seq <= self.noted_upto:
            return
        self.left_out_count += 1
        if len(self.left_out) < LEFT_OUT_KEPT:
            self.left_out.append((seq, reason))

    def add_position(self, position: Position) -> None:
        """Store an open position under its account and key, and index it by symbol."""
        self.positions.setdefault(position.account, {})[position.position_key] = position
        self.by_symbol.setdefault((position.account, position.symbol), {})[
            position.position_key] = position

    def remove_position(self, account: str, key: str) -> None:
        """Forget the open position ``key`` of ``account`` (it must be open)."""
        position = self.positions[account].pop(key)
        index = self.by_symbol[(account, position.symbol)]
        del index[key]
        if not index:
            del self.by_symbol[(account, position.symbol)]

    def account(self, name: str) -> AccountState:
        """The account's state, created empty on first sight."""
        found = self.accounts.get(name)
        if found is None:
            found = self.accounts[name] = AccountState(name)
        self.dirty_accounts.add(name)
        return found
