"""The one table of the daemon's methods: each name and how it is run.

The wire layer looks a request's method up here (an unknown one is -32601 with the list
of methods); the service gives each name its handler (``daemon.service.handlers``), and
a unit test checks that both name the same methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from daemon.wire.rpc import METHOD_NOT_FOUND, RpcError

__all__ = ["METHODS", "Kind", "Method", "lookup", "method_not_found"]


class Kind(Enum):
    """How a method is run, which decides how its answer is paced and bounded."""

    APPEND = "append"
    """Checked as the line is read, then queued for the next group commit (in line order,
    so pipelined appends keep their order); answered once that commit is decided."""
    NOW = "now"
    """Answered at once, before the next line is read."""
    READ = "read"
    """Reads the log: one at a time per connection in line order, in one of the daemon's
    read slots, its answer bounded by ``max_answer_bytes`` (with its batch's others)."""


@dataclass(frozen=True, slots=True)
class Method:
    """One method: its ``name``, how it is run (``kind``), and whether PROTOCOL.md names
    it (``in_protocol``: listed in the -32601 message; an operations method such as
    ``backup`` is served but not listed)."""

    name: str
    kind: Kind
    in_protocol: bool = True


METHODS: dict[str, Method] = {method.name: method for method in (
    Method("append", Kind.APPEND),
    Method("query", Kind.READ),
    Method("read", Kind.READ),
    Method("subscribe", Kind.NOW),
    Method("unsubscribe", Kind.NOW),
    Method("health", Kind.NOW),
    Method("metrics", Kind.READ),
    Method("backup", Kind.READ, in_protocol=False),
)}
"""Every method the daemon serves, by name, in the order the -32601 message lists them."""


def method_not_found(name: str) -> RpcError:
    """The -32601 error for an unknown method ``name`` (shown cut to 64 characters), listing
    the methods PROTOCOL.md names."""
    listed = ", ".join(m.name for m in METHODS.values() if m.in_protocol)
    return RpcError(METHOD_NOT_FOUND, f"unknown method {name[:64]!r}; methods are {listed}")


def lookup(name: str) -> Method:
    """The method called ``name``.

    Raises:
        RpcError: -32601 (``method_not_found``) when there is none.
    """
    found = METHODS.get(name)
    if found is None:
        raise method_not_found(name)
    return found
