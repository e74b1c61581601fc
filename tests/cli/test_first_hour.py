"""What a new user meets in the first hour, through the installed ``tradelog`` command:
each failure is one plain line naming the path, account or socket, with its documented
exit code (docs/CLI.md) and never a traceback; reading commands say where they read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from daemon.client import Client
from tests.cli.first_hour import clean_env, run, seed, shell
from tests.support import DaemonProcess, daemon_on, wire_event

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND, EXIT_DENIED = 1, 2, 3, 4, 5

# The tests marked both_stores run against a daemon on SQLite, then on PostgreSQL: what
# they check comes from the log, its views or its writer; the others fail before a
# store is read, or are about a file.


def _plain_failure(done: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    out, err = done.stdout, done.stderr
    assert code == done.returncode, (out, err)
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("tradelog: "), err
    for name in names:
        assert name in err, err
    return err


needs_sys = pytest.mark.skipif(not Path("/sys/kernel").is_dir(),
                               reason="needs Linux's /sys, where nobody may create files")


@needs_sys
def test_serve_on_an_unwritable_database_path_names_it(tmp_path: Path) -> None:
    """``serve --db /sys/tradelog.db``: exit 5 naming the path, nothing created."""
    done = run("serve", "--db", "/sys/tradelog.db", "--socket", str(tmp_path / "s.sock"))
    _plain_failure(done, EXIT_DENIED, "/sys/tradelog.db")
    assert not Path("/sys/tradelog.db").exists()
    assert [] == list(tmp_path.iterdir())


@needs_sys
def test_serve_on_an_unusable_socket_path_creates_no_database(tmp_path: Path) -> None:
    """``serve --socket /sys/s3.sock``: exit 5 naming the socket; the database is not
    created by the failed start."""
    db = tmp_path / "data" / "tradelog.db"
    done = run("serve", "--db", str(db), "--socket", "/sys/s3.sock")
    _plain_failure(done, EXIT_DENIED, "/sys/s3.sock")
    assert not db.exists()
    assert not db.parent.exists() or [] == list(db.parent.iterdir())


def test_import_of_a_missing_file_says_so(tmp_path: Path) -> None:
    """``import nosuch.csv``: exit 4 naming the file, not "cannot reach the daemon"."""
    done = run("import", str(tmp_path / "nosuch.csv"), "--format", "trades-csv",
               "--account", "legacy", "--socket", str(tmp_path / "none.sock"))
    err = _plain_failure(done, EXIT_NOT_FOUND, "nosuch.csv")
    assert "daemon" not in err


def test_debug_switch_shows_the_traceback_and_is_no_setting(tmp_path: Path) -> None:
    """``TRADELOG_DEBUG=1`` adds the traceback to a failure's line (and the exit code
    stays the documented one), whatever else is configured: it is not refused as an
    unknown configuration key."""
    none = str(tmp_path / "none.db")
    for extra in ({}, {"TRADELOG_LOG_LEVEL": "debug"}, {"TRADELOG_SHUTDOWN_TIMEOUT_S": "5"}):
        done = run("verify", "--db", none, env=clean_env(TRADELOG_DEBUG="1", **extra))
        assert EXIT_NOT_FOUND == done.returncode, done.stderr
        assert "Traceback" in done.stderr
        assert done.stderr.splitlines()[-1].startswith("tradelog: "), done.stderr
        assert none in done.stderr
        assert "invalid configuration" not in done.stderr


def test_report_html_into_a_missing_folder_says_so(daemon: DaemonProcess,
                                                   tmp_path: Path) -> None:
    """``report --html /nonexistent/dir/r.html``: exit 4 naming the folder."""
    seed(daemon)
    done = run("report", "--html", str(tmp_path / "nonexistent" / "r.html"),
               "--socket", str(daemon.socket))
    err = _plain_failure(done, EXIT_NOT_FOUND, str(tmp_path / "nonexistent"))
    assert "cannot reach" not in err


def test_output_cut_short_by_head_is_quiet(daemon: DaemonProcess) -> None:
    """``schema | head`` and ``tail ... | head``: no "Broken pipe", no traceback, and
    tradelog exits 0 (the reader had what it wanted)."""
    seed(daemon)
    schema = shell("tradelog schema | head -n 2; echo \"exit=${PIPESTATUS[0]}\"")
    assert ("", "exit=0") == (schema.stderr, schema.stdout.splitlines()[-1])
    tail = shell(f"tradelog tail --socket {daemon.socket} --from 1 | head -n 1; "
                 "echo \"exit=${PIPESTATUS[0]}\"")
    assert ("", "exit=0") == (tail.stderr, tail.stdout.splitlines()[-1])
    assert 1 == json.loads(tail.stdout.splitlines()[0])["seq"]


@pytest.mark.parametrize("command", [["emit", "--type", "cash", "--account", "a",
                                      "--data", "{}"], ["tail"], ["health"]])
def test_no_daemon_is_reported_at_once_naming_the_socket(tmp_path: Path,
                                                         command: list[str]) -> None:
    """With no daemon, ``emit``/``tail``/``health`` exit 3 naming the socket and saying how
    to start one, after a short wait that they announce (not 30 s of silent retries: the
    subprocess timeout would end it)."""
    sock = tmp_path / "none.sock"
    done = run(*command, "--socket", str(sock), timeout_s=15)
    err = _plain_failure(done, EXIT_UNREACHABLE, f"cannot reach the daemon at {sock}",
                         "tradelog serve")
    if command[0] != "health":
        assert f"waiting up to 0.5 s for the daemon at {sock}" in err


@pytest.mark.both_stores
def test_show_and_report_say_where_they_read(tmp_path: Path, store: str) -> None:
    """With the daemon up, ``show`` and ``report`` (given the socket by flag or by the
    environment) ask it; with it stopped they read the log read-only (the file, or the
    PostgreSQL log). Each says which on stderr; ``report --socket`` with no daemon exits
    3, and with ``--benchmark`` (read here, so from the log) exits 2."""
    with daemon_on(store, tmp_path) as proc:
        seed(proc)
        flag, where = proc.log_args()
        setting = {"--db": "TRADELOG_DB", "--store": "TRADELOG_STORE"}[flag]
        env = clean_env(TRADELOG_SOCKET=str(proc.socket), **{setting: where})
        live = run("show", "balances", "--format", "json", env=env)
        report = run("report", "--account", "paper-1", "--json", "--socket",
                     str(proc.socket))
        assert 0 == proc.stop()
        offline = run("show", "balances", "--format", "json", env=env)
    assert f"show: from the daemon at {proc.socket}" in live.stderr
    assert "1000.5" == json.loads(live.stdout)["rows"][0]["cash"]
    assert f"report: from the daemon at {proc.socket}" in report.stderr
    assert "paper-1" == json.loads(report.stdout)["account"]
    assert f"show: reading {where} read-only (no daemon at {proc.socket})" in offline.stderr
    assert json.loads(live.stdout)["rows"] == json.loads(offline.stdout)["rows"]
    gone = run("report", "--socket", str(proc.socket))
    _plain_failure(gone, EXIT_UNREACHABLE, str(proc.socket))
    prices = tmp_path / "bench.csv"
    prices.write_text("date,close\n2024-03-01,100\n")
    both = run("report", "--socket", str(proc.socket), "--benchmark", str(prices))
    _plain_failure(both, EXIT_USAGE, "give --db PATH instead of --socket")


def test_an_unreachable_postgresql_store_is_one_line(tmp_path: Path) -> None:
    """``--store`` naming a PostgreSQL server that refuses connections: ``serve`` and
    the commands that read the log without a daemon (``show``, as ``report``; ``verify``,
    ``export``, ``backup``, ``rebuild``) each fail at once (exit 1) with one line naming
    the server, never a traceback, and create nothing."""
    url = "postgresql://tradelog@127.0.0.1:1/trading"
    env = clean_env(TRADELOG_SOCKET=str(tmp_path / "none.sock"))
    for command in (["serve"], ["show", "balances"], ["verify"],
                    ["export", str(tmp_path / "out")], ["backup", str(tmp_path / "b.db")],
                    ["rebuild"]):
        done = run(*command, "--store", url, env=env, timeout_s=20)
        err = _plain_failure(done, EXIT_REFUSED, "PostgreSQL", '"127.0.0.1", port 1')
        assert 1 == sum(line.startswith("tradelog: ") for line in err.splitlines()), err
        assert [] == list(tmp_path.iterdir()), command


def test_rebuild_beside_a_running_daemon_is_refused(tmp_path: Path) -> None:
    """``rebuild`` takes the daemon's lock: refused (exit 1, naming the file) while the
    daemon serves it, done once it is stopped. (SQLite only: on PostgreSQL ``rebuild``
    runs beside the daemons, ``tests/cli/test_postgres_cli.py``.)"""
    with DaemonProcess(tmp_path) as proc:
        seed(proc)
        refused = run("rebuild", "--db", str(proc.db))
        assert 0 == proc.stop()
    _plain_failure(refused, EXIT_REFUSED, str(proc.db), "stop it first")
    done = run("rebuild", "--db", str(proc.db))
    assert 0 == done.returncode, done.stderr
    assert "rebuild: 3 events folded" in done.stdout
    missing = run("rebuild", "--db", str(tmp_path / "nothing.db"))
    _plain_failure(missing, EXIT_NOT_FOUND, str(tmp_path / "nothing.db"))
    assert not (tmp_path / "nothing.db").exists()


@pytest.mark.both_stores
def test_emit_account_applies_to_stdin_events(daemon: DaemonProcess) -> None:
    """``emit --account A`` stores stdin events that name no account under A, and refuses
    (exit 2, naming the line) one that names another account."""
    event = wire_event("cash", {"amount": "5", "kind": "deposit"})
    del event["account"]
    sock = str(daemon.socket)
    done = run("emit", "--socket", sock, "--account", "paper-9",
               stdin=json.dumps(event).encode() + b"\n")
    assert (0, "emit: 1 stored, 0 duplicates, last seq 1\n") == (done.returncode,
                                                                 done.stdout)
    other = wire_event("cash", {"amount": "5", "kind": "deposit"}, account="paper-2")
    clash = run("emit", "--socket", sock, "--account", "paper-9",
                stdin=b"\n" + json.dumps(other).encode() + b"\n")
    _plain_failure(clash, EXIT_USAGE, "stdin line 2", "'paper-2'", "'paper-9'")
    with Client(daemon.socket) as client:
        assert ["paper-9"] == [e["account"] for e in client.read()["events"]]


def test_emit_with_nothing_and_a_refusal(daemon: DaemonProcess) -> None:
    """``emit`` with an empty stdin says there was nothing to send (no ``last seq
    None``); a refused event's reason is printed once, exit 1."""
    empty = run("emit", "--socket", str(daemon.socket), stdin=b"\n")
    out, err = empty.stdout, empty.stderr
    assert (0, "") == (empty.returncode, out)
    assert "nothing to send" in err
    assert "None" not in err
    bad = wire_event("fill", {"symbol": "EURUSD", "side": "buy", "quantity": "-1",
                              "price": "1"})
    refused = run("emit", "--socket", str(daemon.socket),
                  stdin=json.dumps(bad).encode() + b"\n")
    err = _plain_failure(refused, EXIT_REFUSED, "the daemon refused")
    assert 1 == err.count("data.quantity"), err


