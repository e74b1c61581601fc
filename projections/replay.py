"""Replaying the views from the log: a past state restored from the nearest snapshot and
the log read after it, for ``as_of`` (``projections.query``) and ``as_of_time``
(``projections.query_time``). Synchronous, in a read transaction of the caller's
(``eventstore.logtx.LogTx``: the same code on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eventstore import ddl as event_ddl
from eventstore.logtx import LogTx
from eventstore.record import StoredEvent
from projections import tables as t
from projections.fold import PROJECTION_VERSION
from projections.rowcache import RowCache
from projections.rows import order_from, signal_from
from projections.runner import ViewRunner
from projections.snapshots import FORMAT, decode, latest_keyed_sql
from projections.state import State

__all__ = ["LogHistory", "before_first_void", "from_snapshot"]


def from_snapshot(conn: LogTx, seq: int, view: str | None) -> State | None:
    """The state at the nearest snapshot at or before ``seq`` (None: there is none).

    Signals and orders are loaded by key as the fold asks for them, unless ``view`` is
    one of them (then all of them, to list them)."""
    if not conn.has_table("view_snapshots"):
        return None
    found = conn.execute(
        "SELECT seq, format, rows FROM view_snapshots WHERE seq <= ? ORDER BY seq DESC "
        "LIMIT 1", (seq,)).fetchone()
    if found is None or found[1] != FORMAT:
        return None
    at, _, blob = found
    rows = decode(blob)
    runner = ViewRunner()
    runner.restore([[(at, PROJECTION_VERSION)], rows["balances"], rows["prices"],
                    rows["positions"], rows["daily"], [], [], [(at,)], rows["accounts"],
                    rows["instruments"], rows["strategies"]])
    state = runner.state
    assert state is not None
    if view == "signals":
        signals = [signal_from(r) for r in conn.execute(latest_keyed_sql("signals", False),
                                                           (at,))]
        state.signals = {(r.account, r.signal_id): r for r in signals}
    else:
        state.signals = RowCache(_keyed_loader(conn, "signals", at, signal_from,
                                                     state.refolded), 1 << 62)
    if view == "orders":
        orders = [order_from(r) for r in conn.execute(latest_keyed_sql("orders", False),
                                                         (at,))]
        state.orders = {(r.account, r.order_id): r for r in orders}
    else:
        state.orders = RowCache(_keyed_loader(conn, "orders", at, order_from,
                                                    state.refolded), 1 << 62)
    return state


def _keyed_loader(conn: LogTx, name: str, at: int, convert: Any,
                  refolded: set[str]) -> Any:
    """The loader of one keyed view's versions at ``at``. It holds the state's
    ``refolded`` set, not the state: a state whose cache held a loader holding the state
    would be a reference cycle, freed only by a full collection, so each ``as_of`` would
    keep its whole past state in memory until then."""
    sql = latest_keyed_sql(name, True)

    def load(key: tuple[str, str]) -> Any:
        if key[0] in refolded:
            return None  # a void folded the account again: all its rows are in memory
        found = conn.execute(sql, (key[0], key[1], at)).fetchone()
        return None if found is None else convert(found)

    return load


class LogHistory:
    """A void's account history (``projections.voids.History``) read on ``conn``."""

    def __init__(self, conn: LogTx) -> None:
        self.conn = conn

    def __call__(self, account: str, before: int,
                 types: Sequence[str] | None) -> Iterator[StoredEvent]:
        sql = (f"SELECT {event_ddl.EVENT_COLUMNS} FROM events WHERE account = ? AND seq < ?"
               + (f" AND type IN ({', '.join('?' * len(types))})" if types else "")
               + " ORDER BY seq")
        for rows in self.conn.chunks(sql, [account, before, *(types or ())]):
            yield from (StoredEvent.from_row(row) for row in rows)


def before_first_void(conn: LogTx) -> int:
    """The last seq before the first void the views folded (no limit without one): a
    snapshot taken after a void may hold versions of signals and orders it removed."""
    if not conn.has_table(t.VOIDS.name):
        return 1 << 62
    found = conn.execute(f"SELECT min(seq) FROM {t.VOIDS.name}").fetchone()
    return (1 << 62) if found is None or found[0] is None else int(found[0]) - 1
