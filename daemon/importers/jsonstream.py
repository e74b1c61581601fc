"""One JSON document read a record at a time: ``{"records": [record, ...], ...}``.

The legacy daily P&L files are one JSON object. Reading it whole would hold the whole
file, several times over, in memory; this reader holds one record (at most
``max_chars`` characters of text) at a time. Each record is decoded by the strict wire
reader (``daemon.jsonread.loads``: exact decimals, number bounds, no duplicate keys);
the other top-level keys are skipped, their values bounded the same way.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from daemon.jsonread import JSONReadError, loads

__all__ = ["JSONRecord", "JSONRecordError", "json_array", "json_records"]

_CHUNK = 1 << 16
_WHITESPACE = " \t\n\r"


@dataclass(frozen=True)
class JSONRecord:
    """One element of the records array and the characters of text it took."""

    value: Any
    size: int


class JSONRecordError(ValueError):
    """Why the document cannot be read further (the last item a reader yields)."""


def _skip(value: Any) -> None:
    return None


# Finds where a value ends without building it (numbers are never converted here).
_scanner = json.JSONDecoder(parse_float=_skip, parse_int=_skip, parse_constant=_skip,
                            object_pairs_hook=_skip)


class _Text:
    """UTF-8 text of ``stream`` in a sliding buffer."""

    def __init__(self, stream: BinaryIO, max_chars: int) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buffer = ""
        self.pos = 0
        self.eof = False
        self.max_chars = max_chars

    def more(self) -> bool:
        """Read another chunk; False at the end of the stream."""
        if self.eof:
            return False
        chunk = self.stream.read(_CHUNK)
        try:
            text = self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise JSONRecordError("not UTF-8 text") from None
        self.buffer = self.buffer[self.pos:] + text
        self.pos = 0
        self.eof = not chunk
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end)."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self.more():
                return ""

    def expect(self, chars: str, where: str) -> str:
        found = self.peek()
        if not found or found not in chars:
            shown = repr(found) if found else "the end of the file"
            wanted = " or ".join(repr(c) for c in chars)
            raise JSONRecordError(f"expected {wanted} {where}, found {shown}")
        self.pos += 1
        return found

    def value(self, what: str) -> tuple[str, int]:
        """The text of the next JSON value and where it started; at most ``max_chars``."""
        self.peek()
        while True:
            try:
                _, end = _scanner.raw_decode(self.buffer, self.pos)
            except RecursionError:
                raise JSONRecordError(f"{what} is nested too deeply") from None
            except json.JSONDecodeError as exc:
                if len(self.buffer) - self.pos > self.max_chars:
                    raise JSONRecordError(
                        f"{what} is longer than {self.max_chars} characters or not valid "
                        f"JSON ({exc.msg})") from None
                if not self.more():
                    raise JSONRecordError(f"{what} is not valid JSON: {exc.msg}") from None
                continue
            if end == len(self.buffer) and self.more():
                continue  # a number may go on in the next chunk
            if end - self.pos > self.max_chars:
                raise JSONRecordError(f"{what} is longer than {self.max_chars} characters")
            text = self.buffer[self.pos:end]
            self.pos = end
            return text, end


def _strict(text: str, what: str) -> Any:
    try:
        return loads(text.encode("utf-8", "surrogatepass"))
    except JSONReadError as exc:
        raise JSONRecordError(f"{what}: {exc}") from None


def json_records(stream: BinaryIO, key: str,
                 max_chars: int) -> Iterator[JSONRecord | JSONRecordError]:
    """The elements of the array under ``key`` in the JSON object ``stream`` holds, in
    order. Ends with a ``JSONRecordError`` (and nothing after it) when the document is
    not such an object, ``key`` is missing or repeated, a value is longer than
    ``max_chars`` characters, or the text is not strict JSON (``daemon.jsonread``)."""
    try:
        yield from _records(_Text(stream, max_chars), key)
    except JSONRecordError as exc:
        yield exc


def json_array(stream: BinaryIO, max_chars: int) -> Iterator[JSONRecord | JSONRecordError]:
    """The elements of the JSON array ``stream`` holds, in order, bounded and ended as
    ``json_records``'s."""
    try:
        yield from _whole_array(_Text(stream, max_chars))
    except JSONRecordError as exc:
        yield exc


def _whole_array(text: _Text) -> Iterator[JSONRecord]:
    yield from _array(text, "the top level")
    if text.peek():
        raise JSONRecordError("text after the end of the JSON document")


def _records(text: _Text, key: str) -> Iterator[JSONRecord]:
    seen = False
    text.expect("{", "at the start")
    if text.peek() == "}":
        text.pos += 1
    else:
        while True:
            raw, _ = text.value("a key")
            name = _strict(raw, "a key")
            if not isinstance(name, str):
                raise JSONRecordError("expected a key (a string) in the top-level object")
            text.expect(":", f"after the key {name[:40]!r}")
            if name == key:
                if seen:
                    raise JSONRecordError(f"the key {key!r} appears twice")
                seen = True
                yield from _array(text, key)
            else:
                raw, _ = text.value(f"the value of {name[:40]!r}")
                _strict(raw, f"the value of {name[:40]!r}")
            if text.expect(",}", "in the top-level object") == "}":
                break
    if text.peek():
        raise JSONRecordError("text after the end of the JSON document")
    if not seen:
        raise JSONRecordError(f'expected {{"{key}": [...]}}')


def _array(text: _Text, key: str) -> Iterator[JSONRecord]:
    text.expect("[", f"after {key!r}: it must be an array")
    if text.peek() == "]":
        text.pos += 1
        return
    count = 0
    while True:
        raw, _ = text.value(f"record {count}")
        yield JSONRecord(_strict(raw, f"record {count}"), len(raw))
        count += 1
        if text.expect(",]", f"after record {count - 1}") == "]":
            return
