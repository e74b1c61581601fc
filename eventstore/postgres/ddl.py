"""The PostgreSQL event log's tables, triggers and identity (SQL text only).

The columns are SQLite's (``eventstore.ddl.EVENT_COLUMNS``, in that order) plus
``prev_hash``, the hash of the event before (the genesis hash for seq 1), so that the
insert trigger can refuse a row that does not take the next seq on the last hash. Every
text is stored as sent: ``data`` and ``metadata`` are JSON *text* (not ``jsonb``, which
would reorder keys and lose the bytes the chain hashes), ``time`` and ``recorded_at`` the
RFC 3339 strings SQLite keeps, so a log copied between the two stores is byte-equal.
"""

from __future__ import annotations

from eventstore.canonical import GENESIS_HASH
from eventstore.ddl import APPLICATION_ID, EVENT_COLUMNS

__all__ = [
    "APPLICATION",
    "EVENT_COLUMNS",
    "INSERT_COLUMNS",
    "LOCK_CLASS",
    "SCHEMA_VERSION",
    "SETUP",
    "TRIGGERS",
    "TRIGGER_FUNCTIONS",
]

APPLICATION = "tradelog"
"""``tradelog_meta.value`` under the key ``application``: marks a schema as a tradelog log."""

SCHEMA_VERSION = 1
"""``tradelog_meta.value`` under ``schema_version`` this code writes; a higher one is refused."""

LOCK_CLASS = APPLICATION_ID
"""High 32 bits of the advisory-lock key of a log (the low 32 are its events table's oid):
one lock per log, so logs in other schemas of the same database do not wait on each other."""

SETUP_LOCK = (APPLICATION_ID << 32) | 0xFFFFFFFF
"""Advisory-lock key held while a schema is created or migrated (by whichever daemon
comes first; the others wait, then find it made)."""

INSERT_COLUMNS = f"{EVENT_COLUMNS}, prev_hash"

_EVENTS = """
CREATE TABLE events (
    seq             bigint PRIMARY KEY CHECK (seq > 0),
    source          text NOT NULL,
    id              text NOT NULL,
    type            text NOT NULL,
    time            text NOT NULL,
    account         text NOT NULL,
    specversion     text NOT NULL,
    datacontenttype text,
    data            text NOT NULL,
    recorded_at     text NOT NULL,
    schema_version  integer NOT NULL,
    metadata        text NOT NULL,
    hash            text NOT NULL,
    prev_hash       text NOT NULL,
    UNIQUE (source, id)
)
"""

TRIGGER_FUNCTIONS: dict[str, str] = {
    "tradelog_refuse_change": """
CREATE FUNCTION tradelog_refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $body$
BEGIN
    RAISE EXCEPTION 'tradelog events are append-only: % is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$body$
""",
    "tradelog_insert_only_next": f"""
CREATE FUNCTION tradelog_insert_only_next() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $body$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    SELECT seq, hash INTO last_seq, last_hash FROM events ORDER BY seq DESC LIMIT 1;
    IF NEW.seq IS DISTINCT FROM coalesce(last_seq, 0) + 1
       OR NEW.prev_hash IS DISTINCT FROM coalesce(last_hash, '{GENESIS_HASH}') THEN
        RAISE EXCEPTION 'tradelog events are append-only: an insert must take the next '
            'seq (%) on the last hash', coalesce(last_seq, 0) + 1
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$body$
""",
}
"""The trigger functions, by name; ``verify`` compares their stored bodies with these."""

TRIGGERS: dict[str, str] = {
    "events_no_update": "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
                        "FOR EACH ROW EXECUTE FUNCTION tradelog_refuse_change()",
    "events_no_delete": "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
                        "FOR EACH ROW EXECUTE FUNCTION tradelog_refuse_change()",
    "events_no_truncate": "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
                          "FOR EACH STATEMENT EXECUTE FUNCTION tradelog_refuse_change()",
    "events_insert_only_next": "CREATE TRIGGER events_insert_only_next BEFORE INSERT ON "
                               "events FOR EACH ROW EXECUTE FUNCTION "
                               "tradelog_insert_only_next()",
}
"""The append-only triggers, by name, as ``pg_get_triggerdef`` gives them back (less the
schema it qualifies the table with); ``verify`` checks each is present, enabled and ours."""

SETUP: list[str] = [
    _EVENTS,
    "CREATE INDEX events_account ON events (account, seq)",
    "CREATE INDEX events_recorded_at ON events (recorded_at)",
    "CREATE INDEX events_void_target ON events (account, "
    "((data::json ->> 'target_source')), ((data::json ->> 'target_id'))) "
    "WHERE type = 'void'",
    "CREATE TABLE accounts (account text PRIMARY KEY, version bigint NOT NULL)",
    "CREATE TABLE tradelog_meta (key text PRIMARY KEY, value text NOT NULL)",
    *TRIGGER_FUNCTIONS.values(),
    *TRIGGERS.values(),
    "REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC",
]
"""Statements creating a new log in the current schema, in one transaction."""
