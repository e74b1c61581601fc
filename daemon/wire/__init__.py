"""The daemon's wire protocol, pure: NDJSON framing and its limits, JSON-RPC requests,
batches and answers, the table of methods (PROTOCOL.md, "Transport" and "Limits").

No event loop, no socket, no clock, no logging and no storage here: the server shell
(``daemon.connection``) feeds a ``ServerProtocol`` the bytes it reads and writes the
bytes it gets back. ``tests/test_wire_layering.py`` checks that importing it loads no
I/O module.
"""

from daemon.wire.methods import METHODS, Kind, Method
from daemon.wire.protocol import (
    AnswerBudget,
    Group,
    LineTooLong,
    Refusal,
    Requests,
    ServerProtocol,
    Slot,
    Wait,
    WireLimits,
)

__all__ = ["METHODS", "AnswerBudget", "Group", "Kind", "LineTooLong", "Method", "Refusal",
           "Requests", "ServerProtocol", "Slot", "Wait", "WireLimits"]
