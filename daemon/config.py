"""Daemon configuration: defaults, a TOML file, environment overrides; checked by pydantic.

Precedence, lowest first: built-in defaults; the TOML file (``--config``, or
``$TRADELOG_CONFIG``); environment variables ``TRADELOG_<KEY>`` for top-level keys and
``TRADELOG_LIMITS__<KEY>`` for limits; command-line flags.

Default paths: the database at ``$STATE_DIRECTORY/tradelog.db`` under systemd, else
``$XDG_DATA_HOME/tradelog/tradelog.db`` (``~/.local/share/tradelog``); the socket at
``$RUNTIME_DIRECTORY/tradelog.sock`` under systemd, else
``$XDG_RUNTIME_DIR/tradelog.sock``, else next to the database.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventstore.errors import ValidationError as ConfigError

__all__ = ["AccessRule", "Config", "ConfigError", "Limits", "default_paths", "load_config"]

_ACCOUNT_OR_ALL = r"^(\*|[A-Za-z0-9._-]{1,64})$"


class Limits(BaseModel):
    """What one client may ask of the daemon; every bound has a clear error when passed."""

    model_config = ConfigDict(extra="forbid")

    max_line_bytes: int = Field(1 << 20, ge=1024, description="longest request line")
    max_events_per_append: int = Field(10_000, ge=1)
    max_connections: int = Field(1024, ge=1)
    max_connections_per_uid: int = Field(256, ge=1)
    max_inflight_per_connection: int = Field(1024, ge=1,
                                             description="requests read but not yet answered")
    partial_line_timeout_s: float = Field(10.0, gt=0,
                                          description="deadline for a half-sent line")
    write_timeout_s: float = Field(10.0, gt=0,
                                   description="how long a client may leave answers unread")
    subscriber_max_lag: int = Field(100_000, ge=1,
                                    description="events a subscriber may fall behind")
    max_group_events: int = Field(20_000, ge=1, description="events per group commit")


class AccessRule(BaseModel):
    """Accounts a uid or gid may write and read; ``*`` means every account."""

    model_config = ConfigDict(extra="forbid")

    uid: int | None = None
    gid: int | None = None
    write: list[str] = Field(default_factory=list)
    read: list[str] = Field(default_factory=list)

    @field_validator("write", "read")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        import re

        for item in value:
            if not re.match(_ACCOUNT_OR_ALL, item):
                raise ValueError(f"{item!r} is not an account name or '*'")
        return value


class Config(BaseModel):
    """The daemon's settings. Paths are absolute after ``load_config``."""

    model_config = ConfigDict(extra="forbid")

    db: Path
    socket: Path
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    socket_mode: int = 0o660
    shutdown_timeout_s: float = Field(20.0, gt=0)
    limits: Limits = Field(default_factory=Limits)
    access: list[AccessRule] = Field(default_factory=list)
    inbox: Path | None = None
    inbox_settle_s: float = Field(1.0, gt=0,
                                  description="how long an inbox file must stay unchanged")
    inbox_quantity: Decimal = Field(Decimal(1), gt=0,
                                    description="quantity for trades-CSV rows without one")
    max_page_count: int | None = Field(
        None, ge=1, description="cap on the database's size in pages (SQLite "
        "max_page_count) applied to the writer at start; appends past it fail with -32001 "
        "like a full disk. None: no cap beyond SQLite's own")
    views_flush_events: int = Field(
        4096, ge=1, description="with writer_process: the writer writes the views' changed "
        "rows once per this many events (and after 50 ms without appends, and before any "
        "query); smaller: shorter pauses, more row writes")
    backup_dir: Path | None = Field(
        None, description="where `backup` (the method) and scheduled backups write; "
        "None: the daemon writes no backups (docs/OPERATIONS.md)")
    backup_interval: float | None = Field(
        None, gt=0, description="seconds between scheduled backups into backup_dir; "
        "None: none scheduled")
    backup_keep: int = Field(7, ge=1, description="scheduled backups kept, newest first")
    writer_process: bool = Field(
        True, description="commit in a second process (daemon/writer.py) so that request "
        "handling and commits use two cores; false: commit on a thread of the daemon's "
        "own process (one core)")


def default_paths(env: dict[str, str] | None = None) -> tuple[Path, Path]:
    """The database and socket paths used when none are given (see module docstring)."""
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


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("TRADELOG_") or key == "TRADELOG_CONFIG":
            continue
        name = key[len("TRADELOG_"):].lower()
        if "__" in name:
            section, _, field = name.partition("__")
            found.setdefault(section, {})[field] = value
        else:
            found[name] = value
    return found


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None,
                env: dict[str, str] | None = None) -> Config:
    """Read and check the configuration.

    Raises:
        ConfigError: the file cannot be read or parsed, or a value is wrong; the
            message names the file, the key and what is expected.
    """
    environ = dict(os.environ if env is None else env)
    db, sock = default_paths(environ)
    values: dict[str, Any] = {"db": db, "socket": sock}
    file = path or (Path(environ["TRADELOG_CONFIG"]) if environ.get("TRADELOG_CONFIG") else None)
    if file is not None:
        try:
            values = _merge(values, tomllib.loads(file.read_text()))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    values = _merge(values, _env_overrides(environ))
    values = _merge(values, {k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        config = Config.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        where = f" in {file}" if file else ""
        raise ConfigError(f"invalid configuration{where}: {problems}") from None
    return config.model_copy(update={
        "db": config.db.expanduser().absolute(),
        "socket": config.socket.expanduser().absolute(),
    })
