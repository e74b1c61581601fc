"""The HTTP listen address: ``host:port`` text checked, and whether it is loopback.

No third-party import here: ``daemon.config`` checks ``http_listen`` with it whether or
not the ``http`` extra is installed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Listen", "parse_listen"]


@dataclass(frozen=True, slots=True)
class Listen:
    """Where the HTTP API listens: ``host`` (an IP address or ``localhost``) and ``port``."""

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """True for 127.0.0.0/8, ::1 and ``localhost``: only this machine can connect."""
        if self.host == "localhost":
            return True
        return ipaddress.ip_address(self.host).is_loopback

    @property
    def url(self) -> str:
        """The page's URL (``http://host:port/``; IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def parse_listen(text: str) -> Listen:
    """``127.0.0.1:8787``, ``[::1]:8787``, ``0.0.0.0:8787`` or ``localhost:8787`` as a
    ``Listen``; port 0 asks the system for a free one.

    Raises:
        ValueError: what to write instead.
    """
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8787 or [::1]:8787)")
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:8787")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{text!r}: the host must be an IP address or localhost "
                             "(names other than localhost are not resolved)") from None
    return Listen(host, int(port_text))
