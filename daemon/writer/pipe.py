"""Pickled messages over a stream socket, each framed by its 8-byte length.

Both ends are tradelog's own processes (nothing from a client is unpickled). The
daemon's end (``Pipe``) is read and written by its event loop; the writer's end
(``BlockingPipe``) is plain blocking socket calls.
"""

from __future__ import annotations

import asyncio
import pickle
import select
import socket
import struct
from typing import Any

__all__ = ["BlockingPipe", "Pipe"]

_LENGTH = struct.Struct("!Q")


def _frame(message: Any) -> bytes:
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


class Pipe:
    """The daemon's end, on its event loop."""

    def __init__(self, reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.stream = stream

    @classmethod
    async def open(cls, sock: socket.socket) -> Pipe:
        """Wrap a connected stream socket in the running loop's streams."""
        reader, stream = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, stream)

    async def send(self, message: Any) -> None:
        """Pickle and write one message (queued in order before the first await)."""
        self.stream.write(_frame(message))
        await self.stream.drain()

    async def recv(self) -> Any:
        """The next message. Raises ``asyncio.IncompleteReadError`` at end of stream."""
        header = await self.reader.readexactly(_LENGTH.size)
        return pickle.loads(await self.reader.readexactly(_LENGTH.unpack(header)[0]))

    def close(self) -> None:
        """Close the socket."""
        self.stream.close()


class BlockingPipe:
    """The writer's end: blocking reads and writes on the socket, with its own buffer
    (so that ``wait`` knows whether a message is already in)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(True)
        self._buffer = bytearray()

    def send(self, message: Any) -> None:
        """Pickle and write one message."""
        self.sock.sendall(_frame(message))

    def wait(self, timeout_s: float | None) -> bool:
        """True once a message can be read (at once if one is buffered), False after
        ``timeout_s`` seconds without one (None: wait as long as it takes)."""
        if self._buffer:
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout_s)
        return bool(ready)

    def _fill(self, size: int) -> None:
        while len(self._buffer) < size:
            chunk = self.sock.recv(max(1 << 16, size - len(self._buffer)))
            if not chunk:
                raise EOFError("the daemon closed the pipe")
            self._buffer += chunk

    def recv(self) -> Any:
        """The next message. Raises ``EOFError`` at end of stream."""
        self._fill(_LENGTH.size)
        size = _LENGTH.unpack_from(self._buffer)[0]
        self._fill(_LENGTH.size + size)
        payload = bytes(self._buffer[_LENGTH.size:_LENGTH.size + size])
        del self._buffer[:_LENGTH.size + size]
        return pickle.loads(payload)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
