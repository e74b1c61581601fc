"""``GET /api/v1/verify``'s background walk (``daemon.http.verify.Verifier``), on each
store: intact up to the last seq, picking up appends incrementally, and the first
tampered seq found as ``tradelog verify`` finds it."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import daemon.http.verify as verify_module
from daemon.http.verify import Verifier
from eventstore.store import parse_store
from tests.eventstore.test_store_contract import ALTERATIONS, Log, empty_log, fills, tamper_with

pytestmark = pytest.mark.both_stores


@pytest.fixture
def log(store: str, tmp_path: Path) -> Iterator[Log]:
    """An empty log on ``store``."""
    with empty_log(store, tmp_path) as found:
        yield found


async def _walk_once(verifier: Verifier) -> None:
    """Run the verifier until it has finished one more walk."""
    before = verifier.status(0)["checked_at"]
    stop = asyncio.Event()
    task = asyncio.create_task(verifier.run(stop))
    while verifier.status(0)["checked_at"] == before:
        await asyncio.sleep(0.01)
    stop.set()
    await task


async def test_intact_then_incremental(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh walk covers every event; after more appends the next walk starts where
    the last one ended and covers the new ones, in chunks."""
    monkeypatch.setattr(verify_module, "_CHUNK", 3)
    recorder = await log.open()
    try:
        await recorder.append(fills("a", 7))
        verifier = Verifier(parse_store(log.url))
        assert "pending" == verifier.status(7)["status"]
        await _walk_once(verifier)
        first = verifier.status(7)
        await recorder.append(fills("b", 5))
        await _walk_once(verifier)
        second = verifier.status(12)
    finally:
        await recorder.close()
    assert ("intact", 7, None) == (first["status"], first["verified_seq"], first["bad_seq"])
    assert ("intact", 12, 12) == (second["status"], second["verified_seq"], second["last_seq"])


@pytest.mark.parametrize("name", list(ALTERATIONS))
async def test_damage_is_reported_at_the_first_bad_seq(log: Log, name: str) -> None:
    recorder = await log.open()
    try:
        await recorder.append(fills("a", 5))
        bad_seq = tamper_with(log, name)
        expected = await recorder.verify()
        verifier = Verifier(parse_store(log.url))
        await _walk_once(verifier)
    finally:
        await recorder.close()
    status = verifier.status(5)
    assert ("damaged", bad_seq, expected.bad_seq) == (status["status"], status["bad_seq"],
                                                      bad_seq)
    assert bad_seq - 1 == status["verified_seq"]
    assert status["reason"]


async def test_an_unreachable_log_is_unavailable(tmp_path: Path, store: str) -> None:
    """A log that cannot be opened (a missing file, a server that refuses) is
    ``unavailable`` with the reason, and no event counts as verified."""
    url = (f"sqlite:///{tmp_path / 'none.db'}" if store == "sqlite"
           else "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    verifier = Verifier(parse_store(url))
    await _walk_once(verifier)
    status = verifier.status(3)
    assert ("unavailable", 0, None) == (status["status"], status["verified_seq"],
                                        status["bad_seq"])
    assert status["reason"]
