"""Who may read what over HTTP: loopback only without tokens; bearer tokens mapped to
accounts; no CORS unless configured; a clear refusal of every unsafe setting."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from daemon.client import Client
from daemon.config import ConfigError, load_config
from daemon.http import start
from daemon.http.address import parse_listen
from tests.http_support import ACCOUNT, HttpDaemon, http_daemon, seed
from tests.support import DaemonProcess, fill

READER = "r" * 40
"""A token that may read the demo's account only."""
ADMIN = "a" * 40
"""A token that may read every account."""


def write_tokens(path: Path, mode: int = 0o600) -> Path:
    path.write_text(f'''
[[tokens]]
name = "reader"
token = "{READER}"
read = ["{ACCOUNT}"]

[[tokens]]
name = "admin"
token = "{ADMIN}"
read = ["*"]
''')
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpDaemon]:
    """A daemon on all addresses with a tokens file, holding a little of the demo."""
    directory = tmp_path_factory.mktemp("http-tokens")
    tokens = write_tokens(directory / "tokens.toml")
    with http_daemon(directory, "0.0.0.0:0",
                     env={"TRADELOG_HTTP_TOKENS_FILE": str(tokens)}) as daemon:
        seed(daemon.proc.socket, bars=120)
        with Client(daemon.proc.socket) as client:
            client.append([fill("buy", "1", "10", symbol="XYZ", account="other-desk")])
        yield daemon


def test_tokens_gate_every_read(guarded: HttpDaemon) -> None:
    """No token or an unknown one: 401 with ``WWW-Authenticate: Bearer``; ``ping`` needs
    none."""
    none = guarded.get("/api/v1/health")
    wrong = guarded.get("/api/v1/health", token="x" * 40)
    assert (401, 401) == (none.status_code, wrong.status_code)
    assert "Bearer" == none.headers["www-authenticate"]
    assert -32000 == none.json()["error"]["code"]
    assert 200 == guarded.get("/api/v1/ping").status_code
    assert 200 == guarded.get("/api/v1/health", token=ADMIN).status_code


def test_tokens_map_to_accounts(guarded: HttpDaemon) -> None:
    """A token reads its accounts only, as the socket's access rules: another account,
    or every account at once, is 403 (-32004); the stream likewise."""
    mine = guarded.get("/api/v1/views/trades", token=READER, account=ACCOUNT)
    other = guarded.get("/api/v1/views/trades", token=READER, account="someone-else")
    every = guarded.get("/api/v1/views/trades", token=READER)
    stream = guarded.get("/api/v1/stream", token=READER)
    assert 200 == mine.status_code
    assert mine.json()["rows"]
    assert (403, 403, 403) == (other.status_code, every.status_code, stream.status_code)
    assert -32004 == other.json()["error"]["code"]
    assert "name one" in every.json()["error"]["message"]
    assert 200 == guarded.get("/api/v1/views/trades", token=ADMIN).status_code


def test_accounts_lists_only_the_tokens_accounts(guarded: HttpDaemon) -> None:
    """``/api/v1/accounts`` (what the page offers) holds the token's accounts only."""
    mine = guarded.get("/api/v1/accounts", token=READER).json()
    every = guarded.get("/api/v1/accounts", token=ADMIN).json()
    assert [ACCOUNT] == [r["account"] for r in mine["rows"]]
    assert 1 == mine["total"]
    assert [ACCOUNT, "other-desk"] == sorted(r["account"] for r in every["rows"])


