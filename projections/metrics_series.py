"""The series the metrics are computed from, sampled while folding one account's events.

Pure: feed it stored events in ``seq`` order; it folds them with ``projections.fold``
(the same rules as the views) and keeps, for the account:

- ``realized``: every fill's realized P&L effect (net of its fee), with its trading day,
  the symbol of the position it belongs to and that position's strategy;
- ``trades``: every closed round trip with its strategy and closing trading day;
- ``samples``: balance and equity after every ``mark`` and every round-trip close, with
  the account's cumulative transfers (``deposit``/``withdrawal`` cash) at that moment;
- ``days``: equity at the last event of each trading day and that day's transfers, with
  the unrealized P&L of the open positions at the day's end by strategy and by symbol, and
  the day's last mark of each benchmark symbol (an ``account`` event's ``benchmark``).

Call ``finish`` after the last event so the last day gets its end-of-day snapshot.

Money is exact ``Decimal`` in the account currency; times are UTC text (``...Z``) and
trading days ``YYYY-MM-DD`` in the account's time zone in force when the event is folded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from functools import lru_cache
from zoneinfo import ZoneInfo

from eventstore.record import StoredEvent
from projections.fold import apply
from projections.state import AccountState, State, TradeRow
from schemas.values import DECIMAL_CONTEXT, format_utc

__all__ = ["TRANSFER_KINDS", "DayEnd", "Realized", "Sample", "Sampler", "Trade"]

ZERO = Decimal(0)
TRANSFER_KINDS = frozenset({"deposit", "withdrawal"})
"""``cash`` kinds that move money in or out of the account rather than earn or lose it;
the other kinds (fee, funding, interest, dividend, adjustment) count as performance."""


@dataclass(frozen=True, slots=True)
class Realized:
    """One fill's change of realized P&L (``amount``, net of the fill's fee)."""

    seq: int
    time: str
    day: str
    symbol: str
    strategy: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Trade:
    """A closed round trip (the ``trades`` row), its strategy and closing trading day."""

    row: TradeRow
    strategy: str | None
    day: str


@dataclass(frozen=True, slots=True)
class Sample:
    """The account after one ``mark`` (``kind`` "mark") or round-trip close ("close").

    ``transfers``: cumulative deposits + withdrawals (signed) up to and with this event.
    """

    seq: int
    time: str
    day: str
    kind: str
    balance: Decimal
    equity: Decimal
    transfers: Decimal
    trade_id: str | None = None


@dataclass(slots=True)
class DayEnd:
    """Equity after the last event of a trading day, and that day's transfers (signed)."""

    day: str
    equity: Decimal
    transfers: Decimal = ZERO
    fills: int = 0
    unrealized_by_strategy: dict[str | None, Decimal] = field(default_factory=dict)
    """Unrealized P&L of the positions open at the day's end, by the position's strategy."""
    unrealized_by_symbol: dict[str, Decimal] = field(default_factory=dict)
    """The same by symbol."""
    benchmark: dict[str, Decimal] = field(default_factory=dict)
    """Benchmark symbol -> its latest mark at the day's end."""


