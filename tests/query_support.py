"""A history for the ``query`` tests: two accounts, symbols chosen to trip prefix
matching (``%``, ``_``, case, non-ASCII, neighbours of a prefix), times out of seq order
with same-second ties, and every view with rows. Plus the filters' meaning written
again in Python (``matches``), independent of the SQL, to check ``query`` against."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from schemas import EVENT_TYPES
from tests.fold_support import ev

SYMBOLS = ["NIFTY", "NIFTY24MAR", "NIFTY24APR", "NIFTX", "NIFTZ1", "nifty", "N%X", "NX",
           "A_B", "AB", "ÉTOILE", "ÉTé"]
"""Each symbol belongs to one account at a time (``history``)."""
PREFIXES = ["NIFTY", "NIFTY24", "N%", "A_", "É", "ÉT", "nif", "Z", "NIFTZ1", "NIFTZ10"]
"""``symbol_prefix`` values to test: each keeps an exact set of ``SYMBOLS``."""
ACCOUNTS = ("a1", "a2")


def stamp(i: int, minutes: int = 0) -> str:
    """The event time of step ``i``: days cycle (times run against seq), every third a
    half second past a whole second that another step has too (a tie as text)."""
    base = datetime(2024, 3, 1 + i % 5, 9, 0, tzinfo=UTC)
    moment = base + timedelta(minutes=(i * 7) % 50 + minutes, seconds=(i // 3) % 4)
    if i % 3 == 0:
        moment += timedelta(microseconds=500_000)
    text = moment.isoformat()
    return text.replace("+00:00", "Z")


def history(steps: int = 60) -> list[dict[str, Any]]:
    """Wire events: per step a signal, an order, a fill, sometimes a close, status
    changes and a journal entry; every third step a mark."""
    out: list[dict[str, Any]] = []
    for i in range(steps):
        account = ACCOUNTS[(i // len(SYMBOLS)) % 2]
        symbol = SYMBOLS[i % len(SYMBOLS)]
        strategy = ("sma", "rsi", "breakout")[i % 3]
        at = stamp(i)
        out += _definitions(i, account, symbol, strategy, at)
        out.append(ev("signal", {"signal_id": f"s{i}", "strategy": strategy, "symbol": symbol,
                                 "side": "long" if i % 2 else "short"},
                      account=account, time=at))
        out.append(ev("order", {"order_id": f"o{i}", "symbol": symbol, "side": "buy",
                                "quantity": "1", "order_type": "market",
                                "signal_id": f"s{i}"}, account=account, time=at))
        if i % 4:
            status = ("triggered", "cancelled", "expired")[i % 4 - 1]
            out.append(ev("status", {"entity": "signal", "entity_id": f"s{i}",
                                     "status": status}, account=account, time=stamp(i, 3)))
        if i % 5 in (1, 2):
            out.append(ev("status", {"entity": "order", "entity_id": f"o{i}",
                                     "status": ("accepted", "rejected")[i % 5 - 1]},
                          account=account, time=stamp(i, 4)))
        out.append(ev("fill", {"symbol": symbol, "side": "buy", "quantity": "1",
                               "price": str(100 + i), "order_id": f"o{i}"},
                      account=account, time=stamp(i, 1)))
        if i % 2 == 0:
            out.append(ev("fill", {"symbol": symbol, "side": "sell", "quantity": "1",
                                   "price": str(101 + i), "fee": "0.1"},
                          account=account, time=stamp(i, 30)))
        if i % 3 == 0:
            out.append(ev("journal", {"text": f"note {i}",
                                      **({"symbol": symbol} if i % 9 else {})},
                          account=account, time=stamp(i, 2)))
            out.append(ev("mark", {"prices": {symbol: str(102 + i)}}, account=account,
                          time=stamp(i, 5)))
    return out


def _definitions(i: int, account: str, symbol: str, strategy: str,
                 at: str) -> list[dict[str, Any]]:
    """``instrument``, ``account`` and ``strategy`` events (contract 1.1), where this
    version's schemas know those types, so that their views have rows to filter."""
    out: list[dict[str, Any]] = []
    if "instrument" in EVENT_TYPES and i < 2 * len(SYMBOLS):
        out.append(ev("instrument", {"symbol": symbol, "venue": ("NSE", "NFO")[i % 2],
                                     "asset_class": ("equity", "option", "future")[i % 3]},
                      account=account, time=at))
    if "account" in EVENT_TYPES and i < 2:
        out.append(ev("account", {"name": f"account {account}", "kind": "paper"},
                      account=account, time=at))
    if "strategy" in EVENT_TYPES and i < 3:
        out.append(ev("strategy", {"strategy": strategy, "description": f"{strategy} rules"},
                      account=account, time=at))
    return out


def parse(text: str) -> datetime:
    """A stored or given RFC 3339 time."""
    return datetime.fromisoformat(text)


def day_bound(text: str, end: bool) -> datetime:
    """A ``since``/``until`` value as a time: a date is its whole UTC day."""
    if len(text) == 10:
        start = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        return start + timedelta(days=1, microseconds=-1) if end else start
    return parse(text)


TIME_COLUMN = {"positions": "opened_at", "trades": "closed_at", "daily": "date",
               "signals": "created_at", "orders": "created_at", "journal": "time",
               "history": "time"}


def matches(view: str, row: dict[str, Any], name: str, value: Any) -> bool:
    """Whether ``row`` of ``view`` passes the ``query`` param ``name`` = ``value``,
    by PROTOCOL.md's words."""
    if name == "symbol_prefix":
        return isinstance(row["symbol"], str) and row["symbol"].startswith(value)
    if name == "updated_since":
        return parse(row["updated_at"]) >= day_bound(value, end=False)
    if name == "attrs":
        held = row["attrs"] or {}
        return all(key in held and same_attr(held[key], item) for key, item in value.items())
    if name in ("since", "until"):
        column = TIME_COLUMN[view]
        if column == "date":
            day: str = row["date"]
            limit: str = value[:10]
            return day >= limit if name == "since" else day <= limit
        moment = parse(row[column])
        bound = day_bound(value, end=name == "until")
        return moment >= bound if name == "since" else moment <= bound
    column = {"entity_id": "entity_id"}.get(name, name)
    return bool(row[column] == value)


def same_attr(held: Any, wanted: Any) -> bool:
    """An ``attrs`` filter value against a stored one: same JSON type and value (a number
    also matches its decimal text)."""
    from decimal import Decimal

    if wanted is None or isinstance(wanted, bool):
        return held is wanted
    if isinstance(wanted, str):
        return isinstance(held, str) and held == wanted
    if isinstance(held, bool) or held is None:
        return False
    try:
        return Decimal(str(held)) == Decimal(wanted)
    except ArithmeticError:
        return False


def write_history(path: Path, wires: list[dict[str, Any]] | None = None) -> None:
    """A database at ``path`` holding ``wires`` (default ``history()``) with its views,
    appended 50 events at a time."""
    import asyncio

    from eventstore.recorder import Recorder
    from projections.startup import open_views
    from tests.fold_support import new_event

    events = history() if wires is None else wires

    async def write() -> None:
        recorder = await Recorder.open(path)
        try:
            await open_views(recorder)
            for start in range(0, len(events), 50):
                await recorder.append([new_event(w) for w in events[start:start + 50]])
        finally:
            await recorder.close()

    asyncio.run(write())
