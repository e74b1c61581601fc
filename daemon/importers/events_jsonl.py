"""CloudEvents JSONL: one wire event per line, or the stored events of an export."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO

from daemon.importers.rows import MAX_LINE_CHARS, ImportProblem, ImportRow, Item, problems_text
from daemon.importers.stored_fields import StoredChain, split_stored
from daemon.jsonread import JSONReadError, loads
from schemas import EventValidationError, parse_event

__all__ = ["iter_events_jsonl"]


def iter_events_jsonl(stream: BinaryIO, name: str, account: str | None,
                      quantity: Decimal | None = None, timezone: str = "UTC", *,
                      check: bool = True) -> Iterator[Item]:
    """CloudEvents, one per line, validated as the daemon would (unless ``check`` is
    False: lines already validated); ``account`` (when given) must match each event's
    own. A line longer than ``MAX_LINE_CHARS`` bytes is a problem and is skipped without
    being held in memory. Stored events (an export) are taken too: their stored fields
    are checked (when ``check``) and left out (``daemon.importers.stored_fields``)."""
    del quantity, timezone, name
    chain = StoredChain()  # an export's stored fields: checked, then left to the log
    line = 0
    while True:
        raw = stream.readline(MAX_LINE_CHARS + 1)
        if not raw:
            return
        line += 1
        if len(raw) > MAX_LINE_CHARS and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(MAX_LINE_CHARS)
            yield ImportProblem(line, f"longer than {MAX_LINE_CHARS} bytes")
            continue
        if not raw.strip():
            continue
        try:
            event, stored = split_stored(loads(raw))
            if check:
                parse_event(event)
        except JSONReadError as exc:
            yield ImportProblem(line, str(exc))
            continue
        except EventValidationError as exc:
            yield ImportProblem(line, problems_text(exc))
            continue
        except (ValueError, ArithmeticError) as exc:
            yield ImportProblem(line, f"a value is out of range: {exc}")
            continue
        bad = chain.check(event, stored) if check else None
        if bad is not None:
            yield ImportProblem(line, bad)
            continue
        if account is not None and event["account"] != account:
            yield ImportProblem(line, f"account {str(event['account'])[:64]!r} is not "
                                      f"{account!r}, the folder it is in")
            continue
        yield ImportRow(line, [event], size=len(raw))
