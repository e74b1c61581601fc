"""Rows of the view tables to and from the fold's state: one tuple per row, its columns
in the order ``projections.tables`` declares them (``Table.columns``). Pure.
"""

from __future__ import annotations

import json
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
from projections.tables import dec, dec_or_none, json_or_none, json_text, text_dec

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

