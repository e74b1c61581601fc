"""Where a writer's own last commit left the log: what lets its next group skip reading
the log's last row before appending (``eventstore.postgres.writes.append_group``).

A writer that is alone on the log (the common case: one daemon) knows the last seq, hash
and ``recorded_at`` after each of its commits, because it made them. Its next group then
goes to the server in one flight (``BEGIN``, the lock, the rows, the views' rows,
``COMMIT``) instead of two (the lock and a read of the last row first): the events'
``seq`` primary key and ``(source, id)`` unique key decide, under the lock, whether the
guess held. Another daemon's append took seq ``seq + 1`` first, or an event of the group
was already stored (a re-send): the insert fails, the transaction is rolled back with
nothing stored, and the group is made again from a read of the log (the path that tells
duplicates and version conflicts apart).

The versions a writer keeps are only as good as its knowing every append since it read
them: a read that finds the log moved by another writer forgets them all. A guessed
group that would store nothing (every request refused on the versions kept) has no key
of the server to check the guess, so it is decided on a read instead.

A guess that fails costs the views' in-memory state (reloaded from their tables), so a
writer only guesses after ``QUIET_GROUPS`` groups in a row found the log where it had
left it: with several daemons appending at once, the reads go first as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from eventstore.record import AppendRequest

__all__ = ["MAX_ACCOUNTS", "QUIET_GROUPS", "Tail"]

QUIET_GROUPS = 2
"""Groups in a row that found the log's last seq where this writer left it, before its
next group skips the read."""

MAX_ACCOUNTS = 10_000
"""Accounts whose version a tail keeps (forgotten all at once past this: a request that
names an account's expected version then reads it again)."""


@dataclass(slots=True)
class Tail:
    """The log's last row as this writer's last commit left it, and the versions (event
    counts) of the accounts its groups touched, as of that row.

    ``seq`` 0 with ``hash`` the genesis hash is an empty log, -1 not known yet (the
    groups read the log first). ``quiet``: groups in a row whose read of the log found
    ``seq`` (no other writer in between). ``origin``: this writer's name in the
    notifications of its commits (``eventstore.postgres.notify``; "" for none), so that
    its own daemon need not wake up for them.
    """

    origin: str = ""
    seq: int = -1
    hash: str = ""
    recorded_at: str = ""
    versions: dict[str, int] = field(default_factory=dict)
    quiet: int = 0

    def forget(self) -> None:
        """The log may have moved without this writer knowing (a commit in doubt, a new
        connection): read it first again."""
        self.seq, self.quiet = -1, 0
        self.versions.clear()

    def may_skip_read(self, requests: Sequence[AppendRequest]) -> bool:
        """Whether the group may go without reading the log first: the log has been
        this writer's alone lately, and every expected version it checks is known."""
        if self.quiet < QUIET_GROUPS:
            return False
        return all(r.expected_account is None or r.expected_account in self.versions
                   for r in requests)

    def found(self, last_seq: int, last_hash: str) -> None:
        """A read of the log (under the lock) found ``last_seq`` and ``last_hash`` as its
        last row. Any other row than this writer's last commit left means another writer
        appended (or the log is not the one it wrote to: a standby promoted without
        it): the versions kept may be wrong, so they are forgotten (the groups read the
        accounts' versions again)."""
        if last_seq == self.seq and last_hash == self.hash:
            self.quiet += 1
        else:
            self.quiet = 0
            self.versions.clear()

    def committed(self, seq: int, hash_: str, recorded_at: str,
                  versions: dict[str, int]) -> None:
        """This writer's commit left the log at ``seq``/``hash_``; ``versions``: the
        accounts' versions it knows after the commit."""
        self.seq, self.hash, self.recorded_at = seq, hash_, recorded_at
        if len(self.versions) + len(versions) > MAX_ACCOUNTS:
            self.versions.clear()
        self.versions.update(versions)

    def raced(self) -> None:
        """A group that skipped the read found the log moved: read first from now on,
        until the log is quiet again."""
        self.quiet = 0
