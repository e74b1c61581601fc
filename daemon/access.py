"""Who may write and read which account: peer credentials against the config's rules."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from daemon.config import AccessRule
from eventstore.errors import NotPermittedError

__all__ = ["Access", "Peer"]


@dataclass(frozen=True, slots=True)
class Peer:
    """The process at the other end of a connection (SO_PEERCRED); None when unknown."""

    pid: int | None
    uid: int | None
    gid: int | None

    def metadata(self) -> dict[str, int]:
        """The known credentials as ``{"pid", "uid", "gid"}``, leaving out those that are None."""
        return {k: v for k, v in (("pid", self.pid), ("uid", self.uid), ("gid", self.gid))
                if v is not None}


class Access:
    """With no rules every peer that can open the socket may do everything (the socket's
    0660 mode is the gate). With rules, a peer may touch the accounts of every rule
    matching its uid or gid; the daemon's own uid and root may touch all."""

    def __init__(self, rules: Sequence[AccessRule]) -> None:
        self.rules = list(rules)
        self.own_uid = os.getuid()

    def _accounts(self, peer: Peer, mode: str) -> set[str] | None:
        if not self.rules or peer.uid in (0, self.own_uid):
            return None
        allowed: set[str] = set()
        for rule in self.rules:
            if (rule.uid is not None and rule.uid == peer.uid) or (
                    rule.gid is not None and rule.gid == peer.gid):
                allowed.update(rule.write if mode == "write" else rule.read)
                if mode == "read":
                    allowed.update(rule.write)
        return None if "*" in allowed else allowed

    def check(self, peer: Peer, mode: str, account: str | None) -> None:
        """Raises ``NotPermittedError`` unless ``peer`` may ``mode`` (read/write) ``account``;
        ``account`` None means every account."""
        allowed = self._accounts(peer, mode)
        if allowed is None:
            return
        if account is None:
            raise NotPermittedError(
                f"uid {peer.uid} may {mode} only accounts {sorted(allowed)}; name one")
        if account not in allowed:
            raise NotPermittedError(f"uid {peer.uid} may not {mode} account {account!r}")
