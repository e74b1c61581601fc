"""``verify`` on PostgreSQL: the hash chain walked exactly as on SQLite (the same
re-hashing, ``eventstore.verify``), then the append-only triggers and the accounts'
versions checked in the catalog. Runs inside one read snapshot (``reads.snapshot``).
"""

from __future__ import annotations

import re
from contextlib import closing

from eventstore.canonical import GENESIS_HASH
from eventstore.postgres import ddl
from eventstore.postgres.connect import Connection
from eventstore.postgres.reads import rows_after
from eventstore.verify import VerifyReport, check_rows

__all__ = ["trigger_problems", "verify_chain", "verify_tail"]

_TRIGGERS = """
SELECT t.tgname, pg_get_triggerdef(t.oid), t.tgenabled, p.proname, p.prosrc
FROM pg_trigger AS t JOIN pg_proc AS p ON p.oid = t.tgfoid
WHERE t.tgrelid = 'events'::regclass AND NOT t.tgisinternal
"""


def _squeezed(sql: str) -> str:
    return " ".join(sql.split())


def _body(function: str) -> str:
    return _squeezed(function.split("$body$")[1])


def trigger_problems(conn: Connection) -> list[str]:
    """The names of the append-only triggers that are missing, disabled, or not ours
    (another definition, or a function with another body); empty when all are in place."""
    schema = conn.execute("SELECT current_schema()").fetchone()
    prefix = re.escape(f"{schema[0]}.") if schema and schema[0] else ""
    present = {}
    for name, definition, enabled, function, source in conn.execute(_TRIGGERS):
        unqualified = re.sub(prefix, "", definition) if prefix else definition
        present[name] = (_squeezed(unqualified), enabled, function, _squeezed(source))
    problems = []
    for name, definition in ddl.TRIGGERS.items():
        found = present.get(name)
        if found is None or found[0] != _squeezed(definition) or found[1] not in ("O", "A"):
            problems.append(name)
            continue
        expected = ddl.TRIGGER_FUNCTIONS.get(found[2])
        if expected is None or _body(expected) != found[3]:
            problems.append(name)
    return sorted(problems)


def _version_drift(conn: Connection) -> str:
    drift = conn.execute(
        "SELECT coalesce(c.account, a.account), coalesce(c.n, 0), coalesce(a.version, 0) "
        "FROM (SELECT account, count(*) AS n FROM events GROUP BY account) AS c "
        "FULL JOIN accounts AS a ON a.account = c.account "
        "WHERE coalesce(c.n, 0) <> coalesce(a.version, 0) ORDER BY 1 LIMIT 1").fetchone()
    if drift is None:
        return ""
    return (f"account {drift[0]!r} holds {drift[1]} events but the accounts table says "
            f"{drift[2]}: expected_version checks would be wrong")


def verify_chain(conn: Connection) -> VerifyReport:
    """Walk the chain from seq 1 (``bad_seq``: the first event missing, altered or out of
    place), then check the triggers and the accounts' versions (``reason`` alone)."""
    with closing(rows_after(conn, 0)) as rows:
        checked, previous, bad_seq, reason = check_rows(rows, GENESIS_HASH, 1)
    if bad_seq is not None:
        return VerifyReport(checked, previous, bad_seq, reason)
    missing = trigger_problems(conn)
    if missing:
        return VerifyReport(checked, previous, None,
                            f"append-only triggers removed or altered: {', '.join(missing)}")
    drift = _version_drift(conn)
    return VerifyReport(checked, previous, None, drift)


def verify_tail(conn: Connection, count: int) -> VerifyReport:
    """Re-hash the last ``count`` events, each chained on the stored hash of the one
    before them (as ``eventstore.verify.verify_tail``)."""
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    last = int(row[0]) if row else 0
    first = max(1, last - count + 1)
    previous = GENESIS_HASH
    if first > 1:
        found = conn.execute("SELECT hash FROM events WHERE seq = %s", (first - 1,)).fetchone()
        if found is None:
            return VerifyReport(0, GENESIS_HASH, first - 1, f"seq {first - 1} is missing")
        previous = str(found[0])
    with closing(rows_after(conn, first - 1)) as rows:
        checked, previous, bad_seq, reason = check_rows(rows, previous, first)
    return VerifyReport(checked, previous, bad_seq, reason)
