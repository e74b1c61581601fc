"""The installed ``tradelog`` console script: what a user gets from ``pip install``.

These tests run the ``tradelog`` script of the environment running the suite, not
``python -m daemon.cli``: with the wheel installed (as ``.ci/run`` does) they prove that
the wheel carries every package its commands import. ``EXPECT_INSTALLED_WHEEL=1``
(set by ``.ci/run``) also demands that the packages come from site-packages, so a suite
that silently imports the source tree instead fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from importlib.metadata import version
from pathlib import Path

import pytest

import daemon
from daemon.client import Client
from tests.support import DaemonProcess

DATA = Path(__file__).parents[1] / "data"
SCRIPT = Path(sysconfig.get_path("scripts")) / "tradelog"


def _tradelog(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADELOG_")}
    return subprocess.run([str(SCRIPT), *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=120, check=False, env=env)


@pytest.mark.skipif(os.environ.get("EXPECT_INSTALLED_WHEEL") != "1",
                    reason="only where the suite runs against an installed wheel")
def test_packages_come_from_the_installed_wheel() -> None:
    """Under ``.ci/run`` the packages under test are the wheel's, in site-packages, not the
    source tree beside the tests."""
    site = Path(sysconfig.get_path("purelib")).resolve()
    assert site == Path(daemon.__file__).resolve().parent.parent


def test_version_flag_prints_the_distribution_version() -> None:
    """``tradelog --version`` prints the installed distribution's version and exits 0."""
    done = _tradelog("--version")
    assert 0 == done.returncode, done.stderr
    assert f"tradelog {version('tradelog')}" == done.stdout.strip()


def test_console_script_serves_emits_shows_imports_and_reports(tmp_path: Path) -> None:
    """The console script runs every main command against a daemon it started itself:
    ``serve`` answers, ``emit`` stores, ``show`` prints the stored state, ``import`` stores
    a legacy trades file, ``report`` computes the account's figures."""
    assert SCRIPT.exists(), f"no console script at {SCRIPT}"
    sock = tmp_path / "tradelog.sock"
    with DaemonProcess(tmp_path, env={}) as proc:
        assert proc.proc is not None
        with Client(sock) as client:
            assert "ok" == client.health()["status"]
        data = json.dumps({"amount": "1000", "kind": "deposit"})
        emitted = _tradelog("emit", "--socket", str(sock), "--type", "cash",
                            "--account", "paper-1", "--id", "dep-1", "--data", data)
        assert 0 == emitted.returncode, emitted.stderr
        shown = _tradelog("show", "balances", "--socket", str(sock), "--json")
        assert 0 == shown.returncode, shown.stderr
        rows = json.loads(shown.stdout)
        rows = rows["rows"] if isinstance(rows, dict) else rows
        assert [("paper-1", "1000")] == [(r["account"], r["cash"]) for r in rows]
        imported = _tradelog("import", str(DATA / "trades.csv"), "--format", "trades-csv",
                             "--account", "legacy", "--quantity", "1000",
                             "--socket", str(sock))
        assert 0 == imported.returncode, imported.stderr
        reported = _tradelog("report", "--account", "legacy", "--json",
                             "--db", str(proc.db))
        assert 0 == reported.returncode, reported.stderr
        assert 0 < json.loads(reported.stdout)["trades"]["round_trips"]


def test_wheel_runs_with_the_interpreter_of_its_environment() -> None:
    """The console script's interpreter is the one running this suite, so the commands
    above tested this installation and no other."""
    first = SCRIPT.read_text().splitlines()[0]
    assert Path(first.removeprefix("#!")).resolve() == Path(sys.executable).resolve()
