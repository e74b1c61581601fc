"""Every method of PROTOCOL.md against a real daemon: append, query, read, subscribe,
health; pipelining, batches, concurrent clients, group commit and subscriptions."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from daemon.client import AsyncClient
from tests.daemon_support import (
    VIEWS,
    RawConnection,
    health,
    line,
    log_records,
    read_all,
    request,
    wait_for_log,
)
from tests.support import DaemonProcess, fill, wire_event

pytestmark = pytest.mark.both_stores


def _scenario() -> list[dict[str, Any]]:
    """Events touching every view of one account."""
    return [
        wire_event("limits", {"daily_loss_limit": "100", "timezone": "UTC"}),
        wire_event("cash", {"amount": "1000", "kind": "deposit"}),
        wire_event("signal", {"signal_id": "s1", "strategy": "sma", "symbol": "EURUSD",
                              "side": "long"}),
        wire_event("order", {"order_id": "o1", "symbol": "EURUSD", "side": "buy",
                             "quantity": "2", "order_type": "market", "signal_id": "s1"}),
        fill("buy", "2", "1.10", order_id="o1", signal_id="s1"),
        wire_event("status", {"entity": "order", "entity_id": "o1", "status": "filled"}),
        fill("sell", "2", "1.20", time_="2024-03-01T13:00:00Z"),
        fill("buy", "1", "1.30", symbol="GBPUSD"),
        wire_event("mark", {"prices": {"GBPUSD": "1.35"}}),
        wire_event("journal", {"text": "a good day", "tags": ["review"]}),
    ]


def test_append_reports_seqs_and_duplicates(daemon: DaemonProcess) -> None:
    """append stores a batch with consecutive seqs; sending it again stores nothing and
    answers duplicate with the original seqs."""
    events = [fill("buy", "1", "1.1"), fill("sell", "1", "1.2")]
    with RawConnection(daemon.socket) as conn:
        first = conn.result("append", {"events": events})
        again = conn.result("append", {"events": events})
    expected = [{"id": e["id"], "source": e["source"], "seq": n, "duplicate": False}
                for n, e in enumerate(events, 1)]
    assert {"results": expected, "last_seq": 2} == first
    assert {"results": [dict(r, duplicate=True) for r in expected], "last_seq": 2} == again
    assert [1, 2] == [e["seq"] for e in read_all(daemon.socket)]


def test_expected_version_conflict_gives_current_version(daemon: DaemonProcess) -> None:
    """A wrong expected_version is -32003 with error.data.version the account's count, and
    stores nothing; the right one stores."""
    with RawConnection(daemon.socket) as conn:
        conn.result("append", {"events": [fill("buy", "1", "1.1"), fill("buy", "1", "1.1")]})
        stale = conn.call("append", {"events": [fill("buy", "1", "1.1")],
                                     "expected_version": {"account": "acct-1", "version": 1}})
        right = conn.result("append", {"events": [fill("buy", "1", "1.1")],
                                       "expected_version": {"account": "acct-1", "version": 2}})
        other = conn.result("append", {"events": [fill("buy", "1", "1.1", account="b")],
                                       "expected_version": {"account": "b", "version": 0}})
    assert -32003 == stale["error"]["code"]
    assert {"account": "acct-1", "version": 2} == stale["error"]["data"]
    assert 3 == right["last_seq"]
    assert 4 == other["last_seq"]


def test_idempotency_conflict_stores_nothing_of_the_batch(daemon: DaemonProcess) -> None:
    """An id stored with other content is -32002 naming it; the batch's new events are not
    stored either (atomic)."""
    with RawConnection(daemon.socket) as conn:
        conn.result("append", {"events": [fill("buy", "1", "1.1", event_id="f1")]})
        answer = conn.call("append", {"events": [fill("buy", "1", "1.1", event_id="new"),
                                                 fill("buy", "9", "1.1", event_id="f1")]})
    assert -32002 == answer["error"]["code"]
    assert {"source": "test/bot", "id": "f1", "seq": 1} == answer["error"]["data"]
    assert ["f1"] == [e["id"] for e in read_all(daemon.socket)]


def test_query_every_view(daemon: DaemonProcess) -> None:
    """query answers each view with its EVENTS.md rows after a scenario touching all."""
    with RawConnection(daemon.socket) as conn:
        conn.result("append", {"events": _scenario()})
        views = {v: conn.result("query", {"view": v, "account": "acct-1"}) for v in VIEWS}
    assert {10} == {answer["as_of_seq"] for answer in views.values()}
    [position] = views["positions"]["rows"]
    assert ("GBPUSD", "long", Decimal("1"), Decimal("0.05")) == (
        position["symbol"], position["side"], Decimal(position["quantity"]),
        Decimal(position["unrealized_pnl"]))
    [trade] = views["trades"]["rows"]
    assert ("EURUSD", Decimal("1.10"), Decimal("1.20"), Decimal("0.2")) == (
        trade["symbol"], Decimal(trade["entry_price"]), Decimal(trade["exit_price"]),
        Decimal(trade["net_pnl"]))
    [balance] = views["balances"]["rows"]
    assert (Decimal("1000"), Decimal("0.2"), Decimal("1000.2"), 1) == (
        Decimal(balance["cash"]), Decimal(balance["realized_pnl"]),
        Decimal(balance["balance"]), balance["open_positions"])
    [day] = views["daily"]["rows"]
    assert ("2024-03-01", 3, 1, 1) == (day["date"], day["fills"], day["trades_closed"],
                                       day["signals"])
    [signal] = views["signals"]["rows"]
    assert ("s1", "sma") == (signal["signal_id"], signal["strategy"])
    [order] = views["orders"]["rows"]
    assert ("o1", "filled") == (order["order_id"], order["status"])
    [entry] = views["journal"]["rows"]
    assert ("a good day", ["review"], 10) == (entry["text"], entry["tags"], entry["seq"])


def test_query_as_of_seq_and_time(daemon: DaemonProcess) -> None:
    """as_of an integer gives the view after that seq; as_of a time gives it after the last
    event recorded at or before that time."""
    with RawConnection(daemon.socket) as conn:
        for event in [fill("buy", "1", "1.0"), fill("buy", "1", "2.0"), fill("buy", "2", "3.0")]:
            conn.result("append", {"events": [event]})
            time.sleep(0.01)
        stored = read_all(daemon.socket)
        by_seq = conn.result("query", {"view": "positions", "as_of": 2})
        by_time = conn.result("query", {"view": "positions", "as_of": stored[0]["recorded_at"]})
        before = conn.result("query", {"view": "positions", "as_of": "2000-01-01T00:00:00Z"})
        now = conn.result("query", {"view": "positions"})
    assert (2, Decimal("2"), Decimal("1.5")) == (
        by_seq["as_of_seq"], Decimal(by_seq["rows"][0]["quantity"]),
        Decimal(by_seq["rows"][0]["avg_price"]))
    assert (1, Decimal("1")) == (by_time["as_of_seq"], Decimal(by_time["rows"][0]["quantity"]))
    assert {"view": "positions", "as_of_seq": 0, "total": 0, "rows": []} == before
    assert (3, Decimal("4")) == (now["as_of_seq"], Decimal(now["rows"][0]["quantity"]))


def test_read_filters_and_next_seq(daemon: DaemonProcess) -> None:
    """read pages with limit/next_seq and filters by account and types; next_seq of the
    last page points past the log's end."""
    events = [fill("buy", "1", "1", account="a"), wire_event("journal", {"text": "x"},
                                                                account="a"),
              fill("buy", "1", "1", account="b"), fill("sell", "1", "1", account="a")]
    with RawConnection(daemon.socket) as conn:
        conn.result("append", {"events": events})
        first = conn.result("read", {"limit": 2})
        second = conn.result("read", {"from_seq": first["next_seq"], "limit": 2})
        third = conn.result("read", {"from_seq": second["next_seq"]})
        account_a = conn.result("read", {"account": "a", "types": ["fill"]})
        defaults = conn.result("read", {})
    assert ([1, 2], 3) == ([e["seq"] for e in first["events"]], first["next_seq"])
    assert ([3, 4], 5) == ([e["seq"] for e in second["events"]], second["next_seq"])
    assert ([], 5) == (third["events"], third["next_seq"])
    assert ([1, 4], 5) == ([e["seq"] for e in account_a["events"]], account_a["next_seq"])
    assert [1, 2, 3, 4] == [e["seq"] for e in defaults["events"]]
    stored = defaults["events"][0]
    assert {"specversion", "id", "source", "type", "time", "account", "data", "seq",
            "recorded_at", "schema_version", "hash"} == set(stored)


