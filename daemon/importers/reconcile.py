"""What the views show of one imported file: its own round trips, not the whole account's.

An import's reconciliation line compares what the file states (round trips closed,
realized P&L) with the views' rows of the positions the file's fills name
(``position_id``): the closed round trips of ``trades`` (their ``gross_pnl``, as the
files state P&L gross of fees) and the realized part of still-open ``positions``. Rows
of the same account from other files or from a bot are not counted, so a file imported
into a busy account still reconciles, and a renamed copy imported again shows the same
figures, not twice them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

__all__ = ["PAGE", "Query", "file_in_views"]

Query = Callable[..., Awaitable[dict[str, Any]]]
"""``query(view, **params)``: a PROTOCOL.md ``query`` answer (the client's, or the views'
own for ``--db``)."""
PAGE = 100_000
"""Rows per page of a view read (the daemon's largest ``limit``)."""


async def file_in_views(query: Query, account: str,
                        positions: set[str]) -> tuple[int, Decimal]:
    """``(round trips, realized P&L)`` the views of ``account`` show for the position
    keys ``positions``: closed ``trades`` counted, their ``gross_pnl`` plus the open
    ``positions``' ``realized_pnl`` summed (account currency)."""
    closed = 0
    realized = Decimal(0)
    for view, field in (("trades", "gross_pnl"), ("positions", "realized_pnl")):
        offset = 0
        while True:
            answer = await query(view, account=account, order="asc", offset=offset,
                                 limit=PAGE)
            rows = answer["rows"]
            for row in rows:
                if row["position_key"] in positions:
                    realized += Decimal(row[field])
                    closed += view == "trades"
            offset += len(rows)
            if len(rows) < PAGE:
                break
    return closed, realized
