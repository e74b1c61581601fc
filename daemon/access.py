"""Who may write and read which account: peer credentials against the config's rules."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon.config import AccessRule
from eventstore.errors import NotPermittedError

__all__ = ["Access", "Peer", "peer_groups"]

_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)
"""Linux (4.13+): the peer's supplementary groups as they were at ``connect()``."""


@dataclass(frozen=True, slots=True)
class Peer:
    """The process at the other end of a connection (SO_PEERCRED); None when unknown.

    ``groups``: its supplementary groups (``peer_groups``); empty when unknown.
    """

    pid: int | None
    uid: int | None
    gid: int | None
    groups: frozenset[int] = field(default_factory=frozenset)

    def metadata(self) -> dict[str, int]:
        """The known credentials as ``{"pid", "uid", "gid"}``, leaving out those that are None."""
        return {k: v for k, v in (("pid", self.pid), ("uid", self.uid), ("gid", self.gid))
                if v is not None}


class Access:
    """With no rules every peer that can open the socket may do everything (the socket's
    0660 mode is the gate). With rules, a peer may touch the accounts of every rule
    matching its uid, its primary gid or one of its supplementary groups; the daemon's
    own uid and root may touch all."""

    def __init__(self, rules: Sequence[AccessRule]) -> None:
        self.rules = list(rules)
        self.own_uid = os.getuid()

    def _accounts(self, peer: Peer, mode: str) -> set[str] | None:
        if not self.rules or peer.uid in (0, self.own_uid):
            return None
        allowed: set[str] = set()
        for rule in self.rules:
            if (rule.uid is not None and rule.uid == peer.uid) or (
                    rule.gid is not None and (rule.gid == peer.gid
                                              or rule.gid in peer.groups)):
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


def peer_groups(sock: socket.socket, pid: int | None, uid: int | None,
                gid: int | None) -> frozenset[int]:
    """The supplementary groups of the peer of a connected Unix socket, read once.

    First ``SO_PEERGROUPS``: the kernel's copy taken when the peer connected, so neither
    a later ``setgroups`` nor the reuse of its pid can change it. Where that is missing
    (Linux before 4.13) or the peer is in more than 256 groups, the ``Groups:`` line of
    ``/proc/<pid>/status``, used only when the ``Uid:`` and ``Gid:`` lines there still
    show the ``uid``/``gid`` from
    ``SO_PEERCRED`` (a pid reused by another user's process gives nothing). The user
    database (``getgrouplist``) is never asked: it says which groups a user may have, not
    which ones the connecting process has. Empty when nothing can be read.
    """
    try:
        # 1024 bytes (256 groups) is the most Python's getsockopt takes; a peer in more
        # groups gets ERANGE and is read from /proc.
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 1024)
    except OSError:
        return _proc_groups(pid, uid, gid)
    count = len(raw) // 4
    return frozenset(struct.unpack(f"{count}I", raw[:count * 4]))


def _proc_groups(pid: int | None, uid: int | None, gid: int | None) -> frozenset[int]:
    if pid is None or uid is None or gid is None:
        return frozenset()
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            lines = dict(line.partition(":")[::2] for line in status)
    except OSError:
        return frozenset()
    try:
        effective_uid = int(lines["Uid"].split()[1])
        effective_gid = int(lines["Gid"].split()[1])
        groups = frozenset(int(g) for g in lines.get("Groups", "").split())
    except (KeyError, IndexError, ValueError):
        return frozenset()
    if (effective_uid, effective_gid) != (uid, gid):
        return frozenset()
    return groups