def test_no_cors_headers_unless_configured(guarded: HttpDaemon, tmp_path: Path) -> None:
    """A cross-origin request gets no ``Access-Control-Allow-Origin`` by default; with
    ``http_cors_origins`` the listed origin (only) does."""
    import httpx

    origin = {"Origin": "https://elsewhere.test", "Authorization": f"Bearer {ADMIN}"}
    plain = httpx.get(guarded.base + "/api/v1/health", headers=origin)
    assert "access-control-allow-origin" not in plain.headers
    config = tmp_path / "tradelog.toml"
    config.write_text('http_cors_origins = ["https://elsewhere.test"]\n')
    with http_daemon(tmp_path, extra_args=["--config", str(config)]) as daemon:
        allowed = httpx.get(daemon.base + "/api/v1/health", headers=origin)
        other = httpx.get(daemon.base + "/api/v1/health",
                          headers={"Origin": "https://other.test"})
    assert "https://elsewhere.test" == allowed.headers["access-control-allow-origin"]
    assert "access-control-allow-origin" not in other.headers


def test_non_loopback_needs_a_tokens_file(tmp_path: Path) -> None:
    """``http_listen`` on a public address without ``http_tokens_file`` is refused when
    the config is read; loopback addresses are not."""
    with pytest.raises(ConfigError, match="http_tokens_file"):
        load_config(None, {"db": tmp_path / "t.db", "socket": tmp_path / "t.sock",
                           "http_listen": "0.0.0.0:8787"})
    for loopback in ("127.0.0.1:8787", "[::1]:8787", "localhost:8787"):
        config = load_config(None, {"db": tmp_path / "t.db", "socket": tmp_path / "t.sock",
                                    "http_listen": loopback})
        assert loopback == config.http_listen


@pytest.mark.parametrize(("text", "fix"), [
    ("8787", "HOST:PORT"), ("127.0.0.1:http", "port"), ("::1:8787", "brackets"),
    ("example.com:8787", "IP address"), ("127.0.0.1:70000", "port")])
def test_bad_listen_addresses_say_what_to_write(text: str, fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        parse_listen(text)


def test_a_tokens_file_others_can_read_is_refused(tmp_path: Path) -> None:
    """A token is a password: a world-readable tokens file stops the start with advice."""
    tokens = write_tokens(tmp_path / "tokens.toml", 0o644)
    daemon = DaemonProcess(tmp_path, extra_args=["--http", "127.0.0.1:0"],
                           env={"TRADELOG_HTTP_TOKENS_FILE": str(tokens)})
    with pytest.raises(RuntimeError, match="chmod 600"):
        daemon.start()


def test_access_rules_without_tokens_are_refused(tmp_path: Path) -> None:
    """Socket access rules with an open HTTP API would let every local user read every
    account: the daemon refuses to start and says to set a tokens file."""
    config = tmp_path / "tradelog.toml"
    config.write_text('[[access]]\nuid = 12345\nread = ["a"]\n')
    daemon = DaemonProcess(tmp_path, extra_args=["--config", str(config),
                                                 "--http", "127.0.0.1:0"])
    with pytest.raises(RuntimeError, match="http_tokens_file"):
        daemon.start()


def test_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    """Without the ``http`` extra, setting ``http_listen`` fails with how to install it."""
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    config = load_config(None, {"db": tmp_path / "t.db", "socket": tmp_path / "t.sock",
                                "http_listen": "127.0.0.1:0"})
    with pytest.raises(ConfigError, match=r"tradelog\[http\]"):
        asyncio.run(start(SimpleNamespace(config=config)))  # type: ignore[arg-type]


def test_the_daemon_does_not_import_the_extra_unless_asked() -> None:
    """Without ``http_listen`` the daemon runs without FastAPI and uvicorn installed:
    neither the server, the CLI nor the config imports them."""
    import subprocess

    code = ("import sys\n"
            "for name in ('fastapi', 'uvicorn', 'starlette'):\n"
            "    sys.modules[name] = None\n"
            "import daemon.server, daemon.cli.main, daemon.config\n"
            "daemon.config.load_config(None, {'db': 'x.db', 'socket': 'x.sock',\n"
            "                                 'http_listen': '127.0.0.1:8787'})\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, timeout=60)
    assert (0, "") == (result.returncode, result.stderr)
