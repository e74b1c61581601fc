"""The event log's tables, triggers, file identity and migrations (SQL text only)."""

from __future__ import annotations

__all__ = [
    "APPLICATION_ID",
    "EVENT_COLUMNS",
    "EVENT_TRIGGERS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
]

APPLICATION_ID = 0x54524C47
"""``PRAGMA application_id`` of a tradelog file: "TRLG"."""

EVENT_COLUMNS = (
    "seq, source, id, type, time, account, specversion, datacontenttype, data, "
    "recorded_at, schema_version, metadata, hash"
)

_EVENTS = """
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY,
    source          TEXT NOT NULL,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    time            TEXT NOT NULL,
    account         TEXT NOT NULL,
    specversion     TEXT NOT NULL,
    datacontenttype TEXT,
    data            TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    metadata        TEXT NOT NULL,
    hash            TEXT NOT NULL,
    UNIQUE (source, id)
)
"""

EVENT_TRIGGERS: dict[str, str] = {
    "events_no_update": """
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'tradelog events are append-only: UPDATE is refused'); END
""",
    "events_no_delete": """
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'tradelog events are append-only: DELETE is refused'); END
""",
    # REPLACE and upserts delete or update without firing the triggers above unless
    # recursive_triggers is on, so every insert must be a fresh, next seq.
    "events_insert_only_next": """
CREATE TRIGGER events_insert_only_next BEFORE INSERT ON events
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM events)
  OR EXISTS (SELECT 1 FROM events WHERE source = NEW.source AND id = NEW.id)
BEGIN SELECT RAISE(ABORT,
  'tradelog events are append-only: an insert must take the next seq and a new source+id');
END
""",
}

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` this code writes. A file with a higher one is refused."""

MIGRATIONS: dict[int, list[str]] = {
    # from user_version N to N+1
    0: [
        _EVENTS,
        "CREATE INDEX events_account ON events (account, seq)",
        "CREATE INDEX events_recorded_at ON events (recorded_at)",
        "CREATE TABLE accounts (account TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        " WITHOUT ROWID",
        *EVENT_TRIGGERS.values(),
    ],
}