@pytest.mark.both_stores
def test_unknown_account_lists_the_known_ones(daemon: DaemonProcess) -> None:
    """``show --account Paper-1`` and ``report --account Paper-1`` when only ``paper-1``
    exists: exit 4 listing the known accounts, not an empty table with exit 0."""
    seed(daemon)
    for command in (["show", "balances"], ["report"]):
        done = run(*command, "--account", "Paper-1", "--socket", str(daemon.socket))
        _plain_failure(done, EXIT_NOT_FOUND, "no account 'Paper-1'", "known accounts: paper-1")


def test_bad_usage_exits_2_and_missing_database_4(tmp_path: Path) -> None:
    """An unknown flag exits 2 (usage); every command given a missing database or config
    file exits 4 naming it, and creates nothing."""
    usage = run("show", "balances", "--no-such-flag")
    assert EXIT_USAGE == usage.returncode
    none = str(tmp_path / "none.db")
    for command in (["show", "balances", "--db", none], ["verify", "--db", none],
                    ["export", str(tmp_path / "out"), "--db", none],
                    ["backup", str(tmp_path / "b.db"), "--db", none],
                    ["restore", none, "--db", str(tmp_path / "r.db")]):
        _plain_failure(run(*command), EXIT_NOT_FOUND, none)
    config = str(tmp_path / "none.toml")
    _plain_failure(run("serve", "--config", config), EXIT_NOT_FOUND, config)
    assert [] == list(tmp_path.iterdir())


@pytest.mark.both_stores
def test_info_log_is_one_line_per_second_of_appends(tmp_path: Path, store: str) -> None:
    """Sixty appends, one request each, in well under a second: the daemon's info log
    sums them in ``appends_committed`` records (one per second of activity, with
    counts), not one line per append; each group's line is at debug only."""
    events = [wire_event("cash", {"amount": "1", "kind": "deposit"}, account="paper-1")
              for _ in range(60)]
    with daemon_on(store, tmp_path) as proc:
        lines = b"".join(json.dumps(e).encode() + b"\n" for e in events)
        done = run("emit", "--socket", str(proc.socket), "--batch", "1", stdin=lines)
        assert 0 == done.returncode, done.stderr
        assert 0 == proc.stop()
    records = [json.loads(t) for t in proc.log.read_text().splitlines() if t.startswith("{")]
    summaries = [r for r in records if r.get("event") == "appends_committed"]
    assert [] == [r for r in records if r.get("event") == "batch_committed"]
    assert 60 == sum(r["events"] for r in summaries) == sum(r["requests"] for r in summaries)
    assert 60 == summaries[-1]["last_seq"]
    assert len(summaries) < 20
