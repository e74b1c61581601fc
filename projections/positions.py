"""The ``positions`` and ``trades`` views: average-cost accounting of fills. Pure fold.

Rules (EVENTS.md, "Position accounting"; the average-cost method as in NautilusTrader's
``Position`` and freqtrade's partial exits):

- key: ``position_id`` when the fill has one (hedging), else ``symbol`` (netting); a
  fill whose ``position_id`` names an open position of another symbol still belongs to
  that position (EVENTS.md keys on the id alone), which keeps its symbol;
- opening or adding: avg = (|q| * avg + qty * price) / (|q| + qty);
- reducing: closed = min(qty, |q|); gross += closed * (price - avg) * sign(q) * multiplier;
  the average is unchanged;
- a fill larger than the position closes it and opens the rest at the fill price, its
  fee split between the two parts in proportion to quantity;
- every fee is charged to the round trip it belongs to; a round trip runs flat to flat;
- the multiplier is the position's, set by the fill that opened it (a contract's size
  does not change while it is held): the fill's own, else its symbol's ``instrument``
  in force at that fill, else 1;
- ``strategy``, ``stop_loss`` and ``take_profit`` are the opening fill's signal's (or
  its order's signal's) as they stood then; ``venue`` and ``asset_class`` the symbol's
  instrument's as it stood then; ``attrs`` merge the position's fills' in seq order;
- a trade's ``entry_price`` is the position's average price just before the fill that
  closed it (the running average cost, NautilusTrader's ``avg_px_open``);
  ``return_pct`` = 100 * net_pnl / (entry_price * quantity * multiplier), 10 places;
- unrealized = (mark - avg) * q * multiplier, mark = the latest ``mark`` price of the
  symbol in the account, else its latest fill price.

Computed amounts (average prices, gross P&L, fee shares, unrealized P&L, a trade's
average entry and exit) are rounded half-even to 20 decimal places, so that every sum
of them is exact and a rebuild gives the same digits. They are quantized in
``WIDE_CONTEXT``: within the bounds on values no amount reaches 10^80, so ``quantize``
never fails (docs/ACCOUNTING.md, "Why a fold cannot overflow").
"""

from __future__ import annotations

from decimal import Decimal

from eventstore.record import StoredEvent
from projections.calendar import to_utc_text, utc_datetime
from projections.state import AccountState, Effect, Position, State, TradeRow, merge_attrs
from schemas.values import WIDE_CONTEXT

__all__ = ["QUANTUM", "apply", "refresh_unrealized"]

QUANTUM = Decimal("1e-20")
PERCENT_QUANTUM = Decimal("1e-10")
ZERO = Decimal(0)
ONE = Decimal(1)


def _q(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, context=WIDE_CONTEXT)


_mul = WIDE_CONTEXT.multiply
_add = WIDE_CONTEXT.add
"""Products and the sums of notionals are taken in ``WIDE_CONTEXT``: exact for any
values within the bounds (at most about 110 digits), and as cheap as in the money
context when the result is short. Only then is an amount rounded, once, to 20 places."""


def refresh_unrealized(state: State, account: AccountState, position: Position,
                       changed: bool = False) -> None:
    """Recompute one position's mark and unrealized P&L and carry the change to its
    account. ``changed``: the fill being folded changed the position itself (its whole
    row is written, not only the two columns a mark moves)."""
    mark = account.marks.get(position.symbol)
    if mark is None:
        mark = account.last_fills.get(position.symbol)
    unrealized = ZERO if mark is None else _q(
        _mul(_mul(mark - position.avg_price, position.quantity), position.multiplier))
    account.unrealized_pnl += unrealized - position.unrealized_pnl
    position.unrealized_pnl = unrealized
    position.mark_price = mark
    (state.dirty_positions if changed else state.marked_positions).add(
        (account.account, position.position_key))


def _refresh_symbol(state: State, account: AccountState, symbol: str) -> None:
    for position in state.by_symbol.get((account.account, symbol), {}).values():
        refresh_unrealized(state, account, position)


def _open(state: State, event: StoredEvent, key: str, quantity: Decimal, price: Decimal,
          fee: Decimal) -> Position:
    data = event.data
    signal_id = data.get("signal_id")
    order_id = data.get("order_id")
    if signal_id is None and order_id is not None:
        order = state.orders.get((event.account, order_id))
        signal_id = order.signal_id if order else None
    signal = state.signals.get((event.account, signal_id)) if signal_id else None
    instrument = state.instruments.get((event.account, data["symbol"]))
    at = to_utc_text(event.time)
    multiplier = data.get("multiplier")
    position = Position(
        account=event.account,
        position_key=key,
        symbol=data["symbol"],
        quantity=quantity if data["side"] == "buy" else -quantity,
        avg_price=price,
        multiplier=(Decimal(multiplier) if multiplier is not None
                    else instrument.multiplier if instrument is not None else ONE),
        opened_at=at,
        last_fill_at=at,
        trade_id=event.event_id,
        opened_seq=event.seq,
        signal_id=signal_id,
        stop_loss=signal.stop_loss if signal else None,
        take_profit=signal.take_profit if signal else None,
        fees=fee,
        max_quantity=quantity,
        open_quantity=quantity,
        open_notional=_mul(quantity, price),
        strategy=signal.strategy if signal else None,
        venue=instrument.venue if instrument else None,
        asset_class=instrument.asset_class if instrument else None,
        attrs=merge_attrs(None, data.get("attrs")),
    )
    state.add_position(position)
    return position


