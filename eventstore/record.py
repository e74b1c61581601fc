"""The records the event store takes and gives: ``NewEvent`` in, ``StoredEvent`` out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eventstore.canonical import canonical_data, canonical_event
from schemas.versions import SCHEMA_VERSIONS

if TYPE_CHECKING:
    from schemas.events import Event

__all__ = ["AppendOutcome", "AppendRequest", "EventResult", "NewEvent", "StoredEvent"]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A validated event ready to store: envelope columns, canonical ``data`` and bytes.

    ``data`` is the JSON-ready payload (decimals and times as strings), ``metadata`` what
    the daemon knows of the sending peer (pid/uid/gid, correlation and causation ids).
    """

    event_id: str
    source: str
    event_type: str
    time: str
    account: str
    specversion: str
    datacontenttype: str | None
    data: dict[str, Any]
    data_json: str
    canonical: bytes
    schema_version: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_model(cls, event: Event, metadata: dict[str, Any] | None = None) -> NewEvent:
        """Build from a validated wire-event model (``schemas.parse_event``)."""
        dumped = event.model_dump(mode="json", exclude_none=True)
        data: dict[str, Any] = dumped["data"]
        data_json = canonical_data(data)
        event_type = dumped["type"]
        canonical = canonical_event(
            account=dumped["account"],
            data_json=data_json,
            datacontenttype=dumped.get("datacontenttype"),
            event_id=dumped["id"],
            source=dumped["source"],
            specversion=dumped["specversion"],
            time=dumped["time"],
            event_type=event_type,
        )
        return cls(
            event_id=dumped["id"],
            source=dumped["source"],
            event_type=event_type,
            time=dumped["time"],
            account=dumped["account"],
            specversion=dumped["specversion"],
            datacontenttype=dumped.get("datacontenttype"),
            data=data,
            data_json=data_json,
            canonical=canonical,
            schema_version=SCHEMA_VERSIONS[event_type],
            metadata=dict(metadata or {}),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled to the writer process for every event: a plain tuple of the fields is
        # several times cheaper than the dataclass's generic state.
        return (NewEvent, (self.event_id, self.source, self.event_type, self.time,
                           self.account, self.specversion, self.datacontenttype, self.data,
                           self.data_json, self.canonical, self.schema_version,
                           self.metadata))


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored: the wire event plus ``seq``, ``recorded_at``, ``schema_version``
    and ``hash`` (PROTOCOL.md, "Stored events").

    ``data`` is JSON-ready: decimals and times are strings. ``metadata`` is not part of
    the hashed content.
    """

    seq: int
    event_id: str
    source: str
    event_type: str
    time: str
    account: str
    specversion: str
    datacontenttype: str | None
    data: dict[str, Any]
    recorded_at: str
    schema_version: int
    hash: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The stored event as PROTOCOL.md returns it from ``read`` and ``subscribe``."""
        out: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.event_id,
            "source": self.source,
            "type": self.event_type,
            "time": self.time,
            "account": self.account,
        }
        if self.datacontenttype is not None:
            out["datacontenttype"] = self.datacontenttype
        out["data"] = self.data
        out["seq"] = self.seq
        out["recorded_at"] = self.recorded_at
        out["schema_version"] = self.schema_version
        out["hash"] = self.hash
        return out

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> StoredEvent:
        """From a row of ``ddl.EVENT_COLUMNS``, in that order."""
        (seq, source, event_id, event_type, time, account, specversion, dct, data_json,
         recorded_at, schema_version, metadata, digest) = row
        return cls(
            seq=seq,
            event_id=event_id,
            source=source,
            event_type=event_type,
            time=time,
            account=account,
            specversion=specversion,
            datacontenttype=dct,
            data=json.loads(data_json),
            recorded_at=recorded_at,
            schema_version=schema_version,
            hash=digest,
            metadata=json.loads(metadata) if metadata else {},
        )


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One caller's batch: atomic on its own, committed in a group with others."""

    events: list[NewEvent]
    expected_account: str | None = None
    expected_version: int | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (AppendRequest, (self.events, self.expected_account, self.expected_version))


@dataclass(frozen=True, slots=True)
class EventResult:
    """Where one event of a batch is: its ``seq``, and whether it was already stored."""

    event_id: str
    source: str
    seq: int
    duplicate: bool

    def to_wire(self) -> dict[str, Any]:
        """The ``append`` result entry: ``{"id", "source", "seq", "duplicate"}``."""
        return {"id": self.event_id, "source": self.source, "seq": self.seq,
                "duplicate": self.duplicate}

    def __reduce__(self) -> tuple[Any, ...]:
        return (EventResult, (self.event_id, self.source, self.seq, self.duplicate))


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    """The result of one ``AppendRequest``: ``results`` and ``last_seq``, or ``error``."""

    results: list[EventResult]
    last_seq: int
    error: Exception | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (AppendOutcome, (self.results, self.last_seq, self.error))
