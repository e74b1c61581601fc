"""Hostile values against the real daemon: each example of issue 12 is refused with
-32602 naming the field, nothing is stored, and the daemon goes on serving; a log an
older version wrote with such values starts, and its bad events are left out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_support import (
    RawConnection,
    health,
    log_records,
    read_all,
    running,
)
from tests.legacy_support import LEGACY, legacy_event, write_log
from tests.support import DaemonProcess, daemon_on, fill, wire_event

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, store: str) -> Iterator[DaemonProcess]:
    """One daemon for the battery (per store), its account ``tokyo`` on a time zone
    ahead of UTC."""
    with daemon_on(store, tmp_path_factory.mktemp("hostile")) as proc:
        with RawConnection(proc.socket) as conn:
            conn.result("append", {"events": [
                fill("buy", "1", "10"),
                wire_event("limits", {"timezone": "Asia/Tokyo"}, account="tokyo"),
            ]})
        yield proc


def _refused(proc: DaemonProcess, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Append ``events``; return the error, after checking nothing was stored and the
    daemon still answers ``health``."""
    before = read_all(proc.socket)
    with RawConnection(proc.socket) as conn:
        answer = conn.call("append", {"events": events})
    assert "error" in answer, answer
    assert before == read_all(proc.socket)
    assert "ok" == health(proc.socket)["status"]
    assert proc.proc is not None
    assert proc.proc.poll() is None
    error: dict[str, Any] = answer["error"]
    return error


def _paths(error: dict[str, Any]) -> list[str]:
    return [problem["path"] for problem in error["data"]["errors"]]


class TestHugeAndTinyDecimals:
    """Decimals beyond the bounds, sent as JSON strings."""

    @pytest.mark.parametrize("price", ["1e999999999", "1e-999999999", "0." + "1" * 100_000,
                                       "1e15", "0.0000000000000000001", "-1e999999999"])
    def test_price_out_of_bounds_is_refused_naming_it(self, daemon: DaemonProcess,
                                                     price: str) -> None:
        """A price of 10^15 or more, with more than 18 places, or of 100,000 digits is
        refused with -32602 at data.price (not -32603, not stored as 0 or rounded)."""
        error = _refused(daemon, [fill("buy", "1", price)])
        assert (-32602, ["data.price"]) == (error["code"], _paths(error))

    def test_huge_quantity_is_refused(self, daemon: DaemonProcess) -> None:
        """A fill of 900000000000000000000000 @ 1 is refused at data.quantity."""
        error = _refused(daemon, [fill("buy", "900000000000000000000000", "1")])
        assert (-32602, ["data.quantity"]) == (error["code"], _paths(error))

    def test_huge_quantity_and_multiplier_are_both_named(self, daemon: DaemonProcess) -> None:
        """1e23 with multiplier 1e23 is refused naming both fields."""
        error = _refused(daemon, [fill("buy", "1e23", "1", multiplier="1e23")])
        assert (-32602, ["data.quantity", "data.multiplier"]) == (error["code"],
                                                                  _paths(error))

    def test_multiplier_above_a_million_is_refused(self, daemon: DaemonProcess) -> None:
        """A multiplier of 1000000.5 is refused at data.multiplier; 1000000 is the most."""
        error = _refused(daemon, [fill("buy", "1", "1", multiplier="1000000.5")])
        assert ["data.multiplier"] == _paths(error)

    def test_zero_after_exact_reading_is_refused(self, daemon: DaemonProcess) -> None:
        """A quantity of "0e5" (zero, exactly) is refused where > 0 is required."""
        error = _refused(daemon, [fill("buy", "0e5", "1")])
        assert ["data.quantity"] == _paths(error)

    def test_largest_values_in_bounds_are_stored_exactly(self, daemon: DaemonProcess) -> None:
        """The largest quantity and price within the bounds, with a multiplier of 10^6,
        are stored digit for digit, and a later mark and close fold without harm."""
        top = "999999999999999.999999999999999999"
        events = [fill("buy", top, top, symbol="TOP", multiplier="1000000"),
                  wire_event("mark", {"prices": {"TOP": "0.000000000000000001"}}),
                  fill("sell", top, "0.000000000000000001", symbol="TOP")]
        with RawConnection(daemon.socket) as conn:
            result = conn.result("append", {"events": events})
            trades = conn.result("query", {"view": "trades"})["rows"]
        stored = read_all(daemon.socket)[-3]
        assert (result["results"][0]["seq"], top, top) == (
            stored["seq"], stored["data"]["quantity"], stored["data"]["price"])
        assert ["TOP"] == [t["symbol"] for t in trades if t["symbol"] == "TOP"]