def test_subscribe_catch_up_live_and_unsubscribe(daemon: DaemonProcess) -> None:
    """subscribe sends stored events from from_seq, then new ones as they commit;
    after unsubscribe nothing more arrives."""
    with RawConnection(daemon.socket) as writer, RawConnection(daemon.socket) as reader:
        writer.result("append", {"events": [fill("buy", "1", "1"), fill("buy", "1", "1")]})
        sub = reader.result("subscribe", {"from_seq": 2})["subscription"]
        caught_up = reader.read()
        writer.result("append", {"events": [fill("buy", "1", "1")]})
        live = reader.read()
        assert {"unsubscribed": True} == reader.result("unsubscribe", {"subscription": sub})
        writer.result("append", {"events": [fill("buy", "1", "1")]})
        assert reader.nothing_more()
        unknown = reader.call("unsubscribe", {"subscription": sub})
    assert ("event", sub, 2) == (caught_up["method"], caught_up["params"]["subscription"],
                                 caught_up["params"]["event"]["seq"])
    assert 3 == live["params"]["event"]["seq"]
    assert -32602 == unknown["error"]["code"]


def test_health_fields(daemon: DaemonProcess) -> None:
    """health reports status, version, last_seq, projection_seq, uptime and connections."""
    with RawConnection(daemon.socket) as conn, RawConnection(daemon.socket) as other:
        conn.result("append", {"events": [fill("buy", "1", "1")]})
        other.result("health")
        answer = conn.result("health")
    assert {"status": "ok", "last_seq": 1, "projection_seq": 1, "connections": 2} == {
        k: answer[k] for k in ("status", "last_seq", "projection_seq", "connections")}
    assert isinstance(answer["version"], str)
    assert answer["uptime_s"] >= 0


