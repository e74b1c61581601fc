"""Daemon configuration: defaults, a TOML file, environment overrides; checked by pydantic.

Precedence, lowest first: built-in defaults; the TOML file (``--config``, or
``$TRADELOG_CONFIG``); environment variables ``TRADELOG_<KEY>`` for top-level keys and
``TRADELOG_LIMITS__<KEY>`` for limits; command-line flags.

Default paths: ``daemon.paths.default_paths``. The paths alone, without this module's
models, when nothing else is configured: ``daemon.locations``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from daemon.locations import env_overrides, merge
from daemon.paths import default_paths
from eventstore.errors import ValidationError as ConfigError

if TYPE_CHECKING:
    from eventstore.store import StoreURL

__all__ = ["AccessRule", "Config", "ConfigError", "Limits", "default_paths", "load_config"]

_ACCOUNT_OR_ALL = r"^(\*|[A-Za-z0-9._-]{1,64})$"


class Limits(BaseModel):
    """What one client may ask of the daemon (PROTOCOL.md, "Limits"); every bound has a
    clear error, or back-pressure, when passed. Sizes in bytes, times in seconds."""

    model_config = ConfigDict(extra="forbid")

    max_line_bytes: int = Field(1 << 20, ge=1024, description="longest request line")
    max_batch_requests: int = Field(1000, ge=1,
                                    description="requests in one batch array (-32600 past it)")
    max_events_per_append: int = Field(10_000, ge=1)
    max_connections: int = Field(1024, ge=1, description="connections in all (kept below "
                                 "the open-file limit less reserved_fds)")
    max_connections_per_uid: int = Field(256, ge=1)
    reserved_fds: int = Field(128, ge=16, description="file descriptors kept free for "
                              "the database, the writer's pipes, the inbox, logs and the "
                              "connections accepted at once only to be refused (up to 100): "
                              "connections are capped at the open-file limit less this")
    max_inflight_per_connection: int = Field(256, ge=1, description="requests read but not "
                                             "yet answered, batch members one each")
    max_answer_bytes: int = Field(16 << 20, ge=64 << 10, description="answer bytes waiting "
                                  "to be sent to one connection; also the most one answer "
                                  "(or one batch's answers) may hold")
    max_subscriptions_per_connection: int = Field(16, ge=1)
    max_reads_running: int = Field(2, ge=1, description="read, query and metrics requests "
                                   "running at once over all connections (each connection "
                                   "runs its own one at a time, in order)")
    partial_line_timeout_s: float = Field(10.0, gt=0,
                                          description="deadline for a half-sent line")
    write_timeout_s: float = Field(10.0, gt=0, description="how long a client may leave "
                                   "answers unread (its socket full, nothing taken)")
    subscriber_max_lag: int = Field(100_000, ge=1,
                                    description="events a subscriber may fall behind")
    max_group_events: int = Field(20_000, ge=1, description="events per group commit")
    refusals_log_interval_s: float = Field(10.0, gt=0, description="refused requests are "
                                           "logged per connection at most once per this, "
                                           "as a count")

    @model_validator(mode="after")
    def _answers_hold_a_line(self) -> Limits:
        # A stored event is about as large as the line that brought it: a read of one
        # must always fit in an answer.
        if self.max_answer_bytes < 2 * self.max_line_bytes:
            raise ValueError(f"max_answer_bytes ({self.max_answer_bytes}) must be at least "
                             f"twice max_line_bytes ({self.max_line_bytes})")
        return self


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
    group: int | None = Field(
        None, ge=0, description="a group (name or gid; a gid once loaded) given read "
        "access to the files the daemon creates: then files are 0640 and directories "
        "0750, owned by that group; None: files 0600, directories 0700")
    shutdown_timeout_s: float = Field(
        10.0, gt=0, description="SIGTERM: the whole stop, answers drained included, within "
        "this; clients still connected then are cut off")
    limits: Limits = Field(default_factory=Limits)
    access: list[AccessRule] = Field(default_factory=list)
    inbox: Path | None = None
    inbox_settle_s: float = Field(1.0, gt=0,
                                  description="how long an inbox file must stay unchanged")
    inbox_quantity: Decimal | None = Field(
        None, gt=0, description="quantity for trades-CSV rows without one; None: a trades "
        "CSV without a quantity column is refused")
    inbox_max_bytes: int = Field(
        64 << 20, ge=1, description="largest file the inbox imports (its apparent size: a "
        "sparse file counts whole); larger ones go to failed/")
    max_page_count: int | None = Field(
        None, ge=1, description="cap on the database's size in pages (SQLite "
        "max_page_count) applied to the writer at start; appends past it fail with -32001 "
        "like a full disk. None: no cap beyond SQLite's own")
    views_flush_events: int = Field(
        4096, ge=1, description="with writer_process: the writer writes the views' changed "
        "rows once per this many events (and after 0.5 s without appends, and before any "
        "query); smaller: shorter pauses, more row writes")
    backup_dir: Path | None = Field(
        None, description="where `backup` (the method) and scheduled backups write; "
        "None: the daemon writes no backups (docs/OPERATIONS.md)")
    backup_interval: float | None = Field(
        None, gt=0, description="seconds between scheduled backups into backup_dir; "
        "None: none scheduled")
    backup_keep: int = Field(7, ge=1, description="scheduled backups kept, newest first")
    writer_process: bool = Field(
        True, description="commit in a second process (daemon/writer/) so that request "
        "handling and commits use two cores; false: commit on a thread of the daemon's "
        "own process (one core)")
    http_listen: str | None = Field(
        None, description="HOST:PORT of the read-only HTTP API and dashboard "
        "(docs/HTTP.md), e.g. 127.0.0.1:8787; needs the `http` extra. None: no HTTP")
    http_tokens_file: Path | None = Field(
        None, description="TOML file of bearer tokens and the accounts each may read "
        "(docs/HTTP.md); required when http_listen is not a loopback address")
    http_cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to read the HTTP API from a "
        "browser page of theirs (CORS); empty: none")

    @field_validator("http_listen")
    @classmethod
    def _http_listen(cls, value: str | None) -> str | None:
        from daemon.http.address import parse_listen

        if value is not None:
            parse_listen(value)
        return value

    @model_validator(mode="after")
    def _http_tokens(self) -> Config:
        if self.http_listen is None or self.http_tokens_file is not None:
            return self  # nothing to check: daemon.http (and asyncio) stay unloaded
        from daemon.http.address import parse_listen

        if not parse_listen(self.http_listen).loopback:
            raise ValueError(f"http_listen {self.http_listen} is not a loopback address: "
                             "set http_tokens_file (docs/HTTP.md, \"Security\") or listen "
                             "on 127.0.0.1")
        return self

    store: str | None = Field(
        None, description="where the log is kept: sqlite:///PATH (the same as `db`), or "
        "a PostgreSQL URI, postgresql://USER@HOST[:PORT][,HOST2...]/DBNAME[?...] "
        "(docs/POSTGRESQL.md); None: the SQLite file `db`")

    @field_validator("store")
    @classmethod
    def _store(cls, value: str | None) -> str | None:
        """A store URL ``eventstore.store.parse_store`` accepts."""
        if value is not None:
            from eventstore.store import parse_store

            try:
                parse_store(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    def store_url(self) -> StoreURL:
        """The log's store: ``store`` parsed, or the SQLite file ``db``."""
        from eventstore.store import StoreURL, parse_store

        if self.store is None:
            return StoreURL("sqlite", path=self.db)
        return parse_store(self.store)

    @field_validator("group", mode="before")
    @classmethod
    def _group(cls, value: Any) -> Any:
        """A group name becomes its gid; a name the system does not know is refused."""
        import grp

        if isinstance(value, str) and not value.strip().isdigit():
            try:
                return grp.getgrnam(value).gr_gid
            except KeyError:
                raise ValueError(f"no group named {value!r} on this system; give an "
                                 "existing group's name or gid") from None
        return value


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
        import tomllib  # only with a file: most starts have none

        try:
            values = merge(values, tomllib.loads(file.read_text()))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    values = merge(values, env_overrides(environ))
    values = merge(values, {k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        config = Config.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        where = f" in {file}" if file else ""
        raise ConfigError(f"invalid configuration{where}: {problems}") from None
    store = config.store_url()
    if store.kind == "sqlite" and config.store is not None and store.path is not None:
        # ``store = "sqlite:///PATH"`` is another spelling of ``db = PATH``.
        config = config.model_copy(update={"db": store.path})
    return config.model_copy(update={
        "db": config.db.expanduser().absolute(),
        "socket": config.socket.expanduser().absolute(),
        "http_tokens_file": config.http_tokens_file.expanduser().absolute()
        if config.http_tokens_file is not None else None,
    })