def _close(state: State, event: StoredEvent, position: Position) -> TradeRow:
    closed_at = to_utc_text(event.time)
    held = utc_datetime(closed_at) - utc_datetime(position.opened_at)
    net = position.gross_pnl - position.fees
    basis = _mul(_mul(position.avg_price, position.max_quantity), position.multiplier)
    trade = TradeRow(
        account=position.account,
        trade_id=position.trade_id,
        position_key=position.position_key,
        symbol=position.symbol,
        side="long" if event.data["side"] == "sell" else "short",
        quantity=position.max_quantity,
        entry_price=position.avg_price,
        exit_price=_q(position.close_notional / position.close_quantity),
        opened_at=position.opened_at,
        closed_at=closed_at,
        holding_seconds=int(held.total_seconds()),
        gross_pnl=position.gross_pnl,
        fees=position.fees,
        net_pnl=net,
        exit_reason=position.exit_reason,
        signal_id=position.signal_id,
        closed_seq=event.seq,
        return_pct=WIDE_CONTEXT.divide(_mul(net, Decimal(100)), basis).quantize(
            PERCENT_QUANTUM, context=WIDE_CONTEXT) if basis else None,
        exit_detail=position.exit_detail,
        strategy=position.strategy,
        venue=position.venue,
        asset_class=position.asset_class,
        attrs=position.attrs,
    )
    state.trades.append(trade)
    return trade


def apply(state: State, event: StoredEvent) -> State:
    """Fold a ``fill`` into its position (and a closed round trip into ``trades``), or a
    ``mark`` into the unrealized P&L of the account's positions in those symbols.

    Leaves ``state.effect`` describing the fill for the balances and daily folds.
    """
    if event.event_type == "mark":
        account = state.account(event.account)
        for symbol, price in event.data["prices"].items():
            account.marks[symbol] = Decimal(price)
            state.dirty_marks.add((event.account, symbol))
            _refresh_symbol(state, account, symbol)
        return state
    if event.event_type != "fill":
        return state
    data = event.data
    account = state.account(event.account)
    symbol = data["symbol"]
    key = data.get("position_id") or symbol
    quantity = Decimal(data["quantity"])
    price = Decimal(data["price"])
    fee = Decimal(data.get("fee", "0"))
    effect = state.effect = Effect(fee=fee)
    account.last_fills[symbol] = price
    state.dirty_marks.add((event.account, symbol))
    position = state.positions.get(event.account, {}).get(key)
    buying = data["side"] == "buy"
    if position is None:
        position = _open(state, event, key, quantity, price, fee)
        account.open_positions += 1
        effect.realized = -fee
    elif (position.quantity > 0) == buying:
        position.attrs = merge_attrs(position.attrs, data.get("attrs"))
        size = abs(position.quantity)
        position.avg_price = _q(
            _add(_mul(size, position.avg_price), _mul(quantity, price)) / (size + quantity))
        position.quantity += quantity if buying else -quantity
        position.fees += fee
        position.max_quantity = max(position.max_quantity, abs(position.quantity))
        position.open_quantity += quantity
        position.open_notional = _add(position.open_notional, _mul(quantity, price))
        position.last_fill_at = to_utc_text(event.time)
        effect.realized = -fee
    else:
        position.attrs = merge_attrs(position.attrs, data.get("attrs"))
        size = abs(position.quantity)
        closed = min(quantity, size)
        sign = 1 if position.quantity > 0 else -1
        gross = _q(_mul(_mul(closed, price - position.avg_price), position.multiplier))
        gross = gross if sign > 0 else -gross
        close_fee = fee if quantity <= size else _q(_mul(fee, closed) / quantity)
        position.gross_pnl += gross
        position.fees += close_fee
        position.close_quantity += closed
        position.close_notional = _add(position.close_notional, _mul(closed, price))
        position.quantity -= sign * closed
        position.last_fill_at = to_utc_text(event.time)
        if data.get("exit_reason") is not None:
            position.exit_reason = data["exit_reason"]
        if data.get("exit_detail") is not None:
            position.exit_detail = data["exit_detail"]
        effect.realized = gross - close_fee
        if position.quantity == 0:
            account.unrealized_pnl -= position.unrealized_pnl
            effect.closed = _close(state, event, position)
            state.remove_position(event.account, key)
            state.dirty_positions.add((event.account, key))
            account.open_positions -= 1
            if quantity > size:
                rest_fee = fee - close_fee
                position = _open(state, event, key, quantity - size, price, rest_fee)
                account.open_positions += 1
                effect.realized -= rest_fee
            else:
                _refresh_symbol(state, account, symbol)
                return state
    # The fill's own position is always rewritten, even when a position_id was reused
    # with another symbol (the position keeps the symbol of its opening fill).
    refresh_unrealized(state, account, position, changed=True)
    _refresh_symbol(state, account, symbol)
    return state
