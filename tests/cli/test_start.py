"""What a command loads as it starts: the paths without the configuration's models
(``daemon.locations``), the same as ``load_config`` gives, or None whenever there is
more to check; the parser's names for the views; the modules the short commands load."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.cli.arguments import VIEW_NAMES
from daemon.config import ConfigError, load_config
from daemon.locations import Locations, plain_locations
from eventstore import NewEvent, Recorder
from projections.tables import VIEWS
from schemas import parse_event
from tests.support import fill

REPO = Path(__file__).resolve().parents[2]

PLAIN: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({}, {}),
    ({}, {"XDG_DATA_HOME": "/data", "XDG_RUNTIME_DIR": "/run/user/7"}),
    ({}, {"STATE_DIRECTORY": "/var/lib/t:/x", "RUNTIME_DIRECTORY": "/run/t"}),
    ({"db": Path("rel/x.db")}, {}),
    ({"db": Path("~/x.db"), "socket": Path("/s.sock")}, {"HOME": "/home/u"}),
    ({}, {"TRADELOG_DB": "env.db", "TRADELOG_SOCKET": "~/env.sock", "HOME": "/h"}),
    ({"db": Path("/flag.db")}, {"TRADELOG_DB": "/env.db", "TRADELOG_LOG_FORMAT": "json",
                                "TRADELOG_LOG_LEVEL": "debug"}),
    ({"db": None, "store": None}, {"TRADELOG_db": "lower.db", "TRADELOG_CONFIG": ""}),
    ({}, {"TRADELOG_SOCKET": ""}),
]


@pytest.mark.parametrize(("overrides", "env"), PLAIN)
def test_same_paths_as_load_config(overrides: dict[str, Any], env: dict[str, str],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Where the configuration holds nothing but paths and valid choices, the plain
    reading gives the very paths and store of ``load_config``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", env.get("HOME", str(tmp_path)))
    plain = plain_locations(overrides, env)
    full = load_config(None, overrides, env)
    assert isinstance(plain, Locations)
    assert (plain.db, plain.socket) == (full.db, full.socket)
    assert plain.store_url() == full.store_url()
    assert plain.store is full.store is None


NOT_PLAIN: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({}, {"TRADELOG_CONFIG": "/etc/tradelog.toml"}),
    ({"store": "sqlite:///x.db"}, {}),
    ({"inbox": Path("/in")}, {}),
    ({"http_listen": "127.0.0.1:1"}, {}),
    ({}, {"TRADELOG_LOG_FORMAT": "JSON"}),
    ({}, {"TRADELOG_LOG_LEVEL": "verbose"}),
    ({}, {"TRADELOG_LIMITS__MAX_LINE_BYTES": "10"}),
    ({}, {"TRADELOG_STORE": "postgresql://u@h/d"}),
    ({}, {"TRADELOG_GROUP": "0"}),
]


@pytest.mark.parametrize(("overrides", "env"), NOT_PLAIN)
def test_anything_else_goes_to_load_config(overrides: dict[str, Any],
                                           env: dict[str, str]) -> None:
    """A configuration file, a store, any other key or a value ``Config`` might refuse:
    None, so that ``load_config`` reads (and checks) the whole configuration."""
    assert plain_locations(overrides, env) is None


def test_refused_values_are_still_refused() -> None:
    """What made the plain reading step aside is reported by ``load_config`` as before."""
    for env in ({"TRADELOG_LOG_FORMAT": "JSON"}, {"TRADELOG_SHUTDOWN_TIMEOUT_S": "soon"}):
        assert plain_locations({}, env) is None
        with pytest.raises(ConfigError, match="invalid configuration"):
            load_config(None, {}, env)


def test_the_debug_switch_is_not_a_setting() -> None:
    """``TRADELOG_DEBUG`` (tracebacks on failure) is a switch of the command line, not a
    configuration key: both readers take it without a word."""
    env = {"TRADELOG_DEBUG": "1", "TRADELOG_DB": "/srv/t.db"}
    plain = plain_locations({}, env)
    assert plain is not None
    assert Path("/srv/t.db") == plain.db == load_config(None, {}, env).db


_PROBE = """
import sys
from daemon.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(code, sorted(m for m in ("pydantic", "asyncio", "rich", "daemon.config")
                   if m in sys.modules))
"""


def _loaded(*args: str, env: dict[str, str], cwd: Path) -> str:
    """The exit code and which of the watched modules a command loaded, as one line."""
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                          text=True, check=True, env=env, timeout=60, cwd=cwd)
    return done.stdout.strip().splitlines()[-1]


def _make_db(path: Path) -> Path:
    async def run() -> None:
        recorder = await Recorder.open(path)
        try:
            await recorder.append([NewEvent.from_model(parse_event(
                fill("buy", "1", f"1.{i + 1}", event_id=f"l-{i}"))) for i in range(3)])
        finally:
            await recorder.close()

    asyncio.run(run())
    return path


def test_short_commands_load_no_models(tmp_path: Path) -> None:
    """``--version`` and ``--help`` load neither pydantic nor asyncio; ``show`` (tsv),
    ``verify`` and ``rebuild`` of a file, with nothing else configured, load no
    pydantic and no configuration models, nor do ``export`` and ``restore``; ``import``
    (whose events need pydantic) no configuration models; a configuration file still
    loads them."""
    db = _make_db(tmp_path / "log.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADELOG_")}
    env["TRADELOG_SOCKET"] = str(tmp_path / "none.sock")
    env["PYTHONPATH"] = str(REPO)
    assert _loaded("--version", env=env, cwd=tmp_path) == "0 []"
    assert _loaded("--help", env=env, cwd=tmp_path) == "0 []"
    assert _loaded("rebuild", "--db", str(db), env=env,
                   cwd=tmp_path) == "0 ['asyncio', 'rich']"
    assert _loaded("show", "balances", "--db", str(db), env=env,
                   cwd=tmp_path) == "0 ['asyncio']"
    assert _loaded("verify", "--db", str(db), env=env, cwd=tmp_path) == "0 ['asyncio']"
    for command in (["export", str(tmp_path / "out")], ["restore", str(db)]):
        target = ["--db", str(db if command[0] == "export" else tmp_path / "r.db")]
        line = _loaded(*command, *target, env=env, cwd=tmp_path)
        assert line in ("0 []", "0 ['asyncio']")
    rows = (REPO / "tests" / "data" / "trades.csv").read_text().splitlines()[:4]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    assert _loaded("import", str(tmp_path / "t.csv"), "--format", "trades-csv", "--account",
                   "a", "--quantity", "1", "--db", str(tmp_path / "i.db"), env=env,
                   cwd=tmp_path) == "0 ['asyncio', 'pydantic', 'rich']"
    config = tmp_path / "tradelog.toml"
    config.write_text(f'db = "{db}"\n')
    assert _loaded("verify", "--config", str(config), env=env, cwd=tmp_path) == (
        "0 ['asyncio', 'daemon.config', 'pydantic']")


def test_views_named_by_the_parser_are_the_views() -> None:
    """The CLI's parser names the views, in order, without loading their tables."""
    assert tuple(VIEWS) == VIEW_NAMES