def test_pipelined_requests_answered_by_id(daemon: DaemonProcess) -> None:
    """Many requests written before any answer is read all get answers carrying their ids,
    and one connection's appends are stored in the order sent."""
    requests = []
    for n in range(300):
        if n % 3 == 2:
            requests.append(request("health", request_id=f"h{n}"))
        else:
            requests.append(request("append", {"events": [fill("buy", "1", "1",
                                                               event_id=f"p{n}")]}, n))
    with RawConnection(daemon.socket) as conn:
        conn.send(b"".join(line(r) for r in requests))
        answers = {a["id"]: a for a in (conn.read() for _ in requests)}
    assert {r["id"] for r in requests} == set(answers)
    appended = [r["id"] for r in requests if r["method"] == "append"]
    assert list(range(1, 201)) == [answers[i]["result"]["results"][0]["seq"] for i in appended]


def test_batches(daemon: DaemonProcess) -> None:
    """A batch gets one array of answers (none for notifications); an empty array is a
    single -32600; invalid members get their own errors beside valid ones; a batch of
    notifications gets no answer at all."""
    batch = [
        request("append", {"events": [fill("buy", "1", "1", event_id="b1")]}, "a"),
        {"jsonrpc": "2.0", "method": "append",
         "params": {"events": [fill("buy", "1", "1", event_id="b2")]}},
        request("health", request_id="h"),
        {"jsonrpc": "1.0", "method": "health", "id": "bad"},
        request("nope", request_id="unknown"),
        42,
    ]
    with RawConnection(daemon.socket) as conn:
        conn.send_json(batch)
        answers = conn.read()
        conn.send(b"[]\n")
        empty = conn.read()
        conn.send_json([{"jsonrpc": "2.0", "method": "health"},
                        {"jsonrpc": "2.0", "method": "append",
                         "params": {"events": [fill("buy", "1", "1", event_id="b3")]}}])
        after = conn.call("append", {"events": [fill("buy", "1", "1", event_id="b4")]})
    by_id = {a["id"]: a for a in answers}
    assert 5 == len(answers)
    assert [1] == [r["seq"] for r in by_id["a"]["result"]["results"]]
    assert "ok" == by_id["h"]["result"]["status"]
    assert -32600 == by_id["bad"]["error"]["code"]
    assert -32601 == by_id["unknown"]["error"]["code"]
    assert [-32600] == [a["error"]["code"] for a in answers if a["id"] is None]
    assert {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "an empty batch is not a request"}} == empty
    assert 4 == after["result"]["last_seq"]
    assert ["b1", "b2", "b3", "b4"] == [e["id"] for e in read_all(daemon.socket)]


