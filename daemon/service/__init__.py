"""What the daemon does for its clients, by what it does: group commits (``commits``),
the request handlers (``handlers``), subscriptions (``subscriptions``), put together in
``Service`` (``core``). Nothing here knows of sockets or of the server's connections."""

from daemon.service.core import Connections, Service
from daemon.service.handlers import CallContext
from daemon.service.subscriptions import Outbox, Subscription

__all__ = ["CallContext", "Connections", "Outbox", "Service", "Subscription"]
