"""``tradelog backup DEST [--db PATH] [--socket PATH] [--config FILE]``.

``DEST`` is a path (relative to the current directory) that must not exist yet. Who
writes it:

- the daemon, through its ``backup`` method, when it answers on the socket, ``--db`` is
  not given, and ``DEST`` is in the configured ``backup_dir`` (the only place the daemon
  writes backups: it may run as another uid);
- else this process, from the database file (``--db`` or the configured one). This is
  safe while the daemon serves the file too: the copy is one read transaction of a WAL
  database, which never blocks the daemon's appends.

On a PostgreSQL store (``--store postgresql://...``) this process copies the log into
a new SQLite file (``eventstore.migrate``: seqs, times and hashes kept; the views are
not copied, a daemon started on the file folds them). Daemons may append meanwhile:
the copy is the log up to the last event it read.

Either way the copy is verified before it gets its name; the command prints its last
seq and hash.
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

from daemon.client import Client, RemoteError
from daemon.config import Config
from eventstore.backup import (
    CopyReport,
    backup_file,
    discard,
    private_file,
    publish_verified,
    refuse_existing,
)
from eventstore.store import StoreURL

__all__ = ["backup_command", "backup_store", "daemon_answers"]


def daemon_answers(path: Path) -> bool:
    """True when something accepts connections on the Unix socket ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _in_backup_dir(dest: Path, config: Config) -> bool:
    if config.backup_dir is None:
        return False
    directory = config.backup_dir.expanduser().absolute()
    return dest.parent.resolve() == directory.resolve()


def _print(result: dict[str, Any], who: str) -> None:
    print(f"backup: {result['path']}: {result['events']} events, last seq "
          f"{result['last_seq']}, last hash {result['last_hash']} (verified; written by "
          f"{who})")


def backup_command(args: argparse.Namespace, config: Config) -> int:
    """Back up as the module docstring says; exit 0 with the summary, 1 on a refusal."""
    dest: Path = args.dest.expanduser().absolute()
    store = config.store_url()
    if store.kind != "sqlite":
        _print(backup_store(store, dest).to_wire(), "this process")
        return 0
    if args.db is None and _in_backup_dir(dest, config) and daemon_answers(config.socket):
        try:
            with Client(config.socket, retry_for_s=0, timeout_s=3600) as client:
                result = client.call("backup", {"name": dest.name})
        except RemoteError as exc:
            print(f"tradelog backup: the daemon refused: {exc.message}", file=sys.stderr)
            return 1
        _print(result, "the daemon")
        return 0
    report = backup_file(config.db, dest)
    _print(report.to_wire(), "this process")
    return 0


def backup_store(store: StoreURL, dest: Path) -> CopyReport:
    """A verified copy of the PostgreSQL log ``store`` as a new SQLite file at ``dest``
    (0600, in rollback-journal mode, one file), published atomically.

    Raises:
        StorageUnavailableError: ``dest`` exists or cannot be written, or the server
            cannot be reached.
        StorageDamagedError: a row of the log fails its hash (run ``tradelog verify``).
        StorageCorruptError: the copy fails ``verify``; nothing is left under ``dest``.
    """
    from eventstore.migrate import migrate

    refuse_existing(dest)
    assert store.conninfo is not None
    temp = private_file(dest.parent, dest.name)
    try:
        migrate(store.conninfo, f"sqlite:///{temp}")
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
    except BaseException:
        discard(temp)
        raise
    return publish_verified(temp, dest, store.redacted(), "--store URL")