@dataclass(slots=True)
class Sampler:
    """Folds one account's events and samples the series above (see the module doc)."""

    account: str
    state: State = field(default_factory=State)
    realized: list[Realized] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    days: dict[str, DayEnd] = field(default_factory=dict)
    transfers: Decimal = ZERO
    last_time: str | None = None
    benchmarks: set[str] = field(default_factory=set)
    """Every symbol an ``account`` event of the account has named as its benchmark."""
    current_day: str | None = None
    voided: set[tuple[str, str]] = field(default_factory=set)
    """source+id of the events voided (up to the last seq sampled): they and the voids
    are skipped, so the series are those of a log that never held them (EVENTS.md
    invariant 5)."""

    def strategy_of(self, signal_id: str | None) -> str | None:
        """The strategy of a signal id (None: no signal, or an unknown one)."""
        return self._strategy(signal_id)

    def _strategy(self, signal_id: str | None) -> str | None:
        if signal_id is None:
            return None
        signal = self.state.signals.get((self.account, signal_id))
        return signal.strategy if signal is not None else None

    def feed(self, events: Iterable[StoredEvent]) -> None:
        """Fold ``events`` (only this account's, in seq order) and sample after each."""
        with localcontext(DECIMAL_CONTEXT):
            for event in events:
                if event.event_type == "void" or (
                        self.voided and (event.source, event.event_id) in self.voided):
                    continue
                self._one(event)

    def finish(self) -> None:
        """Take the end-of-day snapshot of the last day (call after the last ``feed``)."""
        if self.current_day is not None and self.current_day in self.days:
            self._snapshot(self.days[self.current_day])

    def _snapshot(self, end: DayEnd) -> None:
        """Unrealized P&L by strategy and symbol, and benchmark marks, at a day's end."""
        by_strategy: dict[str | None, Decimal] = {}
        by_symbol: dict[str, Decimal] = {}
        for position in self.state.positions.get(self.account, {}).values():
            strategy = self._strategy(position.signal_id)
            by_strategy[strategy] = by_strategy.get(strategy, ZERO) + position.unrealized_pnl
            by_symbol[position.symbol] = (by_symbol.get(position.symbol, ZERO)
                                          + position.unrealized_pnl)
        end.unrealized_by_strategy, end.unrealized_by_symbol = by_strategy, by_symbol
        account = self.state.accounts.get(self.account)
        if account is not None:
            end.benchmark = {s: account.marks[s] for s in self.benchmarks if s in account.marks}

    def _one(self, event: StoredEvent) -> None:
        state = self.state
        before: tuple[str, str | None] | None = None
        if event.event_type == "fill":
            key = event.data.get("position_id") or event.data["symbol"]
            held = state.positions.get(self.account, {}).get(key)
            if held is not None:
                before = (held.symbol, held.signal_id)
        apply(state, event)
        account = state.accounts[self.account]
        moment = datetime.fromisoformat(event.time)
        day = moment.astimezone(_zone(account.timezone)).date().isoformat()
        at = event.time if event.time.endswith("Z") else _utc_text(moment)
        self.last_time = at
        kind = event.event_type
        if day != self.current_day:
            if self.current_day is not None and self.current_day in self.days:
                self._snapshot(self.days[self.current_day])
            self.current_day = day
        if kind == "account" and event.data.get("benchmark"):
            self.benchmarks.add(str(event.data["benchmark"]))
        if kind == "cash" and event.data["kind"] in TRANSFER_KINDS:
            self.transfers += Decimal(event.data["amount"])
        equity = account.equity
        end = self.days.get(day)
        if end is None:
            end = self.days[day] = DayEnd(day, equity)
        end.equity = equity
        if kind == "cash" and event.data["kind"] in TRANSFER_KINDS:
            end.transfers += Decimal(event.data["amount"])
        if kind == "fill":
            end.fills += 1
            self._fill(event, at, day, before, account)
        elif kind == "mark":
            self.samples.append(Sample(event.seq, at, day, "mark",
                                       account.balance, equity,
                                       self.transfers))

    def _fill(self, event: StoredEvent, at: str, day: str,
              before: tuple[str, str | None] | None, account: AccountState) -> None:
        state = self.state
        closed = state.effect.closed
        if before is None:
            key = event.data.get("position_id") or event.data["symbol"]
            opened = state.positions[self.account][key]
            before = (opened.symbol, opened.signal_id)
        self.realized.append(Realized(event.seq, at, day, before[0],
                                      self._strategy(before[1]), state.effect.realized))
        if closed is not None:
            self.trades.append(Trade(closed, self._strategy(closed.signal_id), day))
            self.samples.append(Sample(event.seq, at, day, "close",
                                       account.balance, account.equity, self.transfers,
                                       closed.trade_id))


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _utc_text(moment: datetime) -> str:
    """A time in UTC as the views write it (``...Z``)."""
    return format_utc(moment)