def test_batch_appends_keep_their_place_in_order(daemon: DaemonProcess) -> None:
    """An append inside a batch is queued before an append on a later line of the same
    write, so one connection's appends are stored in the order sent."""
    with RawConnection(daemon.socket) as conn:
        conn.send(line([request("append", {"events": [fill("buy", "1", "1", event_id="A")]})])
                  + line(request("append", {"events": [fill("buy", "1", "1", event_id="B")]})))
        conn.read()
        conn.read()
    assert ["A", "B"] == [e["id"] for e in read_all(daemon.socket)]


def test_concurrent_clients_get_unique_gapless_seqs(daemon: DaemonProcess) -> None:
    """16 clients appending at once: every acknowledged seq is unique and together they
    are exactly 1..N, matching read."""

    async def one(client_no: int) -> list[int]:
        seqs: list[int] = []
        async with AsyncClient(daemon.socket, retry_for_s=0) as client:
            for n in range(15):
                answer = await client.append([
                    fill("buy", "1", "1", source=f"bot/{client_no}", event_id=f"{n}-{k}")
                    for k in range(1 + n % 3)])
                seqs.extend(r["seq"] for r in answer["results"])
        return seqs

    async def run() -> list[list[int]]:
        return await asyncio.gather(*(one(c) for c in range(16)))

    per_client = asyncio.run(run())
    acked = sorted(s for seqs in per_client for s in seqs)
    assert list(range(1, len(acked) + 1)) == acked
    assert acked == [e["seq"] for e in read_all(daemon.socket)]
    for seqs in per_client:
        assert sorted(seqs) == seqs


def test_group_commit_isolates_failing_batches(daemon: DaemonProcess) -> None:
    """Batches committed in one group: a version conflict, an idempotency conflict and an
    invalid batch fail alone; the valid batches beside them are stored."""
    with RawConnection(daemon.socket) as conn:
        conn.result("append", {"events": [fill("buy", "1", "1", event_id="taken")]})
        lines = [
            request("append", {"events": [fill("buy", "1", "1", event_id="ok1")]}, "ok1"),
            request("append", {"events": [fill("buy", "1", "1", event_id="v")],
                               "expected_version": {"account": "acct-1", "version": 0}}, "ver"),
            request("append", {"events": [fill("buy", "5", "1", event_id="taken")]}, "idem"),
            request("append", {"events": [fill("buy", "-1", "1", event_id="bad")]}, "bad"),
            request("append", {"events": [fill("buy", "1", "1", event_id="ok2")]}, "ok2"),
        ]
        conn.send(b"".join(line(r) for r in lines))
        answers = {a["id"]: a for a in (conn.read() for _ in lines)}
    assert {"ok1": None, "ver": -32003, "idem": -32002, "bad": -32602, "ok2": None} == {
        k: a.get("error", {}).get("code") for k, a in answers.items()}
    assert ["taken", "ok1", "ok2"] == [e["id"] for e in read_all(daemon.socket)]
    wait_for_log(daemon, "appends_committed", last_seq=3)
    summaries = [r for r in log_records(daemon) if r.get("event") == "appends_committed"]
    assert any(s["max_group_requests"] >= 3 and s["rejected"] >= 2 for s in summaries)