class TestTimesAtTheCalendarEdges:
    """Times outside 1900..2199 UTC, which used to overflow the views."""

    @pytest.mark.parametrize("time", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                      "1899-12-31T23:59:59Z", "2200-01-01T00:00:00Z",
                                      "1900-01-01T00:30:00+01:00"])
    def test_event_time_out_of_range_is_refused(self, daemon: DaemonProcess,
                                               time: str) -> None:
        """An event time outside the range is refused with -32602 at ``time``."""
        error = _refused(daemon, [fill("buy", "1", "1", time_=time)])
        assert (-32602, ["time"]) == (error["code"], _paths(error))

    def test_far_future_in_an_account_ahead_of_utc_is_refused(
            self, daemon: DaemonProcess) -> None:
        """9999-12-31T23:59:59Z in an account on Asia/Tokyo is refused at ``time``."""
        error = _refused(daemon, [fill("buy", "1", "1", account="tokyo",
                                       time_="9999-12-31T23:59:59Z")])
        assert ["time"] == _paths(error)

    def test_signal_expiry_out_of_range_is_refused(self, daemon: DaemonProcess) -> None:
        """A signal's expires_at in year 9999 is refused at data.expires_at."""
        signal = wire_event("signal", {"signal_id": "s", "strategy": "x", "symbol": "X",
                                       "side": "long",
                                       "expires_at": "9999-12-31T23:59:59-01:00"})
        assert ["data.expires_at"] == _paths(_refused(daemon, [signal]))

    @pytest.mark.parametrize("name", ["since", "until", "as_of"])
    def test_query_time_out_of_range_is_refused(self, daemon: DaemonProcess,
                                               name: str) -> None:
        """A query's since, until or as_of of year 1 or 9999 is refused with -32602
        naming the parameter, and the daemon goes on."""
        for time in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
            with RawConnection(daemon.socket) as conn:
                answer = conn.call("query", {"view": "daily", name: time})
            assert -32602 == answer["error"]["code"]
            assert name in answer["error"]["message"]
        assert "ok" == health(daemon.socket)["status"]


class TestTimeZonesAndTexts:
    """Time-zone names and texts."""

    @pytest.mark.parametrize("zone", ["America", "x" * 300, "../../../etc/passwd",
                                      "/etc/localtime", "Europe/London\u0000"])
    def test_bad_time_zone_is_refused_saying_what_to_send(self, daemon: DaemonProcess,
                                                         zone: str) -> None:
        """A zone that is a directory, too long, a path or holds NUL gets -32602 at
        data.timezone with an example of a name to send (not -32603)."""
        error = _refused(daemon, [wire_event("limits", {"timezone": zone})])
        assert (-32602, ["data.timezone"]) == (error["code"], _paths(error))
        assert "Europe/London" in error["data"]["errors"][0]["message"]

    def test_nul_in_a_text_is_refused(self, daemon: DaemonProcess) -> None:
        """A NUL character in a symbol is refused at data.symbol."""
        assert ["data.symbol"] == _paths(_refused(daemon, [fill("buy", "1", "1",
                                                                symbol="A\u0000B")]))

    def test_too_many_mark_prices_are_refused(self, daemon: DaemonProcess) -> None:
        """A mark of 10,001 symbols is refused at data.prices."""
        prices = {f"S{i}": "1" for i in range(10_001)}
        error = _refused(daemon, [wire_event("mark", {"prices": prices})])
        assert ["data.prices"] == _paths(error)

    def test_too_many_journal_tags_are_refused(self, daemon: DaemonProcess) -> None:
        """A journal entry with 33 tags is refused at data.tags."""
        entry = wire_event("journal", {"text": "t", "tags": [f"t{i}" for i in range(33)]})
        assert ["data.tags"] == _paths(_refused(daemon, [entry]))


