"""NDJSON input framing of one connection, pure: bytes in, complete lines out.

Lines end with ``\\n``; a line longer than ``max_line_bytes`` (its line end not counted)
is an error, noticed as soon as that many bytes wait without a line end. A turn hands
out at most ``TURN_LINES`` lines or ``TURN_BYTES`` bytes, so the server can serve other
connections in between. An unfinished line gets a deadline (``partial_deadline``, in the
caller's clock) that runs from when it began to wait: more bytes of it do not extend it,
and it restarts only when complete lines were taken meanwhile. Complete lines waiting
for their turn (``backlog``) have no deadline. After the peer's end of input the
unfinished line is dropped (PROTOCOL.md: a last line without ``\\n`` is not processed).
"""

from __future__ import annotations

from enum import Enum

__all__ = ["TURN_BYTES", "TURN_LINES", "TURN_MEMBERS", "LineBuffer", "Stop"]

TURN_LINES = 64
"""Lines handed out in one turn, at most."""
TURN_BYTES = 1 << 20
"""Bytes of lines handed out in one turn, at most (the line that passes it included)."""
TURN_MEMBERS = 64
"""Members of one batch started in one turn, at most (a batch of 1,000 appends would
hold the loop for ~100 ms)."""


class Stop(Enum):
    """Why ``LineBuffer.next_line`` gave no line."""

    PARTIAL = "partial"
    """No complete line is buffered: read more."""
    TURN_OVER = "turn_over"
    """This turn has had its lines: take the rest in the next one."""
    TOO_LONG = "too_long"
    """The line is longer than ``max_line_bytes``."""


class LineBuffer:
    """The bytes a connection received and has not yet handed out as lines."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._start = 0
        """Where the next line begins (lines before it are handed out, dropped at the
        turn's end)."""
        self._scanned = 0
        """Bytes at the buffer's start known to hold no line end."""
        self._lines = 0
        self.backlog = False
        """True when complete lines (or bytes not yet looked at) wait for a turn."""
        self.ended = False
        """True once the peer stopped sending."""
        self.partial_deadline: float | None = None
        """When the unfinished line waiting now runs out of time; None: none waits."""

    def __len__(self) -> int:
        """Bytes buffered and not yet handed out, in bytes."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes) -> None:
        """Add received bytes (ignored after ``end_input``)."""
        if not self.ended:
            self._buffer += data

    def next_line(self, max_line_bytes: int) -> bytes | Stop:
        """The next complete line (without its ``\\n``), or why there is none."""
        start = self._start
        if self._lines >= TURN_LINES or start >= TURN_BYTES:
            return Stop.TURN_OVER
        end = self._buffer.find(b"\n", max(start, self._scanned))
        if end < 0:
            return Stop.PARTIAL
        if end - start > max_line_bytes:
            return Stop.TOO_LONG
        self._start = end + 1
        self._lines += 1
        return bytes(self._buffer[start:end])

    def end_turn(self, partial: bool, max_line_bytes: int, now: float,
                 timeout_s: float) -> bool:
        """Close a turn: drop the lines handed out, note whether complete lines wait
        (``partial`` False: the turn ended before the buffer ran out of lines) and set
        the unfinished line's deadline (``timeout_s`` from ``now``). Returns False when
        the bytes waiting without a line end are already more than ``max_line_bytes``.
        """
        consumed = self._start > 0
        del self._buffer[:self._start]
        self._start = self._lines = 0
        if partial:
            self._scanned = len(self._buffer)
            self.backlog = False
            if len(self._buffer) > max_line_bytes:
                return False
        else:
            self._scanned = 0
            self.backlog = bool(self._buffer)
        waiting = bool(self._buffer) and not self.backlog and not self.ended
        if consumed or not waiting:
            self.partial_deadline = None
        if waiting and self.partial_deadline is None:
            self.partial_deadline = now + timeout_s
        return True

    def end_input(self) -> None:
        """The peer sent its last byte: drop its unfinished line; complete lines stay."""
        self.ended = True
        del self._buffer[self._buffer.rfind(b"\n") + 1:]
        self._start = self._scanned = self._lines = 0
        self.backlog = bool(self._buffer)
        self.partial_deadline = None

    def clear(self) -> None:
        """Drop everything buffered (no lines wait, no deadline runs)."""
        self._buffer = bytearray()
        self._start = self._scanned = self._lines = 0
        self.backlog = False
        self.partial_deadline = None
