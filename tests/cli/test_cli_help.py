"""The help, the reference (docs/CLI.md), the README's socat line and the demo's ending:
what a new user reads first, checked against what the command does."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from daemon.cli import errors
from daemon.cli.main import build_parser
from daemon.config import default_paths
from tests.cli.first_hour import SCRIPT, clean_env, run, seed
from tests.support import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_of_every_command_has_help() -> None:
    """No option or argument without help text, in any command."""
    missing = [(name, action.dest) for name, parser in _commands().items()
               for action in parser._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert [] == missing


def test_help_gives_defaults_and_as_of_is_recorded_time() -> None:
    """``tradelog show --help`` says that ``--as-of`` is the recorded time and gives the
    defaults (the socket's path, the output format); ``emit --help`` the batch size."""
    shown = run("show", "--help")
    assert 0 == shown.returncode
    text = " ".join(shown.stdout.split())
    assert "recorded time" in text
    assert "(when the daemon stored the events, not the events' own time" in text
    assert "default: table on a terminal, tsv in a pipe" in text
    assert "(default: " in text
    assert "events per append from stdin (default: 500)" in " ".join(
        run("emit", "--help").stdout.split())
    version = run("--version")
    assert (0, "tradelog ") == (version.returncode, version.stdout[:9])


def test_version_is_the_installed_distributions() -> None:
    """``--version`` prints ``daemon.version.VERSION``, which is the version in the
    installed distribution's metadata (the build reads it from that constant)."""
    from importlib.metadata import version

    from daemon.version import VERSION

    assert version("tradelog") == VERSION
    assert f"tradelog {VERSION}" == run("--version").stdout.strip()


def test_docs_list_every_command_option_and_exit_code() -> None:
    """docs/CLI.md has a section per command listing each of its options, and a row per
    exit code of ``daemon.cli.errors``."""
    text = (ROOT / "docs" / "CLI.md").read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)
    by_name = {s.split("`")[1]: s for s in sections[1:] if s.startswith("`tradelog ")}
    for name, parser in _commands().items():
        section = by_name.get(f"tradelog {name}")
        assert section is not None, f"no section for tradelog {name}"
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in section, f"tradelog {name} {option}"
    codes = [getattr(errors, n) for n in dir(errors) if n.startswith("EXIT_")]
    for code in (0, *codes, 70):
        assert re.search(rf"^\| {code} \|", text, re.MULTILINE), code


def _socat_line() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [line] = [x for x in readme.splitlines() if "socat - UNIX-CONNECT:" in x]
    return line.split("|", 1)[1].strip()


def test_readme_socat_line_works_without_xdg_runtime_dir(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's raw JSON-RPC line reaches a daemon on the default socket of a user
    without ``XDG_RUNTIME_DIR`` (the socket then sits beside the database)."""
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    # A short home: the socket's path must fit in AF_UNIX's 108 bytes.
    home = Path(tempfile.mkdtemp(prefix="tl-home-", dir="/tmp"))
    try:
        env = {k: v for k, v in clean_env().items() if not k.startswith("XDG_")}
        env["HOME"] = str(home)
        monkeypatch.setenv("HOME", str(home))  # default_paths reads Path.home()
        db, sock = default_paths(env)
        assert (sock.parent, sock.name) == (db.parent, "tradelog.sock")
        db.parent.mkdir(parents=True)
        request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "health"})
        with DaemonProcess(db.parent):
            done = subprocess.run(["bash", "-c", f"echo '{request}' | {_socat_line()}"],
                                  capture_output=True, text=True, timeout=30, check=False,
                                  env=env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert 0 == done.returncode, done.stderr
    assert "ok" == json.loads(done.stdout)["result"]["status"]


def test_demo_ending_suggests_commands_that_work(tmp_path: Path) -> None:
    """``examples/next_steps.sh`` (the end of ``examples/demo.sh``) writes the HTML report
    and suggests ``report``, ``show`` and ``sqlite3`` commands on the demo's database;
    each one suggested runs and exits 0."""
    with DaemonProcess(tmp_path) as proc:
        seed(proc)
        assert 0 == proc.stop()
    done = subprocess.run(["bash", str(ROOT / "examples" / "next_steps.sh"), str(tmp_path),
                           str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          check=False, env=clean_env())
    assert 0 == done.returncode, done.stderr
    assert (tmp_path / "report.html").stat().st_size > 0
    suggested = [line.split("   #")[0].strip() for line in done.stdout.splitlines()
                 if line.startswith("  ")]
    kinds = {line.split()[0].rsplit("/", 1)[-1] + " " + line.split()[1]
             for line in suggested}
    assert {"tradelog report", "tradelog show", "sqlite3 -readonly"} <= kinds
    for line in suggested:
        if line.startswith(("xdg-open", f"{SCRIPT} serve")):
            continue
        if line.startswith("sqlite3") and shutil.which("sqlite3") is None:
            continue
        ran = subprocess.run(["bash", "-c", line], capture_output=True, text=True,
                             timeout=60, check=False, env=clean_env())
        assert 0 == ran.returncode, (line, ran.stderr)
