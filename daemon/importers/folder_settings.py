"""Per-folder inbox settings: ``.tradelog.toml`` in an inbox folder, for the files there.

A bot's files often lack what an import needs (a trades CSV has no quantity column; a
bot's own JSON needs a mapping). A small TOML file in the folder says it once::

    # inbox/<account>/.tradelog.toml
    quantity = "100000"          # for rows without a quantity
    timezone = "Europe/London"   # times written without an offset (default UTC)
    format = "trades-csv"        # instead of telling it from the name and header
    revision = 2                 # after voiding an import, to import the rows again
    [map]                        # or: read the folder's files through this mapping
    name = "ict-bot"             # (the keys of a --map file: daemon.importers.mapping)
    kind = "round_trip"

It applies to the files directly in that folder (the inbox itself, or one account's
subfolder); ``quantity`` replaces the daemon's ``inbox_quantity`` there. It is read at
each file, so a change applies to the next file. Because it decides how other files are
read, it is taken only as a regular file (never a link, never waited on), of at most
``MAX_BYTES``, owned by the daemon's user or by the owner of the file being imported;
anything else, and any mistake in it, refuses the file with the reason (``failed/``).
"""

from __future__ import annotations

import errno
import os
import stat
import tomllib
from decimal import Decimal
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from daemon.importers.formats import FORMATS
from daemon.importers.mapping import Mapping
from daemon.importers.safedir import FILE_FLAGS

__all__ = ["MAX_BYTES", "SETTINGS_NAME", "FolderSettings", "SettingsError", "read_settings"]

SETTINGS_NAME = ".tradelog.toml"
MAX_BYTES = 64 << 10


class SettingsError(ValueError):
    """The folder's settings cannot be used; the message says what to fix."""


class FolderSettings(BaseModel):
    """The settings of one inbox folder (module docstring); all optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quantity: Decimal | None = Field(default=None, gt=0, lt=Decimal(10) ** 15)
    """Quantity of rows without one (None: the daemon's ``inbox_quantity``)."""
    timezone: str = "UTC"
    format: str | None = None
    """One of ``FORMATS`` (None: from the file's name and header, or ``map``)."""
    map: Mapping | None = None
    revision: int = Field(default=1, ge=1, le=999)
    """Above 1: the folder's files go under a new source (``iter_rows``), for rows whose
    earlier import was voided."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value[:64]!r} is not an IANA time zone name") from None
        return value

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and value not in FORMATS:
            raise ValueError(f"{value[:64]!r} is not one of {', '.join(sorted(FORMATS))}")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if self.format is not None and self.map is not None:
            raise ValueError("give format or [map], not both")
        return self


def _refuse(what: str) -> SettingsError:
    return SettingsError(f"the folder's {SETTINGS_NAME} {what}")


def read_settings(folder: int, file_owner: int) -> FolderSettings:
    """The settings in ``folder`` (an open descriptor), or the defaults when it has none.

    Raises:
        SettingsError: it is a link or not a regular file, too large, owned by neither
            the daemon's uid nor ``file_owner``, unreadable, not TOML, or not valid
            settings (each problem named by its place).
    """
    try:
        fd = os.open(SETTINGS_NAME, FILE_FLAGS, dir_fd=folder)
    except FileNotFoundError:
        return FolderSettings()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse("is a symbolic link; put the file itself there") from None
        raise _refuse(f"cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse("is not a regular file")
        if st.st_uid not in (os.geteuid(), file_owner):
            raise _refuse(f"is owned by uid {st.st_uid}, neither the daemon's "
                          f"({os.geteuid()}) nor the file's owner ({file_owner}); it is "
                          "not taken from anyone else")
        if st.st_size > MAX_BYTES:
            raise _refuse(f"is {st.st_size} bytes, more than {MAX_BYTES}")
        raw = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    return _parse(raw)


def _parse(raw: bytes) -> FolderSettings:
    try:
        document: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _refuse("is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise _refuse(f"is not valid TOML: {exc}") from None
    try:
        return FolderSettings.model_validate(document)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
                 f"{str(e['msg']).removeprefix('Value error, ')}"
                 for e in exc.errors(include_url=False)]
        raise _refuse("is not usable:\n" + "\n".join(lines)) from None
