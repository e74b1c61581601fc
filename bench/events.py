"""Deterministic, realistic event streams for the benchmarks (no daemon imports).

The mix (by count): fills 35%, marks 20%, signals 12%, orders 13%, status 8%,
journal 10%, cash 2% over 20 accounts and 200 symbols. Fills carry a ``position_id``
(hedging), and every account keeps about 500 positions open, so a 1M-event log ends
with about 10k open positions. Ids are time-ordered (``<source>-<n>`` zero-padded), as
a bot's own counters or a venue's fill ids usually are.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["ACCOUNTS", "SYMBOLS", "EventStream", "append_line", "batch_line", "events"]

ACCOUNTS = [f"acct-{i:02d}" for i in range(20)]
SYMBOLS = [f"SYM{i:03d}" for i in range(200)]
OPEN_PER_ACCOUNT = 500
START = datetime(2024, 1, 2, tzinfo=UTC)


class EventStream:
    """Wire events (``dict``) in a fixed order for a given ``seed``; ``prefix`` keeps ids of
    different streams apart (e.g. one per benchmark repeat)."""

    def __init__(self, seed: int = 7, prefix: str = "e", open_per_account: int =
                 OPEN_PER_ACCOUNT) -> None:
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.n = 0
        self.target_open = open_per_account
        self.open: dict[str, list[tuple[str, str, str, str]]] = {a: [] for a in ACCOUNTS}
        self.last_price = {s: 100.0 + i for i, s in enumerate(SYMBOLS)}
        self.signals: dict[str, list[str]] = {a: [] for a in ACCOUNTS}
        self.orders: dict[str, list[str]] = {a: [] for a in ACCOUNTS}

    def _price(self, symbol: str) -> str:
        p = self.last_price[symbol] * (1 + self.rng.uniform(-0.002, 0.002))
        self.last_price[symbol] = p
        return f"{p:.2f}"

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        rng = self.rng
        self.n += 1
        n = self.n
        account = ACCOUNTS[rng.randrange(len(ACCOUNTS))]
        when = START + timedelta(seconds=n * 0.9)
        roll = rng.random()
        data: dict[str, Any]
        if roll < 0.35:
            kind = "fill"
            opened = self.open[account]
            close = opened and (len(opened) >= self.target_open or rng.random() < 0.3)
            if close:
                pos_id, symbol, side, qty = opened.pop(rng.randrange(len(opened)))
                data = {"symbol": symbol, "side": "sell" if side == "buy" else "buy",
                        "quantity": qty, "price": self._price(symbol), "fee": "0.35",
                        "position_id": pos_id,
                        "exit_reason": rng.choice(["take_profit", "stop_loss", "signal"])}
            else:
                symbol = SYMBOLS[rng.randrange(len(SYMBOLS))]
                side = rng.choice(["buy", "sell"])
                qty = str(rng.randrange(1, 50))
                pos_id = f"p-{self.prefix}-{n}"
                opened.append((pos_id, symbol, side, qty))
                data = {"symbol": symbol, "side": side, "quantity": qty,
                        "price": self._price(symbol), "fee": "0.35", "position_id": pos_id}
                if self.orders[account] and rng.random() < 0.5:
                    data["order_id"] = self.orders[account][-1]
        elif roll < 0.55:
            kind = "mark"
            picks = rng.sample(SYMBOLS, 3)
            data = {"prices": {s: self._price(s) for s in picks}}
        elif roll < 0.67:
            kind = "signal"
            sid = f"s-{self.prefix}-{n}"
            self.signals[account].append(sid)
            del self.signals[account][:-50]
            symbol = SYMBOLS[rng.randrange(len(SYMBOLS))]
            data = {"signal_id": sid, "strategy": "sma-cross", "symbol": symbol,
                    "side": rng.choice(["long", "short"]), "entry_price": self._price(symbol),
                    "stop_loss": "90.5", "take_profit": "130.25", "confidence": "0.7",
                    "timeframe": "5m"}
        elif roll < 0.80:
            kind = "order"
            oid = f"o-{self.prefix}-{n}"
            self.orders[account].append(oid)
            del self.orders[account][:-50]
            symbol = SYMBOLS[rng.randrange(len(SYMBOLS))]
            data = {"order_id": oid, "symbol": symbol, "side": rng.choice(["buy", "sell"]),
                    "quantity": str(rng.randrange(1, 50)), "order_type": "limit",
                    "limit_price": self._price(symbol)}
            if self.signals[account]:
                data["signal_id"] = self.signals[account][-1]
        elif roll < 0.88:
            kind = "status"
            if self.orders[account] and rng.random() < 0.6:
                data = {"entity": "order", "entity_id": rng.choice(self.orders[account]),
                        "status": rng.choice(["accepted", "partially_filled", "filled"])}
            elif self.signals[account]:
                data = {"entity": "signal", "entity_id": rng.choice(self.signals[account]),
                        "status": rng.choice(["triggered", "closed"])}
            else:
                data = {"entity": "signal", "entity_id": "none", "status": "expired",
                        "reason": "no such signal yet"}
        elif roll < 0.98:
            kind = "journal"
            data = {"text": f"note {n}: spread widened on the open, waiting for the pullback",
                    "tags": ["review", "session"],
                    "symbol": SYMBOLS[rng.randrange(len(SYMBOLS))]}
        else:
            kind = "cash"
            amount = rng.choice(["1000", "250.5", "-120", "-3.25"])
            data = {"amount": amount,
                    "kind": "deposit" if not amount.startswith("-") else "withdrawal"}
        return {"id": f"{self.prefix}-{n:010d}", "source": f"bot/{account}", "type": kind,
                "time": when.isoformat().replace("+00:00", "Z"), "account": account,
                "data": data}


def events(count: int, seed: int = 7, prefix: str = "e") -> list[dict[str, Any]]:
    """The first ``count`` events of ``EventStream(seed, prefix)``."""
    stream = EventStream(seed, prefix)
    return [next(stream) for _ in range(count)]


def append_line(request_id: int, wire: list[dict[str, Any]]) -> bytes:
    """One pre-serialised ``append`` request line."""
    return (json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "append",
                        "params": {"events": wire}}, separators=(",", ":")) + "\n").encode()


def batch_line(request_id: int, wire: list[dict[str, Any]]) -> bytes:
    """Alias of ``append_line`` for a batch of several events in one append."""
    return append_line(request_id, wire)
