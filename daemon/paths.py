"""The default database and socket paths (standard library only, so that the CLI's
parser can show them without loading the configuration's models).

The database at ``$STATE_DIRECTORY/tradelog.db`` under systemd, else
``$XDG_DATA_HOME/tradelog/tradelog.db`` (``~/.local/share/tradelog``); the socket at
``$RUNTIME_DIRECTORY/tradelog.sock`` under systemd, else
``$XDG_RUNTIME_DIR/tradelog.sock``, else next to the database.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_paths"]


def default_paths(env: dict[str, str] | None = None) -> tuple[Path, Path]:
    """The database and socket paths used when none are given (see module docstring);
    ``env``: the environment to read (default ``os.environ``)."""
    environ = os.environ if env is None else env
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        data_dir = Path(state)
    else:
        base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        data_dir = Path(base) / "tradelog"
    runtime = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        socket_path = Path(runtime) / "tradelog.sock"
    elif environ.get("XDG_RUNTIME_DIR"):
        socket_path = Path(environ["XDG_RUNTIME_DIR"]) / "tradelog.sock"
    else:
        socket_path = data_dir / "tradelog.sock"
    return data_dir / "tradelog.db", socket_path
