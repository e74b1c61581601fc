"""The ``store`` setting and ``--store``: a SQLite URL is another spelling of ``db``, a
PostgreSQL URI (several hosts allowed) is taken as libpq reads it, anything else is
refused saying what to give; commands that write SQLite files say so on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli.main import main as tradelog
from daemon.config import ConfigError, load_config
from eventstore.store import parse_store


def test_a_sqlite_store_sets_the_database_file(tmp_path: Path) -> None:
    """``store = "sqlite:///PATH"`` (relative, or absolute with four slashes) becomes
    ``db``; without ``store`` the log is ``db``."""
    config = load_config(overrides={"store": f"sqlite:///{tmp_path}/a.db"}, env={})
    assert (tmp_path / "a.db", "sqlite") == (config.db, config.store_url().kind)
    relative = load_config(overrides={"store": "sqlite:///logs/b.db"}, env={})
    assert (Path.cwd() / "logs" / "b.db") == relative.db
    plain = load_config(overrides={"db": tmp_path / "c.db"}, env={})
    assert ("sqlite", tmp_path / "c.db") == (plain.store_url().kind, plain.store_url().path)


def test_a_postgresql_store_with_several_hosts_is_taken(tmp_path: Path) -> None:
    """A multi-host URI with target_session_attrs is accepted (also from the
    environment) and kept as given; its password is hidden when shown."""
    uri = ("postgresql://bot:s3cret@db1:5432,db2:5433/trading"
           "?target_session_attrs=read-write")
    config = load_config(env={"TRADELOG_STORE": uri})
    store = config.store_url()
    assert ("postgresql", uri) == (store.kind, store.conninfo)
    assert "s3cret" not in store.redacted()
    assert "bot:***@db1:5432,db2:5433/trading" in store.redacted()


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite:///", "postgresql://h/db?port=x=y=",
                                 "/var/lib/tradelog.db"])
def test_a_bad_store_is_refused_saying_what_to_give(url: str) -> None:
    """A URL of another kind, a SQLite URL without a file, or a URI libpq cannot parse
    is refused at load, naming ``store``."""
    with pytest.raises(ConfigError, match="store"):
        load_config(overrides={"store": url}, env={})
    with pytest.raises(ConfigError):
        parse_store(url)


def test_import_db_on_postgresql_says_what_to_use(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``import --db`` with a PostgreSQL store exits 2, naming ``--store`` and the daemon,
    without connecting (the other commands run on it: ``tests/cli/test_postgres_cli.py``,
    ``test_postgres_restore_import.py``)."""
    monkeypatch.setenv("TRADELOG_STORE", "postgresql://nobody@127.0.0.1:1/none")
    code = tradelog(["import", "events.jsonl", "--format", "events-jsonl", "--db", "other.db"])
    assert 2 == code
    err = capsys.readouterr().err
    assert "does not run on a PostgreSQL store" in err
    assert "--store URL" in err
    assert "leave out --db" in err


def test_restore_names_its_destination(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``restore`` writes where ``--db`` or ``--store`` says, never into the configured
    store by default: without either (a PostgreSQL store configured), or with both, it
    exits 2 naming them, without connecting."""
    monkeypatch.setenv("TRADELOG_STORE", "postgresql://nobody@127.0.0.1:1/none")
    src = tmp_path / "copy.db"
    src.write_bytes(b"")
    assert 2 == tradelog(["restore", str(src)])
    assert "give --db DEST" in capsys.readouterr().err
    assert 2 == tradelog(["restore", str(src), "--db", str(tmp_path / "new.db"), "--store",
                          "postgresql://nobody@127.0.0.1:1/none"])
    assert "not both" in capsys.readouterr().err