def test_group_commit_across_connections(daemon: DaemonProcess) -> None:
    """Two clients sending at the same moment, one with a conflicting batch each round:
    the other's valid batch is always stored."""
    rounds = 30
    with RawConnection(daemon.socket) as good, RawConnection(daemon.socket) as bad:
        bad.result("append", {"events": [fill("buy", "1", "1", event_id="x", source="bad")]})
        for n in range(rounds):
            good.send_json(request("append", {"events": [fill("buy", "1", "1",
                                                              event_id=f"g{n}")]}))
            bad.send_json(request("append", {"events": [
                fill("buy", "1", "1", event_id=f"new{n}", source="bad"),
                fill("buy", "2", "1", event_id="x", source="bad")]}))
        good_answers = [good.read() for _ in range(rounds)]
        bad_answers = [bad.read() for _ in range(rounds)]
    assert [False] * rounds == ["error" in a for a in good_answers]
    assert [-32002] * rounds == [a["error"]["code"] for a in bad_answers]
    assert rounds + 1 == len(read_all(daemon.socket))


def _collect(path: Any, params: dict[str, Any], until_seq: int,
             out: list[int], stop: threading.Event) -> None:
    with RawConnection(path) as conn:
        conn.result("subscribe", params)
        while not stop.is_set():
            try:
                message = conn.read(timeout_s=0.2)
            except TimeoutError:
                continue
            seq = message["params"]["event"]["seq"]
            out.append(seq)
            if seq >= until_seq:
                return


def test_subscriber_sees_exactly_the_committed_sequence(daemon: DaemonProcess) -> None:
    """Subscribers from seq 1 while writers keep appending see every committed event once,
    in order, across catch-up and live; filtered ones see exactly what read returns."""
    with RawConnection(daemon.socket) as conn:
        conn.result("append", {"events": [fill("buy", "1", "1", account=f"a{n % 2}")
                                          for n in range(300)]})

    async def writers() -> None:
        async def one(w: int) -> None:
            async with AsyncClient(daemon.socket, retry_for_s=0) as client:
                for n in range(40):
                    event = (fill("buy", "1", "1", account=f"a{n % 2}") if n % 3
                             else wire_event("journal", {"text": "j"}, account=f"a{n % 2}"))
                    await client.append([event, fill("sell", "1", "1", account="a1")])
        await asyncio.gather(*(one(w) for w in range(4)))

    total = 300 + 4 * 40 * 2
    stop = threading.Event()
    everything: list[int] = []
    filtered: list[int] = []
    threads = [
        threading.Thread(target=_collect, args=(daemon.socket, {"from_seq": 1}, total,
                                                everything, stop)),
        threading.Thread(target=_collect, args=(daemon.socket, {
            "from_seq": 1, "account": "a1", "types": ["fill"]}, total, filtered, stop)),
    ]
    for thread in threads:
        thread.start()
    try:
        asyncio.run(writers())
        threads[0].join(timeout=20)
        last_filtered = read_all(daemon.socket, account="a1", types=["fill"])[-1]["seq"]
        deadline = time.monotonic() + 20
        while (not filtered or filtered[-1] < last_filtered) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
    assert list(range(1, total + 1)) == everything
    assert [e["seq"] for e in read_all(daemon.socket, account="a1", types=["fill"])] == filtered
    assert total == health(daemon.socket)["last_seq"]


def test_subscribe_answer_precedes_its_events(daemon: DaemonProcess) -> None:
    """The subscribe answer is written before the first notification, also in a batch."""
    with RawConnection(daemon.socket) as conn:
        conn.result("append", {"events": [fill("buy", "1", "1")]})
        conn.send_json([request("subscribe", {}, "s"), request("health", request_id="h")])
        first = conn.read()
        second = conn.read()
    assert ["s", "h"] == [a["id"] for a in first]
    assert ("event", 1) == (second["method"], second["params"]["event"]["seq"])
    assert json.loads(json.dumps(first[0]))["result"]["subscription"] == (
        second["params"]["subscription"])
