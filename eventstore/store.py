"""Which store holds the log, named by a URL, and what every store offers.

    sqlite:///relative/path.db     sqlite:////absolute/path.db     (SQLAlchemy's spelling)
    postgresql://user@host[:port][,host2[:port2]...]/dbname[?param=value&...]

A PostgreSQL URL is libpq's (``postgres://`` too): several hosts are tried in order, and
the appending connection asks for ``target_session_attrs=read-write`` (the primary)
unless the URL names another. ``?options=-csearch_path%3DNAME`` puts the log in schema
NAME instead of ``public``.

``EventStore`` is the surface both recorders have (``eventstore.Recorder`` on SQLite,
``eventstore.postgres.PgRecorder``): the contract tests run the same tests on each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from eventstore.errors import ValidationError

if TYPE_CHECKING:
    from eventstore.logtx import LogTx
    from eventstore.record import AppendOutcome, AppendRequest, NewEvent, StoredEvent
    from eventstore.verify import VerifyReport

__all__ = ["EventStore", "StoreURL", "ViewReader", "open_reader", "open_store", "parse_store"]

T = TypeVar("T")


class EventStore(Protocol):
    """An open event log: appends with the recorder contract, reads by seq, verify."""

    async def append(self, events: Sequence[NewEvent], expected_version: tuple[str, int]
                     | None = None) -> AppendOutcome:
        """One batch, atomically; raises its conflict or ``ValidationError``."""
        ...

    async def append_groups(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        """Several batches in one transaction; one outcome per request, in order."""
        ...

    async def read(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
                   types: Sequence[str] | None = None) -> list[StoredEvent]:
        """Stored events from ``from_seq`` in seq order, at most ``limit``."""
        ...

    async def read_page(self, from_seq: int = 1, limit: int = 1000, account: str | None = None,
                        types: Sequence[str] | None = None, before_seq: int | None = None
                        ) -> tuple[list[StoredEvent], int]:
        """``read`` and the last seq, from one snapshot."""
        ...

    async def last_seq(self) -> int:
        """The highest stored seq (0 for an empty log)."""
        ...

    async def verify(self) -> VerifyReport:
        """The chain from seq 1, the append-only triggers and the accounts' versions."""
        ...

    async def verify_tail(self, count: int = 256) -> VerifyReport:
        """The last ``count`` events re-hashed."""
        ...

    async def close(self) -> None:
        """Release the connections (idempotent)."""
        ...


class ViewReader(EventStore, Protocol):
    """A log the daemon serves reads and the views' queries from: ``EventStore`` and
    read-only SQL in SQLite's spelling (run as it is on SQLite, rewritten on PostgreSQL:
    ``eventstore.postgres.dialect``)."""

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only query."""
        ...

    async def fetch_snapshot(self, queries: Sequence[tuple[str, Sequence[Any]]]
                             ) -> list[list[tuple[Any, ...]]]:
        """Rows of several read-only queries, from one consistent snapshot."""
        ...

    async def replay(self, fn: Callable[[LogTx], T]) -> T:
        """``fn(tx)`` in one read transaction on a connection of its own, on a worker
        thread: the folds that replay the log (``as_of``) read through it."""
        ...


@dataclass(frozen=True, slots=True)
class StoreURL:
    """A parsed store URL: ``kind`` and either ``path`` (SQLite) or ``conninfo`` (PostgreSQL)."""

    kind: Literal["sqlite", "postgresql"]
    path: Path | None = None
    conninfo: str | None = None

    def redacted(self) -> str:
        """The URL for logs and messages: a password in it replaced by ``***``."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        parts = urlsplit(self.conninfo or "")
        if parts.password is None:
            return self.conninfo or ""
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


def parse_store(url: str) -> StoreURL:
    """Parse a store URL (module docstring).

    Raises:
        ValidationError: not a ``sqlite:///`` or ``postgresql://`` URL, no path, or a
            PostgreSQL URL libpq cannot parse (the message says what to fix).
    """
    text = url.strip()
    if text.startswith("sqlite:///"):
        rest = text[len("sqlite:///"):]
        if not rest or rest.endswith("/"):
            raise ValidationError(f"store {url!r}: name the database file, e.g. "
                                  "sqlite:///tradelog.db or sqlite:////var/lib/tradelog/x.db")
        return StoreURL("sqlite", path=Path(rest))
    if text.startswith(("postgresql://", "postgres://")):
        try:
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:  # pragma: no cover - the extra is not installed
            raise ValidationError(
                f"store {_hide(text)!r}: PostgreSQL needs psycopg; install "
                "tradelog[postgres]") from None
        try:
            conninfo_to_dict(text)
        except Exception as exc:
            raise ValidationError(f"store {_hide(text)!r} is not a valid PostgreSQL URI: "
                                  f"{' '.join(str(exc).split())}") from None
        return StoreURL("postgresql", conninfo=text)
    raise ValidationError(f"store {_hide(text)!r}: give sqlite:///PATH or "
                          "postgresql://USER@HOST[,HOST2]/DBNAME")


def _hide(text: str) -> str:
    parts = urlsplit(text)
    try:
        password = parts.password
    except ValueError:
        return text
    return text if password is None else text.replace(f":{password}@", ":***@", 1)


async def open_store(url: str | StoreURL, *, readonly: bool = False) -> EventStore:
    """Open the log the URL names (created on first use unless ``readonly``).

    Raises:
        ValidationError: a bad URL.
        DatabaseFileError, StorageUnavailableError: as each recorder's ``open``.
    """
    target = parse_store(url) if isinstance(url, str) else url
    if target.kind == "sqlite":
        from eventstore.recorder import Recorder

        assert target.path is not None
        return await Recorder.open(target.path, readonly=readonly)
    from eventstore.postgres.recorder import PgRecorder

    assert target.conninfo is not None
    return await PgRecorder.open(target.conninfo, readonly=readonly)


async def open_reader(target: Path | StoreURL) -> ViewReader:
    """The log at ``target`` (a SQLite file's path, or a parsed store URL) opened
    read-only, for the commands that read the views without a daemon (``show``,
    ``report``, ``export``).

    Raises:
        DatabaseFileError: not a tradelog log (or, on PostgreSQL, no log in the schema).
        StorageUnavailableError: the file or the server cannot be reached.
    """
    if isinstance(target, Path):
        target = StoreURL("sqlite", path=target)
    if target.kind == "sqlite":
        from eventstore.recorder import Recorder

        assert target.path is not None
        return await Recorder.open(target.path, readonly=True)
    from eventstore.postgres.recorder import PgRecorder

    assert target.conninfo is not None
    return await PgRecorder.open(target.conninfo, readonly=True)
