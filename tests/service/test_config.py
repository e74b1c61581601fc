"""daemon.config: defaults, the TOML file, environment overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, default_paths, load_config


def test_default_paths_under_systemd() -> None:
    """Under systemd the database is in $STATE_DIRECTORY and the socket in
    $RUNTIME_DIRECTORY (the first entry of each)."""
    env = {"STATE_DIRECTORY": "/var/lib/tradelog:/other", "RUNTIME_DIRECTORY": "/run/tradelog",
           "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert (Path("/var/lib/tradelog/tradelog.db"), Path("/run/tradelog/tradelog.sock")) == (
        default_paths(env))


def test_default_paths_xdg() -> None:
    """Outside systemd: $XDG_DATA_HOME/tradelog for the database, $XDG_RUNTIME_DIR for
    the socket."""
    env = {"XDG_DATA_HOME": "/home/u/.data", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert (Path("/home/u/.data/tradelog/tradelog.db"),
            Path("/run/user/1000/tradelog.sock")) == default_paths(env)


def test_default_paths_fall_back_to_home(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    """With no XDG variables: ~/.local/share/tradelog, the socket beside the database."""
    monkeypatch.setenv("HOME", str(tmp_path))
    data = tmp_path / ".local" / "share" / "tradelog"
    assert (data / "tradelog.db", data / "tradelog.sock") == default_paths({})


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    """Precedence, lowest first: defaults, the TOML file, TRADELOG_* variables, flags."""
    file = tmp_path / "tradelog.toml"
    file.write_text('db = "from-file.db"\nlog_level = "debug"\nsocket_mode = 0o600\n'
                    "[limits]\nmax_connections = 10\nwrite_timeout_s = 3.5\n")
    env = {"TRADELOG_LOG_LEVEL": "warning", "TRADELOG_LIMITS__MAX_CONNECTIONS": "20",
           "XDG_RUNTIME_DIR": str(tmp_path)}
    config = load_config(file, {"db": tmp_path / "flag.db", "socket": None}, env=env)
    assert (tmp_path / "flag.db", tmp_path / "tradelog.sock", "warning", 0o600, 20, 3.5) == (
        config.db, config.socket, config.log_level, config.socket_mode,
        config.limits.max_connections, config.limits.write_timeout_s)


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    """$TRADELOG_CONFIG names the file when --config is not given; relative paths in it
    become absolute."""
    file = tmp_path / "t.toml"
    file.write_text('socket = "rel.sock"\nmax_page_count = 1000\n'
                    "[[access]]\nuid = 1000\nwrite = [\"acct-1\"]\nread = [\"*\"]\n")
    config = load_config(env={"TRADELOG_CONFIG": str(file)})
    assert (True, 1000, 1000, ["acct-1"], ["*"]) == (
        config.socket.is_absolute(), config.max_page_count, config.access[0].uid,
        config.access[0].write, config.access[0].read)


def test_env_knob_for_page_count() -> None:
    """TRADELOG_MAX_PAGE_COUNT sets the storage cap."""
    assert 64 == load_config(env={"TRADELOG_MAX_PAGE_COUNT": "64"}).max_page_count


@pytest.mark.parametrize(("text", "env", "expected"), [
    ("[limits]\nmax_line_bytes = 10\n", {}, "limits.max_line_bytes"),
    ('log_level = "loud"\n', {}, "log_level"),
    ("colour = true\n", {}, "colour"),
    ('[[access]]\nuid = 1\nwrite = ["bad account!"]\n', {}, "access.0.write"),
    ("", {"TRADELOG_LIMITS__WRITE_TIMEOUT_S": "soon"}, "limits.write_timeout_s"),
    ("", {"TRADELOG_LIMITS__NO_SUCH": "1"}, "limits.no_such"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, env: dict[str, str],
                                 expected: str) -> None:
    """A wrong value or unknown key is a ConfigError naming the file and the key."""
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(file, env=env)
    message = str(caught.value)
    assert expected in message
    assert str(file) in message


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    """A missing file and a file that is not TOML are ConfigErrors saying so."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("limits = [\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(broken, env={})
