"""The messages between the daemon and its writer, one class each.

NamedTuples: each pickles as its class's name and a tuple of fields (as cheap as a
plain tuple, a quarter of a dict), and each field has a name. The order of a
conversation:

    daemon -> writer   Settings                        once, first
    writer -> daemon   Ready | Failed                  (after Failed the writer exits)
    daemon -> writer   Append | Flush                  any number ahead of the answers
    writer -> daemon   Done | Failed                   one per message, in order
    daemon -> writer   Close                           write the views, close, exit
"""

from __future__ import annotations

from typing import NamedTuple

from eventstore.record import AppendOutcome, AppendRequest

__all__ = ["Append", "Close", "Done", "Failed", "Flush", "Ready", "Reply", "Request",
           "Settings"]


class Settings(NamedTuple):
    """How the writer opens the file and writes the views."""

    db: str
    busy_timeout_s: float
    max_page_count: int | None
    """SQLite ``max_page_count`` for the file (None: no cap)."""
    log_format: str
    log_level: str
    defer_view_events: int
    """Write the views' rows once per this many events (0: with every commit)."""
    idle_flush_s: float
    """Write the rows held back after this long without a message."""


class Ready(NamedTuple):
    """The file is open and the views are up to date."""

    checkpoint: int
    """The views' checkpoint (seq of the last event folded)."""
    last_seq: int
    folded: int
    """Events folded to bring the views up to date."""
    page_cap: int | None
    """The cap SQLite applied (None: none asked)."""
    origin: str = ""
    """On PostgreSQL, the writer's name in the notifications of its commits (its own
    daemon need not wake for them: ``eventstore.postgres.notify``); "" on SQLite."""


class Append(NamedTuple):
    """Commit these requests in one transaction (one group commit)."""

    requests: list[AppendRequest]


class Flush(NamedTuple):
    """Write the views' rows held back, in a transaction of their own."""


class Close(NamedTuple):
    """Write the views, close the file and exit."""


class Done(NamedTuple):
    """The answer to ``Append`` (one outcome per request, in order) or ``Flush`` (none)."""

    outcomes: list[AppendOutcome]
    checkpoint: int
    """The views' checkpoint after the commit."""
    flushed: int
    """The seq up to which the views' tables are written."""


class Failed(NamedTuple):
    """The message failed: ``error`` is what the writer raised (it pickles intact)."""

    error: BaseException


Request = Append | Flush | Close
Reply = Done | Failed
