"""``--map MAPPING.toml``: how the columns of a CSV, or the members of JSON records, become
events, for a bot's own files (``trades_data.json``, ``predictions.json``) without code.

A mapping names the producer (``name``, part of the events' ``source``), what one record
is (``kind``: a ``round_trip`` with entry and optional exit, a ``fill``, or a
``signal``), where the records are (``format``, and for JSON the top-level key
``records`` holding them), and for each event field the record's field that holds it
(``[fields]``) or a constant (``[values]``). ``[sides]`` and ``[exit_reasons]`` translate
the file's words; ``attrs`` lists fields kept in the events' ``attrs``; ``ignore`` lists
fields known to have no place (not warned about). Example::

    name = "ict-bot"
    kind = "round_trip"
    records = "closed_trades"
    [fields]
    key = "id"
    symbol = "symbol"
    side = "direction"
    entry_time = "entryTime"
    entry_price = "entryPrice"
    exit_time = "exitTime"
    exit_price = "exitPrice"
    realized_pnl = "profit"
    [values]
    quantity = "1"
    [sides]
    BULLISH = "long"

The file is read with ``tomllib`` and checked by the pydantic models below; every
problem is reported at once, by its place in the file (``load_mapping``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.data import ExitReason

__all__ = ["KINDS", "REQUIRED", "FieldMap", "Mapping", "MappingError", "load_mapping",
           "parse_mapping"]

Kind = Literal["round_trip", "fill", "signal"]
KINDS: tuple[str, ...] = ("round_trip", "fill", "signal")
REQUIRED: dict[str, tuple[str, ...]] = {
    "round_trip": ("symbol", "side", "entry_time", "entry_price"),
    "fill": ("symbol", "side", "price", "time"),
    "signal": ("symbol", "side", "time", "strategy"),
}
"""The event fields each kind needs, from ``[fields]`` or ``[values]``; a ``round_trip``
or ``fill`` needs a ``quantity`` too, which may also come from ``--quantity`` or the
inbox's settings (a file without one is refused when none is given)."""
_NAME = r"^[A-Za-z0-9._-]{1,64}$"
_FIELD = Field(default=None, min_length=1, max_length=256)


class FieldMap(BaseModel):
    """Event field -> the record's field holding it (a CSV column, or a JSON member;
    ``a.b`` reaches into a nested object). ``key``: the record's own id (None: a hash of
    the record's content). Prices, quantities, P&L and fees in the account currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str | None = _FIELD
    symbol: str | None = _FIELD
    side: str | None = _FIELD
    quantity: str | None = _FIELD
    time: str | None = _FIELD
    price: str | None = _FIELD
    entry_time: str | None = _FIELD
    entry_price: str | None = _FIELD
    exit_time: str | None = _FIELD
    exit_price: str | None = _FIELD
    realized_pnl: str | None = _FIELD
    fee: str | None = _FIELD
    exit_reason: str | None = _FIELD
    position_id: str | None = _FIELD
    stop_loss: str | None = _FIELD
    take_profit: str | None = _FIELD
    confidence: str | None = _FIELD
    strategy: str | None = _FIELD
    note: str | None = _FIELD


class Mapping(BaseModel):
    """A whole mapping file (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    """The producer: events get ``source`` ``import/map/<name>/<account>``."""
    kind: Kind
    format: Literal["csv", "json"] | None = None
    """None: from the file's extension."""
    records: str | None = Field(default=None, min_length=1, max_length=256)
    """JSON: the top-level key holding the array of records (None: the document is
    that array, or an object with ``records``)."""
    time_format: str = Field(default="iso", min_length=1, max_length=64)
    """``iso`` (ISO 8601; no offset: ``--timezone``), ``unix`` or ``unix_ms`` (epoch
    seconds or milliseconds, UTC), or a ``strptime`` pattern such as ``%d/%m/%Y %H:%M``."""
    fields: FieldMap = FieldMap()
    values: dict[str, str] = {}
    """Constants for event fields the file does not hold (``quantity = "1"``)."""
    sides: dict[str, Literal["long", "short", "buy", "sell"]] = {}
    exit_reasons: dict[str, ExitReason] = {}
    attrs: list[str] = Field(default=[], max_length=32)
    ignore: list[str] = []

    @model_validator(mode="after")
    def _complete(self) -> Self:
        problems = [f"values.{k}: not an event field (one of {', '.join(FieldMap.model_fields)})"
                    for k in self.values if k not in FieldMap.model_fields or k == "key"]
        given = {k for k, v in self.fields.model_dump().items() if v} | set(self.values)
        missing = [f for f in REQUIRED[self.kind] if f not in given]
        if missing:
            problems.append(f"a {self.kind} needs {', '.join(missing)}: name the record's "
                            f"field under [fields] or give a constant under [values]")
        if self.kind == "round_trip" and ("exit_price" in given) != ("exit_time" in given):
            problems.append("exit_price and exit_time come together (a round trip closes at "
                            "a price and a time)")
        if "%" not in self.time_format and self.time_format not in ("iso", "unix", "unix_ms"):
            problems.append(f"time_format {self.time_format!r}: give iso, unix, unix_ms or "
                            "a strptime pattern with % codes")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def has_quantity(self) -> bool:
        """Whether the mapping gives each record a quantity (a field or a constant)."""
        return bool(self.fields.quantity) or "quantity" in self.values

    @property
    def source_name(self) -> str:
        """``import/map/<name>``, the start of the events' ``source``."""
        return f"import/map/{self.name}"


class MappingError(ValueError):
    """A mapping file that cannot be used; the message lists every problem by place."""


def parse_mapping(text: str, where: str = "the mapping") -> Mapping:
    """The mapping in the TOML ``text`` (``where`` names it in messages).

    Raises:
        MappingError: not TOML, or not a valid mapping (each problem as ``place: what``).
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{where} is not valid TOML: {exc}") from None
    try:
        return Mapping.model_validate(document)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            place = ".".join(str(p) for p in error["loc"]) or "(top level)"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"  {place}: {message}")
        raise MappingError(f"{where} is not a usable mapping:\n" + "\n".join(lines)) from None


def load_mapping(path: Path) -> Mapping:
    """The mapping in the file ``path`` (at most 1 MiB of UTF-8 TOML).

    Raises:
        MappingError: it cannot be read, or ``parse_mapping`` refuses it.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read((1 << 20) + 1)
    except OSError as exc:
        raise MappingError(f"cannot read the mapping {path}: {exc.strerror}") from None
    if len(raw) > 1 << 20:
        raise MappingError(f"the mapping {path} is over 1 MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MappingError(f"the mapping {path} is not UTF-8 text") from None
    return parse_mapping(text, str(path))