class TestLogWrittenByAnOlderVersion:
    """A log holding values 1.1 refuses, written as an older version stored them."""

    @pytest.mark.parametrize("writer_process", ["true", "false"])
    def test_start_leaves_them_out_and_a_mark_does_not_kill_the_daemon(
            self, tmp_path: Path, writer_process: str) -> None:
        """The daemon (with or without its writer process) starts on the log, logs each
        bad event once with its seq, keeps them readable, leaves them out of the views,
        folds a mark of their symbols, and answers the same views after a restart and
        as_of the last seq."""
        bad = [legacy_event(*LEGACY[name]) for name in sorted(LEGACY)]
        write_log(tmp_path / "tradelog.db", bad)
        mark = wire_event("mark", {"prices": {"BIG": "2", "MUL": "2", "ZERO": "2",
                                              "OLD": "2"}})
        env = {"TRADELOG_WRITER_PROCESS": writer_process}
        with running(tmp_path, env) as proc:
            left_out = sorted(r["seq"] for r in log_records(proc)
                              if r.get("event") == "event_left_out")
            assert list(range(1, len(bad) + 1)) == left_out
            with RawConnection(proc.socket) as conn:
                conn.result("append", {"events": [mark, fill("buy", "1", "3", symbol="OK"),
                                                  fill("sell", "1", "3", symbol="ZERO"),
                                                  fill("buy", "1", "3", symbol="ZERO")]})
                views = {v: conn.result("query", {"view": v})["rows"]
                         for v in ("positions", "balances", "daily")}
                as_of = conn.result("query", {"view": "positions", "as_of": len(bad) + 4})
            assert ["OK"] == [p["symbol"] for p in views["positions"]]
            assert views["positions"] == as_of["rows"]
            assert len(bad) + 4 == len(read_all(proc.socket))
            assert "ok" == health(proc.socket)["status"]
        with running(tmp_path, env) as proc:
            with RawConnection(proc.socket) as conn:
                conn.result("append", {"events": [wire_event("mark", {"prices": {"BIG": "3"}})]})
                again = {v: conn.result("query", {"view": v})["rows"]
                         for v in ("positions", "daily")}
            assert ["OK"] == [p["symbol"] for p in again["positions"]]
            assert views["daily"] == again["daily"]
            # The log file holds both runs: the second logged no event left out again.
            assert left_out == sorted(r["seq"] for r in log_records(proc)
                                      if r.get("event") == "event_left_out")


_BOOM = """\
import sys

import projections.fold  # noqa: F401  (the package exports a function of that name)

_fold = sys.modules["projections.fold"]


def _boom(state, event):
    if event.data.get("symbol") == "BOOM":
        raise RuntimeError("a fold bug")
    return state


_fold._STEPS = (_boom, *_fold._STEPS)
"""


class TestAFoldThatRaises:
    """A fold bug injected into the daemon and its writer process (``sitecustomize``):
    only the append that meets it is refused, and the daemon goes on."""

    @pytest.mark.parametrize("writer_process", ["true", "false"])
    def test_only_the_append_that_meets_it_is_refused(self, tmp_path: Path,
                                                      writer_process: str) -> None:
        """Three pipelined appends, the middle one meeting the bug: it alone gets -32602
        (index 1, path data), nothing of it is stored; the others are stored with
        consecutive seqs; the refusal is logged once; the daemon restarts cleanly."""
        hook = tmp_path / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(_BOOM)
        env = {"PYTHONPATH": os.pathsep.join([str(hook), *filter(None, [
            os.environ.get("PYTHONPATH")])]), "TRADELOG_WRITER_PROCESS": writer_process}
        batches = [[fill("buy", "1", "10")],
                   [fill("buy", "1", "10", symbol="Y"), fill("buy", "1", "10", symbol="BOOM")],
                   [fill("sell", "1", "12")]]
        with running(tmp_path, env) as proc:
            with RawConnection(proc.socket) as conn:
                for index, events in enumerate(batches):
                    conn.send_json({"jsonrpc": "2.0", "id": index, "method": "append",
                                    "params": {"events": events}})
                answers = {a["id"]: a for a in (conn.read() for _ in batches)}
            assert [1, 2] == [answers[i]["result"]["results"][0]["seq"] for i in (0, 2)]
            error = answers[1]["error"]
            assert (-32602, [(1, "data")]) == (error["code"], [
                (p["index"], p["path"]) for p in error["data"]["errors"]])
            assert ["EURUSD", "EURUSD"] == [e["data"]["symbol"]
                                            for e in read_all(proc.socket)]
            refusals = [r for r in log_records(proc)
                        if r.get("event") == "append_refused_by_views"]
            assert 1 == len(refusals)
            assert 0 == proc.stop()
            proc.start()
            assert 2 == health(proc.socket)["last_seq"]
