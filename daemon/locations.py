"""Where the log and the daemon are, read without pydantic when nothing else is configured.

Most ``tradelog`` commands (``show``, ``verify``, ``rebuild``, ``import``, ``export``,
``restore``, ``emit``, ``tail``, ``health``: ``daemon.cli.dispatch.PLAIN_COMMANDS``) use
only the database path, the socket path and the store of the configuration.
``plain_locations`` gives those without loading ``daemon.config``'s models (pydantic and
building them are most of a short command's start) when the configuration holds nothing
that needs checking beyond them: no configuration file, no ``--store``, and only
``TRADELOG_*`` variables whose values ``daemon.config.Config`` takes as they are.
Otherwise it returns None and the command reads the whole configuration with
``daemon.config.load_config``, so that every mistake in it is reported exactly as
before. Given the same inputs both give the same paths (a test holds them equal).

``env_overrides`` and ``merge`` are how ``load_config`` reads the environment and
layers its sources; they live here so that both readers share them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.paths import default_paths

if TYPE_CHECKING:
    from eventstore.store import StoreURL

__all__ = ["NOT_SETTINGS", "Locations", "env_overrides", "merge", "plain_locations"]

NOT_SETTINGS = frozenset({"TRADELOG_CONFIG", "TRADELOG_DEBUG"})
"""``TRADELOG_*`` variables that are not configuration keys."""
_PATH_KEYS = frozenset({"db", "socket"})
"""Keys whose value, a ``Path`` or any text, ``Config`` takes as ``Path(value)``."""
_CHOICES = {"log_format": frozenset({"auto", "json", "console"}),
            "log_level": frozenset({"debug", "info", "warning", "error"})}
"""Keys ``Config`` takes only as one of these texts (its ``Literal`` fields)."""


@dataclass(frozen=True)
class Locations:
    """The database file and the daemon's socket, absolute, of a configuration that
    names no other store than the SQLite file ``db`` (``store`` is always None)."""

    db: Path
    socket: Path
    store: None = None

    def store_url(self) -> StoreURL:
        """The log's store: the SQLite file ``db`` (as ``Config.store_url``)."""
        from eventstore.store import StoreURL

        return StoreURL("sqlite", path=self.db)


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``TRADELOG_<KEY>`` variables of ``environ`` as configuration values: top-level
    keys lower-cased, ``TRADELOG_<SECTION>__<KEY>`` as ``{section: {key: value}}``;
    ``TRADELOG_CONFIG`` (the file's path) and ``TRADELOG_DEBUG`` (a switch of the
    command line: tracebacks, ``daemon.cli.errors``) left out. Values stay text."""
    found: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("TRADELOG_") or key in NOT_SETTINGS:
            continue
        name = key[len("TRADELOG_"):].lower()
        if "__" in name:
            section, _, field = name.partition("__")
            found.setdefault(section, {})[field] = value
        else:
            found[name] = value
    return found


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s values over it, nested tables merged key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _plain(key: str, value: Any) -> bool:
    """Whether ``Config`` takes ``value`` for ``key`` as it is (nothing to refuse)."""
    if key in _PATH_KEYS:
        return isinstance(value, str | Path)
    choices = _CHOICES.get(key)
    return choices is not None and isinstance(value, str) and value in choices


def plain_locations(overrides: Mapping[str, Any] | None = None,
                    env: Mapping[str, str] | None = None) -> Locations | None:
    """The paths ``daemon.config.load_config(None, overrides, env)`` would give, when
    the configuration needs no other checks (see the module docstring), else None.

    ``overrides``: command-line values, None where not given; ``env``: the environment
    (default ``os.environ``). A configuration file (``TRADELOG_CONFIG``) always means
    None: the caller passes ``--config`` to ``load_config`` itself.
    """
    environ = os.environ if env is None else env
    if environ.get("TRADELOG_CONFIG"):
        return None
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    values = merge(env_overrides(environ), given)
    if not all(_plain(key, value) for key, value in values.items()):
        return None
    db, sock = default_paths(dict(environ))
    return Locations(db=Path(values.get("db", db)).expanduser().absolute(),
                     socket=Path(values.get("socket", sock)).expanduser().absolute())
