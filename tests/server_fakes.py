"""Stand-ins for unit tests of the server side without a daemon process: a recorder
holding stored events in a list, a writer that stores appends in it, an outbox that
records what it is sent, a transport that records what is written."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from daemon.access import Peer
from daemon.config import Config, Limits
from daemon.service import Service
from eventstore.errors import StorageDamagedError
from eventstore.record import AppendOutcome, AppendRequest, EventResult, StoredEvent

PEER = Peer(4242, 1000, 1000)


def stored_event(seq: int, account: str = "acct-1", text: str = "x") -> StoredEvent:
    """A stored ``journal`` event at ``seq``."""
    return StoredEvent(seq, f"e{seq}", "test/bot", "journal", "2024-03-01T12:00:00Z",
                       account, "1.0", None, {"text": text}, "2024-03-01T12:00:01Z", 1,
                       "0" * 64)


class FakeRecorder:
    """``read_page`` over a list of stored events; ``damaged_at``: the seq whose read
    raises ``StorageDamagedError``."""

    def __init__(self, events: Sequence[StoredEvent] = ()) -> None:
        self.events = list(events)
        self.damaged_at: int | None = None

    async def read_page(self, from_seq: int = 1, limit: int = 1000,
                        account: str | None = None, types: Sequence[str] | None = None,
                        before_seq: int | None = None) -> tuple[list[StoredEvent], int]:
        await asyncio.sleep(0)
        found = [e for e in self.events if e.seq >= from_seq
                 and (account is None or e.account == account)
                 and (types is None or e.event_type in types)
                 and (before_seq is None or e.seq < before_seq)][:limit]
        if self.damaged_at is not None and any(e.seq >= self.damaged_at for e in found):
            raise StorageDamagedError(self.damaged_at, "hash mismatch")
        return found, self.events[-1].seq if self.events else 0


class FakeWriter:
    """Stores each appended request's events in ``recorder``; ``groups`` records the
    size of each group it was handed; ``fail``: raised from the next ``append_groups``."""

    def __init__(self, recorder: FakeRecorder) -> None:
        self.recorder = recorder
        self.groups: list[int] = []
        self.fail: Exception | None = None
        self.checkpoint = 0
        self.flushed = 0

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        await asyncio.sleep(0)
        self.groups.append(len(requests))
        if self.fail is not None:
            raise self.fail
        outcomes = []
        for request in requests:
            results = []
            for event in request.events:
                seq = len(self.recorder.events) + 1
                self.recorder.events.append(stored_event(seq, event.account))
                results.append(EventResult(event.event_id, event.source, seq, False))
            outcomes.append(AppendOutcome(results, len(self.recorder.events)))
        self.checkpoint = self.flushed = len(self.recorder.events)
        return outcomes

    async def flush_views(self) -> None:
        self.flushed = self.checkpoint


def make_service(tmp_path: Path, recorder: FakeRecorder | None = None,
                 **limits: Any) -> Service:
    """A ``Service`` on fakes, with ``limits`` over the defaults."""
    config = Config(db=tmp_path / "t.db", socket=tmp_path / "t.sock",
                    limits=Limits(**limits))
    recorder = recorder or FakeRecorder()
    return Service(config, recorder, FakeWriter(recorder),  # type: ignore[arg-type]
                   len(recorder.events))


class FakeOutbox:
    """An ``Outbox`` that records the notifications sent to it."""

    def __init__(self) -> None:
        self.peer = PEER
        self.closed = False
        self.writable = True
        self.sent: list[dict[str, Any]] = []
        self.forced: list[bool] = []
        self.closes = 0
        self._writable = asyncio.Event()
        self._writable.set()

    def send_notification(self, message: dict[str, Any], force: bool = False) -> None:
        if not self.closed or force:
            self.sent.append(message)
            self.forced.append(force)

    def block(self) -> None:
        """The client stops reading: the socket's buffer is full."""
        self.writable = False
        self._writable.clear()

    def unblock(self) -> None:
        self.writable = True
        self._writable.set()

    async def wait_writable(self) -> bool:
        await self._writable.wait()
        return not self.closed

    @contextlib.asynccontextmanager
    async def read_turn(self) -> AsyncIterator[None]:
        yield

    def close(self) -> None:
        self.closes += 1
        self.closed = True

    def seqs(self) -> list[int]:
        """The seqs of the ``event`` notifications sent so far."""
        return [m["params"]["event"]["seq"] for m in self.sent if m["method"] == "event"]


class FakeTransport(asyncio.Transport):
    """Records what is written; reading pauses and the write buffer are set by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.buffered = 0
        """Bytes the fake says wait in its buffer (``get_write_buffer_size``)."""
        self.reading = True
        self.closing = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def messages(self) -> list[Any]:
        """Every line written, decoded."""
        return [json.loads(line) for line in bytes(self.written).splitlines()]
