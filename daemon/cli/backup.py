"""``tradelog backup DEST [--db PATH] [--socket PATH] [--config FILE]``.

``DEST`` is a path (relative to the current directory) that must not exist yet. Who
writes it:

- the daemon, through its ``backup`` method, when it answers on the socket, ``--db`` is
  not given, and ``DEST`` is in the configured ``backup_dir`` (the only place the daemon
  writes backups: it may run as another uid);
- else this process, from the database file (``--db`` or the configured one). This is
  safe while the daemon serves the file too: the copy is one read transaction of a WAL
  database, which never blocks the daemon's appends.

Either way the copy is verified before it gets its name; the command prints its last
seq and hash.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from daemon.client import Client, RemoteError
from daemon.config import Config
from eventstore.backup import backup_file

__all__ = ["backup_command", "daemon_answers"]


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
