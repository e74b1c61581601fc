"""The daemon's side of one connection as a state machine, pure, in the way of h11's
``Connection`` and hypercorn's protocol classes: bytes in, requests out; answers in,
bytes out. No socket, no event loop, no clock: the server shell feeds it what the
socket gives, runs the calls it hands out, gives their answers back, writes the bytes
it returns, and checks the deadline it names.

Budgets (PROTOCOL.md, "Limits"; docs/PROTOCOL-NOTES.md, "Budgets") kept here as
counters: requests read and not yet answered (batch members one each) at most
``max_inflight_per_connection``; no line is taken while more than ``max_answer_bytes``
of answers wait to be sent (``note_waiting``), nor while complete lines wait for their
turn; a batch array holds at most ``max_batch_requests`` members, and its answers
together at most ``max_answer_bytes`` (``AnswerBudget``, spent by the calls that read).

One line gives one ``Requests`` event: a ``Group`` of slots, one per request (one for a
single request, one per member of a batch), some answered already (errors found here:
-32700, -32600, -32601, -32602 for params that are not an object), the others
``calls`` for the shell to run. A group's answer goes out once all its slots are
answered: one line, a batch's answers as one array in request order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from daemon.wire.framing import LineBuffer, Stop
from daemon.wire.jsonread import JSONReadError, encode, loads
from daemon.wire.methods import METHODS, Method, method_not_found
from daemon.wire.rpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    Request,
    RpcError,
    answer_id,
    error_answer,
    parse_request,
)

__all__ = ["AnswerBudget", "Group", "LineTooLong", "Refusal", "Requests", "ServerProtocol",
           "Slot", "Wait", "WireLimits", "error_line", "unfinished_line_error"]


class WireLimits(Protocol):
    """The limits the wire layer applies (``daemon.config.Limits`` has them all)."""

    @property
    def max_line_bytes(self) -> int: ...
    @property
    def max_batch_requests(self) -> int: ...
    @property
    def max_inflight_per_connection(self) -> int: ...
    @property
    def max_answer_bytes(self) -> int: ...
    @property
    def partial_line_timeout_s(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused here, for the shell to log (at a bounded rate): the id to
    answer with (None when it had none valid), the error code and message, the method."""

    request_id: Any
    code: int
    message: str
    method: str | None = None


@dataclass(eq=False, slots=True)
class AnswerBudget:
    """One batch array's share of the answer budget: ``budget`` bytes in all, ``used`` by
    its members' answers so far."""

    budget: int
    used: int = 0

    @property
    def remaining(self) -> int:
        """Bytes its members' answers may still take (0 or less: none)."""
        return self.budget - self.used


_WAITING = object()
"""A slot's answer not yet given."""


class Group:
    """The requests of one line and their answers so far: ``answers`` (an encoded answer,
    None for none, or not yet given), ``waiting`` (how many are not yet given),
    ``counted`` (requests it counts in flight: 0 until ``dispatched`` finds it waiting),
    ``budget`` (a batch's share of the answer budget; None for a single request) and
    ``after``: actions the shell runs once the group's answer is written (a
    subscription's pump starts then, so its notifications follow the answer)."""

    __slots__ = ("after", "answers", "batch", "budget", "cancelled", "counted", "waiting")

    def __init__(self, batch: bool, budget: AnswerBudget | None,
                 answers: list[Any] | None = None) -> None:
        self.batch = batch
        self.budget = budget
        self.answers: list[Any] = [] if answers is None else answers
        self.waiting = 0
        self.counted = 0
        self.cancelled = False
        self.after: list[Callable[[], None]] = []

    def data(self) -> bytes | None:
        """The group's answer line (with its ``\\n``); None when nothing is answered."""
        if self.cancelled:
            return None
        if not self.batch:
            answer = self.answers[0]
            return None if answer is None else answer + b"\n"
        parts = [a for a in self.answers if a is not None]
        if not parts:
            return None
        return b"[" + b",".join(parts) + b"]\n"


@dataclass(slots=True)
class Slot:
    """One request's place in its group: the checked ``request`` and its ``method``."""

    group: Group
    index: int
    request: Request
    method: Method


