"""daemon.client (AsyncClient, Client) and the CLI commands that talk to the daemon."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from daemon.client import AsyncClient, Client, RemoteError
from tests.daemon_support import read_all, tradelog
from tests.support import DaemonProcess, fill, wire_event

pytestmark = pytest.mark.both_stores


async def test_async_client_append_query_read_subscribe(daemon: DaemonProcess) -> None:
    """AsyncClient appends, queries, reads and subscribes (catch-up then live)."""
    async with AsyncClient(daemon.socket, retry_for_s=5) as client:
        answer = await client.append([fill("buy", "2", "10"), fill("buy", "2", "20")])
        assert [1, 2] == [r["seq"] for r in answer["results"]]
        rows = (await client.query("positions", account="acct-1"))["rows"]
        assert ["4", "15"] == [rows[0]["quantity"], rows[0]["avg_price"]]
        assert [1, 2] == [e["seq"] for e in (await client.read())["events"]]
        with pytest.raises(RemoteError) as caught:
            await client.append([fill("buy", "1", "1")], expected_version=("acct-1", 0))
        assert (-32003, 2) == (caught.value.code, caught.value.data["version"])
        seen: list[int] = []
        async with AsyncClient(daemon.socket, retry_for_s=5) as other:
            subscription = other.subscribe(from_seq=2)
            seen.append((await anext(subscription))["seq"])
            await client.append([fill("sell", "1", "30")])
            seen.append((await anext(subscription))["seq"])
            await subscription.aclose()
        assert [2, 3] == seen


def test_blocking_client(daemon: DaemonProcess) -> None:
    """Client (blocking) appends, queries, reads and asks for health; errors raise
    RemoteError with the daemon's code."""
    with Client(daemon.socket, retry_for_s=5) as client:
        assert 1 == client.append([fill("buy", "1", "1")])["last_seq"]
        assert 1 == len(client.query("positions")["rows"])
        assert 1 == len(client.read(account="acct-1")["events"])
        assert "ok" == client.health()["status"]
        with pytest.raises(RemoteError) as caught:
            client.query("nope")
        assert -32602 == caught.value.code


def _restart_later(proc: DaemonProcess, delay_s: float) -> threading.Thread:
    thread = threading.Timer(delay_s, proc.start)
    thread.start()
    return thread


async def test_async_client_reconnects_and_resends(tmp_path: Path) -> None:
    """After the daemon restarts, AsyncClient reconnects with backoff; re-sending an append
    that was stored gives duplicates, and a subscription resumes with no gap or repeat."""
    proc = DaemonProcess(tmp_path)
    with proc:
        events = [fill("buy", "1", "1"), fill("buy", "1", "2")]
        async with AsyncClient(proc.socket, retry_for_s=20) as client, \
                AsyncClient(proc.socket, retry_for_s=20) as watcher:
            await client.append(events)
            seen: list[int] = []

            async def watch() -> None:
                async for event in watcher.subscribe(from_seq=1):
                    seen.append(event["seq"])
                    if event["seq"] == 4:
                        return

            watching = asyncio.create_task(watch())
            while len(seen) < 2:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(proc.stop)
            restart = _restart_later(proc, 0.3)
            again = await client.append(events)
            await asyncio.to_thread(restart.join)
            await client.append([fill("sell", "1", "3"), fill("sell", "1", "4")])
            await asyncio.wait_for(watching, timeout=20)
        assert [True, True] == [r["duplicate"] for r in again["results"]]
        assert [1, 2] == [r["seq"] for r in again["results"]]
        assert [1, 2, 3, 4] == seen


def test_blocking_client_reconnects(tmp_path: Path) -> None:
    """The blocking Client also reconnects after a restart and re-sends safely."""
    proc = DaemonProcess(tmp_path)
    with proc, Client(proc.socket, retry_for_s=20) as client:
        event = fill("buy", "1", "1")
        client.append([event])
        proc.stop()
        restart = _restart_later(proc, 0.3)
        answer = client.append([event])
        restart.join()
        assert [(1, True)] == [(r["seq"], r["duplicate"]) for r in answer["results"]]


def test_cli_emit_from_stdin_and_flags(daemon: DaemonProcess) -> None:
    """`tradelog emit` appends JSON lines from stdin (duplicates counted when re-sent) or
    one event from flags; a refused batch exits 1 listing the problems."""
    sock = str(daemon.socket)
    lines = b"\n".join(json.dumps(e).encode() for e in [fill("buy", "1", "1"),
                                                          fill("sell", "1", "2")]) + b"\n"
    first = tradelog("emit", "--socket", sock, stdin=lines)
    again = tradelog("emit", "--socket", sock, stdin=lines)
    flags = tradelog("emit", "--socket", sock, "--type", "journal", "--account", "acct-1",
                     "--id", "j1", "--data", '{"text": "from the shell"}')
    bad = tradelog("emit", "--socket", sock, stdin=json.dumps(
        fill("buy", "-1", "1")).encode() + b"\n")
    empty = tradelog("emit", "--socket", sock, stdin=b"")
    assert (0, b"emit: 2 stored, 0 duplicates, last seq 2\n") == (first.returncode, first.stdout)
    assert b"emit: 0 stored, 2 duplicates, last seq 2\n" == again.stdout
    assert (0, b"emit: 1 stored, 0 duplicates, last seq 3\n") == (flags.returncode, flags.stdout)
    assert 1 == bad.returncode
    assert b"data.quantity" in bad.stderr
    assert 0 == empty.returncode
    stored = read_all(daemon.socket)
    assert ("j1", "cli/emit", {"text": "from the shell"}) == (
        stored[2]["id"], stored[2]["source"], stored[2]["data"])


def test_cli_tail_health_and_show(daemon: DaemonProcess) -> None:
    """`tradelog tail --count` prints stored events as JSON lines and stops; `health`
    prints the daemon's health; `show --socket` prints a view as a table or JSON."""
    sock = str(daemon.socket)
    with Client(daemon.socket) as client:
        client.append([fill("buy", "1", "1"), wire_event("journal", {"text": "hi"}),
                       fill("buy", "1", "3")])
    tail = tradelog("tail", "--socket", sock, "--from", "1", "--count", "2", "--types", "fill")
    health = tradelog("health", "--socket", sock)
    table = tradelog("show", "positions", "--socket", sock, "--format", "table")
    as_json = tradelog("show", "positions", "--socket", sock, "--json", "--as-of", "1")
    assert 0 == tail.returncode, tail.stderr
    assert [1, 3] == [json.loads(x)["seq"] for x in tail.stdout.splitlines()]
    assert (0, "ok", 3) == (health.returncode, *(json.loads(health.stdout)[k]
                                                  for k in ("status", "last_seq")))
    assert 0 == table.returncode
    assert b"positions (as of seq 3)" in table.stdout
    answer: dict[str, Any] = json.loads(as_json.stdout)
    assert (1, "1") == (answer["as_of_seq"], answer["rows"][0]["quantity"])


def test_cli_health_without_daemon(tmp_path: Path) -> None:
    """`tradelog health` with no daemon on the socket exits 3 naming the socket."""
    result = tradelog("health", "--socket", str(tmp_path / "none.sock"))
    assert 3 == result.returncode
    assert f"cannot reach the daemon at {tmp_path / 'none.sock'}".encode() in result.stderr
