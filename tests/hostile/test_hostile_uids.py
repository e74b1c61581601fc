"""Idle connections from several uids, each within its per-uid cap, against a daemon whose
open-file limit is low: new connections are refused at once, never left hanging.

Seen before contract 1.1: with the usual soft limit of 1024 open files, 4 uids x 256 idle
connections (each within the per-uid cap of 256) left new connections hanging and the log
took 27,000 tracebacks in 15 s. Here the same shape is scaled down (an open-file limit of
160, 64 kept in reserve, 24 connections per uid) so the test is fast.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_support import RawConnection, limits_env, log_records, refused, running

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other uids")

UIDS = (61001, 61002, 61003, 61004)
PER_UID = 24


@contextmanager
def _holding(path: Path, uid: int, count: int,
             refused: bool = False) -> Iterator[dict[str, Any]]:
    """A child process of ``uid`` that opens ``count`` connections, checks each with
    ``health`` (or, when ``refused``, reads what the daemon says until it closes),
    reports the error codes, and keeps them open until the ``with`` block ends."""
    report_r, report_w = os.pipe()
    release_r, release_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(report_r)
        os.close(release_w)
        conns: list[RawConnection] = []
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            codes: list[int | None] = []
            for _ in range(count):
                conn = RawConnection(path, timeout_s=5)
                conns.append(conn)
                answers = conn.read_until_eof(timeout_s=5) if refused else [conn.call("health")]
                codes.extend(a.get("error", {}).get("code") for a in answers)
            payload: dict[str, Any] = {"codes": codes}
        except BaseException as exc:
            payload = {"error": repr(exc)}
        os.write(report_w, json.dumps(payload).encode())
        os.close(report_w)
        os.read(release_r, 1)
        for conn in conns:
            conn.close()
        os._exit(0)
    os.close(report_w)
    os.close(release_r)
    try:
        chunks = []
        while chunk := os.read(report_r, 1 << 16):
            chunks.append(chunk)
        yield json.loads(b"".join(chunks))
    finally:
        os.close(report_r)
        os.close(release_w)
        os.waitpid(pid, 0)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every uid can reach (pytest's tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="tradelog-uids-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_uids_within_their_caps_never_leave_new_connections_hanging(
        open_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """4 uids x 24 idle connections fill the cap of 96 (open-file limit 160 minus 64 in
    reserve); a fifth uid's and root's new connections then get -32600 naming the limit
    and are closed within the read timeout, the log holds no flood and no traceback, and
    once the idle connections go, new ones are served again."""
    tmp_path = open_dir
    (tmp_path / "tradelog.toml").write_text("socket_mode = 0o666\n")
    wrapper = tmp_path / "python-160"
    wrapper.write_text(f"#!{sys.executable}\nimport os, resource, sys\n"
                       "resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))\n"
                       f"os.execv({sys.executable!r}, [{sys.executable!r}, *sys.argv[1:]])\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(wrapper))
    env = limits_env(reserved_fds=64, max_connections_per_uid=PER_UID)
    env["TRADELOG_CONFIG"] = str(tmp_path / "tradelog.toml")
    with running(tmp_path, env=env) as proc:
        monkeypatch.undo()
        with _holding(proc.socket, UIDS[0], PER_UID) as first, \
                _holding(proc.socket, UIDS[1], PER_UID) as second, \
                _holding(proc.socket, UIDS[2], PER_UID) as third, \
                _holding(proc.socket, UIDS[3], PER_UID) as fourth:
            for held in (first, second, third, fourth):
                assert {"codes": [None] * PER_UID} == held
            with _holding(proc.socket, 61005, 1, refused=True) as fifth:
                assert {"codes": [-32600]} == fifth
            answers = refused(proc.socket, 3)
            assert [[-32600]] * 3 == [[a["error"]["code"] for a in got] for got in answers]
            assert "max_connections" in answers[0][0]["error"]["message"]
        with RawConnection(proc.socket, timeout_s=5) as conn:
            assert "ok" == conn.result("health")["status"]
        records = log_records(proc)
    assert 5 > sum(r.get("event") == "connection_refused" for r in records)
    assert "Traceback" not in proc.log.read_text()