@dataclass(slots=True)
class Requests:
    """A line was read: its requests (``calls`` to run, in line order) and those refused."""

    group: Group
    calls: list[Slot]
    refusals: list[Refusal]


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line passed ``max_line_bytes``: write ``data`` (the -32600 answer) and close."""

    limit: int
    data: bytes


class Wait(Enum):
    """Why ``next_event`` has no line to give."""

    NEED_DATA = "need_data"
    """No complete line: read more (an unfinished one may have a deadline)."""
    PAUSED = "paused"
    """Budgets: too many requests in flight, or answers waiting past the answer budget."""
    TURN_OVER = "turn_over"
    """This turn has had its lines: call again in the next one."""
    STOPPED = "stopped"
    """Closed, or taking no new requests."""


def error_line(request_id: Any, code: int, message: str) -> bytes:
    """A JSON-RPC error answer as one NDJSON line."""
    return encode(error_answer(request_id, code, message)) + b"\n"


def unfinished_line_error() -> bytes:
    """The -32600 line for a request line left unfinished past the deadline."""
    return error_line(None, INVALID_REQUEST, "a request line was left unfinished for too "
                      "long (limits.partial_line_timeout_s); end each request with \\n")


class ServerProtocol:
    """The wire state of one connection. ``limits`` is called at each use (the limits
    in force change on a config reload)."""

    def __init__(self, limits: Callable[[], WireLimits]) -> None:
        self._limits = limits
        self.lines = LineBuffer()
        self.inflight = 0
        """Requests read and not yet answered (batch members one each)."""
        self.accepting = True
        """False once the daemon takes no new requests (draining)."""
        self.closed = False
        self.over_budget = False
        """True while more than ``max_answer_bytes`` of answers wait to be sent."""
        self.written = 0
        """Answer bytes handed to the socket so far."""

    # ------------------------------------------------------------ input

    @property
    def ended(self) -> bool:
        """True once the peer stopped sending."""
        return self.lines.ended

    def receive_data(self, data: bytes) -> bool:
        """Take received bytes; False when they are ignored (closed, ended, draining)."""
        if self.closed or self.lines.ended or not self.accepting:
            return False
        self.lines.feed(data)
        return True

    def receive_eof(self) -> None:
        """The peer stopped sending: its unfinished line is dropped, complete ones stay."""
        self.lines.end_input()

    def wants_data(self) -> bool:
        """Whether the socket should be read now: accepting, within the in-flight limit
        and the answer budget, and no complete line waiting for its turn."""
        return not (not self.accepting or self.over_budget or self.lines.backlog
                    or self.inflight >= self._limits().max_inflight_per_connection)

    def can_take(self) -> bool:
        """Whether a turn would take lines now (lines wait and the budgets allow)."""
        return (self.lines.backlog and not self.closed and not self.over_budget
                and self.inflight < self._limits().max_inflight_per_connection)

    def next_event(self, now: float) -> Requests | LineTooLong | Wait:
        """The next line's requests, or why there is none; ``now`` (seconds, the
        shell's clock) dates an unfinished line's deadline. Call until it gives a
        ``Wait``; each ``Requests`` is to be dispatched (``dispatched``) before the next
        call, so the in-flight count holds."""
        if self.closed or not self.accepting:
            return Wait.STOPPED
        limits = self._limits()
        lines = self.lines
        while True:
            if self.inflight >= limits.max_inflight_per_connection or self.over_budget:
                return self._end_turn(limits, False, now, Wait.PAUSED)
            line = lines.next_line(limits.max_line_bytes)
            if line.__class__ is bytes:
                if line and not line.isspace():  # as line.strip(), without the copy
                    return self._parse(line, limits)
                continue
            if line is Stop.PARTIAL:
                return self._end_turn(limits, True, now, Wait.NEED_DATA)
            if line is Stop.TURN_OVER:
                return self._end_turn(limits, False, now, Wait.TURN_OVER)
            return self._too_long()

    def _end_turn(self, limits: WireLimits, partial: bool, now: float,
                  why: Wait) -> LineTooLong | Wait:
        if not self.lines.end_turn(partial, limits.max_line_bytes, now,
                                   limits.partial_line_timeout_s):
            return self._too_long()
        return why

    def _too_long(self) -> LineTooLong:
        limit = self._limits().max_line_bytes
        self.lines.clear()
        return LineTooLong(limit, error_line(
            None, INVALID_REQUEST, f"request line longer than {limit} bytes "
            "(limits.max_line_bytes); the connection is closed. Split large appends "
            "into several requests"))

    def _parse(self, line: bytes, limits: WireLimits) -> Requests:
        refusals: list[Refusal] = []
        try:
            message = loads(line)
        except JSONReadError as exc:
            refusals.append(Refusal(None, PARSE_ERROR, str(exc)))
            return self._answered(error_answer(None, PARSE_ERROR, f"parse error: {exc}"),
                                  refusals)
        if message.__class__ is not list:
            group = Group(False, None)
            slot = self._member(group, message, refusals)
            return Requests(group, [] if slot is None else [slot], refusals)
        limit = limits.max_batch_requests
        if not message or len(message) > limit:
            why = ("an empty batch is not a request" if not message else
                   f"a batch of {len(message)} requests; at most {limit} in one batch "
                   "array (limits.max_batch_requests): split it")
            refusals.append(Refusal(None, INVALID_REQUEST, why))
            return self._answered(error_answer(None, INVALID_REQUEST, why), refusals)
        group = Group(True, AnswerBudget(limits.max_answer_bytes))
        members = [self._member(group, member, refusals) for member in message]
        return Requests(group, [slot for slot in members if slot is not None], refusals)

    @staticmethod
    def _answered(answer: dict[str, Any], refusals: list[Refusal]) -> Requests:
        return Requests(Group(False, None, [encode(answer)]), [], refusals)

    @staticmethod
    def _member(group: Group, message: Any, refusals: list[Refusal]) -> Slot | None:
        """Check one request; its slot to run, or None when answered here (an error, or
        nothing for a notification)."""
        try:
            request = parse_request(message)
        except RpcError as exc:
            if exc.code == INVALID_PARAMS and "id" not in message:
                group.answers.append(None)  # a notification: never answered, even in error
                return None
            request_id = answer_id(message)
            refusals.append(Refusal(request_id, exc.code, exc.message))
            group.answers.append(encode(error_answer(request_id, exc.code, exc.message,
                                                     exc.data)))
            return None
        method = METHODS.get(request.method)
        if method is None:
            error = method_not_found(request.method)
            refusals.append(Refusal(request.id, error.code, error.message, request.method))
            group.answers.append(encode(error_answer(request.id, error.code, error.message))
                                 if request.has_id else None)
            return None
        group.answers.append(_WAITING)
        group.waiting += 1
        return Slot(group, len(group.answers) - 1, request, method)

    # ------------------------------------------------------------ answers

    def dispatched(self, group: Group) -> bytes | None:
        """Every call of ``group`` has been started. Returns its answer line when all
        are answered already; otherwise counts its requests in flight until they are."""
        if group.waiting == 0:
            return group.data()
        group.counted = len(group.answers)
        self.inflight += group.counted
        return None

    def answer(self, slot: Slot, data: bytes | None) -> tuple[bytes | None, bool]:
        """Give ``slot`` its answer (one encoded JSON-RPC answer without a line end, or
        None: not answered). Returns the group's answer line (None: nothing to write)
        and whether the group is complete now (run its ``after`` actions then)."""
        group = slot.group
        if group.answers[slot.index] is not _WAITING:
            return None, False
        group.answers[slot.index] = data
        group.waiting -= 1
        if group.waiting:
            return None, False
        if group.counted:
            self.inflight -= group.counted
            group.counted = 0
            return group.data(), True
        return None, False  # answered while dispatching: ``dispatched`` gives the line

    def cancel(self, slot: Slot) -> tuple[bytes | None, bool]:
        """``slot``'s work was cancelled (the connection went, or the daemon stops): its
        group is not answered at all."""
        slot.group.cancelled = True
        return self.answer(slot, None)

    # ------------------------------------------------------------ output

    def sent(self, size: int) -> None:
        """``size`` answer bytes were handed to the socket."""
        self.written += size

    def taken(self, waiting: int) -> int:
        """Answer bytes the client has taken, given ``waiting`` still unsent."""
        return self.written - waiting

    def note_waiting(self, waiting: int) -> bool:
        """``waiting`` answer bytes wait to be sent after a write. Returns True when that
        just passed ``max_answer_bytes``: no line is taken until ``drained``."""
        if not waiting or self.over_budget or waiting <= self._limits().max_answer_bytes:
            return False
        self.over_budget = True
        return True

    def drained(self) -> bool:
        """The socket's buffer drained; returns True when that ends an over-budget pause."""
        was, self.over_budget = self.over_budget, False
        return was

    def stop(self) -> None:
        """Take no new requests (draining): the bytes not yet read as lines are dropped."""
        self.accepting = False
        self.lines.clear()

    def close(self) -> None:
        """No more input is handled and nothing new is sent."""
        self.closed = True
