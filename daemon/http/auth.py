"""Who may read what over HTTP: bearer tokens from a file, each mapped to accounts.

The tokens file (``http_tokens_file``, TOML, never given on the command line)::

    [[tokens]]
    name = "phone"                       # shown in the logs, never the token
    token = "at least 32 random characters"
    read = ["main", "paper"]             # or ["*"] for every account

It must not be readable by other users (mode 0600 or 0640): a token is a password.
The file is read again when it changes, so a token is added or revoked without a
restart. With no tokens file (allowed on a loopback address only) every client may
read every account, as with no ``access`` rules on the socket.
"""

from __future__ import annotations

import hmac
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventstore.errors import NotPermittedError
from eventstore.errors import ValidationError as ConfigError

__all__ = ["NotAuthenticatedError", "Reader", "TokenStore", "check_read"]

_ACCOUNT_OR_ALL = re.compile(r"^(\*|[A-Za-z0-9._-]{1,64})$")
MIN_TOKEN_CHARS = 32


class NotAuthenticatedError(Exception):
    """No token, or one the tokens file does not hold (HTTP 401)."""


@dataclass(frozen=True, slots=True)
class Reader:
    """Whoever a request comes from: a token's ``name`` and the ``accounts`` it may read
    (None: every account)."""

    name: str
    accounts: frozenset[str] | None


def check_read(reader: Reader, account: str | None) -> None:
    """Raises ``NotPermittedError`` unless ``reader`` may read ``account`` (None: every
    account), with the same words as the socket's access rules."""
    if reader.accounts is None:
        return
    if account is None:
        raise NotPermittedError(f"token {reader.name!r} may read only accounts "
                                f"{sorted(reader.accounts)}; name one")
    if account not in reader.accounts:
        raise NotPermittedError(f"token {reader.name!r} may not read account {account!r}")


class _Token(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    token: str = Field(min_length=MIN_TOKEN_CHARS, max_length=512)
    read: list[str] = Field(min_length=1)

    @field_validator("read")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _ACCOUNT_OR_ALL.match(item):
                raise ValueError(f"{item!r} is not an account name or '*'")
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[_Token] = Field(default_factory=list)


class TokenStore:
    """The tokens of ``path`` (None: no tokens, every request reads everything).

    ``load()`` reads the file (at start: an error stops the daemon from serving HTTP);
    ``reader()`` re-reads it when its modification time or size changed, keeping the
    tokens it had when the new content is wrong (and saying why in ``last_error``).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._tokens: list[tuple[bytes, Reader]] = []
        self._stamp: tuple[int, int] | None = None
        self.last_error: str | None = None

    @property
    def required(self) -> bool:
        """True when requests must carry a token."""
        return self.path is not None

    def load(self) -> None:
        """Read the tokens file.

        Raises:
            ConfigError: unreadable, readable by others, not TOML, or a token to fix.
        """
        if self.path is None:
            return
        try:
            info = self.path.stat()
            text = self.path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read http_tokens_file {self.path}: "
                              f"{exc.strerror}") from None
        if info.st_mode & stat.S_IROTH or info.st_mode & stat.S_IWOTH:
            raise ConfigError(f"http_tokens_file {self.path} is readable or writable by "
                              f"other users (mode {stat.S_IMODE(info.st_mode):o}): "
                              f"chmod 600 {self.path}")
        try:
            parsed = _File.model_validate(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"http_tokens_file {self.path} is not valid TOML: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                                 for err in exc.errors())
            raise ConfigError(f"http_tokens_file {self.path}: {problems}") from None
        names = [t.name for t in parsed.tokens]
        if len(set(names)) != len(names):
            raise ConfigError(f"http_tokens_file {self.path}: token names must differ")
        self._tokens = [
            (t.token.encode(), Reader(t.name, None if "*" in t.read else frozenset(t.read)))
            for t in parsed.tokens]
        self._stamp = (info.st_mtime_ns, info.st_size)

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            info = os.stat(self.path)
        except OSError as exc:
            self.last_error = f"cannot read {self.path}: {exc.strerror}"
            return
        if (info.st_mtime_ns, info.st_size) == self._stamp:
            return
        try:
            self.load()
            self.last_error = None
        except ConfigError as exc:
            self._stamp = (info.st_mtime_ns, info.st_size)
            self.last_error = str(exc)

    def reader(self, authorization: str | None) -> Reader:
        """The reader an ``Authorization`` header names.

        Raises:
            NotAuthenticatedError: tokens are required and the header holds none of them.
        """
        if self.path is None:
            return Reader("local", None)
        self._refresh()
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise NotAuthenticatedError(
                "send the header 'Authorization: Bearer <token>' with a token of "
                "http_tokens_file")
        candidate = given.strip().encode()
        found: Reader | None = None
        for secret, reader in self._tokens:
            # Every token compared in constant time, so timing tells nothing of which.
            if hmac.compare_digest(secret, candidate):
                found = reader
        if found is None:
            raise NotAuthenticatedError("unknown token; check http_tokens_file")
        return found
