"""Minimal, dependency-free systemd integration (no libsystemd).

Three pieces of the systemd service protocol are implemented here:

* :func:`notify` -- the ``sd_notify(3)`` readiness / status / watchdog protocol;
* :func:`watchdog_interval` -- ``sd_watchdog_enabled(3)``;
* :func:`listen_sockets` -- socket activation, ``sd_listen_fds(3)``.

Every function is a no-op (returns ``False``, ``None`` or ``[]``) when the
process was not started by systemd, so the daemon can call them
unconditionally.
"""

from __future__ import annotations

import os
import socket

__all__ = ["SD_LISTEN_FDS_START", "listen_sockets", "notify", "watchdog_interval"]

#: First file descriptor passed by socket activation (``SD_LISTEN_FDS_START``).
SD_LISTEN_FDS_START = 3

_LISTEN_ENV = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def _notify_address(value: str) -> bytes | None:
    """Translate a ``$NOTIFY_SOCKET`` value into an ``AF_UNIX`` address.

    Returns ``None`` for address kinds this module does not speak (e.g.
    ``vsock:`` addresses used by VMs).  A leading ``@`` denotes the Linux
    abstract namespace and is replaced by a NUL byte, as ``sd_notify(3)`` does.
    """
    if value.startswith("@"):
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return os.fsencode(value)
    return None


def notify(*lines: str) -> bool:
    """Send one ``sd_notify(3)`` datagram to the service manager.

    Each argument is one ``KEY=VALUE`` assignment, e.g. ``"READY=1"``,
    ``"STATUS=replaying events"``, ``"WATCHDOG=1"``, ``"STOPPING=1"``,
    ``"RELOADING=1"`` or ``f"MAINPID={os.getpid()}"``.  They are joined with
    ``"\\n"`` and sent as a single ``AF_UNIX``/``SOCK_DGRAM`` datagram to the
    address in ``$NOTIFY_SOCKET``: a filesystem path, or an abstract-namespace
    name written with a leading ``@``.

    ``$NOTIFY_SOCKET`` is left in the environment (unlike
    ``sd_notify(unset_environment=1)``) so the function can be called
    repeatedly, e.g. for watchdog pings.

    Returns ``True`` if the datagram was sent, ``False`` if ``$NOTIFY_SOCKET``
    is unset/empty/of an unsupported kind (nothing is done) **or if sending
    failed**: this function never raises on a socket error, because a
    notification failure must not take the daemon down.

    Raises :class:`ValueError` (a programming error, not a runtime condition)
    if no line is given or a line contains a newline, which would otherwise
    smuggle in extra assignments.
    """
    if not lines:
        raise ValueError("notify() needs at least one KEY=VALUE line")
    for line in lines:
        if "\n" in line:
            raise ValueError(f"sd_notify line must not contain a newline: {line!r}")
    target = os.environ.get("NOTIFY_SOCKET", "")
    address = _notify_address(target) if target else None
    if address is None:
        return False
    payload = "\n".join(lines).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sent = sock.sendto(payload, address)
    except OSError:
        return False
    return sent == len(payload)


def watchdog_interval() -> float | None:
    """Return the service watchdog timeout in seconds, per ``sd_watchdog_enabled(3)``.

    The value comes from ``$WATCHDOG_USEC`` (microseconds, set by systemd from
    ``WatchdogSec=``).  The caller should send ``notify("WATCHDOG=1")`` at
    about **half** of the returned interval.

    Returns ``None`` when the watchdog is not enabled for this process:
    ``$WATCHDOG_USEC`` unset, empty, not a positive integer, or
    ``$WATCHDOG_PID`` set to a pid other than :func:`os.getpid` (the variables
    were inherited from a parent).  Never raises.  The environment is left
    untouched.
    """
    raw_usec = os.environ.get("WATCHDOG_USEC", "")
    try:
        usec = int(raw_usec)
    except ValueError:
        return None
    if usec <= 0:
        return None
    raw_pid = os.environ.get("WATCHDOG_PID", "")
    if raw_pid:
        try:
            pid = int(raw_pid)
        except ValueError:
            return None
        if pid != os.getpid():
            return None
    return usec / 1_000_000


def _unset_listen_env() -> None:
    for name in _LISTEN_ENV:
        os.environ.pop(name, None)


def listen_sockets() -> list[socket.socket]:
    """Return the sockets passed by systemd socket activation (``sd_listen_fds(3)``).

    When ``$LISTEN_PID`` equals :func:`os.getpid`, ``$LISTEN_FDS`` (``n``)
    file descriptors starting at fd 3 (``SD_LISTEN_FDS_START``) belong to this
    process.  Each is marked close-on-exec, wrapped with
    ``socket.socket(fileno=fd)`` (family and type are detected from the fd)
    and set non-blocking, ready for ``asyncio`` (e.g.
    ``asyncio.start_unix_server(sock=...)``).  The returned list is in fd
    order; the caller owns the sockets and must close them.  When activated
    by ``tradelog.socket`` the list has one listening ``AF_UNIX`` stream
    socket.  Do not unlink its path on shutdown: the socket unit owns it.

    Like ``sd_listen_fds(unset_environment=1)``, ``$LISTEN_PID``,
    ``$LISTEN_FDS`` and ``$LISTEN_FDNAMES`` are always removed from
    :data:`os.environ` so child processes do not inherit them.  Call this
    once: a second call returns ``[]``.

    Returns ``[]`` when the process was not socket-activated
    (``$LISTEN_PID`` unset or naming another process, or ``$LISTEN_FDS``
    unset or ``0``).

    Raises :class:`ValueError` if ``$LISTEN_PID`` or ``$LISTEN_FDS`` is not a
    non-negative integer, and :class:`OSError` if a passed fd is not open or
    not a socket (``EBADF``/``ENOTSOCK``); sockets already wrapped by this
    call are closed before the error propagates.
    """
    raw_pid = os.environ.get("LISTEN_PID")
    raw_fds = os.environ.get("LISTEN_FDS")
    _unset_listen_env()
    if raw_pid is None or raw_fds is None:
        return []
    try:
        pid = int(raw_pid)
        count = int(raw_fds)
    except ValueError:
        raise ValueError(
            f"malformed socket activation environment: LISTEN_PID={raw_pid!r} "
            f"LISTEN_FDS={raw_fds!r}"
        ) from None
    if pid <= 0 or count < 0:
        raise ValueError(
            f"malformed socket activation environment: LISTEN_PID={raw_pid!r} "
            f"LISTEN_FDS={raw_fds!r}"
        )
    if pid != os.getpid():
        return []

    sockets: list[socket.socket] = []
    try:
        for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
            os.set_inheritable(fd, False)
            sock = socket.socket(fileno=fd)
            sockets.append(sock)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
